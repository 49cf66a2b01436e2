"""Send limits at the configured values of SPEC section 5 (clock frozen), and their atomicity.

Cool-down 30 s (a checkout or sign-in is queued, a resend is refused); 5 codes per number in
10 minutes and 15 a day; per client address 5 distinct numbers and 30 codes an hour; only to
a verified number in an allowed country; every refusal recorded with its reason.
"""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shop.extensions import db
from shop.models import OtpChallenge, OtpPurpose, SendRefusal, SmsMessage, SmsStatus, User
from shop.otp import Otp, Refusal, SendRefused, challenges
from shop.otp.texts import code_sms
from shop.sms.delivery import DeliveryWorker
from shop.sms.senders import ConsoleSender
from tests.factories import last_code_sent_to, make_user

IP = "203.0.113.9"
TEXT = code_sms("Shop", "confirm order SH-TEST for €300.00", "http://127.0.0.1:5000")


@pytest.fixture
def otp(app) -> Otp:
    return app.extensions["otp"]


def issue(otp, user, binding="order-a", *, ip=IP, resend=False, phone=None):
    challenge = otp.issue(
        user, OtpPurpose.ORDER, binding, client_ip=ip, text=TEXT, resend=resend, phone=phone
    )
    db.session.commit()
    return challenge


def refused(otp, user, *args, **kwargs) -> SendRefused:
    with pytest.raises(SendRefused) as caught:
        issue(otp, user, *args, **kwargs)
    otp.refused(caught.value)
    return caught.value


def live_codes(user) -> int:
    return db.session.scalar(
        select(func.count(OtpChallenge.id)).where(
            OtpChallenge.user_id == user.id,
            OtpChallenge.consumed_at.is_(None),
            OtpChallenge.ended_at.is_(None),
        )
    )


# The cool-down ---------------------------------------------------------------------------------


def test_a_code_inside_the_cooldown_is_queued_to_its_end(otp, frozen_clock):
    user = make_user()
    first = issue(otp, user, "order-a")
    frozen_clock.advance(seconds=12)
    second = issue(otp, user, "order-b")
    assert second.send_at == first.send_at + timedelta(seconds=30)
    assert second.expires_at == second.send_at + timedelta(minutes=5)
    sms = db.session.get(SmsMessage, second.sms_id)
    assert sms.next_attempt_at == second.send_at and sms.expires_at == second.expires_at
    status = challenges.status(second, otp.policy)
    assert status.queued_seconds == 18 and status.live
    assert status.expires_in_seconds == 18 + 300


def test_a_queued_code_goes_out_only_when_the_cooldown_ends(otp, frozen_clock):
    user = make_user()
    issue(otp, user, "order-a")
    queued = issue(otp, user, "order-b")
    worker = DeliveryWorker(ConsoleSender())
    worker.run_once()
    assert db.session.get(SmsMessage, queued.sms_id).status == SmsStatus.QUEUED
    frozen_clock.advance(seconds=30)
    worker.run_once()
    db.session.expire_all()
    assert db.session.get(SmsMessage, queued.sms_id).status == SmsStatus.SENT


def test_a_resend_inside_the_cooldown_is_refused_and_says_how_long(otp, frozen_clock):
    user = make_user()
    issue(otp, user)
    frozen_clock.advance(seconds=29)
    refusal = refused(otp, user, resend=True)
    assert refusal.reason == Refusal.COOLDOWN and refusal.retry_after == 1
    frozen_clock.advance(seconds=1)
    challenge = issue(otp, user, resend=True)
    assert challenge.send_at == frozen_clock.now


# Per number ------------------------------------------------------------------------------------


def test_at_most_5_codes_per_10_minutes_to_a_number(otp, frozen_clock):
    user = make_user()
    for _ in range(5):
        issue(otp, user, resend=True)
        frozen_clock.advance(seconds=30)
    refusal = refused(otp, user, resend=True)
    assert refusal.reason == Refusal.NUMBER_10_MIN
    assert refusal.retry_after == 10 * 60 - 5 * 30
    frozen_clock.advance(seconds=refusal.retry_after)
    issue(otp, user, resend=True)


def test_at_most_15_codes_a_day_to_a_number(otp, frozen_clock):
    user = make_user()
    first = frozen_clock.now
    for _ in range(15):
        issue(otp, user, resend=True)
        frozen_clock.advance(minutes=3)
    refusal = refused(otp, user, resend=True)
    assert refusal.reason == Refusal.NUMBER_DAY
    # The wait is until the first of the 15 is a day old.
    assert refusal.retry_after == 24 * 3600 - 45 * 60
    frozen_clock.now = first + timedelta(hours=23, minutes=59)
    refusal = refused(otp, user, resend=True)
    assert (refusal.reason, refusal.retry_after) == (Refusal.NUMBER_DAY, 60)
    frozen_clock.now = first + timedelta(hours=24)
    issue(otp, user, resend=True)


# Per client address ----------------------------------------------------------------------------


