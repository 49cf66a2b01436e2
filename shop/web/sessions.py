"""The browser session: renewed at sign-in and after every step-up, and the cart it keeps
before sign-in (SPEC sections 3 and 7)."""

from flask import session
from flask_login import login_user

from shop import cart as carts

ANONYMOUS_CART = "cart"


def anonymous_cart() -> carts.Contents:
    """The cart filled before signing in (JSON turned its product ids into strings)."""
    stored = session.get(ANONYMOUS_CART) or {}
    if not isinstance(stored, dict):
        return {}
    return {
        int(pid): int(qty)
        for pid, qty in stored.items()
        if str(pid).isdigit() and isinstance(qty, int)
    }


def keep_anonymous_cart(contents: carts.Contents) -> None:
    session[ANONYMOUS_CART] = {str(pid): qty for pid, qty in contents.items()}


def start_session(user, *, remember: bool = False) -> None:
    """`user` signed in on a fresh session: nothing of the old one carried over (its cart
    was merged into the account's by the use case), and a new CSRF token."""
    session.clear()
    login_user(user, remember=remember, fresh=True)


def renew_session(user) -> None:
    """After a step-up: the same sign-in on a fresh session (SPEC section 7)."""
    start_session(user)
