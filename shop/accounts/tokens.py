"""API tokens: a bearer secret for a program acting for the account holder.

Issued after the same sign-in as a browser (password, then a code when the rules ask), shown
once, stored only as its SHA-256, alerted like a new device, listed and revocable on the
security page, and revoked by "sign out everywhere" and "not me".
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from shop import alerts, audit, clock
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import ApiToken, User

PREFIX = "shop_"
# Recording each use would write on every API request; once a few minutes is enough.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(user: User, name: str, client: Client) -> str:
    """A new token for `user` (committed); the only time its secret is seen."""
    raw = PREFIX + secrets.token_urlsafe(32)
    db.session.add(
        ApiToken(user_id=user.id, token_hash=_hash(raw), name=name[:80], client_ip=client.ip[:45])
    )
    alerts.new_device(user, browser=f"API client “{name[:40]}”", ip=client.ip, at=clock.now())
    audit.record(audit.Event.TOKEN_ISSUED, user_id=user.id, ip=client.ip, name=name[:80])
    db.session.commit()
    return raw


def user_for_token(raw: str) -> User | None:
    """The account a live token belongs to, or None."""
    if not raw.startswith(PREFIX) or len(raw) > 100:
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(raw)))
    if token is None or token.revoked_at is not None:
        return None
    if not hmac.compare_digest(token.token_hash, _hash(raw)):
        return None
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    return db.session.get(User, token.user_id)


def live_tokens(user: User) -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.id.desc())
        )
    )


def revoke_token(user: User, token_id: int, client: Client) -> bool:
    """Revoke one of `user`'s tokens; False if there is no such live token (committed)."""
    done = db.session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        db.session.rollback()
        return False
    audit.record(audit.Event.TOKEN_REVOKED, user_id=user.id, ip=client.ip, token=token_id)
    db.session.commit()
    return True


def revoke_all(user: User) -> int:
    """Revoke every token of `user` in the caller's transaction."""
    return db.session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
        .execution_options(synchronize_session=False)
    ).rowcount
