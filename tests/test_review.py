"""The owner's review as use cases: approve, approve after a code, cancel, the sweep of orders
held too long, and the owners' SMS when an order is held. What each leaves behind: status,
stock, cart, SMS in the outbox, audit rows and the order's timeline."""

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shop import cart as carts
from shop import clock, settings
from shop.accounts.client import Client
from shop.cli import HOUSEKEEPING
from shop.extensions import db
from shop.models import (
    AuditEvent,
    Order,
    OrderEvent,
    OrderStatus,
    OtpChallenge,
    OtpFailure,
    Product,
    Role,
    SendRefusal,
    SmsKind,
    SmsMessage,
)
from shop.orders import expire_pending
from shop.orders.confirmation import ConfirmOutcome, confirm_order
from shop.orders.review import (
    ReviewOutcome,
    approve,
    cancel,
    cancel_held_too_long,
    held_count,
    held_orders,
)
from shop.orders.timeline import TimelineEntry
from shop.sms.watch import watch_sms_abuse
from shop.tallies import compact_all
from tests.factories import (
    last_code_sent_to,
    make_held_order,
    make_product,
    make_user,
    sms_text,
)

OWNER_DESK = Client("192.0.2.10", "owner-laptop")
SHOPPER_PHONE = Client("203.0.113.50", "shopper-phone")


def fresh(order: Order) -> Order:
    db.session.expire_all()
    return db.session.get(Order, order.id)


def stock_of(product_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Product, product_id).stock


def messages(kind: SmsKind) -> list[SmsMessage]:
    return list(db.session.scalars(select(SmsMessage).where(SmsMessage.kind == kind)))


def kinds(order: Order) -> list[str]:
    return list(
        db.session.scalars(
            select(OrderEvent.kind).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        )
    )


def audit_rows(event: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == event)))


def test_approve_places_the_order_tells_the_shopper_and_keeps_the_note(app, owner, frozen_clock):
    order = make_held_order()
    product_id = order.items[0].product_id
    stock = stock_of(product_id)

    result = approve(order.ref, owner, "  Called the customer:\n  genuine. ", OWNER_DESK)

    assert result.outcome == ReviewOutcome.APPROVED and result.done
    order = fresh(order)
    assert order.status == OrderStatus.PLACED
    assert (order.reviewed_by_id, order.reviewed_at) == (owner.id, frozen_clock.now)
    assert stock_of(product_id) == stock  # it was taken at checkout and stays taken
    [sms] = messages(SmsKind.ORDER_APPROVED)
    assert sms.to_number == order.user.phone and sms.order_id == order.id
    text = sms_text(sms)
    assert f"order {order.ref} for €6,000.00 was approved after review and is placed." in text
    [row] = audit_rows("order_approved")
    assert (row.actor_id, row.user_id, row.ip) == (owner.id, order.user_id, OWNER_DESK.ip)
    assert json.loads(row.detail) == {"note": "Called the customer: genuine.", "order": order.ref}
    assert kinds(order)[-2:] == ["approved", "sms_queued"]
    event = db.session.scalar(select(OrderEvent).where(OrderEvent.kind == "approved"))
    assert (event.actor_id, event.note) == (owner.id, "Called the customer: genuine.")


def test_cancel_returns_the_stock_and_tells_the_shopper(app, owner):
    order = make_held_order()
    product_id = order.items[0].product_id
    stock = stock_of(product_id)

    result = cancel(order.ref, owner, "Address does not exist.", OWNER_DESK)

    assert result.outcome == ReviewOutcome.CANCELLED
    assert fresh(order).status == OrderStatus.CANCELLED
    assert stock_of(product_id) == stock + 1
    [sms] = messages(SmsKind.ORDER_CANCELLED)
    assert f"order {order.ref} for €6,000.00 was cancelled by the shop" in sms_text(sms)
    assert "Not you?" not in sms_text(sms)
    [row] = audit_rows("order_cancelled")
    assert row.actor_id == owner.id and "Address does not exist." in row.detail
    assert kinds(order)[-3:] == ["cancelled", "released", "sms_queued"]


@pytest.mark.parametrize("note", ["", "   ", "\n\t"])
def test_a_note_is_required_and_nothing_changes_without_one(app, owner, note):
    order = make_held_order()
    before = db.session.scalar(select(func.count(SmsMessage.id)))
    assert approve(order.ref, owner, note, OWNER_DESK).outcome == ReviewOutcome.NOTE_REQUIRED
    assert cancel(order.ref, owner, note, OWNER_DESK).outcome == ReviewOutcome.NOTE_REQUIRED
    assert fresh(order).status == OrderStatus.HELD
    assert db.session.scalar(select(func.count(SmsMessage.id))) == before
    assert audit_rows("order_approved") == audit_rows("order_cancelled") == []


