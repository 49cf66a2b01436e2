"""Phone-number use cases called directly: registering, changing the number, confirming it
with its code and resending that code, with the SMS, audit rows and sessions they touch."""

import pytest
from sqlalchemy import func, select

from shop import cart as carts
from shop.accounts.client import Client
from shop.accounts.sessions import open_session
from shop.accounts.signin import PasswordOutcome, sign_in_with_password
from shop.accounts.verification import (
    ChangeOutcome,
    ConfirmPhoneOutcome,
    RegisterOutcome,
    confirm_phone,
    phone_challenge,
    register,
    resend_phone_code,
    start_phone_change,
)
from shop.extensions import db
from shop.models import AuditEvent, KnownDevice, OtpFailure, SmsKind, SmsMessage, User
from shop.otp import Refusal, Sent
from tests.factories import (
    PASSWORD,
    last_code_sent_to,
    last_sms_to,
    live_sessions,
    make_product,
    make_user,
    sms_text,
    wrong,
)

CLIENT = Client("203.0.113.5", "device-1")
NEW_NUMBER = "+447700900555"
OTHER_NUMBER = "+447700900556"


def events(user, event: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.user_id == user.id, AuditEvent.event == event)
        )
    )


def sms_to(number: str) -> list[SmsMessage]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(SmsMessage).where(SmsMessage.to_number == number).order_by(SmsMessage.id)
        )
    )


def users() -> int:
    return db.session.scalar(select(func.count(User.id)))


