"""The owner's figures read from the tallies the database keeps equal a recount of the orders,
codes, step-ups and SMS themselves: after orders placed, held, confirmed, expired and sent
back for a code, SMS sent, failed and pruned; for windows that start on or between hour
boundaries and five-minute marks, and before the slot tallies' eight days;
before and after the tallies are folded; and after parallel checkouts racing a delivery
worker. On SQLite and PostgreSQL."""

import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from threading import Barrier

import flask_migrate
import pytest
from sqlalchemy import func, select, text, update

from shop import clock, create_app, tallies
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import (
    OrderSlotTally,
    OrderTally,
    OtpChallenge,
    SendRefusal,
    SmsKind,
    SmsMessage,
    SmsSlotTally,
    SmsStatus,
    SmsTally,
    StepUp,
)
from shop.orders import ShippingAddress, expire_pending, review
from shop.orders.checkout import start_checkout
from shop.orders.confirmation import confirm_order
from shop.retention import Batches
from shop.risk import figures as step_up
from shop.sms import abuse
from shop.sms import figures as sms
from shop.sms.delivery import DeliveryWorker
from shop.sms.retention import prune_sms
from shop.sms.senders import ConsoleSender
from shop.stepup import figures as factors
from tests import postgres
from tests.conftest import config_for
from tests.factories import (
    ADDRESS,
    fill_cart,
    make_held_order,
    make_product,
    make_user,
    set_rules,
    sms_text,
)
from tests.test_query_plans import Statements

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app
any_app = postgres.any_app

CLIENT = Client("203.0.113.9", device_id="d" * 32)


def assert_figures_match_a_recount() -> None:
    """Every window the pages use, and windows starting between hour boundaries."""
    now = clock.now()
    starts = [
        now - timedelta(hours=24),
        now - timedelta(days=7),
        now - timedelta(minutes=10),
        now - timedelta(minutes=95),
        now - timedelta(hours=5, seconds=1),
        tallies.hour_start(tallies.hour_of(now) - 3),  # on a boundary: no part-hour
        # Early in an hour: its rows before the moment are taken from the hour's tally.
        tallies.hour_start(tallies.hour_of(now) - 2) + timedelta(minutes=10),
        tallies.hour_start(tallies.hour_of(now) - 2) + timedelta(minutes=29, seconds=59),
        # Late in an hour: the rows up to the next boundary are added to the later tallies.
        tallies.hour_start(tallies.hour_of(now) - 2) + timedelta(minutes=30),
        tallies.hour_start(tallies.hour_of(now) - 4) + timedelta(minutes=50),
        # On a five-minute mark, and between marks on either side of one.
        tallies.hour_start(tallies.hour_of(now) - 1) + timedelta(minutes=35),
        tallies.hour_start(tallies.hour_of(now) - 1) + timedelta(minutes=36, seconds=20),
        tallies.hour_start(tallies.hour_of(now) - 1) + timedelta(minutes=38, seconds=40),
        # Older than the slot tallies are kept: the part-hour counted from the rows.
        now - timedelta(days=9, minutes=17),
    ]
    for since in starts:
        figures = step_up.step_up_figures(since)
        counted = step_up.counted(since)
        assert (
            figures.orders,
            figures.decided,
            figures.challenged,
            figures.abandoned,
            figures.held,
            figures.blocked,
            figures.codes_sent,
            figures.codes_verified,
        ) == counted, since
        messages = sms.sms_figures(since)
        assert (
            messages.total,
            messages.sent,
            messages.delivered,
            messages.failed,
            messages.pending,
            messages.dropped,
        ) == sms.counted(since), since
        codes = select(func.count(OtpChallenge.id), func.count(OtpChallenge.consumed_at))
        sends = abuse.send_figures(since)
        assert (sends.sent, sends.verified) == tuple(
            db.session.execute(codes.where(OtpChallenge.created_at >= since)).one()
        ), since
        by_country = {row.country: (row.sent, row.verified, row.refused) for row in sends.countries}
        recounted = defaultdict(lambda: [0, 0, 0])
        for (country, entered), count in abuse.codes_counted(since).items():
            recounted[country or abuse.UNKNOWN_COUNTRY][0] += count
            recounted[country or abuse.UNKNOWN_COUNTRY][1] += count if entered else 0
        for (_, country), count in abuse.refusals_counted(since).items():
            recounted[country or abuse.UNKNOWN_COUNTRY][2] += count
        assert by_country == {key: tuple(value) for key, value in recounted.items()}, since
        refused = select(func.count(SendRefusal.id)).where(SendRefusal.at >= since)
        assert sends.refused == db.session.scalar(refused), since
        assert factors.counted_since(since) == factors.counted(since), since


