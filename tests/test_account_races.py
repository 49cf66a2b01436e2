"""An account's requests at once, on SQLite and on PostgreSQL: what the account's lock
(`shop.locks`) guarantees. Each request runs in a thread with a session of its own, as in
several web workers, and all start together."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select

from shop import clock
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import (
    AuditEvent,
    Factor,
    Order,
    OrderStatus,
    OtpChallenge,
    OtpFailure,
    OtpPurpose,
    SmsKind,
    SmsMessage,
    StepUp,
    User,
)
from shop.models.types import live_of
from shop.orders import ShippingAddress
from shop.orders.checkout import CheckoutOutcome, start_checkout
from shop.orders.confirmation import confirm_order, resend_order_code
from shop.otp.texts import code_sms
from shop.stepup import steps
from tests import postgres
from tests.factories import (
    ADDRESS,
    failures,
    fill_cart,
    last_code_sent_to,
    make_product,
    make_user,
    wrong,
)

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app
any_app = postgres.any_app

CLIENT = Client("203.0.113.77", "device-1")


def together(app, count: int, task: Callable[[int], object]) -> list:
    """`task(0)` … `task(count - 1)` in threads that start at once, each in an app context
    (and so a database session) of its own; what each returned, or the exception it raised."""
    start = threading.Barrier(count)

    def run(index: int) -> object:
        with app.app_context():
            start.wait()
            try:
                return task(index)
            except Exception as error:  # reported to the test, which fails
                db.session.rollback()
                return error
            finally:
                db.session.remove()

    db.session.commit()  # the test's own connection goes back to the pool
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_parallel_checkouts_of_one_cart_make_one_order(any_app):
    # Each checkout counts the account's recent orders (velocity, the low-value exemption):
    # one at a time, each sees those before it, and the cart becomes one order.
    user = make_user()
    product = make_product(price_minor=2_999, stock=50)
    fill_cart(user, (product, 1))
    user_id, product_id = user.id, product.id

    def checkout(index: int) -> CheckoutOutcome:
        shopper = db.session.get(User, user_id)
        key = f"parallel-checkout-{index:04d}"
        return start_checkout(shopper, ShippingAddress(**ADDRESS), key, CLIENT).outcome

    outcomes = together(any_app, 8, checkout)

    assert sorted(outcomes) == [CheckoutOutcome.PLACED] + [CheckoutOutcome.REFUSED] * 7, outcomes
    assert db.session.scalar(select(func.count(Order.id))) == 1
    db.session.expire_all()
    assert db.session.get(type(product), product_id).stock == 49


def test_wrong_answers_at_once_lock_step_up_at_ten_with_one_alert(any_app):
    # Two live codes (an order's and a sign-in's), eight wrong answers already today: six
    # wrong guesses at once take the count to ten and no further, and lock it once.
    otp = any_app.extensions["otp"]
    user = make_user()
    text = code_sms("Shop", "confirm it is you", "http://127.0.0.1:5000")
    guesses = {}
    for purpose in (OtpPurpose.ORDER, OtpPurpose.LOGIN):
        otp.issue(user, purpose, f"binding-{purpose}", client_ip=CLIENT.ip, text=text)
        db.session.commit()
        guesses[purpose] = wrong(last_code_sent_to(user.phone))
    db.session.add_all(OtpFailure(user_id=user.id) for _ in range(8))
    user_id = user.id

    def guess(index: int) -> str:
        purpose = (OtpPurpose.ORDER, OtpPurpose.LOGIN)[index % 2]
        shopper = db.session.get(User, user_id)
        result = otp.verify(
            shopper, purpose, f"binding-{purpose}", guesses[purpose], client_ip=CLIENT.ip
        )
        db.session.commit()
        return result.outcome

    outcomes = together(any_app, 6, guess)

    assert sorted(outcomes) == ["locked"] * 5 + ["wrong"], outcomes
    assert failures(user) == 10
    locked_alerts = select(func.count(SmsMessage.id)).where(
        SmsMessage.kind == SmsKind.ALERT_CODE_LOCKED
    )
    assert db.session.scalar(locked_alerts) == 1
    audited = select(func.count(AuditEvent.id)).where(AuditEvent.event == "step_up_locked")
    assert db.session.scalar(audited) == 1


def test_step_ups_opened_at_once_leave_one_live(any_app):
    # A double-clicked sign-in: each opens the sign-in's step-up, ending the live one.
    user = make_user()
    user_id = user.id

    def open_one(index: int) -> int:
        shopper = db.session.get(User, user_id)
        expires_at = clock.now() + timedelta(minutes=5)
        step_up = steps.open_step_up(
            shopper, OtpPurpose.LOGIN, f"sign-in-{index}", [Factor.SMS], expires_at=expires_at
        )
        db.session.commit()
        return step_up.id

    opened = together(any_app, 6, open_one)

    assert all(isinstance(step_up_id, int) for step_up_id in opened), opened
    live = select(func.count(StepUp.id)).where(live_of(StepUp, user_id, OtpPurpose.LOGIN))
    assert db.session.scalar(live) == 1


def test_a_resend_at_once_with_the_confirm_never_sends_a_code_for_a_placed_order(any_app):
    user = make_user()
    fill_cart(user, (make_product(price_minor=30_000, stock=5), 1))
    order = start_checkout(user, ShippingAddress(**ADDRESS), "resend-race-0000001", CLIENT).order
    assert order.status == OrderStatus.PENDING_VERIFICATION
    code = last_code_sent_to(user.phone)
    user_id, ref, order_id = user.id, order.ref, order.id

    def act(index: int) -> str:
        shopper = db.session.get(User, user_id)
        if index == 0:
            return confirm_order(shopper, ref, code, CLIENT).outcome
        return resend_order_code(shopper, ref, CLIENT).outcome

    outcomes = together(any_app, 3, act)

    assert all(isinstance(outcome, str) for outcome in outcomes), outcomes
    db.session.expire_all()
    order = db.session.get(Order, order_id)
    codes = select(OtpChallenge).where(OtpChallenge.order_id == order_id)
    if order.status == OrderStatus.PLACED:
        # Every code of a placed order was sent before it was placed, and none is live.
        assert order.expires_at is None
        assert all(
            challenge.consumed_at is not None or challenge.ended_at is not None
            for challenge in db.session.scalars(codes)
        )
    else:
        assert outcomes[0] == "code_dead"  # a resend went first and replaced the code
