"""Signed-in sessions kept on the server, one row per sign-in (SPEC section 7).

A browser's session cookie and remember-me cookie name a random session id; the user of
every request is loaded through its live `UserSession` row. Signing out deletes the row, a
step-up replaces it, and "sign out everywhere", "not me" and a phone change delete every row
of the account (`User.end_all_sessions`): a cookie copied before any of these opens nothing.
"""

import hashlib
import secrets
from datetime import timedelta

from flask_login import LoginManager
from sqlalchemy import delete, select

from shop import clock
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import User, UserSession

# A browser session lasts a working day; "keep me signed in" at most 30 days (SPEC §7).
SESSION_LIFETIME = timedelta(hours=12)
REMEMBERED_LIFETIME = timedelta(days=30)
_MAX_ID_LENGTH = 100


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(user: User, client: Client, *, remember: bool = False) -> str:
    """A new sign-in for `user` (committed); its id is set on `user` and returned."""
    now = clock.now()
    db.session.execute(
        delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now)
    )
    session_id = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(
            id_hash=_hash(session_id),
            user_id=user.id,
            remember=remember,
            created_at=now,
            expires_at=now + (REMEMBERED_LIFETIME if remember else SESSION_LIFETIME),
            ip=client.ip[:45],
            browser=client.browser[:80],
        )
    )
    db.session.commit()
    user.session_id = session_id
    return session_id


def find_session(session_id: str) -> UserSession | None:
    """The live session with this id, if any."""
    if not session_id or len(session_id) > _MAX_ID_LENGTH:
        return None
    return db.session.scalar(
        select(UserSession).where(
            UserSession.id_hash == _hash(session_id), UserSession.expires_at > clock.now()
        )
    )


def close_session(session_id: str) -> bool:
    """End one sign-in (committed); False if it had already ended."""
    ended = db.session.execute(delete(UserSession).where(UserSession.id_hash == _hash(session_id)))
    db.session.commit()
    return ended.rowcount == 1


def replace_session(user: User, client: Client) -> str:
    """After a step-up: the same sign-in under a new id, the old id dead (committed)."""
    remember = False
    if user.session_id is not None:
        old = find_session(user.session_id)
        remember = old is not None and old.remember
        db.session.execute(delete(UserSession).where(UserSession.id_hash == _hash(user.session_id)))
    return open_session(user, client, remember=remember)


def load_user(session_id: str) -> User | None:
    """Flask-Login's user loader: the account of a live session, else nobody."""
    found = find_session(session_id)
    if found is None:
        return None
    user = db.session.get(User, found.user_id)
    if user is not None:
        user.session_id = session_id
    return user


def configure(login_manager: LoginManager) -> None:
    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    # Flask-Login's own "strong" mode would drop the session on any IP change; the
    # server-side session rows above are what end sessions here.
    login_manager.session_protection = "basic"
