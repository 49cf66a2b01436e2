"""The words of every alert SMS, in one place (code messages are in `shop.otp.texts`).

Each function gives the sentence after "<shop>: "; `shop.alerts` adds the shop's name and,
for alerts about activity on an account, the "not me" link. No code, address or card data.
"""

from datetime import datetime

from shop.models import Order
from shop.money import format_money


def _order(order: Order) -> str:
    return f"order {order.ref} for {format_money(order.total_minor, order.currency)}"


def new_device(browser: str, ip: str, at: datetime) -> str:
    return f"new sign-in on {browser}, IP {ip}, {at.strftime('%d %b %H:%M UTC')}."


def order_placed(order: Order) -> str:
    state = "is held for the shop's review" if order.status == "held" else "was placed"
    return f"{_order(order)} {state}."


def code_locked() -> str:
    return "too many wrong codes were entered on your account; SMS verification is locked for 24 h."


def phone_changed(last_digits: str) -> str:
    return f"the phone number on your account was changed to one ending {last_digits}."


def registration_tried() -> str:
    return (
        "someone tried to register a new account with your e-mail address. "
        "If it was you, sign in instead. If not, nothing has changed."
    )


def password_changed(*, reset: bool) -> str:
    how = "reset with a code sent to this number" if reset else "changed"
    return f"the password of your account was {how}, and every session was signed out."


def step_up_unlocked() -> str:
    return "the shop unlocked SMS verification on your account."


# The owner's review of a held order, told to the shopper -----------------------------------


def order_approved(order: Order) -> str:
    return f"{_order(order)} was approved after review and is placed."


def order_code_requested(order: Order, code_page_url: str) -> str:
    return (
        f"we reviewed {_order(order)}. Confirm it with the code in our next SMS, at {code_page_url}"
    )


def order_cancelled(order: Order) -> str:
    """After the owner's review, or when nobody reviewed it in time: the same words."""
    return f"{_order(order)} was cancelled by the shop. Nothing was charged."


# To the shop's owners --------------------------------------------------------------------


def owner_order_held(order: Order, review_url: str) -> str:
    return f"{_order(order)} is held for your review: {review_url}"


def owner_refusals(refused: int, threshold: int, console_url: str) -> str:
    return (
        f"SMS abuse alert: {refused} code sends were refused in the last hour "
        f"(alert above {threshold}). See {console_url}"
    )


def owner_spend(spend: str, threshold: str, console_url: str) -> str:
    return (
        f"SMS spend alert: {spend} spent on SMS in the last hour "
        f"(alert above {threshold}). See {console_url}"
    )
