"""An account's requests at once, on SQLite and on PostgreSQL: what the account's lock
(`shop.locks`) guarantees. Each request runs in a thread with a session of its own, as in
several web workers, and all start together."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select

from shop import alerts, clock
from shop.accounts.client import Client
from shop.accounts.tokens import issue_token
from shop.extensions import db
from shop.models import (
    AuditEvent,
    Factor,
    Order,
    OrderEvent,
    OrderStatus,
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
from shop.orders.confirmation import ConfirmOutcome, confirm_order
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
    start = threading.Barrier(count, timeout=30)

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


def test_a_confirm_that_loses_the_race_to_the_sweep_says_where_the_order_is(pg_app, monkeypatch):
    # On PostgreSQL a sweep or a review moves an order without the account's lock: here one
    # places it between the confirm's decision (the rules now hold it) and its move. The
    # shopper is told it is placed, not shown a 500. (On SQLite the confirm holds the
    # database's write lock: nothing moves the order meanwhile.)
    from shop.orders import confirmation
    from tests.factories import set_rules
    from tests.test_usecase_checkout import place_elsewhere

    user = make_user()
    fill_cart(user, (make_product(price_minor=30_000, stock=5), 1))
    order = start_checkout(user, ShippingAddress(**ADDRESS), "lost-race-0000001", CLIENT).order
    code = last_code_sent_to(user.phone)
    set_rules(hold_threshold_minor=30_000)
    decide, order_id = confirmation.decide, order.id

    def decided_then_placed_elsewhere(*args, **kwargs):
        decided = decide(*args, **kwargs)
        place_elsewhere(order_id)
        return decided

    monkeypatch.setattr(confirmation, "decide", decided_then_placed_elsewhere)
    result = confirm_order(user, order.ref, code, CLIENT)

    assert result.outcome == ConfirmOutcome.ALREADY_PLACED
    assert result.message == "This order is already confirmed."
    db.session.expire_all()
    assert db.session.get(Order, order_id).status == OrderStatus.PLACED
    kinds = db.session.scalars(select(OrderEvent.kind).where(OrderEvent.order_id == order_id))
    assert "held" not in list(kinds)


def test_the_owner_asking_for_a_code_and_not_me_at_once_never_deadlock(pg_app):
    # The owner asks for a code on a held order while its holder follows a "not me" link:
    # each takes the account's lock before the order's row, so one waits for the other.
    from shop import alerts
    from shop.accounts.lockdown import not_me
    from shop.models import Role
    from shop.orders.review import approve
    from tests.factories import make_held_order

    owner_id = make_user("boss@example.com", role=Role.OWNER).id
    for round_ in range(8):
        order = make_held_order()
        token = alerts.not_me_url(order.user).rsplit("/", 1)[-1]
        ref = order.ref

        def act(index: int, ref=ref, token=token) -> str:
            if index == 0:
                owner = db.session.get(User, owner_id)
                return approve(ref, owner, "Ask the shopper.", CLIENT, ask_code=True).outcome
            return not_me(token, Client("198.51.100.9")).outcome

        outcomes = together(pg_app, 2, act)
        assert all(isinstance(outcome, str) for outcome in outcomes), (round_, outcomes)


def test_the_expiry_sweep_and_not_me_at_once_never_deadlock(pg_app, frozen_clock):
    # A lapsed order: the delivery process's sweep expires it while its holder follows a
    # "not me" link. Both take the order's row before its products, so one waits.
    from shop import alerts
    from shop.accounts.lockdown import not_me
    from shop.orders import expire_pending

    for round_ in range(8):
        user = make_user()
        fill_cart(user, (make_product(price_minor=30_000, stock=5), 1))
        key = f"sweep-race-{round_:08d}"
        client = Client(f"203.0.113.{round_ + 1}")  # five numbers an hour from one address
        order = start_checkout(user, ShippingAddress(**ADDRESS), key, client).order
        assert order.status == OrderStatus.PENDING_VERIFICATION
        token = alerts.not_me_url(user).rsplit("/", 1)[-1]
        frozen_clock.advance(minutes=6)

        def act(index: int, token=token) -> object:
            if index == 0:
                return expire_pending()
            return not_me(token, Client("198.51.100.9")).outcome

        outcomes = together(pg_app, 2, act)
        assert not any(isinstance(outcome, Exception) for outcome in outcomes), (round_, outcomes)


def test_new_device_alerts_at_once_stop_at_the_hourly_cap(any_app):
    # Eight API tokens taken at once, each a new device: each counts the hour's alerts
    # after the one before it, and five go out.
    user = make_user()
    user_id = user.id

    def take_token(index: int) -> str:
        return issue_token(db.session.get(User, user_id), f"script {index}", CLIENT)

    results = together(any_app, 8, take_token)
    assert all(isinstance(raw, str) for raw in results), results
    sent = db.session.scalar(
        select(func.count(SmsMessage.id)).where(
            SmsMessage.user_id == user_id, SmsMessage.kind == SmsKind.ALERT_NEW_DEVICE
        )
    )
    assert sent == alerts.NEW_DEVICE_ALERTS_PER_HOUR
