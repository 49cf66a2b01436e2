"""The Vonage sender: hands one SMS to Vonage's SMS API through the real `vonage` SDK (4.x).

Outcomes (SPEC section 6): status "0" is accepted; statuses 1 (throttled) and 5 (internal
error), network errors, timeouts, HTTP 429 and 5xx are retriable; every other status and
every other HTTP error fails at once. The delivery process owns retries: the SDK's own
retries are switched off here so that a POST is never re-sent behind our back.
"""

import logging
import math
import re
from collections.abc import Mapping
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from pydantic import ValidationError
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import HttpRequestError
from vonage_sms import PartialFailureError, SmsError
from vonage_sms import SmsMessage as VonageSms
from vonage_utils.errors import VonageError

from shop import clock
from shop.models.sms import SmsMessage
from shop.sms.sealing import BodySeal, SealBroken
from shop.sms.senders import Accepted, SendFailure, SmsSender

# The SDK logs every request's parameters, the message text included (and so any one-time
# code), at DEBUG on the "vonage" logger. Keep that logger at INFO or above whatever the root
# logger's level is, so that codes never reach a log.
for _name in ("vonage", "vonage_http_client"):
    _logger = logging.getLogger(_name)
    if _logger.level < logging.INFO:  # NOTSET (inherit) or DEBUG
        _logger.setLevel(logging.INFO)

# GSM 03.38: the default alphabet (without the escape character) and its extension table.
# A text made only of these goes out as "text" (160 characters a part); anything else needs
# "unicode" (70 characters a part).
GSM_BASIC_CHARSET = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM_EXTENSION_CHARSET = frozenset("\f^{}\\[~]|€")
GSM_CHARSET = GSM_BASIC_CHARSET | GSM_EXTENSION_CHARSET

# Vonage's accepted range for `ttl`, in milliseconds.
TTL_MIN_MS = 20_000
TTL_MAX_MS = 604_800_000

# Statuses worth another attempt later: 1 throttled, 5 internal error.
RETRIABLE_STATUSES = frozenset({"1", "5"})

MAX_REASON_LENGTH = 400

_SMS_ERROR = re.compile(r"failed with error code (\S+?): (.*)", re.DOTALL)


def needs_unicode(text: str) -> bool:
    """Whether `text` has a character outside the GSM 03.38 alphabet and extension table."""
    return not set(text) <= GSM_CHARSET


class _Message(VonageSms):
    """The SDK's message, dumped without its unset (None) fields.

    The SDK signs `model_dump()` as is, None fields included ("&callback=None"...), while
    `requests` leaves None fields out of the form it sends: the signature would then never
    match on Vonage's side. Leaving them out of the dump makes both sides agree.
    """

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("exclude_none", True)
        return super().model_dump(**kwargs)