def test_an_order_no_longer_held_is_already_handled(app, owner):
    order = make_held_order()
    assert approve(order.ref, owner, "fine", OWNER_DESK).done
    product_id = order.items[0].product_id
    stock = stock_of(product_id)
    for action in (approve, cancel):
        result = action(order.ref, owner, "again", OWNER_DESK)
        assert result.outcome == ReviewOutcome.ALREADY_HANDLED
        assert "already handled" in result.message
    assert fresh(order).status == OrderStatus.PLACED
    assert stock_of(product_id) == stock
    assert len(messages(SmsKind.ORDER_APPROVED)) == 1
    assert messages(SmsKind.ORDER_CANCELLED) == []


def test_an_unknown_order_is_not_found(app, owner):
    assert approve("SH-NOSUCH00", owner, "x", OWNER_DESK).outcome == ReviewOutcome.NOT_FOUND
    assert cancel("SH-NOSUCH00", owner, "x", OWNER_DESK).outcome == ReviewOutcome.NOT_FOUND


def test_a_note_is_kept_to_500_characters(app, owner):
    order = make_held_order()
    assert approve(order.ref, owner, "x" * 900, OWNER_DESK).done
    event = db.session.scalar(select(OrderEvent).where(OrderEvent.kind == "approved"))
    assert event.note == "x" * 500


# Approve after a code -------------------------------------------------------------------------


def test_asking_for_a_code_then_the_shopper_confirms_it(app, owner, frozen_clock):
    shopper = make_user()
    order = make_held_order(shopper)
    # Since then the shopper started another cart: the code must not depend on it, and
    # confirming must leave it alone.
    other = make_product(price_minor=1_000)
    carts.save_user_cart(shopper, {other.id: 2})
    db.session.commit()

    result = approve(order.ref, owner, "Large, but a regular.", OWNER_DESK, ask_code=True)

    assert result.outcome == ReviewOutcome.CODE_REQUESTED
    order = fresh(order)
    assert order.status == OrderStatus.PENDING_VERIFICATION
    assert order.expires_at == frozen_clock.now + timedelta(minutes=5)
    [heads_up] = messages(SmsKind.ORDER_CODE_REQUESTED)
    assert f"/checkout/verify/{order.ref}" in sms_text(heads_up)
    code = last_code_sent_to(shopper.phone)
    [challenge] = db.session.scalars(select(OtpChallenge).where(OtpChallenge.order_id == order.id))
    assert challenge.client_ip == OWNER_DESK.ip and challenge.country == "GB"

    frozen_clock.advance(seconds=40)
    # Over the hold threshold still: the owner's decision stands over the rules.
    confirmed = confirm_order(shopper, order.ref, code, SHOPPER_PHONE)

    assert confirmed.outcome == ConfirmOutcome.PLACED
    assert fresh(order).status == OrderStatus.PLACED
    assert carts.load_user_cart(shopper) == {other.id: 2}
    assert audit_rows("order_code_requested")[0].actor_id == owner.id
    assert "code_requested" in kinds(order) and kinds(order).count("confirmed") == 1


