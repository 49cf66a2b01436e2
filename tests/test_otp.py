"""One-time codes at the configured values of SPEC section 5 (clock frozen); the send
limits are in test_otp_limits.py."""

import hashlib
import logging
import shutil
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from shop import create_app
from shop.extensions import db
from shop.models import AuditEvent, OtpPurpose, SmsKind, SmsMessage, SmsStatus
from shop.otp import Otp, SendRefused, binding_for
from shop.otp.texts import code_sms
from tests.conftest import config_for
from tests.factories import (
    LOOK_ALIKES,
    last_code_sent_to,
    last_sms_to,
    make_user,
    sms_text,
    wrong,
)

IP = "203.0.113.9"
TEXT = code_sms("Shop", "confirm order SH-TEST for €300.00", "http://127.0.0.1:5000")


@pytest.fixture
def otp(app) -> Otp:
    return app.extensions["otp"]


def issue(otp, user, binding="order-a", *, ip=IP, purpose=OtpPurpose.ORDER):
    challenge = otp.issue(user, purpose, binding, client_ip=ip, text=TEXT)
    db.session.commit()
    return challenge


def verify(otp, user, code, binding="order-a", purpose=OtpPurpose.ORDER):
    result = otp.verify(user, purpose, binding, code, client_ip=IP)
    db.session.commit()
    return result


def test_configured_policy_is_the_spec(otp):
    policy = otp.policy
    assert policy.digits == 6
    assert policy.validity.total_seconds() == 300
    assert policy.max_attempts == 5
    assert policy.max_account_failures == 10
    assert policy.resend_cooldown.total_seconds() == 30
    assert (policy.sends_per_number_10_min, policy.sends_per_number_day) == (5, 15)
    assert (policy.numbers_per_ip_hour, policy.sends_per_ip_hour) == (5, 30)


def test_the_sms_names_shop_action_and_code_with_a_webotp_line(otp, frozen_clock):
    user = make_user()
    issue(otp, user)
    code = last_code_sent_to(user.phone)
    sms = last_sms_to(user.phone)
    assert len(code) == 6 and code.isdigit()
    assert sms_text(sms) == (
        f"Shop: {code} is your code to confirm order SH-TEST for €300.00. Never share it."
        f"\n\n@127.0.0.1 #{code}"
    )
    assert code not in sms.redacted_body and "••••••" in sms.redacted_body
    assert sms.kind == SmsKind.OTP_ORDER
    assert sms.expires_at == frozen_clock.now + timedelta(minutes=5)


def test_eight_digit_codes_when_configured(tmp_path, migrated_template):
    path = tmp_path / "eight.sqlite3"
    shutil.copy(migrated_template, path)
    app = create_app({**config_for(path), "OTP_DIGITS": 8})
    with app.app_context():
        otp = app.extensions["otp"]
        user = make_user()
        issue(otp, user)
        code = last_code_sent_to(user.phone)
        assert len(code) == 8
        assert not verify(otp, user, code[:6]).ok
        assert verify(otp, user, code).ok
        db.session.remove()
        db.engine.dispose()


def test_only_a_keyed_hmac_is_stored(app, otp):
    user = make_user()
    challenge = issue(otp, user)
    code = last_code_sent_to(user.phone)
    stored = challenge.code_hmac
    assert len(stored) == 64 and code not in stored
    # Not a plain hash of what the code is bound to: that a copy of the table could be
    # searched through in a million guesses.
    bound = f"{user.id}|{challenge.purpose}|{challenge.binding}|{code}"
    assert stored != hashlib.sha256(bound.encode()).hexdigest()
    # The key matters: the same code for the same binding, checked by a shop with another
    # key, is a wrong code; with the configured key it is the code.
    elsewhere = Otp.from_config({**app.config, "OTP_HMAC_KEY": "another-key"})
    result = elsewhere.verify(user, OtpPurpose.ORDER, "order-a", code, client_ip=IP)
    db.session.commit()
    assert (result.outcome, result.tries_left) == ("wrong", 4)
    assert verify(otp, user, code).ok


