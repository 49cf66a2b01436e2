"""Sign-in use cases called directly: the password, the code, resending it, signing out, and
what each records (devices, audit rows, SMS, the merged cart, counted failures)."""

import json
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from shop import cart as carts
from shop import otp
from shop.accounts.client import Client
from shop.accounts.signin import (
    PasswordOutcome,
    finish_sign_in,
    sign_in_with_code,
    sign_in_with_password,
    sign_out,
)
from shop.accounts.signin_stepup import (
    CodeOutcome,
    LoginAttempt,
    login_challenge,
    resend_login_code,
)
from shop.extensions import db
from shop.models import AuditEvent, KnownDevice, SendRefusal, SmsKind, SmsMessage
from shop.otp import Refusal, Sent
from tests.factories import (
    PASSWORD,
    failures,
    fill_cart,
    last_code_sent_to,
    last_sms_to,
    make_product,
    make_user,
    set_rules,
    sms_count,
    sms_text,
    wrong,
)

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/150.0 Safari/537.36"
)
CLIENT = Client("203.0.113.5", "device-1", CHROME)


def events(user_id: int | None, event: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.user_id == user_id, AuditEvent.event == event)
            .order_by(AuditEvent.id)
        )
    )


def devices(user) -> list[str]:
    return list(
        db.session.scalars(select(KnownDevice.device_id).where(KnownDevice.user_id == user.id))
    )


def code_needed(user, client=CLIENT):
    """Password right on a device the account has not used: a code is on its way."""
    result = sign_in_with_password(user.email, PASSWORD, client)
    assert result.outcome == PasswordOutcome.CODE_NEEDED
    return result.attempt


# sign_in_with_password -----------------------------------------------------------------------


def test_the_password_alone_signs_in_when_the_rule_asks_no_code(app, frozen_clock):
    set_rules(login_mode="never")
    user = make_user()
    result = sign_in_with_password(user.email.upper(), PASSWORD, CLIENT)
    assert result.outcome == PasswordOutcome.SIGNED_IN
    assert result.user.id == user.id and result.attempt is None and result.send is None
    assert result.new_device is False  # the account's first device is not "new"
    assert result.message == ""
    assert devices(user) == ["device-1"]
    (event,) = events(user.id, "sign_in")
    assert event.ip == "203.0.113.5" and json.loads(event.detail) == {"browser": "Chrome on Linux"}
    assert db.session.scalar(select(func.count(SmsMessage.id))) == 0


def test_a_known_device_signs_in_without_a_code_under_the_default_rule(app, frozen_clock):
    user = make_user()
    db.session.add(KnownDevice(user_id=user.id, device_id="device-1", browser="Chrome on Linux"))
    db.session.commit()
    result = sign_in_with_password(user.email, PASSWORD, CLIENT)
    assert result.outcome == PasswordOutcome.SIGNED_IN and result.new_device is False
    assert sms_count(SmsKind.OTP_LOGIN) == 0


def test_another_device_signs_in_with_an_alert_and_merges_the_cart(app, frozen_clock):
    set_rules(login_mode="never")
    user = make_user()
    db.session.add(KnownDevice(user_id=user.id, device_id="old-phone", browser="Safari on iOS"))
    mug, pin = make_product(stock=50), make_product(stock=50)
    fill_cart(user, (mug, 1))
    result = sign_in_with_password(
        user.email, PASSWORD, CLIENT, anonymous_cart={mug.id: 2, pin.id: 1}
    )
    assert result.outcome == PasswordOutcome.SIGNED_IN and result.new_device is True
    assert carts.load_user_cart(user) == {mug.id: 3, pin.id: 1}
    sms = last_sms_to(user.phone)
    assert sms.kind == SmsKind.ALERT_NEW_DEVICE
    assert "new sign-in on Chrome on Linux, IP 203.0.113.5, 02 Nov 12:00 UTC." in sms_text(sms)
    assert sorted(devices(user)) == ["device-1", "old-phone"]


