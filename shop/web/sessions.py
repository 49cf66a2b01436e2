"""The browser session: a server-side sign-in (`shop.accounts.sessions`) renewed at sign-in
and after every step-up, and the cart it keeps before sign-in (SPEC sections 3 and 7)."""

from flask import session
from flask_login import login_user, logout_user

from shop import cart as carts
from shop.accounts import sessions
from shop.web.client import current_client

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
    """`user` signed in on a fresh session with a new id: nothing of the old one carried
    over (its cart was merged into the account's by the use case), and a new CSRF token."""
    sessions.open_session(user, current_client(), remember=remember)
    session.clear()
    login_user(user, remember=remember, fresh=True)


def renew_session(user) -> None:
    """After a step-up: the same sign-in under a new id, the old one dead (SPEC section 7)."""
    sessions.replace_session(user, current_client())
    session.clear()
    login_user(user, remember=_remembered(user), fresh=True)


def _remembered(user) -> bool:
    found = sessions.find_session(user.session_id)
    return found is not None and found.remember


def end_session(user) -> None:
    """Sign out this browser: its session row goes, then the cookie's contents."""
    if user is not None and user.session_id is not None:
        sessions.close_session(user.session_id)
    session.clear()
    logout_user()  # after clear(): it leaves the note that deletes the remember-me cookie
