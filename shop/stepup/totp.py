"""Authenticator apps (TOTP, RFC 6238, with `pyotp`): 6 digits, 30-second steps, a code of
the step before or after the server's accepted, and no step ever accepted twice.

The secret is sealed at rest (AES-256-GCM, key from `FACTOR_ENCRYPTION_KEYS` or derived from
`SECRET_KEY`, the account as associated data): a copy of the database holds no secret. The
last accepted step is moved on by one conditional UPDATE, so a code replayed (or raced) after
it was used is refused, whichever request came second.
"""

import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import pyotp
import segno
from flask import current_app
from sqlalchemy import or_, select, update

from shop.extensions import db
from shop.models import AuthenticatorApp, User
from shop.sms.sealing import BodySeal

DIGITS = 6
STEP_SECONDS = 30
# One step either side: the phone's clock may be up to about 30 seconds off.
VALID_WINDOW = 1
CODE = re.compile(r"[0-9]{6}")


def seal() -> BodySeal:
    return current_app.extensions["factor_seal"]


def _associated(user_id: int) -> str:
    return f"totp:{user_id}"


def app_of(user: User) -> AuthenticatorApp | None:
    """The account's app, confirmed or still being set up."""
    return db.session.scalar(select(AuthenticatorApp).where(AuthenticatorApp.user_id == user.id))


def has_app(user: User) -> bool:
    app = app_of(user)
    return app is not None and app.confirmed_at is not None


def new_secret(user: User) -> AuthenticatorApp:
    """A fresh secret for an app being set up (not committed), replacing an unconfirmed one."""
    app = app_of(user)
    secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
    sealed = seal().seal(secret, to_number=_associated(user.id))
    if app is None:
        app = AuthenticatorApp(user_id=user.id, sealed_secret=sealed)
        db.session.add(app)
    else:
        app.sealed_secret, app.last_step, app.confirmed_at = sealed, None, None
    db.session.flush()
    return app


def secret_of(app: AuthenticatorApp) -> str:
    return seal().open(app.sealed_secret, to_number=_associated(app.user_id))


def provisioning_uri(user: User, app: AuthenticatorApp) -> str:
    return pyotp.TOTP(secret_of(app), digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=user.email, issuer_name=current_app.config["SHOP_NAME"]
    )


def qr_svg(uri: str) -> str:
    """The QR code as an inline SVG, drawn here: no image service ever sees the secret."""
    return segno.make(uri, error="m").svg_inline(
        scale=4, border=4, title="QR code for your authenticator app"
    )


def step_of(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The step within the window whose code `code` is, if any."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = step_of(now)
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        # Every step is compared, in constant time, so timing says nothing of which matched.
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            found = step
    return found


class TotpCheck(StrEnum):
    VERIFIED = "verified"
    WRONG = "wrong"
    REPLAYED = "replayed"  # right, but its step (or a later one) was already used
    NO_APP = "no_app"


MESSAGES = {
    TotpCheck.WRONG: "That app code is not right.",
    TotpCheck.REPLAYED: "That app code was already used. Wait for the next one in your app.",
    TotpCheck.NO_APP: "There is no authenticator app on this account.",
}


@dataclass(frozen=True)
class TotpResult:
    outcome: TotpCheck
    step: int | None = None

    @property
    def message(self) -> str:
        return MESSAGES.get(self.outcome, "")


def check(app: AuthenticatorApp | None, submitted: str, now: datetime) -> TotpResult:
    """Check an app code and, if right, use its step up (the caller commits)."""
    if app is None:
        return TotpResult(TotpCheck.NO_APP)
    code = submitted.replace(" ", "")[:16]
    if not CODE.fullmatch(code):
        return TotpResult(TotpCheck.WRONG)
    step = matching_step(secret_of(app), code, now)
    if step is None:
        return TotpResult(TotpCheck.WRONG)
    moved = db.session.execute(
        update(AuthenticatorApp)
        .where(
            AuthenticatorApp.id == app.id,
            or_(AuthenticatorApp.last_step.is_(None), AuthenticatorApp.last_step < step),
        )
        .values(last_step=step, last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        return TotpResult(TotpCheck.REPLAYED, step)
    return TotpResult(TotpCheck.VERIFIED, step)