def test_a_wrong_code_on_a_reviewed_order_counts_and_is_on_the_timeline(app, owner):
    shopper = make_user()
    order = make_held_order(shopper)
    approve(order.ref, owner, "check", OWNER_DESK, ask_code=True)
    code = last_code_sent_to(shopper.phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    result = confirm_order(shopper, order.ref, wrong, SHOPPER_PHONE)
    assert result.outcome == ConfirmOutcome.WRONG_CODE and result.tries_left == 4
    event = db.session.scalar(select(OrderEvent).where(OrderEvent.kind == "wrong_code"))
    assert event.facts == {"tries_left": 4}


def test_no_code_can_be_sent_so_the_order_stays_held(app, owner, frozen_clock):
    shopper = make_user()
    order = make_held_order(shopper)
    for _ in range(10):  # the account's wrong codes today: SMS step-up is locked
        challenge_id = _dead_challenge(shopper, frozen_clock.now)
        db.session.add(OtpFailure(user_id=shopper.id, challenge_id=challenge_id))
    db.session.commit()
    sms_before = db.session.scalar(select(func.count(SmsMessage.id)))

    result = approve(order.ref, owner, "needs a code", OWNER_DESK, ask_code=True)

    assert result.outcome == ReviewOutcome.CODE_NOT_SENT
    assert "still held" in result.message
    assert fresh(order).status == OrderStatus.HELD and fresh(order).reviewed_at is None
    assert db.session.scalar(select(func.count(SmsMessage.id))) == sms_before
    assert db.session.scalar(select(SendRefusal.reason)) == "step_up_locked"
    assert "code_requested" not in kinds(order)


def _dead_challenge(user, now) -> int:
    challenge = OtpChallenge(
        user_id=user.id,
        purpose="login",
        binding="b",
        phone=user.phone,
        client_ip="203.0.113.1",
        code_hmac="0" * 64,
        ended_at=now,
        expires_at=now,
    )
    db.session.add(challenge)
    db.session.flush()
    return challenge.id


def test_codes_an_owner_asks_for_do_not_count_against_the_owners_address(app, owner):
    """Per address at most 5 numbers an hour: an owner reviewing from one desk is not a
    pumping source, so six reviews in an hour all send their code."""
    held = [make_held_order() for _ in range(6)]
    for order in held:
        result = approve(order.ref, owner, "ask", OWNER_DESK, ask_code=True)
        assert result.outcome == ReviewOutcome.CODE_REQUESTED
    assert db.session.scalar(select(func.count(SendRefusal.id))) == 0


# The sweep ------------------------------------------------------------------------------------


def test_orders_held_too_long_are_cancelled_with_the_same_sms(app, frozen_clock):
    old = make_held_order()
    frozen_clock.advance(days=3)
    recent = make_held_order()
    frozen_clock.advance(days=4, seconds=1)  # `old` is 7 days and a second old

    assert cancel_held_too_long() == 1

    assert fresh(old).status == OrderStatus.CANCELLED
    assert fresh(recent).status == OrderStatus.HELD
    [sms] = messages(SmsKind.ORDER_CANCELLED)
    assert sms.order_id == old.id and "was cancelled by the shop" in sms_text(sms)
    [row] = audit_rows("order_cancelled")
    assert row.actor_id is None and "7 days" in row.detail
    event = db.session.scalar(select(OrderEvent).where(OrderEvent.kind == "cancelled"))
    assert event.facts == {"reason": "held_too_long", "days": 7}
    assert cancel_held_too_long() == 0  # idempotent


def test_the_owner_sets_how_many_days(app, owner, frozen_clock):
    order = make_held_order()
    frozen_clock.advance(days=2, seconds=1)
    assert cancel_held_too_long() == 0
    settings.save(replace(settings.current(), held_order_days=2), actor=owner, ip=None)
    db.session.commit()
    assert cancel_held_too_long() == 1
    assert fresh(order).status == OrderStatus.CANCELLED


# Owners told of held orders -------------------------------------------------------------------


def test_owners_who_opted_in_get_an_sms_when_an_order_is_held(app):
    keen = make_user("keen@example.com", role=Role.OWNER)
    keen.alert_order_held = True
    make_user("quiet@example.com", role=Role.OWNER)
    stopped = make_user("stopped@example.com", role=Role.OWNER)
    stopped.alert_order_held, stopped.sms_stopped = True, True
    db.session.commit()

    order = make_held_order()

    [sms] = messages(SmsKind.OWNER_ORDER_HELD)
    assert sms.to_number == keen.phone and sms.order_id is None
    assert sms.body == (
        f"Shop: order {order.ref} for €6,000.00 is held for your review: "
        f"http://127.0.0.1:5000/admin/orders/{order.ref}"
    )
    assert sms.status == "queued"  # in the outbox, for the delivery process


# The queue ---------------------------------------------------------------------------------------


def test_the_queue_is_oldest_first_a_page_at_a_time(app, frozen_clock):
    held = []
    for _ in range(5):
        held.append(make_held_order().ref)
        frozen_clock.advance(minutes=1)
    page, more = held_orders(None, 2)
    assert [order.ref for order in page] == held[:2] and more
    page, more = held_orders(held[1], 2)
    assert [order.ref for order in page] == held[2:4] and more
    page, more = held_orders(held[3], 2)
    assert [order.ref for order in page] == held[4:] and not more
    assert held_count().count == 5 and str(held_count()) == "5"
    assert str(held_count(cap=4)) == "4+"  # the count stops one past its cap
    assert str(held_count(cap=5)) == "5"
    assert held_orders("SH-NOSUCH00", 2) == ([], False)


def test_the_delivery_process_runs_the_sweep_and_the_alarm():
    chores = [getattr(chore, "chore", chore) for chore in HOUSEKEEPING]
    assert chores == [expire_pending, cancel_held_too_long, watch_sms_abuse, compact_all]
    assert [getattr(chore, "seconds", 0) for chore in HOUSEKEEPING] == [0, 60, 10, 60]


@pytest.mark.parametrize(
    ("events", "said"), [(6, "1 earlier event on"), (7, "2 earlier events on")]
)
def test_the_queue_counts_the_earlier_events_it_leaves_out(app, events, said):
    entries = [
        TimelineEntry(at=clock.now() + timedelta(minutes=n), kind="note", text=f"event {n}")
        for n in range(events)
    ]
    macros = app.jinja_env.get_template("admin/_review.html").module
    shown = str(macros.timeline_list(entries, limit=5))
    assert said in shown and shown.count('data-kind="note"') == 5