def test_a_new_device_needs_a_code_and_is_not_signed_in_yet(app, frozen_clock):
    user = make_user()
    mug = make_product(stock=5)
    result = sign_in_with_password(user.email, PASSWORD, CLIENT, anonymous_cart={mug.id: 1})
    assert result.outcome == PasswordOutcome.CODE_NEEDED
    assert result.user.id == user.id and result.attempt.user_id == user.id
    assert result.send.outcome == Sent.SENT and result.message == ""
    sms = last_sms_to(user.phone)
    assert sms.kind == SmsKind.OTP_LOGIN and "is your code to sign in" in sms_text(sms)
    challenge = login_challenge(result.attempt)
    assert challenge.binding == result.attempt.binding and challenge.purpose == "login"
    # Nothing of a sign-in yet: no device, no audit row, no cart.
    assert devices(user) == [] and events(user.id, "sign_in") == []
    assert carts.load_user_cart(user) == {}
    assert [event.ip for event in events(user.id, "code_sent")] == ["203.0.113.5"]


def test_not_me_asks_a_code_even_when_the_rule_asks_none(app, frozen_clock):
    set_rules(login_mode="never")
    user = make_user()
    user.login_code_required = True
    db.session.commit()
    assert sign_in_with_password(user.email, PASSWORD, CLIENT).outcome == (
        PasswordOutcome.CODE_NEEDED
    )


def test_always_asks_a_code_even_on_a_known_device(app, frozen_clock):
    set_rules(login_mode="always")
    user = make_user()
    db.session.add(KnownDevice(user_id=user.id, device_id="device-1", browser="Chrome on Linux"))
    db.session.commit()
    assert sign_in_with_password(user.email, PASSWORD, CLIENT).outcome == (
        PasswordOutcome.CODE_NEEDED
    )


def test_an_unverified_number_is_never_a_second_step(app, frozen_clock):
    set_rules(login_mode="always")
    user = make_user(verified=False)
    result = sign_in_with_password(user.email, PASSWORD, CLIENT)
    assert result.outcome == PasswordOutcome.SIGNED_IN
    assert sms_count(SmsKind.OTP_LOGIN) == 0


def test_code_needed_carries_a_refused_send(app, frozen_clock):
    user = make_user()
    attempt = code_needed(user)
    cap = otp.service().policy.sends_per_number_10_min
    for _ in range(cap - 1):
        frozen_clock.advance(seconds=30)
        assert resend_login_code(attempt, CLIENT).outcome == Sent.SENT
    frozen_clock.advance(seconds=30)
    result = sign_in_with_password(user.email, PASSWORD, CLIENT)
    assert result.outcome == PasswordOutcome.CODE_NEEDED
    assert result.send.outcome == Sent.REFUSED
    assert result.send.refused.reason == Refusal.NUMBER_10_MIN
    assert result.message == "Too many codes sent to this number: try again in a few minutes."
    assert login_challenge(result.attempt) is None
    assert sms_count(SmsKind.OTP_LOGIN) == cap
    assert db.session.scalar(select(SendRefusal.reason)) == "number_10_min"


def test_a_wrong_password_is_refused_and_audited(app, frozen_clock):
    user = make_user()
    result = sign_in_with_password(user.email, "not the password", CLIENT)
    assert result.outcome == PasswordOutcome.WRONG_CREDENTIALS
    assert result.user is None and result.attempt is None
    assert result.message == "The e-mail or password is not right."
    assert [event.ip for event in events(user.id, "sign_in_failed")] == ["203.0.113.5"]
    assert db.session.scalar(select(func.count(SmsMessage.id))) == 0


def test_an_unknown_email_gets_the_same_answer(app, frozen_clock):
    result = sign_in_with_password("nobody@example.com", PASSWORD, CLIENT)
    assert result.outcome == PasswordOutcome.WRONG_CREDENTIALS
    assert result.message == "The e-mail or password is not right."
    assert len(events(None, "sign_in_failed")) == 1