def _reason(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_REASON_LENGTH:
        return text[: MAX_REASON_LENGTH - 1] + "…"
    return text


def _status_failure(status: str, error_text: str, *, prefix: str = "") -> SendFailure:
    status = status.strip()
    return SendFailure(
        _reason(f"{prefix}Vonage refused the message: status {status}: {error_text}"),
        retriable=status in RETRIABLE_STATUSES,
        code=status,
    )


def _total_price(prices: list[str | None]) -> str | None:
    """The price of a message sent in several parts: the sum of the parts' prices."""
    if len(prices) == 1:
        return prices[0]
    try:
        return str(sum((Decimal(price or "") for price in prices), Decimal(0)))
    except InvalidOperation:
        return None


class VonageSender(SmsSender):
    """Sends SMS through Vonage's SMS API with one SDK client of its own.

    Not thread-safe: the SDK keeps one headers dict per client and rewrites it on every call,
    so a sender instance must be used by one thread only (make one sender per delivery
    thread, as `make_sender` does). Call `close()` when done to release the connection.
    """

    def __init__(
        self,
        *,
        api_key: str,
        sender_id: str,
        api_secret: str | None = None,
        signature_secret: str | None = None,
        rest_host: str = "rest.nexmo.com",
        api_host: str = "api.nexmo.com",
        timeout: int = 10,
        seal: BodySeal | None = None,
    ) -> None:
        if not api_key or not (api_secret or signature_secret):
            raise ValueError(
                "SMS_BACKEND=vonage needs VONAGE_API_KEY and VONAGE_API_SECRET"
                " or VONAGE_SIGNATURE_SECRET"
            )
        if not sender_id:
            raise ValueError("SMS_BACKEND=vonage needs VONAGE_FROM")
        if timeout < 1:
            raise ValueError("VONAGE_TIMEOUT must be at least 1 (seconds)")
        if signature_secret:
            # With a signature secret the SDK signs each SMS request (HMAC-SHA256) instead of
            # sending the API secret.
            auth = Auth(
                api_key=api_key,
                api_secret=api_secret or None,
                signature_secret=signature_secret,
                signature_method="sha256",
            )
        else:
            auth = Auth(api_key=api_key, api_secret=api_secret)
        options = HttpClientOptions(
            rest_host=rest_host,
            api_host=api_host,
            # The SDK's default is no timeout at all.
            timeout=timeout,
            # No urllib3 retries; and the SDK re-sends a request after RemoteDisconnected up
            # to `pool_maxsize` attempts in all: 1 means a single attempt.
            max_retries=0,
            pool_connections=1,
            pool_maxsize=1,
        )
        self.sender_id = sender_id
        self.timeout = timeout
        # Opens sealed code messages just before they go (shop.sms.sealing).
        self.seal = seal or BodySeal(())
        self._client = Vonage(auth, options)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "VonageSender":
        return cls(
            api_key=config.get("VONAGE_API_KEY") or "",
            api_secret=config.get("VONAGE_API_SECRET") or None,
            signature_secret=config.get("VONAGE_SIGNATURE_SECRET") or None,
            sender_id=config.get("VONAGE_FROM") or "",
            rest_host=config.get("VONAGE_REST_HOST") or "rest.nexmo.com",
            api_host=config.get("VONAGE_API_HOST") or "api.nexmo.com",
            timeout=math.ceil(float(config.get("VONAGE_TIMEOUT", 10))),
            seal=BodySeal.from_config(config),
        )

    def close(self) -> None:
        """Close the client's pooled connection (the SDK offers no public way)."""
        self._client.http_client._session.close()

    def ttl_ms(self, message: SmsMessage) -> int | None:
        """For a code: how long Vonage may keep trying, i.e. until the code expires."""
        if message.expires_at is None:
            return None
        expires_at = message.expires_at
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        left_ms = int((expires_at - clock.now()).total_seconds() * 1000)
        return max(TTL_MIN_MS, min(TTL_MAX_MS, left_ms))

    def build(self, message: SmsMessage) -> VonageSms:
        """The SDK message for `message`."""
        text = self.seal.open(message.body, to_number=message.to_number)
        fields: dict[str, Any] = {
            "to": message.to_number.removeprefix("+"),
            "from_": self.sender_id,
            "text": text,
            "client_ref": f"sms-{message.id}",
        }
        if needs_unicode(text):
            fields["type"] = "unicode"
        ttl = self.ttl_ms(message)
        if ttl is not None:
            fields["ttl"] = ttl
        return _Message(**fields)

    def send(self, message: SmsMessage) -> Accepted:
        """Send `message` once. Raises SendFailure, and nothing else, when it was not taken."""
        try:
            response = self._client.sms.send(self.build(message))
        except SealBroken as exc:
            raise SendFailure(str(exc), retriable=False) from None
        except PartialFailureError as exc:
            raise self._partial_failure(exc) from None
        except SmsError as exc:
            match = _SMS_ERROR.search(str(exc))
            if match is None:
                raise SendFailure(_reason(f"Vonage SMS error: {exc}"), retriable=False) from None
            raise _status_failure(match.group(1), match.group(2)) from None
        except HttpRequestError as exc:
            raise self._http_failure(exc) from None
        except requests.Timeout:
            raise SendFailure(
                f"Vonage did not answer within {self.timeout} s", retriable=True
            ) from None
        except requests.RequestException as exc:
            raise SendFailure(
                _reason(f"Could not reach Vonage: {type(exc).__name__}: {exc}"), retriable=True
            ) from None
        except VonageError as exc:
            raise SendFailure(
                _reason(f"Vonage SDK error: {type(exc).__name__}: {exc}"), retriable=False
            ) from None
        except ValidationError as exc:
            # Never the error's text: it quotes the input, the message text included.
            fields = ", ".join(".".join(map(str, error["loc"])) for error in exc.errors())
            raise SendFailure(
                _reason(f"Message not valid for Vonage: {fields or 'unknown field'}"),
                retriable=False,
            ) from None
        except Exception as exc:
            # Anything else (an SDK bug, an unexpected answer): never let it escape, and never
            # quote it, since it may carry the request (and its code).
            raise SendFailure(
                f"Unexpected error while sending through Vonage: {type(exc).__name__}",
                retriable=False,
            ) from None

        parts = response.messages
        if not parts or not parts[0].message_id:
            raise SendFailure("Vonage accepted the message without a message id", retriable=False)
        # A long text goes out in several parts, each with its own id and price: the first
        # id stands for the message (receipts also carry client-ref "sms-<id>").
        return Accepted(
            provider_message_id=parts[0].message_id,
            price=_total_price([part.message_price for part in parts]),
        )

    def _partial_failure(self, exc: PartialFailureError) -> SendFailure:
        response: Any = exc.response
        parts = response.get("messages", []) if isinstance(response, Mapping) else []
        failed = [part for part in parts if str(part.get("status", "")) != "0"]
        if not failed:
            return SendFailure("Vonage refused part of the message", retriable=False)
        first = failed[0]
        return _status_failure(
            str(first.get("status", "")),
            str(first.get("error-text", "")),
            prefix=f"{len(failed)} of {len(parts)} parts failed. ",
        )

    def _http_failure(self, exc: HttpRequestError) -> SendFailure:
        status = exc.response.status_code
        body = " ".join((exc.response.text or "").split())[:200]
        detail = f": {body}" if body else ""
        if status == 429 or status >= 500:
            return SendFailure(
                _reason(f"Vonage answered HTTP {status}{detail}"), retriable=True, code=str(status)
            )
        if status == 401:
            reason = "Vonage refused the credentials (HTTP 401): check VONAGE_API_KEY/SECRET"
        elif status == 403:
            reason = "Vonage refused access (HTTP 403)"
        else:
            reason = f"Vonage answered HTTP {status}"
        return SendFailure(_reason(reason + detail), retriable=False, code=str(status))
