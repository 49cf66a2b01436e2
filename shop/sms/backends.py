"""The SMS backends by name (`SMS_BACKEND`): a registry of sender factories.

The Vonage module (and its SDK) is imported only when a Vonage sender is made, so that a
shop on the console backend never loads it.
"""

from collections.abc import Callable, Mapping
from typing import Any

from shop.sms.senders import ConsoleSender, SmsSender

SenderFactory = Callable[[Mapping[str, Any]], SmsSender]
SENDERS: dict[str, SenderFactory] = {}


def register_sender(name: str, factory: SenderFactory) -> None:
    SENDERS[name] = factory


def make_sender(config: Mapping[str, Any]) -> SmsSender:
    """A new sender for `config["SMS_BACKEND"]`."""
    name = config["SMS_BACKEND"]
    try:
        factory = SENDERS[name]
    except KeyError:
        raise ValueError(
            f"Unknown SMS_BACKEND {name!r}; choose one of: {', '.join(sorted(SENDERS))}"
        ) from None
    return factory(config)


def _vonage(config: Mapping[str, Any]) -> SmsSender:
    from shop.sms.vonage import VonageSender

    return VonageSender.from_config(config)


register_sender("console", lambda config: ConsoleSender())
register_sender("vonage", _vonage)