def test_a_window_reads_at_most_two_and_a_half_minutes_of_rows(frozen_clock):
    hour = tallies.hour_of(datetime(2026, 11, 1, 12, tzinfo=UTC))  # a day before the clock
    start = tallies.hour_start(hour)
    slot = hour * tallies.SLOTS_PER_HOUR
    # 12:11:10: the hour from 12:00, less the slots 12:00 to 12:10, plus 12:10 to 12:11:10.
    early = tallies.Window.starting(start + timedelta(minutes=11, seconds=10))
    assert early.first_hour == hour and early.mark == slot + 2
    assert early.slots == (slot, slot + 2) and early.slot_sign == -1
    assert early.sign == -1
    assert early.edge == (start + timedelta(minutes=10), start + timedelta(minutes=11, seconds=10))
    assert early.corrected((100, 10), (7, 1)) == (93, 9)
    # 12:43:50: the hours from 13:00, plus the slots 12:45 to 13:00, plus 12:43:50 to 12:45.
    late = tallies.Window.starting(start + timedelta(minutes=43, seconds=50))
    assert late.first_hour == hour + 1 and late.mark == slot + 9
    assert late.slots == (slot + 9, slot + 12) and late.slot_sign == 1
    assert late.sign == 1
    assert late.edge == (start + timedelta(minutes=43, seconds=50), start + timedelta(minutes=45))
    assert late.corrected((100, 10), (7, 1)) == (107, 11)
    exact = tallies.Window.starting(start)
    assert exact.first_hour == hour and exact.slots == (slot, slot) and exact.edge == (start, start)
    on_a_mark = tallies.Window.starting(start + timedelta(minutes=25))
    assert on_a_mark.slots == (slot, slot + 5) and on_a_mark.edge[0] == on_a_mark.edge[1]
    # Slot tallies are kept eight days: older windows count their part-hour from the rows.
    # A week ago, as the pages ask with a clock that has moved on: read from the slots.
    week = tallies.Window.starting(frozen_clock.now - timedelta(days=7, minutes=11))
    assert week.slots[0] < week.slots[1]
    old = tallies.Window.starting(start - timedelta(days=7) + timedelta(minutes=11))
    assert old.slots[0] == old.slots[1]
    assert old.edge == (start - timedelta(days=7), start - timedelta(days=7, minutes=-11))


def order_code(order_id: int) -> str:
    message = db.session.scalar(
        select(SmsMessage)
        .where(SmsMessage.order_id == order_id, SmsMessage.kind == SmsKind.OTP_ORDER)
        .order_by(SmsMessage.id.desc())
    )
    return re.search(r"(\d{6,8}) is your code", sms_text(message)).group(1)


def assert_spend_matches_a_recount() -> None:
    days = {day.day: (day.messages, day.spend) for day in abuse.spend_per_day(clock.now(), 14)}
    recount: dict = {day: (0, Decimal(0)) for day in days}
    priced = select(SmsMessage.sent_at, SmsMessage.provider_price).where(
        SmsMessage.sent_at.is_not(None), SmsMessage.provider_price.is_not(None)
    )
    for sent_at, price in db.session.execute(priced):
        if sent_at.date() in recount:
            messages, spend = recount[sent_at.date()]
            recount[sent_at.date()] = (messages + 1, spend + Decimal(price))
    assert days == recount


def checkout(user, product, key: str):
    fill_cart(user, (product, 1))
    return start_checkout(user, ShippingAddress(**ADDRESS), key, CLIENT).order


def refuse_a_send(country: str | None) -> None:
    db.session.add(
        SendRefusal(
            at=clock.now(),
            reason="ip_numbers" if country else "invalid_number",
            purpose="order",
            phone="+447700900999",
            country=country,
            client_ip="203.0.113.7",
        )
    )
    db.session.commit()


