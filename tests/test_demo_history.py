"""The demo's month of past orders: deterministic, added once, and decided as checkout would."""

import json
import re
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from shop import create_app, risk
from shop.demo import (
    DEMO_OWNER,
    DEMO_SHOPPER,
    HISTORY_CUSTOMERS,
    HISTORY_MARKER,
    PRODUCTS,
    seed_demo,
    seed_history,
)
from shop.extensions import db
from shop.models import (
    Order,
    OrderStatus,
    OtpChallenge,
    Product,
    Role,
    SmsMessage,
    SmsStatus,
    User,
)
from shop.risk import RiskInputs, RiskRules
from tests.conftest import config_for
from tests.factories import make_user

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
CHEAP_HASH = "pbkdf2:sha256:1000"
HELD_DAYS = 7  # HELD_ORDER_CANCEL_DAYS's default


def snapshot() -> list[tuple]:
    orders = db.session.scalars(select(Order).order_by(Order.created_at, Order.id))
    # Order references are random (`secrets`), like every other order's; the rest is fixed.
    return [
        (
            order.user.email,
            order.created_at,
            order.total_minor,
            order.status,
            order.risk_outcome,
            order.risk_reasons,
            order.risk_inputs,
            order.device_id,
            order.address_key,
            tuple((item.product_name, item.quantity) for item in order.items),
            order.step_up_verified_at,
        )
        for order in orders
    ]


def seeded() -> list[Order]:
    seed_history(NOW, "EUR")
    db.session.commit()
    return db.session.scalars(select(Order).order_by(Order.created_at)).all()


def test_history_is_deterministic(app, tmp_path, migrated_template):
    seed_history(NOW, "EUR")
    db.session.commit()
    first = snapshot()

    path = tmp_path / "second.sqlite3"
    shutil.copy(migrated_template, path)
    other = create_app(config_for(path))
    with other.app_context():
        seed_history(NOW, "EUR")
        db.session.commit()
        second = snapshot()
        db.session.remove()
        db.engine.dispose()
    assert first == second


def test_seed_demo_adds_the_history_once(app):
    seed_demo("EUR", CHEAP_HASH)
    counts = [
        db.session.scalar(select(func.count(model.id)))
        for model in (Order, User, OtpChallenge, SmsMessage)
    ]
    seed_demo("EUR", CHEAP_HASH)
    assert seed_history(NOW, "EUR") == 0
    db.session.commit()
    assert [
        db.session.scalar(select(func.count(model.id)))
        for model in (Order, User, OtpChallenge, SmsMessage)
    ] == counts
    assert 60 <= counts[0] <= 120


def test_demo_logins_are_unchanged_and_customers_cannot_sign_in(app):
    seed_demo("EUR", CHEAP_HASH)
    shopper = db.session.scalar(select(User).where(User.email == DEMO_SHOPPER.email))
    owner = db.session.scalar(select(User).where(User.email == DEMO_OWNER.email))
    assert check_password_hash(shopper.password_hash, DEMO_SHOPPER.password)
    assert check_password_hash(owner.password_hash, DEMO_OWNER.password)
    assert owner.role == Role.OWNER
    assert db.session.scalar(select(func.count(Order.id)).where(Order.user_id == shopper.id)) == 0
    assert 3 <= len(HISTORY_CUSTOMERS) <= 5
    for customer in HISTORY_CUSTOMERS:
        user = db.session.scalar(select(User).where(User.email == customer.email))
        assert user.role == Role.SHOPPER and user.phone_verified
        assert re.fullmatch(r"\+447700900\d{3}", user.phone)
        for password in (DEMO_SHOPPER.password, DEMO_OWNER.password, ""):
            assert not check_password_hash(user.password_hash, password)


def test_history_is_realistic(app):
    orders = seeded()
    assert 60 <= len(orders) <= 120
    assert all(order.idempotency_key.startswith(HISTORY_MARKER) for order in orders)
    assert all(NOW - timedelta(days=30) < order.created_at < NOW for order in orders)
    outcomes = Counter(order.risk_outcome for order in orders)
    assert outcomes["allow"] > outcomes["otp"] > outcomes["hold"] > 0
    assert outcomes["block"] == 0
    assert len({order.user_id for order in orders}) == len(HISTORY_CUSTOMERS)
    assert len({order.device_id for order in orders}) > len(HISTORY_CUSTOMERS)
    assert len({order.address_key for order in orders}) > len(HISTORY_CUSTOMERS)
    assert len({order.total_minor for order in orders}) > 30
    prices = {name: price for name, price, _, _ in PRODUCTS}
    for order in orders:
        assert 1 <= len(order.items) <= 3
        assert order.total_minor == sum(item.line_total_minor for item in order.items)
        assert all(item.unit_price_minor == prices[item.product_name] for item in order.items)


