"""The words of code messages, ending with the WebOTP line browsers use to fill the code in."""

from collections.abc import Callable
from urllib.parse import urlsplit


def code_sms(shop: str, action: str, public_base_url: str) -> Callable[[str], str]:
    """A builder: `code_sms("Shop", "sign in", url)(code)` gives the whole SMS text."""
    host = urlsplit(public_base_url).netloc

    def text(code: str) -> str:
        return f"{shop}: {code} is your code to {action}. Never share it.\n\n@{host} #{code}"

    return text


def order_action(ref: str, amount: str) -> str:
    return f"confirm order {ref} for {amount}"


PHONE_ACTION = "confirm this phone number"
LOGIN_ACTION = "sign in"
