"""The backtest's SQL spelling of the rules (shop.risk.replay) decides every order as the
engine does (shop.risk.engine.evaluate): random recorded inputs under random rule sets,
replayed both ways on SQLite and PostgreSQL, give the same outcome and the same reasons."""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import count

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from shop import risk
from shop.extensions import db
from shop.models import DecisionInputs, Order, OrderStatus
from shop.risk import RiskInputs, RiskRules, evaluate
from shop.risk.engine import Outcome, RiskDecision
from shop.risk.replay import changed_orders, record_inputs, replay
from tests import postgres
from tests.factories import make_user
from tests.test_query_plans import Statements

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app
any_app = postgres.any_app

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
_refs = count(1)

amounts = st.integers(min_value=0, max_value=800_000)
thresholds = st.one_of(st.none(), st.sampled_from([0, 3_000, 10_000, 25_000, 500_000]), amounts)
factors = st.sampled_from(["any", "passkey"])
seconds = st.floats(min_value=-3_600, max_value=400 * 86_400, allow_nan=False)

rule_sets = st.builds(
    RiskRules,
    otp_threshold_minor=thresholds,
    hold_threshold_minor=thresholds,
    block_threshold_minor=thresholds,
    new_account_days=st.integers(min_value=0, max_value=30),
    new_account_threshold_minor=thresholds,
    new_device_or_address_threshold_minor=thresholds,
    velocity_enabled=st.booleans(),
    velocity_max_orders=st.integers(min_value=0, max_value=6),
    velocity_max_amount_minor=amounts,
    phone_change_hours=st.integers(min_value=0, max_value=200),
    phone_change_action=st.sampled_from(["hold", "otp", "off"]),
    exemption_enabled=st.booleans(),
    exemption_under_minor=amounts,
    exemption_max_orders=st.integers(min_value=0, max_value=8),
    exemption_max_amount_minor=amounts,
    hold_threshold_action=st.sampled_from(["hold", "passkey"]),
    otp_threshold_factor=factors,
    new_account_factor=factors,
    new_device_or_address_factor=factors,
    velocity_factor=factors,
    phone_changed_factor=factors,
)


@st.composite
def recorded_inputs(draw) -> tuple[datetime, RiskInputs]:
    at = NOW - timedelta(seconds=draw(st.integers(min_value=1, max_value=29 * 86_400)))
    changed = draw(st.one_of(st.none(), seconds))
    inputs = RiskInputs(
        total_minor=draw(amounts),
        # Whole seconds and exact day boundaries too: the rules compare with "<".
        account_created_at=at - timedelta(seconds=draw(st.one_of(seconds, st.just(7 * 86_400)))),
        previous_orders=draw(st.integers(min_value=0, max_value=4)),
        orders_24h=draw(st.integers(min_value=0, max_value=6)),
        amount_24h_minor=draw(amounts),
        device_known=draw(st.booleans()),
        address_known=draw(st.booleans()),
        phone_changed_at=None if changed is None else at - timedelta(seconds=changed),
        orders_since_otp=draw(st.integers(min_value=0, max_value=8)),
        amount_since_otp_minor=draw(amounts),
        step_up_locked=draw(st.booleans()),
        has_passkey=draw(st.booleans()),
    )
    return at, inputs


def asked_of(decision: RiskDecision, inputs: RiskInputs) -> str | None:
    """What the engine's decision asks of the shopper, in the backtest's friction kinds."""
    if decision.held_for_passkey:
        return "held_for_passkey"
    if decision.outcome != Outcome.OTP:
        return None
    return "passkey" if decision.passkey_only or inputs.has_passkey else "code"


def store(user_id: int, at: datetime, inputs: RiskInputs) -> None:
    number = next(_refs)
    order = Order(
        ref=f"SH-R{number:07d}",
        user_id=user_id,
        status=OrderStatus.PLACED,
        currency="EUR",
        total_minor=inputs.total_minor,
        full_name="Ada Lovelace",
        address_line1="12 St James's Square",
        city="London",
        postal_code="SW1Y 4JH",
        country="GB",
        idempotency_key=f"replay-{number}",
        fingerprint="0" * 64,
        risk_inputs=json.dumps(inputs.to_json()),
        created_at=at,
    )
    db.session.add(order)
    db.session.flush()
    db.session.add(record_inputs(order, inputs))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    current=rule_sets,
    proposed=rule_sets,
    decisions=st.lists(recorded_inputs(), min_size=1, max_size=12),
)
def test_the_sql_replay_decides_as_the_engine(any_app, current, proposed, decisions):
    db.session.execute(delete(DecisionInputs))
    db.session.execute(delete(Order))
    user = make_user()
    for at, inputs in decisions:
        store(user.id, at, inputs)
    db.session.commit()

    expected: Counter = Counter()
    asked: Counter = Counter()  # what each rule set asks of the shopper
    for at, inputs in decisions:
        before, after = evaluate(inputs, current, at), evaluate(inputs, proposed, at)
        expected[
            (before.outcome, after.outcome, frozenset(before.codes), frozenset(after.codes))
        ] += 1
        asked[(asked_of(before, inputs), asked_of(after, inputs))] += 1
    got: Counter = Counter()
    got_asked: Counter = Counter()
    changing = {}
    for group in replay(current, proposed, NOW - timedelta(days=30)):
        if group.before != group.after:
            changing[group.seen] = (group.before, group.after)
        key = (
            group.before,
            group.after,
            frozenset(group.fired_before),
            frozenset(group.fired_after),
        )
        got[key] += group.orders
        got_asked[group.friction] += group.orders
    assert got == expected
    assert got_asked == asked

    changed = sum(n for (before, after, *_), n in expected.items() if before != after)
    listed = changed_orders(current, proposed, NOW - timedelta(days=30), changing, 200)
    assert len(listed) == changed
    assert [at for _, at, *_ in listed] == sorted((at for _, at, *_ in listed), reverse=True)
    db.session.execute(delete(DecisionInputs))
    db.session.execute(delete(Order))
    db.session.commit()


def test_the_backtest_reads_one_narrow_table_in_two_statements(any_app, frozen_clock):
    """However many orders, the backtest is one aggregate over `decision_inputs`, the rules
    combined over its few groups (given back as VALUES, no table read) and, when some order
    changes, one look-up of the newest changed ones: no order's JSON is read."""

    user = make_user()
    for days in range(1, 20):
        at = frozen_clock.now - timedelta(days=days)
        inputs = RiskInputs(
            total_minor=days * 2_000,
            account_created_at=at - timedelta(days=400),
            previous_orders=3,
            orders_24h=0,
            amount_24h_minor=0,
            device_known=True,
            address_known=True,
            phone_changed_at=None,
            orders_since_otp=9,
            amount_since_otp_minor=90_000,
        )
        store(user.id, at, inputs)
    db.session.commit()
    with Statements() as seen:
        report = risk.backtest(
            RiskRules(otp_threshold_minor=10_000), RiskRules(), now=frozen_clock.now
        )
    # Totals 2,000 to 38,000: a code from 100.00 instead of 250.00 changes 100.00 to 240.00.
    assert report.orders == 19 and report.changed == 8
    assert len(report.changed_orders) == 8
    statements = [sql for sql, _ in seen.seen]
    assert len(statements) == 3
    scan, combined, changed = statements
    assert "FROM decision_inputs" in scan and "FROM decision_inputs" in changed
    assert "VALUES" in combined and "FROM decision_inputs" not in combined
    assert not any("risk_inputs" in sql for sql in statements)