def counted_at(order: Order, moment: datetime) -> bool:
    """Whether `order` was placed or held at `moment`: a held order the shop cancelled later
    (held past the setting) still counted before that."""
    if order.status in (OrderStatus.PLACED, OrderStatus.HELD):
        return True
    return order.risk_outcome == "hold" and order.updated_at > moment


def test_every_decision_is_the_default_rules_on_inputs_from_earlier_orders(app):
    orders = seeded()
    rules = RiskRules()
    for order in orders:
        inputs = RiskInputs.from_json(json.loads(order.risk_inputs))
        decision = risk.evaluate(inputs, rules, order.created_at)
        assert order.risk_outcome == decision.outcome
        assert [reason["code"] for reason in order.reasons] == decision.codes
        assert inputs.total_minor == order.total_minor
        earlier = [
            other
            for other in orders
            if other.user_id == order.user_id
            and other.created_at < order.created_at
            and counted_at(other, order.created_at)
        ]
        assert inputs.previous_orders == len(earlier)
        assert inputs.device_known == any(other.device_id == order.device_id for other in earlier)
        assert inputs.address_known == any(
            other.address_key == order.address_key for other in earlier
        )
        assert inputs.account_created_at <= order.created_at
        if inputs.phone_changed_at is not None:
            assert inputs.phone_changed_at <= order.created_at


def test_statuses_follow_the_outcomes(app):
    orders = seeded()
    endings = Counter()
    sweeps = Counter()
    for order in orders:
        challenges = db.session.scalars(
            select(OtpChallenge).where(OtpChallenge.order_id == order.id)
        ).all()
        if order.risk_outcome == "allow":
            assert order.status == OrderStatus.PLACED and not challenges
        elif order.risk_outcome == "hold":
            assert not challenges
            # The shop cancels what is held longer than its setting, as the delivery process
            # does every minute: the demo starts with no such order left in the queue.
            held_for = NOW - order.created_at
            if held_for < timedelta(days=HELD_DAYS):
                assert order.status == OrderStatus.HELD
            else:
                assert order.status == OrderStatus.CANCELLED
                cancelled_after = order.updated_at - order.created_at
                assert timedelta(days=HELD_DAYS) <= cancelled_after < timedelta(days=HELD_DAYS + 1)
                sweeps[order.status] += 1
        else:
            [challenge] = challenges
            sms = db.session.get(SmsMessage, challenge.sms_id)
            assert sms.body == sms.redacted_body and "••••••" in sms.body
            # Where the code stood, only the mask (an order ref may hold six digits in a row).
            assert ": •••••• is your code" in sms.body and sms.body.endswith("#••••••")
            endings[order.status] += 1
            if order.status == OrderStatus.PLACED:
                assert order.step_up_verified_at == challenge.consumed_at
                assert order.created_at < order.step_up_verified_at < challenge.expires_at
                assert sms.status == SmsStatus.DELIVERED
            else:
                assert order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED)
                assert order.step_up_verified_at is None and challenge.consumed_at is None
                assert challenge.ended_at is not None
    assert (
        endings[OrderStatus.PLACED] > endings[OrderStatus.EXPIRED] + endings[OrderStatus.CANCELLED]
    )
    assert endings[OrderStatus.EXPIRED] + endings[OrderStatus.CANCELLED] > 0
    assert sweeps[OrderStatus.CANCELLED] > 0


def test_history_leaves_stock_alone(app):
    seeded()
    stock = dict(db.session.execute(select(Product.name, Product.stock)).all())
    assert stock == {name: units for name, _, units, _ in PRODUCTS}


def test_history_does_not_touch_existing_accounts_orders(app):
    shopper = make_user()
    seeded()
    assert db.session.scalar(select(func.count(Order.id)).where(Order.user_id == shopper.id)) == 0


def test_backtest_and_dashboard_show_the_history(client, app, frozen_clock):
    orders = seeded()
    report = risk.backtest(RiskRules(), RiskRules(), now=NOW)
    assert report.orders == len(orders) and report.changed == 0
    stored = Counter(order.risk_outcome for order in orders)
    assert {key: figures.orders for key, figures in report.current.items()} == {
        outcome: stored[outcome] for outcome in ("allow", "otp", "hold", "block")
    }
    stricter = risk.backtest(RiskRules(otp_threshold_minor=5_000), RiskRules(), now=NOW)
    assert stricter.changed > 0
    assert stricter.proposed["otp"].orders > report.current["otp"].orders

    client.sign_in_as(make_user(role=Role.OWNER))
    dashboard = client.get("/admin").get_data(as_text=True)
    week_orders = re.findall(r'data-figure="orders">(\d+)<', dashboard)[1]
    assert int(week_orders) > 0
    assert dashboard.count("<rect") > 20
    orders_page = client.get("/admin/orders?status=held").get_data(as_text=True)
    assert "Held: needs your review" in orders_page and "phone_changed" in orders_page
