"""Flask-Login glue: a session names the user and their current session token.

Rotating `User.session_token` ("sign out everywhere", "not me") makes every other session
and remember-me cookie name a token that no longer matches, so they load no user.
"""

import hmac

from flask_login import LoginManager

from shop.extensions import db
from shop.models import User


def load_user(session_id: str) -> User | None:
    user_id, _, token = session_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not hmac.compare_digest(user.session_token, token):
        return None
    return user


def configure(login_manager: LoginManager) -> None:
    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    # Flask-Login's own "strong" mode would drop the session on any IP change; the
    # session token above is what ends sessions here.
    login_manager.session_protection = "basic"
