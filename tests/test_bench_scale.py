"""`make bench-scale` on a tiny data set: the generator writes rows the app reads as its own,
and every figure of the bench can still be measured. The bench itself is never run here.

On SQLite the rows arrive with foreign keys checked; on PostgreSQL through COPY.
"""

import json
import statistics
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bench.scale.dataset import DUE_MESSAGES, generate, leave_work_for_the_worker
from bench.scale.run import arguments, measure_sizes
from bench.scale.sizes import Size
from shop import clock
from shop.demo import DEMO_OWNER, DEMO_SHOPPER
from shop.extensions import db
from shop.models import (
    AuditEvent,
    DecisionInputs,
    Order,
    OrderItem,
    OtpChallenge,
    Product,
    Role,
    SmsMessage,
    StepUp,
    User,
)
from shop.risk import RiskInputs, RiskRules, backtest, evaluate
from shop.sms.delivery import DeliveryWorker
from shop.sms.senders import ConsoleSender
from tests import postgres
from tests.factories import make_user
from tests.test_tallies import assert_figures_match_a_recount

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app

TINY = Size("tiny", users=30, orders=300, sms=500, audit_events=800, products=60)


@pytest.fixture(params=["sqlite", "postgresql"])
def shop_app(request):
    """The tiny data set on a migrated database, with the demo's owner and shopper."""
    app = request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    make_user(DEMO_OWNER.email, role=Role.OWNER)
    make_user(DEMO_SHOPPER.email)
    rows = generate(TINY, now=clock.now())
    with db.engine.begin() as connection:
        leave_work_for_the_worker(connection, clock.now())
    app.rows_added = rows
    return app


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_generated_rows_are_consistent(shop_app):
    assert shop_app.rows_added["orders"] == TINY.orders == count(Order)
    assert count(Product) == TINY.products
    assert count(User) == TINY.users + 2
    assert count(SmsMessage) >= TINY.sms
    assert count(AuditEvent) >= TINY.audit_events
    if db.engine.dialect.name == "sqlite":
        assert db.session.execute(text("PRAGMA foreign_key_check")).all() == []
    # The figures' tallies, counted after the load, agree with the rows; and every order
    # has what its decision saw.
    assert_figures_match_a_recount()
    assert count(DecisionInputs) == count(Order)
    # Every order's total is the sum of its lines.
    totals = dict(
        db.session.execute(
            select(
                OrderItem.order_id, func.sum(OrderItem.unit_price_minor * OrderItem.quantity)
            ).group_by(OrderItem.order_id)
        ).all()
    )
    orders = db.session.scalars(select(Order)).all()
    assert all(totals[order.id] == order.total_minor for order in orders)
    # Every decision is what the rule engine says of its recorded inputs, and every order
    # that needed a code has one, sent by SMS.
    rules = RiskRules()
    for order in orders:
        inputs = RiskInputs.from_json(json.loads(order.risk_inputs))
        decision = evaluate(inputs, rules, order.created_at)
        assert order.risk_outcome == decision.outcome
        assert [reason["code"] for reason in order.reasons] == decision.codes
    coded = {order.id for order in orders if order.risk_outcome == "otp"}
    challenged = Counter(
        db.session.scalars(select(OtpChallenge.order_id).where(OtpChallenge.order_id.is_not(None)))
    )
    assert set(challenged) == coded and set(challenged.values()) == {1}
    assert db.session.scalar(
        select(func.count()).where(
            OtpChallenge.sms_id == SmsMessage.id, SmsMessage.kind.like("otp_%")
        )
    ) == count(OtpChallenge)
    # Each code answers its step-up (SMS, the one factor of these customers), ended alike.
    pairs = db.session.execute(
        select(OtpChallenge, StepUp).join(
            StepUp,
            (StepUp.user_id == OtpChallenge.user_id)
            & (StepUp.purpose == OtpChallenge.purpose)
            & (StepUp.created_at == OtpChallenge.created_at),
        )
    ).all()
    assert len(pairs) == count(OtpChallenge) == count(StepUp)
    for code, step_up in pairs:
        assert step_up.order_id == code.order_id and step_up.factors == "sms"
        assert step_up.consumed_at == code.consumed_at
        assert step_up.factor == ("sms" if code.consumed_at else None)
    # The backtest replays the recorded inputs to the recorded outcomes.
    report = backtest(rules, rules, now=clock.now())
    assert report.orders == TINY.orders and report.changed == 0
    recorded = Counter(order.risk_outcome for order in orders)
    assert {key: value.orders for key, value in report.current.items() if value.orders} == recorded


def test_the_delivery_worker_finds_the_due_messages_and_no_more(shop_app):
    worker = DeliveryWorker(ConsoleSender(), batch_size=50)
    assert len(worker.claim()) == DUE_MESSAGES
    assert worker.claim() == []


def test_every_figure_of_the_bench_can_be_measured(shop_app, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("SECRET_KEY", shop_app.config["SECRET_KEY"])
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    args = arguments(["--runs", "1", "--passes", "2", "--no-throughput"])
    # Not the idle worker's CPU: it watches a real worker process for seconds.
    args.only = {
        "catalog_after_stock_change",
        "catalog_after_product_change",
        "catalog_cached",
        "catalog_signed_in_cached",
        "backtest",
        "admin_sms",
        "admin_sms_failed",
        "admin_orders_held",
        "admin_dashboard",
        "account_security",
        "checkout",
        "worker_claim",
        "worker_expire_pending",
        "worker_sweep",
        "worker_idle_round",
        "sms_prune_batch",
        "audit_prune_batch",
    }
    url = shop_app.config["SQLALCHEMY_DATABASE_URI"]
    figures = measure_sizes(db.engine.dialect.name, {TINY: url}, args, tmp_path)[TINY]
    assert set(figures) == args.only
    pages = [figure for figure in figures.values() if "bytes" in figure]
    assert len(pages) == 10 and {figure["status"] for figure in pages} == {200}
    assert figures["checkout"]["status"] == 302 and figures["checkout"]["placed"] is True
    assert figures["worker_claim"]["claimed"] == DUE_MESSAGES
    assert figures["worker_idle_round"]["handled"] == 0
    assert figures["sms_prune_batch"]["deleted"] > 0 and figures["audit_prune_batch"]["deleted"] > 0
    # A cached catalog page asks the database for the catalog's versions and nothing else
    # (on PostgreSQL the pool first pings the connection it hands out).
    pings = 1 if db.engine.dialect.name == "postgresql" else 0
    assert figures["catalog_cached"]["statements"] == 1 + pings
    for figure in figures.values():
        assert figure["ms"] > 0 and figure["statements"] > 0
        # One run in each of the two passes, the figure their median.
        assert len(figure["runs_ms"]) == len(figure["pass_ms"]) == 2
        assert figure["ms"] == round(statistics.median(figure["runs_ms"]), 2)
        assert all(statement["plan"] for statement in figure["slowest"]), figure["slowest"]