# sign_in_with_code ---------------------------------------------------------------------------


def test_the_right_code_signs_in_remembers_the_device_and_merges_the_cart(app, frozen_clock):
    user = make_user()
    user.login_code_required = True
    db.session.commit()
    mug = make_product(stock=5)
    attempt = code_needed(user)
    code = last_code_sent_to(user.phone)
    result = sign_in_with_code(attempt, code, CLIENT, anonymous_cart={mug.id: 2})
    assert result.outcome == CodeOutcome.SIGNED_IN
    assert result.user.id == user.id and result.new_device is False
    db.session.refresh(user)
    assert user.login_code_required is False
    assert devices(user) == ["device-1"]
    assert carts.load_user_cart(user) == {mug.id: 2}
    assert len(events(user.id, "code_verified")) == 1 and len(events(user.id, "sign_in")) == 1
    assert login_challenge(attempt) is None  # consumed
    again = sign_in_with_code(attempt, code, CLIENT)
    assert again.outcome == CodeOutcome.CODE_DEAD


def test_a_wrong_code_says_the_tries_left_and_counts_a_failure(app, frozen_clock):
    user = make_user()
    attempt = code_needed(user)
    result = sign_in_with_code(attempt, wrong(last_code_sent_to(user.phone)), CLIENT)
    assert result.outcome == CodeOutcome.WRONG_CODE
    assert result.tries_left == 4
    assert result.message == "That code is not right. 4 attempts left."
    assert failures(user) == 1
    assert events(user.id, "sign_in") == [] and devices(user) == []


def test_a_code_replaced_by_another_sign_in_is_dead_and_the_other_still_works(app, frozen_clock):
    user = make_user()
    first = code_needed(user)
    first_code = last_code_sent_to(user.phone)
    frozen_clock.advance(seconds=30)
    second = code_needed(user, Client("198.51.100.7", "device-2"))
    result = sign_in_with_code(first, first_code, CLIENT)
    assert result.outcome == CodeOutcome.CODE_DEAD
    assert result.message == "There is no code waiting. Ask for a new one."
    assert failures(user) == 0
    # The dead attempt did not end the other sign-in's code.
    assert login_challenge(second) is not None
    other = sign_in_with_code(second, last_code_sent_to(user.phone), Client("198.51.100.7"))
    assert other.outcome == CodeOutcome.SIGNED_IN


def test_an_expired_code_is_dead(app, frozen_clock):
    user = make_user()
    attempt = code_needed(user)
    code = last_code_sent_to(user.phone)
    frozen_clock.advance(minutes=5)
    result = sign_in_with_code(attempt, code, CLIENT)
    assert result.outcome == CodeOutcome.CODE_DEAD
    assert result.message == "That code has expired. Ask for a new one."
    assert events(user.id, "sign_in") == []


def test_the_fifth_wrong_code_kills_the_code(app, frozen_clock):
    user = make_user()
    attempt = code_needed(user)
    code = last_code_sent_to(user.phone)
    results = [sign_in_with_code(attempt, wrong(code), CLIENT) for _ in range(5)]
    assert [result.tries_left for result in results[:4]] == [4, 3, 2, 1]
    assert results[4].outcome == CodeOutcome.CODE_DEAD
    assert results[4].message == "Too many wrong codes: this code no longer works."
    assert sign_in_with_code(attempt, code, CLIENT).outcome == CodeOutcome.CODE_DEAD
    assert failures(user) == 5


def test_the_tenth_wrong_code_of_the_day_locks_codes_on_the_account(app, frozen_clock):
    user = make_user()
    outcomes = []
    for _ in range(2):
        attempt = code_needed(user)
        bad = wrong(last_code_sent_to(user.phone))
        outcomes += [sign_in_with_code(attempt, bad, CLIENT).outcome for _ in range(5)]
        frozen_clock.advance(seconds=30)
    assert outcomes[4] == CodeOutcome.CODE_DEAD
    assert outcomes[9] == CodeOutcome.LOCKED
    assert failures(user) == 10
    assert len(events(user.id, "step_up_locked")) == 1
    assert last_sms_to(user.phone).kind == SmsKind.ALERT_CODE_LOCKED
    locked = sign_in_with_password(user.email, PASSWORD, CLIENT)
    assert locked.outcome == PasswordOutcome.CODE_NEEDED
    assert locked.send.refused.reason == Refusal.STEP_UP_LOCKED