def test_code_works_until_4_59_and_not_at_5_00(otp, frozen_clock):
    user = make_user()
    issue(otp, user, "a")
    code = last_code_sent_to(user.phone)
    frozen_clock.advance(minutes=4, seconds=59)
    assert verify(otp, user, code, "a").ok

    frozen_clock.advance(minutes=1)
    issue(otp, user, "b")
    code = last_code_sent_to(user.phone)
    frozen_clock.advance(minutes=5)
    result = verify(otp, user, code, "b")
    assert not result.ok and result.outcome == "expired"


def test_a_code_is_single_use(otp):
    user = make_user()
    issue(otp, user)
    code = last_code_sent_to(user.phone)
    assert verify(otp, user, code).ok
    assert verify(otp, user, code).outcome == "no_code"


def test_five_wrong_codes_kill_the_code(otp):
    user = make_user()
    issue(otp, user)
    code = last_code_sent_to(user.phone)
    outcomes = [verify(otp, user, wrong(code)) for _ in range(5)]
    assert [result.tries_left for result in outcomes[:4]] == [4, 3, 2, 1]
    assert outcomes[4].outcome == "too_many_attempts"
    assert verify(otp, user, code).outcome == "no_code"


def test_a_resend_replaces_the_code_and_keeps_the_count(otp, frozen_clock):
    user = make_user()
    issue(otp, user)
    old = last_code_sent_to(user.phone)
    for _ in range(3):
        verify(otp, user, wrong(old))
    frozen_clock.advance(seconds=30)
    issue(otp, user)
    new = last_code_sent_to(user.phone)
    result = verify(otp, user, old if old != new else wrong(new))
    assert not result.ok
    assert result.outcome == "wrong"
    assert result.tries_left == 1
    assert otp.lockout.failures_in_window(user) == 4
    assert verify(otp, user, new).ok


def test_the_tenth_failure_in_24_hours_locks_step_up_and_alerts(otp, frozen_clock):
    user = make_user()
    first_failure = frozen_clock.now
    for binding in ("order-a", "order-b"):
        issue(otp, user, binding)
        code = last_code_sent_to(user.phone)
        results = [verify(otp, user, wrong(code), binding) for _ in range(5)]
        frozen_clock.advance(minutes=6)
    assert results[-1].outcome == "locked"
    assert otp.lockout.is_locked(user)
    alert = last_sms_to(user.phone)
    assert alert.kind == SmsKind.ALERT_CODE_LOCKED
    assert "too many wrong codes" in sms_text(alert)
    events = db.session.scalars(select(AuditEvent.event)).all()
    assert events.count("code_failed") == 10 and "step_up_locked" in events
    with pytest.raises(SendRefused, match="locked"):
        issue(otp, user, "order-c")
    db.session.rollback()
    # Still locked one second before the first failure is 24 hours old; not once it is.
    frozen_clock.now = first_failure + timedelta(hours=24, seconds=-1)
    assert otp.lockout.failures_in_window(user) == 10
    assert otp.lockout.is_locked(user)
    with pytest.raises(SendRefused, match="locked"):
        issue(otp, user, "order-c")
    db.session.rollback()
    frozen_clock.advance(seconds=1)
    assert otp.lockout.failures_in_window(user) == 5
    assert not otp.lockout.is_locked(user)
    issue(otp, user, "order-c")
    assert verify(otp, user, last_code_sent_to(user.phone), "order-c").ok


def test_account_failures_count_across_codes_and_resends(otp, frozen_clock):
    user = make_user()
    for order in ("a", "b", "c"):
        issue(otp, user, order)
        code = last_code_sent_to(user.phone)
        for _ in range(3):
            verify(otp, user, wrong(code), order)
        frozen_clock.advance(minutes=11)
    assert otp.lockout.failures_in_window(user) == 9
    assert not otp.lockout.is_locked(user)


def test_a_code_for_order_a_fails_on_order_b_and_dies(otp):
    user = make_user()
    issue(otp, user, binding_for("SH-A", 30000))
    code = last_code_sent_to(user.phone)
    result = verify(otp, user, code, binding_for("SH-B", 30000))
    assert result.outcome == "mismatch"
    assert verify(otp, user, code, binding_for("SH-A", 30000)).outcome == "no_code"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.event == "code_invalidated"))


