"""Password use cases called directly: each outcome of a change and of a reset."""

from sqlalchemy import select

from shop import cart as carts
from shop.accounts.client import Client
from shop.accounts.passwords import (
    RESET_WRONG,
    ChangeOutcome,
    ChangeStart,
    ResetOutcome,
    change_password,
    password_resend_blocker,
    reset_password,
    start_password_change,
    start_password_reset,
)
from shop.accounts.sessions import open_session
from shop.extensions import db
from shop.models import AuditEvent, SmsKind, SmsMessage, User
from shop.otp import Refusal, Sent
from tests.factories import (
    PASSWORD,
    last_code_sent_to,
    last_sms_to,
    live_sessions,
    make_product,
    make_user,
    wrong,
)

CLIENT = Client("203.0.113.5", "device-1")
NEW = "a brand new pass phrase"


def test_change_outcomes(app, frozen_clock):
    user = make_user()
    open_session(user, CLIENT)
    assert live_sessions(user) == 1
    assert start_password_change(user, "nope nope", CLIENT).outcome == ChangeStart.WRONG_PASSWORD
    started = start_password_change(user, PASSWORD, CLIENT)
    assert started.outcome == ChangeStart.CODE_SENT and started.send.outcome == Sent.SENT
    assert password_resend_blocker(user, CLIENT) is None
    code = last_code_sent_to(user.phone)
    assert change_password(user, code, "short", CLIENT).outcome == ChangeOutcome.BAD_PASSWORD
    result = change_password(user, wrong(code), NEW, CLIENT)
    assert (result.outcome, result.tries_left) == (ChangeOutcome.WRONG_CODE, 4)
    assert change_password(user, code, NEW, CLIENT).outcome == ChangeOutcome.CHANGED
    assert live_sessions(user) == 0  # every session ended; the web starts its own again
    assert change_password(user, code, NEW, CLIENT).outcome == ChangeOutcome.CODE_DEAD
    assert last_sms_to(user.phone).kind == SmsKind.ALERT_PASSWORD_CHANGED


def test_a_change_code_dies_when_the_password_changes_otherwise(app, frozen_clock):
    user = make_user()
    start_password_change(user, PASSWORD, CLIENT)
    code = last_code_sent_to(user.phone)
    user.password_hash = "changed by a reset meanwhile"
    db.session.commit()
    assert change_password(user, code, NEW, CLIENT).outcome == ChangeOutcome.CODE_DEAD


def test_an_unconfirmed_number_gets_no_change_code(app):
    user = make_user(verified=False)
    started = start_password_change(user, PASSWORD, CLIENT)
    assert started.send.refused.reason == Refusal.NUMBER_NOT_VERIFIED
    assert "Confirm your phone number first" in started.message


def test_reset_outcomes_and_the_cart_merged_at_its_sign_in(app, frozen_clock):
    user = make_user("known@example.com")
    product = make_product()
    nobody = start_password_reset("nobody@example.com", CLIENT)
    assert reset_password(nobody, "123456", NEW, CLIENT).message == RESET_WRONG
    attempt = start_password_reset("KNOWN@example.com", CLIENT)
    code = last_code_sent_to(user.phone)
    assert reset_password(attempt, code, "short", CLIENT).outcome == ResetOutcome.BAD_PASSWORD
    other = start_password_reset("known@example.com", Client("198.51.100.1"))  # replaces it
    assert reset_password(attempt, code, NEW, CLIENT).outcome == ResetOutcome.WRONG_CODE
    frozen_clock.advance(seconds=31)
    attempt = start_password_reset("known@example.com", CLIENT)
    assert other != attempt
    result = reset_password(
        attempt, last_code_sent_to(user.phone), NEW, CLIENT, anonymous_cart={product.id: 2}
    )
    assert result.outcome == ResetOutcome.RESET and result.user.id == user.id
    assert carts.load_user_cart(user) == {product.id: 2}
    asked = db.session.scalars(
        select(AuditEvent.user_id).where(AuditEvent.event == "password_reset_asked")
    ).all()
    assert asked.count(None) == 1 and asked.count(user.id) == 3
    sms = db.session.scalars(select(SmsMessage.kind).where(SmsMessage.user_id == user.id)).all()
    assert sms.count(SmsKind.OTP_RESET) == 3 and SmsKind.ALERT_PASSWORD_CHANGED in sms
    assert db.session.get(User, user.id).login_code_required is False


def test_wrong_reset_codes_lock_only_the_reset_never_the_accounts_sign_in(app, frozen_clock):
    # A reset needs only the e-mail: whoever knows it can send wrong codes, and those must
    # not lock the holder's sign-in codes and orders. Ten lock the reset by SMS for a day.
    from shop.accounts.overview import step_up_state
    from shop.accounts.support import SupportOutcome, unlock_step_up
    from shop.models import OtpPurpose, Role, SendRefusal
    from shop.otp.texts import code_sms

    user = make_user()
    attacker = Client("198.51.100.66", "attacker")
    for _ in range(2):
        attempt = start_password_reset(user.email, attacker)
        code = last_code_sent_to(user.phone)
        for _ in range(5):
            result = reset_password(attempt, wrong(code), NEW, attacker)
            assert result.outcome == ResetOutcome.WRONG_CODE
        frozen_clock.advance(seconds=31)

    otp = app.extensions["otp"]
    assert not otp.lockout.is_locked(user)
    assert otp.lockout.is_locked(user, OtpPurpose.RESET)
    assert otp.lockout.failures_in_window(user) == 0
    # The holder signs in with a code as ever, and hears nothing of a lock.
    text = code_sms("Shop", "sign in", "http://127.0.0.1:5000")
    sent = otp.send(user, OtpPurpose.LOGIN, "sign-in", client_ip=CLIENT.ip, text=text)
    assert sent.outcome == Sent.SENT
    assert SmsKind.ALERT_CODE_LOCKED not in set(db.session.scalars(select(SmsMessage.kind)))
    # A third reset sends no code: refused, and recorded for the owner.
    sms_before = len(db.session.scalars(select(SmsMessage.id)).all())
    start_password_reset(user.email, attacker)
    assert len(db.session.scalars(select(SmsMessage.id)).all()) == sms_before
    assert db.session.scalar(select(SendRefusal.reason)) == Refusal.RESET_LOCKED
    # The owner sees the reset locked on the account's page, and may lift it.
    owner = make_user("boss@example.com", role=Role.OWNER)
    state = step_up_state(user)
    assert (state.locked, state.reset_locked, state.reset_failures) == (False, True, 10)
    unlocked = unlock_step_up(user.id, owner, "The holder called.", CLIENT)
    assert unlocked.outcome == SupportOutcome.UNLOCKED
    assert not otp.lockout.is_locked(user, OtpPurpose.RESET)


def test_a_locked_step_up_locks_the_reset_too(app, frozen_clock):
    # Ten wrong sign-in codes (someone with the password): no reset code either, so the
    # reset is no way round the lock.
    from shop.models import OtpFailure, OtpPurpose

    user = make_user()
    db.session.add_all(OtpFailure(user_id=user.id) for _ in range(10))
    db.session.commit()
    assert app.extensions["otp"].lockout.is_locked(user, OtpPurpose.RESET)
    sms_before = len(db.session.scalars(select(SmsMessage.id)).all())
    start_password_reset(user.email, CLIENT)
    assert len(db.session.scalars(select(SmsMessage.id)).all()) == sms_before