def test_at_most_5_distinct_numbers_per_hour_from_one_address(otp, frozen_clock):
    users = [make_user() for _ in range(6)]
    first = frozen_clock.now
    for user in users[:5]:
        issue(otp, user, ip="198.51.100.7")
    refusal = refused(otp, users[5], ip="198.51.100.7")
    assert refusal.reason == Refusal.IP_NUMBERS
    # A number already seen from the address is not a new one, and another address is fine.
    frozen_clock.advance(seconds=30)
    issue(otp, users[0], "order-b", ip="198.51.100.7")
    issue(otp, users[5], ip="198.51.100.8")
    # The sixth number waits until the first five were texted an hour ago.
    frozen_clock.now = first + timedelta(minutes=59, seconds=59)
    assert refused(otp, users[5], "order-c", ip="198.51.100.7").reason == Refusal.IP_NUMBERS
    frozen_clock.now = first + timedelta(hours=1, seconds=1)
    issue(otp, users[5], "order-c", ip="198.51.100.7")


def test_at_most_30_codes_per_hour_from_one_address(otp, frozen_clock):
    users = [make_user() for _ in range(5)]
    for _ in range(6):
        for user in users:
            issue(otp, user, resend=True, ip="198.51.100.7")
        frozen_clock.advance(minutes=10, seconds=1)
    frozen_clock.advance(seconds=-60)
    refusal = refused(otp, users[0], resend=True, ip="198.51.100.7")
    assert refusal.reason == Refusal.IP_CODES


def test_a_day_of_normal_use_by_a_household_never_hits_a_limit(otp, frozen_clock):
    """Three people behind one address, each shopping four times a day: a sign-in code, an
    order code right after it (queued), and a resend once its countdown ends."""
    people = [make_user() for _ in range(3)]
    for visit in range(4):
        for index, user in enumerate(people):
            issue(otp, user, f"login-{visit}-{index}")
            issue(otp, user, f"order-{visit}-{index}")
            frozen_clock.advance(seconds=60)
            issue(otp, user, f"order-{visit}-{index}", resend=True)
        frozen_clock.advance(hours=2)
    assert db.session.scalar(select(func.count(SendRefusal.id))) == 0
    assert db.session.scalar(select(func.count(OtpChallenge.id))) == 36


# Who may receive a code ------------------------------------------------------------------------


def test_codes_go_only_to_a_verified_number_in_an_allowed_country(otp, app):
    unverified = make_user(verified=False)
    assert refused(otp, unverified).reason == Refusal.NUMBER_NOT_VERIFIED
    french = make_user(phone="+33612345678")
    refusal = refused(otp, french)
    assert refusal.reason == Refusal.COUNTRY_NOT_ALLOWED
    assert "only send SMS to numbers in: United Kingdom (GB)" in refusal.message
    assert db.session.scalar(select(OtpChallenge)) is None


def test_every_refusal_is_recorded_with_its_reason_and_no_code(otp, frozen_clock):
    french = make_user(phone="+33612345678")
    refused(otp, french, ip="198.51.100.9")
    user = make_user()
    issue(otp, user)
    code = last_code_sent_to(user.phone)
    refused(otp, user, resend=True)
    rows = db.session.scalars(select(SendRefusal).order_by(SendRefusal.id)).all()
    assert [(row.reason, row.country, row.client_ip) for row in rows] == [
        (Refusal.COUNTRY_NOT_ALLOWED, "FR", "198.51.100.9"),
        (Refusal.COOLDOWN, "GB", IP),
    ]
    assert rows[1].phone == user.phone and rows[1].user_id == user.id
    assert all(code not in f"{row.phone}{row.reason}" for row in rows)


# A resend never resets a count -----------------------------------------------------------------


def test_a_resend_after_a_dead_code_gets_no_fresh_tries(otp, frozen_clock):
    user = make_user()
    issue(otp, user)
    code = last_code_sent_to(user.phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        otp.verify(user, OtpPurpose.ORDER, "order-a", wrong, client_ip=IP)
        db.session.commit()
    frozen_clock.advance(seconds=30)
    assert refused(otp, user, resend=True).reason == Refusal.NO_TRIES_LEFT
    assert live_codes(user) == 0
    # Something else (another order) still gets its five tries.
    assert issue(otp, user, "order-b").failed_attempts == 0


# Atomic per number -----------------------------------------------------------------------------


def run_at_once(app, count: int, task) -> list[object]:
    """`task()` in `count` threads released together, each in an app context of its own."""
    start = threading.Barrier(count)
    results: list[object] = []

    def run() -> None:
        with app.app_context():
            start.wait(timeout=30)
            try:
                results.append(task())
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_twenty_parallel_resends_send_one_code_and_leave_one_live(app, otp, frozen_clock):
    user_id = make_user().id
    issue(otp, db.session.get(User, user_id))
    frozen_clock.advance(seconds=30)
    db.session.commit()

    def resend() -> bool:
        me = db.session.get(User, user_id)
        try:
            otp.issue(me, OtpPurpose.ORDER, "order-a", client_ip=IP, text=TEXT, resend=True)
        except SendRefused as refusal:
            otp.refused(refusal)
            return False
        db.session.commit()
        return True

    results = run_at_once(app, 20, resend)
    assert results.count(True) == 1
    user = db.session.get(User, user_id)
    assert live_codes(user) == 1
    assert db.session.scalar(select(func.count(OtpChallenge.id))) == 2
    assert db.session.scalar(select(func.count(SendRefusal.id))) == 19