def test_a_changed_amount_or_cart_kills_the_code(otp):
    user = make_user()
    issue(otp, user, binding_for("SH-A", 30000, "items-1"))
    code = last_code_sent_to(user.phone)
    assert verify(otp, user, code, binding_for("SH-A", 30000, "items-2")).outcome == "mismatch"


def test_a_code_for_user_a_fails_for_user_b(otp, frozen_clock):
    alice, bob = make_user(), make_user()
    issue(otp, alice)
    alice_code = last_code_sent_to(alice.phone)
    assert verify(otp, bob, alice_code).outcome == "no_code"
    issue(otp, bob)
    bob_code = last_code_sent_to(bob.phone)
    if alice_code != bob_code:
        assert verify(otp, bob, alice_code).outcome == "wrong"
    assert verify(otp, alice, alice_code).ok


@pytest.mark.parametrize(
    "hostile",
    ["' OR 1=1 --", "１２３４５６", "٣٣٣٣٣٣", "1" * 10_000, "", "12345", "1234567", "⁰¹²³⁴⁵"],
)
def test_hostile_input_counts_as_a_failure(otp, hostile):
    user = make_user()
    issue(otp, user)
    result = verify(otp, user, hostile)
    assert not result.ok and result.outcome == "wrong"
    assert otp.lockout.failures_in_window(user) == 1


@pytest.mark.parametrize("look_alike", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_input_made_from_the_code_is_a_wrong_code_and_the_code_still_works(otp, look_alike):
    user = make_user()
    issue(otp, user)
    code = last_code_sent_to(user.phone)
    result = verify(otp, user, look_alike(code))
    assert (result.ok, result.outcome, result.tries_left) == (False, "wrong", 4)
    assert otp.lockout.failures_in_window(user) == 1
    assert verify(otp, user, f"  {code} ").ok


def test_spaces_around_the_code_are_trimmed(otp):
    user = make_user()
    issue(otp, user)
    code = last_code_sent_to(user.phone)
    assert verify(otp, user, f"  {code}\t ").ok


@pytest.mark.parametrize("spaced", [lambda code: f"{code[:3]} {code[3:]}", " ".join])
def test_a_code_with_spaces_inside_is_not_the_code(otp, spaced):
    """The format is exactly six digits once the ends are trimmed: "123 456" is a wrong code."""
    user = make_user()
    issue(otp, user)
    code = last_code_sent_to(user.phone)
    result = verify(otp, user, spaced(code))
    assert not result.ok and result.outcome == "wrong"
    assert verify(otp, user, code).ok


def test_twenty_concurrent_checks_of_one_code_give_one_success(app, otp):
    user = make_user()
    issue(otp, user)
    code = last_code_sent_to(user.phone)
    user_id = user.id
    start = threading.Barrier(20)
    results = []

    def check() -> None:
        with app.app_context():
            from shop.models import User

            me = db.session.get(User, user_id)
            db.session.commit()  # hand the connection back: 20 threads share a pool of 15
            start.wait()
            result = otp.verify(me, OtpPurpose.ORDER, "order-a", code, client_ip=IP)
            db.session.commit()
            results.append(result.ok)
            db.session.remove()

    threads = [threading.Thread(target=check) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1


def test_codes_never_reach_the_logs(otp, caplog):
    caplog.set_level(logging.DEBUG)
    user = make_user()
    issue(otp, user)
    code = last_code_sent_to(user.phone)
    verify(otp, user, wrong(code))
    verify(otp, user, code)
    assert code not in caplog.text


def test_a_resend_drops_the_unsent_sms_of_the_old_code(otp, frozen_clock):
    user = make_user()
    first = issue(otp, user)
    old_body = db.session.get(SmsMessage, first.sms_id).body
    frozen_clock.advance(seconds=30)
    issue(otp, user)
    db.session.expire_all()
    dropped = db.session.get(SmsMessage, first.sms_id)
    assert dropped.status == SmsStatus.DROPPED
    assert dropped.body != old_body and "••••••" in dropped.body
