"""API tokens: a bearer secret for a program acting for the account holder.

Issued after the same sign-in as a browser (password, then a code when the rules ask), shown
once, stored only as its SHA-256, alerted like a new device, listed and revocable on the
security page, and revoked by "sign out everywhere" and "not me".
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select, update

from shop import alerts, audit, clock, otp
from shop.accounts.client import Client
from shop.accounts.signin import WRONG_CREDENTIALS, check_password, needs_login_code
from shop.accounts.signin_stepup import (
    CodeOutcome,
    LoginAttempt,
    check_login_code,
    send_login_code,
)
from shop.extensions import db
from shop.models import ApiToken, Factor, OtpChallenge, OtpPurpose, User
from shop.otp import CodeSend, binding_for
from shop.stepup import steps

PREFIX = "shop_"
# Recording each use would write on every API request; once a few minutes is enough.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(user: User, name: str, client: Client) -> str:
    """A new token for `user` (committed); the only time its secret is seen."""
    token = ApiToken(user_id=user.id, name=name[:80], client_ip=client.ip[:45])
    db.session.add(token)
    return _activate(token, user, client)


def _activate(token: ApiToken, user: User, client: Client) -> str:
    raw = PREFIX + secrets.token_urlsafe(32)
    token.token_hash = _hash(raw)
    # The client's name is the caller's own text: the SMS names no more than "an API client".
    alerts.new_device(user, browser="an API client", ip=client.ip, at=clock.now())
    audit.record(audit.Event.TOKEN_ISSUED, user_id=user.id, ip=client.ip, name=token.name)
    db.session.commit()
    return raw


def _pending_binding(token: ApiToken) -> str:
    return binding_for("api-token", token.user_id, token.id)


class TokenOutcome(StrEnum):
    ISSUED = "issued"
    CODE_NEEDED = "code_needed"  # see `send`: the sign-in code was sent, queued or refused
    WRONG_CREDENTIALS = "wrong_credentials"
    WRONG_CODE = "wrong_code"
    CODE_DEAD = "code_dead"
    LOCKED = "locked"
    NOT_ALLOWED = "not_allowed"  # a factor the account does not have (not counted)


@dataclass(frozen=True)
class TokenResult:
    outcome: TokenOutcome
    token: str | None = None  # the secret, shown this once
    challenge: OtpChallenge | None = None
    send: CodeSend | None = None
    tries_left: int = 0
    message: str = ""


def request_token(email: str, password: str, name: str, client: Client) -> TokenResult:
    """The password step for an API client: a token at once, or a sign-in code first when
    the rules ask for one (an API client has no device cookie: "new device" asks). While
    the code is awaited the token exists without a secret; the code makes one."""
    user = check_password(email, password, client)
    if user is None:
        return TokenResult(TokenOutcome.WRONG_CREDENTIALS, message=WRONG_CREDENTIALS)
    if not needs_login_code(user, client.device_id):
        return TokenResult(TokenOutcome.ISSUED, token=issue_token(user, name, client))
    pending = ApiToken(user_id=user.id, name=name[:80], client_ip=client.ip[:45])
    db.session.add(pending)
    db.session.commit()
    attempt = LoginAttempt(user.id, _pending_binding(pending))
    # An app or a recovery code may answer instead of the SMS (a passkey needs a browser's
    # ceremony: the site's sign-in offers it). The SMS goes out regardless, as it always did.
    steps.open_step_up(
        user,
        OtpPurpose.LOGIN,
        attempt.binding,
        [factor for factor in steps.allowed_factors(user) if factor != Factor.PASSKEY],
        expires_at=clock.now() + otp.service().policy.validity,
    )
    send = send_login_code(user, attempt, client, resend=False)
    return TokenResult(
        TokenOutcome.CODE_NEEDED, challenge=send.challenge, send=send, message=send.message
    )


_CODE_OUTCOMES = {
    CodeOutcome.WRONG_CODE: TokenOutcome.WRONG_CODE,
    CodeOutcome.CODE_DEAD: TokenOutcome.CODE_DEAD,
    CodeOutcome.NO_ACCOUNT: TokenOutcome.CODE_DEAD,
    CodeOutcome.LOCKED: TokenOutcome.LOCKED,
    CodeOutcome.NOT_ALLOWED: TokenOutcome.NOT_ALLOWED,
}


def token_with_code(
    attempt: LoginAttempt, code: str, client: Client, *, factor: Factor = Factor.SMS
) -> TokenResult:
    """The code step for an API client (the SMS code, or an app or recovery code when the
    account has one): the right code gives the waiting token its secret."""
    result = check_login_code(attempt, code, client, factor=factor)
    if result.outcome != CodeOutcome.SIGNED_IN:
        return TokenResult(
            _CODE_OUTCOMES[result.outcome], tries_left=result.tries_left, message=result.message
        )
    pending = _pending_for(attempt)
    if pending is None:  # a browser's sign-in code, entered through the API
        db.session.rollback()
        return TokenResult(TokenOutcome.CODE_DEAD, message="This code is not for an API token.")
    return TokenResult(TokenOutcome.ISSUED, token=_activate(pending, result.user, client))


def _pending_for(attempt: LoginAttempt) -> ApiToken | None:
    waiting = db.session.scalars(
        select(ApiToken).where(
            ApiToken.user_id == attempt.user_id,
            ApiToken.token_hash.is_(None),
            ApiToken.revoked_at.is_(None),
        )
    )
    return next((token for token in waiting if _pending_binding(token) == attempt.binding), None)


def live_token(raw: str) -> ApiToken | None:
    """The live (not revoked) token whose secret is `raw`, or None; notes its use."""
    if not raw.startswith(PREFIX) or len(raw) > 100:
        return None
    digest = _hash(raw)
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if token is None or token.revoked_at is not None:
        return None
    if not hmac.compare_digest(token.token_hash, digest):
        return None
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    return token


def user_for_token(raw: str) -> User | None:
    """The account a live token belongs to, or None."""
    token = live_token(raw)
    return db.session.get(User, token.user_id) if token is not None else None


def live_tokens(user: User) -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(
                ApiToken.user_id == user.id,
                ApiToken.token_hash.is_not(None),
                ApiToken.revoked_at.is_(None),
            )
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