@pytest.mark.parametrize("user_id", [0, 10**9])
def test_an_attempt_for_a_missing_account_has_no_account(app, user_id):
    result = sign_in_with_code(LoginAttempt(user_id, "attempt"), "123456", CLIENT)
    assert result.outcome == CodeOutcome.NO_ACCOUNT
    assert result.user is None and result.message == "Sign in first."


# resend_login_code, login_challenge, finish_sign_in, sign_out --------------------------------


def test_a_resend_replaces_the_code_for_the_same_attempt(app, frozen_clock):
    user = make_user()
    attempt = code_needed(user)
    old_code = last_code_sent_to(user.phone)
    old = login_challenge(attempt)
    frozen_clock.advance(seconds=30)
    send = resend_login_code(attempt, CLIENT)
    assert send.outcome == Sent.SENT
    assert send.message == "A new code is on its way. The old one no longer works."
    new = login_challenge(attempt)
    assert new.id != old.id and new.binding == attempt.binding
    db.session.refresh(old)
    assert old.end_reason == "replaced"
    assert sms_count(SmsKind.OTP_LOGIN) == 2
    new_code = last_code_sent_to(user.phone)
    if new_code != old_code:
        assert sign_in_with_code(attempt, old_code, CLIENT).outcome == CodeOutcome.WRONG_CODE
    assert sign_in_with_code(attempt, new_code, CLIENT).outcome == CodeOutcome.SIGNED_IN


def test_a_resend_inside_the_cool_down_is_refused(app, frozen_clock):
    user = make_user()
    attempt = code_needed(user)
    live = login_challenge(attempt)
    frozen_clock.advance(seconds=29)
    send = resend_login_code(attempt, CLIENT)
    assert send.outcome == Sent.REFUSED
    assert send.refused.reason == Refusal.COOLDOWN and send.refused.retry_after == 1
    assert login_challenge(attempt).id == live.id
    assert sms_count(SmsKind.OTP_LOGIN) == 1


def test_a_resend_for_a_missing_account_is_none(app):
    assert resend_login_code(LoginAttempt(10**9, "attempt"), CLIENT) is None
    assert db.session.scalar(select(func.count(SmsMessage.id))) == 0


def test_login_challenge_belongs_to_its_attempt_only(app, frozen_clock):
    user = make_user()
    attempt = code_needed(user)
    assert login_challenge(attempt) is not None
    assert login_challenge(LoginAttempt(user.id, "another-attempt")) is None
    assert login_challenge(replace(attempt, user_id=10**9)) is None


def test_finish_sign_in_caps_merged_quantities_and_alerts_only_other_devices(app, frozen_clock):
    user = make_user()
    mug = make_product(stock=500)
    fill_cart(user, (mug, 90))
    assert finish_sign_in(user, CLIENT, {mug.id: 20}) is False
    assert carts.load_user_cart(user) == {mug.id: 99}
    assert finish_sign_in(user, CLIENT, {}) is False  # the same device again
    assert finish_sign_in(user, Client("198.51.100.7", None), {}) is True
    assert sorted(devices(user)) == ["device-1", "unknown"]
    assert sms_count(SmsKind.ALERT_NEW_DEVICE) == 1
    assert len(events(user.id, "sign_in")) == 3


def test_sign_out_is_audited(app, frozen_clock):
    user = make_user()
    sign_out(user, CLIENT)
    (event,) = events(user.id, "sign_out")
    assert event.ip == "203.0.113.5" and event.at == frozen_clock.now
