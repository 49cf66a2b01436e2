"""The words of every code message, in one place, ending with the WebOTP line.

The WebOTP line (`@host #code`) names the shop's host without a port, as the origin-bound
one-time code format asks; browsers use it to offer the code to the page.
"""

from collections.abc import Callable
from urllib.parse import urlsplit

from flask import current_app

from shop.models import Order
from shop.money import format_money

Text = Callable[[str], str]


def code_sms(shop: str, action: str, public_base_url: str) -> Text:
    """A builder: `code_sms("Shop", "sign in", url)(code)` gives the whole SMS text."""
    host = urlsplit(public_base_url).hostname or "localhost"

    def text(code: str) -> str:
        return f"{shop}: {code} is your code to {action}. Never share it.\n\n@{host} #{code}"

    return text


def _for(action: str) -> Text:
    config = current_app.config
    return code_sms(config["SHOP_NAME"], action, config["PUBLIC_BASE_URL"])


def order_code(order: Order) -> Text:
    amount = format_money(order.total_minor, order.currency)
    return _for(f"confirm order {order.ref} for {amount}")


def login_code() -> Text:
    return _for("sign in")


def phone_code() -> Text:
    return _for("confirm this phone number")


def password_code() -> Text:
    return _for("change your password")


def reset_code() -> Text:
    return _for("reset your password")