def test_the_figures_equal_a_recount_through_an_orders_life(any_app, frozen_clock):
    owner = make_user(role="owner")
    set_rules(otp_threshold_minor=10_000, new_device_or_address_threshold_minor=None)
    cheap, dear = make_product(price_minor=2_000, stock=50), make_product(price_minor=20_000)
    worker = DeliveryWorker(ConsoleSender())
    for step in range(6):
        shopper = make_user()
        checkout(shopper, cheap, f"cheap-{step}-" + "k" * 20)  # placed
        pending = checkout(shopper, dear, f"dear-{step}-" + "k" * 20)  # waits for its code
        code = order_code(pending.id)  # read before the worker sends it and masks it
        worker.run_once()
        if step % 2 == 0:
            assert confirm_order(shopper, pending.ref, code, CLIENT).order.status == "placed"
        held = make_held_order()
        refuse_a_send(("GB", "FR", None)[step % 3])
        if step % 3 == 0:  # the owner sends it back for a code: it needed one after all
            assert review.approve(held.ref, owner, "call first", CLIENT, ask_code=True).done
        frozen_clock.advance(minutes=47)
        expire_pending(clock.now())
    worker.run_once()
    # A receipt turns a sent message into a failed one; pruning deletes old messages.
    db.session.execute(
        update(SmsMessage)
        .where(SmsMessage.id == db.session.scalar(select(func.min(SmsMessage.id))))
        .values(status=SmsStatus.FAILED)
    )
    db.session.commit()
    # Prices come with the provider's answer, or later with its receipt.
    sent = db.session.scalars(select(SmsMessage.id).where(SmsMessage.sent_at.is_not(None))).all()
    for number, message_id in enumerate(sent):
        price = ("0.03330000", "0.05000000", None)[number % 3]
        db.session.execute(
            update(SmsMessage).where(SmsMessage.id == message_id).values(provider_price=price)
        )
    db.session.commit()
    # A change to a column a tally is keyed on moves its row between that tally's groups.
    for model, values in (
        (OtpChallenge, {"country": "IE"}),
        (SendRefusal, {"country": "IE", "reason": "ip_codes"}),
        (StepUp, {"factor": "totp"}),
    ):
        newest = select(func.max(model.id)).scalar_subquery()
        db.session.execute(update(model).where(model.id == newest).values(**values))
    db.session.commit()
    assert_figures_match_a_recount()
    assert_spend_matches_a_recount()
    prune_sms(clock.now() - timedelta(hours=3), Batches(size=2))
    assert_figures_match_a_recount()
    assert_spend_matches_a_recount()

    tallies.compact_all()
    assert db.session.scalar(select(func.count()).select_from(OrderTally)) < 40
    assert_figures_match_a_recount()
    tallies.rebuild()
    hours = db.session.scalars(select(OrderTally.hour)).all()
    assert len(hours) < 40 and all(float(hour).is_integer() for hour in hours)  # whole hours
    assert_figures_match_a_recount()
    assert_spend_matches_a_recount()
    # Eight days on, folding lets go of the slot tallies; a week's window still adds up.
    assert db.session.scalar(select(func.count()).select_from(SmsSlotTally)) > 0
    frozen_clock.advance(days=tallies.SLOT_DAYS, minutes=1)
    tallies.compact_all()
    for slots in tallies.SLOTS.values():
        assert db.session.scalar(select(func.count()).select_from(slots)) == 0
    assert_figures_match_a_recount()


