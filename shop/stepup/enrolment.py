"""The account's factors as use cases: add and remove passkeys and the authenticator app,
make new recovery codes (the step-up that must come before any of these: `security_check`).

Adding or removing a factor needs a step-up of this very sign-in in the last
`STEP_UP_FRESH_SECONDS` (5 minutes): a stolen session alone cannot add the thief's own
passkey, nor remove the holder's (NIST SP 800-63B-4 asks to authenticate before binding an
authenticator). Every change sends the always-on security alert with its "not me" link, and
"not me" removes the factors added in the last 24 hours (`remove_recent`). The first passkey
or app comes with ten recovery codes, shown once.
"""

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from flask import current_app
from sqlalchemy import delete, select

from shop import alerts, audit, clock
from shop.accounts import sessions
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import Passkey, RecoveryCode, User
from shop.otp import binding_for
from shop.stepup import answers, passkeys, recovery, steps, totp

ENROLMENT = "enrolment"  # the purpose of a passkey registration's server-side challenge
NAME_MAX = 60


def is_fresh(user: User) -> bool:
    """Whether this sign-in proved a factor recently enough to change the factors."""
    return sessions.stepped_up_within(user, current_app.config["STEP_UP_FRESH_SECONDS"])


class FactorOutcome(StrEnum):
    DONE = "done"
    NOT_FRESH = "not_fresh"  # prove it is you first (`security_check.start_security_check`)
    REFUSED = "refused"  # the browser's or the app's answer does not verify: see `message`
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class FactorResult:
    outcome: FactorOutcome
    message: str = ""
    # New recovery codes, to be shown once (with the first passkey or app, or when asked).
    recovery_codes: list[str] = field(default_factory=list)
    options: dict | None = None  # a ceremony's options for the browser


NOT_FRESH = FactorResult(
    FactorOutcome.NOT_FRESH, "For your safety, confirm it is you first (it lasts 5 minutes)."
)


def _changed(user: User, event: audit.Event, what: str, client: Client, **detail) -> None:
    audit.record(event, user_id=user.id, ip=client.ip, what=what, **detail)
    if event == audit.Event.FACTOR_ADDED:
        alerts.factor_added(user, what)
    else:
        alerts.factor_removed(user, what)


def _first_codes(user: User, client: Client) -> list[str]:
    """Ten recovery codes with the first factor beyond SMS, if the account has none."""
    if recovery.codes_left(user) > 0:
        return []
    codes = recovery.new_codes(user)
    audit.record(audit.Event.FACTOR_ADDED, user_id=user.id, ip=client.ip, what="recovery codes")
    return codes


# Passkeys --------------------------------------------------------------------------------------


def _enrolment_binding(user: User) -> str:
    return binding_for("passkey-enrolment", user.id)


def passkey_registration(user: User) -> FactorResult:
    """Options for the browser to make a new passkey; its challenge is kept, single use."""
    if not is_fresh(user):
        return NOT_FRESH
    step_up = steps.open_step_up(
        user,
        ENROLMENT,
        _enrolment_binding(user),
        [],
        expires_at=clock.now() + steps.PASSKEY_CHALLENGE_LIFETIME,
    )
    step_up.webauthn_nonce = secrets.token_hex(16)
    step_up.webauthn_expires_at = step_up.expires_at
    options = passkeys.registration_options(user, step_up.binding, step_up.webauthn_nonce)
    db.session.commit()
    return FactorResult(FactorOutcome.DONE, options=options)


def clean_name(name: str) -> str:
    return " ".join(name.split())[:NAME_MAX] or "Passkey"


def _refused(user: User, client: Client, message: str) -> FactorResult:
    """A registration that did not verify: audited (a forged or replayed attestation shows in
    the account's activity and the owner's trail), not counted towards the step-up lock, which
    is for wrong answers to a step-up; adding is already behind a fresh one."""
    audit.record(
        audit.Event.FACTOR_REFUSED, user_id=user.id, ip=client.ip, factor="passkey", why=message
    )
    db.session.commit()
    return FactorResult(FactorOutcome.REFUSED, message)


def add_passkey(user: User, credential: str | dict, name: str, client: Client) -> FactorResult:
    """Keep the passkey a registration response makes, named by its holder."""
    if not is_fresh(user):
        return NOT_FRESH
    step_up = steps.live_step_up(user, ENROLMENT, _enrolment_binding(user))
    now = clock.now()
    nonce = steps.take_nonce(step_up, now) if step_up is not None else None
    if nonce is None:
        return _refused(user, client, answers.NO_PASSKEY_CHALLENGE)
    try:
        made = passkeys.verify_registration(credential, step_up.binding, nonce)
    except passkeys.Refused as refused:
        step_up.ended_at, step_up.end_reason = now, "refused"
        return _refused(user, client, refused.message)
    if db.session.scalar(select(Passkey.id).where(Passkey.credential_id == made.credential_id)):
        db.session.commit()
        return FactorResult(FactorOutcome.REFUSED, "This passkey is already on an account.")
    step_up.consumed_at = now
    passkey = Passkey(
        user_id=user.id,
        credential_id=made.credential_id,
        public_key=made.public_key,
        sign_count=made.sign_count,
        name=clean_name(name),
        transports=made.transports,
        backed_up=made.backed_up,
        created_at=now,
    )
    db.session.add(passkey)
    db.session.flush()
    codes = _first_codes(user, client)
    _changed(user, audit.Event.FACTOR_ADDED, f"A passkey ({passkey.name})", client)
    db.session.commit()
    return FactorResult(FactorOutcome.DONE, f"Passkey “{passkey.name}” added.", codes)