def reload(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


# register ------------------------------------------------------------------------------------


def new_account(email: str = "fresh@example.com") -> User:
    return db.session.scalar(select(User).where(User.email == email))


def test_registering_opens_an_account_with_its_number_to_confirm(app, frozen_clock):
    result = register(" New.Shopper@Example.COM ", "07700 900123", "a long password", CLIENT)
    assert result.outcome == RegisterOutcome.ACCEPTED
    assert result.message.startswith("Next, sign in with this e-mail and password")
    user = new_account("new.shopper@example.com")
    assert user.phone == "+447700900123" and user.phone_verified is False
    assert sms_to("+447700900123") == []  # the code comes with the first sign-in
    assert len(events(user, "registered")) == 1 and events(user, "sign_in") == []


def test_the_first_sign_in_texts_the_code_that_confirms_the_number(app, frozen_clock):
    mug = make_product(stock=5)
    register("fresh@example.com", "07700 900123", "a long enough password", CLIENT)
    signed = sign_in_with_password(
        "fresh@example.com", "a long enough password", CLIENT, anonymous_cart={mug.id: 2}
    )
    assert signed.outcome == PasswordOutcome.SIGNED_IN
    assert signed.phone_code.outcome == Sent.SENT
    (sms,) = sms_to("+447700900123")
    assert sms.kind == SmsKind.OTP_PHONE
    assert "is your code to confirm this phone number" in sms_text(sms)
    user = new_account()
    assert phone_challenge(user).phone == "+447700900123"
    assert db.session.scalar(select(KnownDevice.device_id)) == "device-1"
    assert carts.load_user_cart(user) == {mug.id: 2}
    result = confirm_phone(user, last_code_sent_to("+447700900123"), CLIENT)
    assert result.outcome == ConfirmPhoneOutcome.CONFIRMED
    assert result.message == "Your phone number is confirmed."
    user = reload(user)
    assert user.phone_verified_at == frozen_clock.now and user.phone_changed_at is None
    assert len(events(user, "phone_verified")) == 1
    assert phone_challenge(user) is None


@pytest.mark.parametrize(
    ("phone", "message"),
    [
        ("not a number", "Enter a mobile number, with its country code if outside the UK."),
        ("020 7946 0000", "Enter a mobile number: codes are sent by SMS."),
        ("+33 6 12 34 56 78", "We can only send SMS to numbers in: United Kingdom (GB)."),
    ],
)
def test_a_number_that_cannot_get_our_sms_opens_no_account(app, phone, message):
    result = register("fresh@example.com", phone, "a long enough password", CLIENT)
    assert result.outcome == RegisterOutcome.INVALID_PHONE
    assert result.message == message
    assert users() == 0
    assert db.session.scalar(select(func.count(SmsMessage.id))) == 0


def test_a_taken_email_opens_no_second_account_and_answers_the_same(app, frozen_clock):
    existing = make_user("taken@example.com")
    fresh = register("fresh@example.com", "07700 900124", "a long enough password", CLIENT)
    result = register("TAKEN@example.com", "07700 900123", "a long enough password", CLIENT)
    assert result == fresh
    assert users() == 2
    assert reload(existing).phone != "+447700900123"
    assert sms_to("+447700900123") == []
    (alert,) = sms_to(existing.phone)
    assert alert.kind == SmsKind.ALERT_REGISTRATION_TRIED
    assert [event.ip for event in events(existing, "registration_tried")] == ["203.0.113.5"]


def test_the_holder_is_told_once_a_day_however_often_someone_tries(app, frozen_clock):
    existing = make_user("taken@example.com")
    for _ in range(5):
        register("taken@example.com", "07700 900123", "a long enough password", CLIENT)
    assert len(sms_to(existing.phone)) == 1
    frozen_clock.advance(hours=24, seconds=1)
    register("taken@example.com", "07700 900123", "a long enough password", CLIENT)
    assert len(sms_to(existing.phone)) == 2


# start_phone_change --------------------------------------------------------------------------


def test_a_change_texts_the_new_number_and_keeps_the_old_one_for_now(app, frozen_clock):
    user = make_user()
    old = user.phone
    result = start_phone_change(user, PASSWORD, "07700 900555", CLIENT)
    assert result.outcome == ChangeOutcome.CODE_SENT
    assert result.send.outcome == Sent.SENT and result.message == ""
    (sms,) = sms_to(NEW_NUMBER)
    assert sms.kind == SmsKind.OTP_PHONE
    user = reload(user)
    assert user.phone == old and user.phone_verified
    assert phone_challenge(user).phone == NEW_NUMBER


def test_a_change_with_a_wrong_password_sends_nothing(app, frozen_clock):
    user = make_user()
    result = start_phone_change(user, "not my password", NEW_NUMBER, CLIENT)
    assert result.outcome == ChangeOutcome.WRONG_PASSWORD
    assert result.message == "That is not your password."
    assert sms_to(NEW_NUMBER) == [] and phone_challenge(user) is None


def test_a_change_to_an_invalid_number_sends_nothing(app, frozen_clock):
    user = make_user()
    result = start_phone_change(user, PASSWORD, "+33 6 12 34 56 78", CLIENT)
    assert result.outcome == ChangeOutcome.INVALID_PHONE
    assert result.message == "We can only send SMS to numbers in: United Kingdom (GB)."
    assert db.session.scalar(select(func.count(SmsMessage.id))) == 0


def test_a_change_to_the_same_number_however_typed_sends_nothing(app, frozen_clock):
    user = make_user(phone=NEW_NUMBER)
    result = start_phone_change(user, PASSWORD, "07700 900 555", CLIENT)
    assert result.outcome == ChangeOutcome.SAME_NUMBER
    assert result.message == "That is already your number."
    assert sms_to(NEW_NUMBER) == [] and phone_challenge(user) is None


def test_a_second_change_inside_the_cool_down_is_queued(app, frozen_clock):
    user = make_user()
    start_phone_change(user, PASSWORD, NEW_NUMBER, CLIENT)
    frozen_clock.advance(seconds=5)
    again = start_phone_change(user, PASSWORD, NEW_NUMBER, CLIENT)
    # Not an explicit resend: queued behind the new number's cool-down, not refused.
    assert again.outcome == ChangeOutcome.CODE_SENT
    assert again.send.outcome == Sent.QUEUED
    assert len(sms_to(NEW_NUMBER)) == 2


# confirm_phone -------------------------------------------------------------------------------


def test_the_new_numbers_code_changes_the_number_and_ends_every_session(app, frozen_clock):
    from shop.accounts.tokens import issue_token, user_for_token

    user = make_user()
    old = user.phone
    open_session(user, CLIENT)
    token = issue_token(user, "script", CLIENT)
    db.session.commit()
    assert user_for_token(token) == user
    start_phone_change(user, PASSWORD, NEW_NUMBER, CLIENT)
    frozen_clock.advance(minutes=1)
    result = confirm_phone(user, last_code_sent_to(NEW_NUMBER), CLIENT)
    assert result.outcome == ConfirmPhoneOutcome.CHANGED
    assert result.message == "Your new number is confirmed. Other sessions were signed out."
    user = reload(user)
    assert user.phone == NEW_NUMBER
    assert user.phone_changed_at == frozen_clock.now == user.phone_verified_at
    assert live_sessions(user) == 0
    assert user_for_token(token) is None  # an API token ends as a session does
    alert = last_sms_to(old)
    assert alert.kind == SmsKind.ALERT_PHONE_CHANGED
    assert "changed to one ending 555" in sms_text(alert)
    assert [event.ip for event in events(user, "phone_changed")] == ["203.0.113.5"]


def test_a_change_from_a_number_never_confirmed_alerts_nobody(app, frozen_clock):
    """A number typed wrong at registration, never confirmed, may be anyone's: changing it
    for the right one texts the new number its code, and the old one nothing."""
    user = make_user(phone="+447700900111", verified=False)
    assert start_phone_change(user, PASSWORD, "07700 900222", CLIENT).outcome == (
        ChangeOutcome.CODE_SENT
    )
    code = last_code_sent_to("+447700900222")
    assert confirm_phone(user, code, CLIENT).outcome == ConfirmPhoneOutcome.CHANGED
    assert user.phone == "+447700900222" and user.phone_verified
    assert last_sms_to("+447700900111") is None


def test_a_wrong_code_says_the_tries_left_and_changes_nothing(app, frozen_clock):
    user = make_user()
    old = user.phone
    open_session(user, CLIENT)
    start_phone_change(user, PASSWORD, NEW_NUMBER, CLIENT)
    result = confirm_phone(user, wrong(last_code_sent_to(NEW_NUMBER)), CLIENT)
    assert result.outcome == ConfirmPhoneOutcome.WRONG_CODE
    assert result.tries_left == 4
    assert result.message == "That code is not right. 4 attempts left."
    user = reload(user)
    assert (user.phone, live_sessions(user)) == (old, 1)
    assert db.session.scalar(select(func.count(OtpFailure.id))) == 1


def test_an_expired_code_is_dead(app, frozen_clock):
    user = make_user()
    old = user.phone
    start_phone_change(user, PASSWORD, NEW_NUMBER, CLIENT)
    frozen_clock.advance(minutes=5)
    result = confirm_phone(user, last_code_sent_to(NEW_NUMBER), CLIENT)
    assert result.outcome == ConfirmPhoneOutcome.CODE_DEAD
    assert result.message == "That code has expired. Ask for a new one."
    assert reload(user).phone == old
    assert phone_challenge(user) is None


def test_ten_wrong_codes_across_two_numbers_lock_codes_on_the_account(app, frozen_clock):
    user = make_user()
    old = user.phone
    start_phone_change(user, PASSWORD, NEW_NUMBER, CLIENT)
    bad = wrong(last_code_sent_to(NEW_NUMBER))
    first = [confirm_phone(user, bad, CLIENT).outcome for _ in range(5)]
    assert first == [ConfirmPhoneOutcome.WRONG_CODE] * 4 + [ConfirmPhoneOutcome.CODE_DEAD]
    start_phone_change(user, PASSWORD, OTHER_NUMBER, CLIENT)
    code = last_code_sent_to(OTHER_NUMBER)
    second = [confirm_phone(user, wrong(code), CLIENT).outcome for _ in range(5)]
    assert second == [ConfirmPhoneOutcome.WRONG_CODE] * 4 + [ConfirmPhoneOutcome.LOCKED]
    assert reload(user).phone == old
    assert len(events(user, "step_up_locked")) == 1
    assert last_sms_to(old).kind == SmsKind.ALERT_CODE_LOCKED
    # Locked, even the right code no longer helps, and no new code is sent.
    assert confirm_phone(user, code, CLIENT).outcome == ConfirmPhoneOutcome.NO_CODE
    frozen_clock.advance(seconds=30)
    assert resend_phone_code(user, CLIENT).refused.reason == Refusal.STEP_UP_LOCKED


def test_confirming_with_no_code_waiting_says_so(app):
    user = make_user(verified=False)
    result = confirm_phone(user, "123456", CLIENT)
    assert result.outcome == ConfirmPhoneOutcome.NO_CODE
    assert result.message == "There is no code waiting. Ask for a new one."
    assert reload(user).phone_verified is False
    assert db.session.scalar(select(func.count(OtpFailure.id))) == 0


# resend_phone_code ---------------------------------------------------------------------------


def test_a_resend_without_a_change_goes_to_the_accounts_number(app, frozen_clock):
    user = make_user(verified=False)
    send = resend_phone_code(user, CLIENT)
    assert send.outcome == Sent.SENT
    assert last_sms_to(user.phone).kind == SmsKind.OTP_PHONE
    result = confirm_phone(user, last_code_sent_to(user.phone), CLIENT)
    assert result.outcome == ConfirmPhoneOutcome.CONFIRMED
    assert reload(user).phone_verified


def test_a_resend_during_a_change_goes_to_the_new_number(app, frozen_clock):
    user = make_user()
    old = user.phone
    start_phone_change(user, PASSWORD, NEW_NUMBER, CLIENT)
    old_challenge = phone_challenge(user)
    frozen_clock.advance(seconds=30)
    send = resend_phone_code(user, CLIENT)
    assert send.outcome == Sent.SENT
    assert len(sms_to(NEW_NUMBER)) == 2 and sms_to(old) == []
    assert phone_challenge(user).id != old_challenge.id
    result = confirm_phone(user, last_code_sent_to(NEW_NUMBER), CLIENT)
    assert result.outcome == ConfirmPhoneOutcome.CHANGED


def test_a_resend_inside_the_cool_down_is_refused(app, frozen_clock):
    user = make_user()
    start_phone_change(user, PASSWORD, NEW_NUMBER, CLIENT)
    live = phone_challenge(user)
    frozen_clock.advance(seconds=15)
    send = resend_phone_code(user, CLIENT)
    assert send.outcome == Sent.REFUSED
    assert send.refused.reason == Refusal.COOLDOWN and send.refused.retry_after == 15
    assert phone_challenge(user).id == live.id
    assert len(sms_to(NEW_NUMBER)) == 1