def test_folding_touches_only_the_hours_rows_were_appended_to(any_app, frozen_clock):
    """The minute job costs what the last minute touched, not the history kept: the rows of
    hours nothing was appended to keep their ids, and each hour and slot it folds ends as
    one row per group, with every figure still equal to a recount."""
    product = make_product(price_minor=2_000, stock=100)
    for hour in range(5):
        checkout(make_user(), product, f"old-{hour}-" + "k" * 20)
        frozen_clock.advance(hours=1)
    tallies.compact_all()
    earlier = {
        model: set(db.session.scalars(select(model.id)).all())
        for model in (OrderTally, SmsTally, OrderSlotTally)
    }
    assert all(earlier.values())
    for number in range(3):  # three orders in this hour's first slot, folded minutes apart
        checkout(make_user(), product, f"new-{number}-" + "k" * 20)
        frozen_clock.advance(minutes=1)
        tallies.compact_all()
    now_hour, now_slot = tallies.hour_of(clock.now()), tallies.slot_of(clock.now())
    assert clock.now() == datetime(2026, 11, 2, 17, 3, tzinfo=UTC)
    for model, ids in earlier.items():
        rows = db.session.execute(select(model)).scalars().all()
        untouched = {row.id for row in rows if getattr(row, "hour", None) != now_hour}
        if model is OrderSlotTally:
            untouched = {row.id for row in rows if row.slot // tallies.SLOTS_PER_HOUR != now_hour}
        assert untouched <= ids and untouched, model
    placed = select(func.count()).where(
        OrderTally.hour == now_hour, OrderTally.status == "placed", OrderTally.slot.is_(None)
    )
    assert db.session.scalar(placed) == 1
    in_slot = select(OrderSlotTally.orders).where(
        OrderSlotTally.slot == now_slot, OrderSlotTally.status == "placed"
    )
    assert db.session.scalars(in_slot).all() == [3]  # 17:00, 17:01 and 17:02: one slot
    assert_figures_match_a_recount()


def test_parallel_checkouts_and_a_worker_keep_the_tallies_exact(any_app):
    set_rules(otp_threshold_minor=10_000, new_device_or_address_threshold_minor=None)
    cheap, dear = make_product(price_minor=2_000, stock=100), make_product(price_minor=20_000)
    shoppers = [make_user() for _ in range(12)]
    for number, shopper in enumerate(shoppers):
        fill_cart(shopper, (cheap if number % 2 else dear, 1))
    user_ids = [shopper.id for shopper in shoppers]
    db.session.commit()
    start = Barrier(len(shoppers) + 1, timeout=60)

    def buy(index: int) -> str:
        with any_app.app_context():
            from shop.models import User

            user = db.session.get(User, user_ids[index])
            db.session.commit()  # its connection back to the pool while the others gather
            start.wait()
            client = Client(f"203.0.113.{index + 10}", device_id=f"{index:02d}" * 16)
            result = start_checkout(
                user, ShippingAddress(**ADDRESS), f"race-{index:04d}" * 3, client
            )
            status = result.order.status if result.order else str(result)
            db.session.remove()
            return status

    def deliver() -> None:
        with any_app.app_context():
            start.wait()
            worker = DeliveryWorker(ConsoleSender())
            for _ in range(10):
                worker.run_once()
                tallies.compact_all()
            db.session.remove()

    with ThreadPoolExecutor(max_workers=len(shoppers) + 1) as pool:
        delivering = pool.submit(deliver)
        buying = [pool.submit(buy, index) for index in range(len(shoppers))]
        delivering.result()
        statuses = [future.result() for future in buying]
    assert sorted(set(statuses)) == ["pending_verification", "placed"]
    db.session.expire_all()
    assert_figures_match_a_recount()
    tallies.compact_all()
    assert_figures_match_a_recount()


def test_the_dashboard_asks_the_same_statements_however_many_orders(any_app, frozen_clock):
    """The figures come from the tallies and at most an hour of rows: the dashboard runs
    the same statements for one order as for a hundred (none of them per order)."""
    owner = make_user(role="owner")
    client = any_app.test_client()
    client.sign_in_as(owner)
    set_rules(otp_threshold_minor=10_000, new_device_or_address_threshold_minor=None)
    product = make_product(price_minor=2_000, stock=500)
    shopper = make_user()

    def statements() -> int:
        client.sign_in_as(owner)  # a fresh session: the clock moves days
        with Statements() as seen:
            assert client.get("/admin").status_code == 200
        return len(seen.seen)

    checkout(shopper, product, "first-" + "k" * 20)
    few = statements()
    for number in range(40):
        frozen_clock.advance(hours=3)
        checkout(make_user(), product, f"more-{number}-" + "k" * 20)
    assert statements() == few
    assert db.session.scalar(select(func.count()).select_from(SmsTally)) > 0


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    if request.param == "sqlite":
        return config_for(tmp_path / "history.sqlite3")
    return postgres.pg_config_for(request.getfixturevalue("pg_database"), tmp_path)


def test_migrating_a_shop_with_history_counts_what_is_there_and_goes_back(
    empty_database_config, frozen_clock
):
    """Migration c2e8f6a1d3b7 on a shop with codes, refusals and step-ups
    already written: the tallies they add or give a new key count those rows; going back,
    the code tallies count them again without the country."""
    from tests.test_sms_abuse import HOURS, MINUTES, NOW, refusal, sent_code

    app = create_app(empty_database_config)
    with app.app_context():
        flask_migrate.upgrade(revision="3c1d2e7f9a40")
        sent_code(10 * MINUTES, country="GB", verified=True)
        sent_code(2 * HOURS, country="FR", phone="+33612345600")
        sent_code(3 * HOURS, country=None, phone="+99912")
        sent_code(30 * HOURS, country="GB", verified=True)  # before the day
        refusal(5 * MINUTES)  # FR, country not allowed
        refusal(5 * HOURS, "invalid_number", phone="+99912", country=None)
        for offered, answered in (("passkey,sms", "sms"), ("sms", None), ("sms", "sms")):
            at = NOW - 2 * HOURS
            db.session.add(
                StepUp(
                    user_id=make_user().id,
                    purpose="order",
                    binding="b",
                    factors=offered,
                    factor=answered,
                    created_at=at,
                    expires_at=at + timedelta(minutes=5),
                    consumed_at=at + timedelta(minutes=1) if answered else None,
                    ended_at=None if answered else at + timedelta(minutes=5),
                )
            )
        db.session.commit()

        flask_migrate.upgrade()
        day = abuse.send_figures(NOW - 24 * HOURS)
        assert {row.country: (row.sent, row.verified, row.refused) for row in day.countries} == {
            "GB": (1, 1, 0),
            "FR": (1, 0, 1),
            "??": (1, 0, 1),
        }
        assert day.refused_by_reason["invalid_number"] == 1
        assert factors.counted_since(NOW - timedelta(days=7)) == {
            ("passkey,sms", "sms"): 1,
            ("sms", ""): 1,
            ("sms", "sms"): 1,
        }

        db.session.remove()  # its reads would hold the tables the downgrade alters
        flask_migrate.downgrade(revision="3c1d2e7f9a40")
        codes = db.session.execute(
            text("SELECT consumed, SUM(codes) FROM code_tallies GROUP BY consumed")
        ).all()
        assert {bool(consumed): int(total) for consumed, total in codes} == {True: 2, False: 2}
        sent_code(MINUTES, country="GB")  # the older triggers count again
        assert db.session.scalar(text("SELECT SUM(codes) FROM code_tallies")) == 5
        db.session.remove()
        db.engine.dispose()


def test_migrating_to_slot_tallies_counts_the_history_and_goes_back(
    empty_database_config, frozen_clock
):
    """Migration d5b8e2f41a6c on a shop with codes, refusals and messages already written:
    the slot tallies it adds count those rows, and every window adds up before and after
    folding; going back, the triggers count hours only, and still count."""
    from tests.test_sms_abuse import MINUTES, priced, refusal, sent_code

    app = create_app(empty_database_config)
    with app.app_context():
        flask_migrate.upgrade(revision="c2e8f6a1d3b7")
        for minutes in (7, 38, 83, 131, 200):
            sent_code(minutes * MINUTES, verified=minutes % 2 == 1)
            refusal((minutes + 3) * MINUTES)
            priced((minutes + 1) * MINUTES, "0.03330000")
        flask_migrate.upgrade()
        assert db.session.scalar(select(func.sum(SmsSlotTally.messages))) == 5
        frozen_clock.advance(minutes=13)  # windows between marks and hour boundaries
        sent_code(-11 * MINUTES, verified=True)  # written since: counted with its slot
        assert_figures_match_a_recount()
        tallies.compact_all()
        assert_figures_match_a_recount()

        db.session.remove()  # its reads would hold the tables the downgrade alters
        flask_migrate.downgrade(revision="c2e8f6a1d3b7")
        assert db.session.scalar(text("SELECT SUM(codes) FROM code_tallies")) == 6
        sent_code(MINUTES)  # the older triggers count again
        assert db.session.scalar(text("SELECT SUM(codes) FROM code_tallies")) == 7
        db.session.remove()
        db.engine.dispose()