def remove_passkey(user: User, passkey_id: int, client: Client) -> FactorResult:
    passkey = db.session.scalar(
        select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user.id)
    )
    if passkey is None:
        return FactorResult(FactorOutcome.NOT_FOUND, "There is no such passkey on your account.")
    if not is_fresh(user):
        return NOT_FRESH
    db.session.delete(passkey)
    _changed(user, audit.Event.FACTOR_REMOVED, f"A passkey ({passkey.name})", client)
    db.session.commit()
    return FactorResult(FactorOutcome.DONE, f"Passkey “{passkey.name}” removed.")


# The authenticator app -------------------------------------------------------------------------


@dataclass(frozen=True)
class AppSetup:
    secret: str
    uri: str
    qr_svg: str


def app_setup(user: User, *, new: bool) -> AppSetup | None:
    """The secret of an app being set up, as a QR code and as text; `new` makes a fresh one
    (a POST's doing: only then is anything written). None if the account's app is already
    confirmed, or none is being set up and `new` is false."""
    app = totp.app_of(user)
    if app is not None and app.confirmed_at is not None:
        return None
    if app is None and not new:
        return None
    if new:
        app = totp.new_secret(user)
        db.session.commit()
    uri = totp.provisioning_uri(user, app)
    return AppSetup(totp.secret_of(app), uri, totp.qr_svg(uri))


def confirm_app(user: User, code: str, client: Client) -> FactorResult:
    """The first code from the app confirms that it was set up right."""
    if not is_fresh(user):
        return NOT_FRESH
    app = totp.app_of(user)
    if app is None or app.confirmed_at is not None:
        return FactorResult(FactorOutcome.NOT_FOUND, "Start setting up the app again.")
    result = totp.check(app, code, clock.now())
    if result.outcome != totp.TotpCheck.VERIFIED:
        # A wrong first code is a typing or clock problem, not a guess at a step-up: it is
        # not counted (the app proves nothing yet), and the set-up page is rate-limited.
        db.session.commit()
        return FactorResult(
            FactorOutcome.REFUSED,
            "That code is not right. Check the phone's clock is set automatically, and type "
            "the code the app shows now.",
        )
    app.confirmed_at = clock.now()
    codes = _first_codes(user, client)
    _changed(user, audit.Event.FACTOR_ADDED, "An authenticator app", client)
    db.session.commit()
    return FactorResult(FactorOutcome.DONE, "Your authenticator app is set up.", codes)


def remove_app(user: User, client: Client) -> FactorResult:
    app = totp.app_of(user)
    if app is None or app.confirmed_at is None:
        return FactorResult(FactorOutcome.NOT_FOUND, "There is no authenticator app to remove.")
    if not is_fresh(user):
        return NOT_FRESH
    db.session.delete(app)
    _changed(user, audit.Event.FACTOR_REMOVED, "Your authenticator app", client)
    db.session.commit()
    return FactorResult(FactorOutcome.DONE, "Your authenticator app is removed.")


def renew_recovery_codes(user: User, client: Client) -> FactorResult:
    """Ten new recovery codes; every earlier one stops working."""
    if not is_fresh(user):
        return NOT_FRESH
    codes = recovery.new_codes(user)
    _changed(user, audit.Event.FACTOR_ADDED, "A new set of recovery codes", client)
    db.session.commit()
    return FactorResult(
        FactorOutcome.DONE, "New recovery codes: the old ones no longer work.", codes
    )


# "Not me" --------------------------------------------------------------------------------------

RECENT = timedelta(hours=24)


def remove_recent(user: User, now: datetime) -> list[str]:
    """Remove the factors added in the last 24 hours (the caller's transaction): after "not
    me", whoever added them is not the holder. What was removed, in words."""
    since = now - RECENT
    removed = []
    for passkey in db.session.scalars(
        select(Passkey).where(Passkey.user_id == user.id, Passkey.created_at > since)
    ):
        removed.append(f"passkey {passkey.name}")
        db.session.delete(passkey)
    app = totp.app_of(user)
    if app is not None and app.created_at > since:
        removed.append("authenticator app")
        db.session.delete(app)
    fresh_codes = db.session.scalar(
        select(RecoveryCode.id)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.created_at > since)
        .limit(1)
    )
    if fresh_codes is not None:
        db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        removed.append("recovery codes")
    db.session.flush()
    return removed


def factors_overview(user: User) -> dict:
    """What /account/security shows of the factors."""
    app = totp.app_of(user)
    return {
        "passkeys": passkeys.passkeys_of(user),
        "app": app if app is not None and app.confirmed_at is not None else None,
        "recovery_left": recovery.codes_left(user),
        "fresh": is_fresh(user),
    }
