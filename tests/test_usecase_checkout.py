"""Checkout use cases called directly: every outcome of start, confirm and resend, and what
each leaves behind (order status, stock, cart, SMS, audit)."""

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shop import cart as carts
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import (
    AuditEvent,
    Order,
    OrderStatus,
    OtpChallenge,
    OtpFailure,
    Product,
    SendRefusal,
    SmsKind,
    SmsMessage,
)
from shop.orders import ShippingAddress, fingerprint
from shop.orders.checkout import (
    CheckoutOutcome,
    CheckoutRefusal,
    order_binding,
    order_challenge,
    start_checkout,
)
from shop.orders.confirmation import ConfirmOutcome, confirm_order
from shop.orders.resend import ResendOutcome, resend_order_code
from shop.otp import Refusal, Sent
from tests.factories import (
    LOOK_ALIKES,
    fill_cart,
    last_code_sent_to,
    last_sms_to,
    make_held_order,
    make_product,
    make_user,
    set_rules,
    sms_count,
    sms_text,
    wrong,
)

CLIENT = Client("203.0.113.5", "device-1")
ADDRESS = ShippingAddress("Ada Lovelace", "12 St James's Square", "London", "SW1Y 4JH", "GB")
KEY = "usecase-key-00000000"


def stock(product: Product) -> int:
    db.session.expire_all()
    return db.session.get(Product, product.id).stock


def status(order: Order) -> str:
    db.session.expire_all()
    return db.session.get(Order, order.id).status


def events(user) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEvent.event).where(AuditEvent.user_id == user.id).order_by(AuditEvent.id)
        )
    )


@pytest.fixture
def shopper(app):
    return make_user()


def pending_order(user, product, key=KEY, quantity=1):
    """A 300.00-or-more cart checked out under the default rules: pending its code."""
    fill_cart(user, (product, quantity))
    result = start_checkout(user, ADDRESS, key, CLIENT)
    assert result.outcome == CheckoutOutcome.CODE_SENT
    return result.order


def start_checkout_with(user, product, key):
    fill_cart(user, (product, 1))
    return start_checkout(user, ADDRESS, key, CLIENT)


# start_checkout ------------------------------------------------------------------------------


def test_a_small_order_is_placed_takes_stock_empties_the_cart_and_alerts(shopper, frozen_clock):
    product = make_product(price_minor=2_499, stock=5)
    fill_cart(shopper, (product, 2))
    result = start_checkout(shopper, ADDRESS, KEY, CLIENT)
    assert result.outcome == CheckoutOutcome.PLACED
    assert result.refusal is None and result.challenge is None and not result.replayed
    assert result.order.status == OrderStatus.PLACED
    assert result.order.total_minor == 4_998 and result.order.device_id == "device-1"
    assert result.message == f"Thank you! Order {result.order.ref} is placed."
    assert stock(product) == 3
    assert carts.load_user_cart(shopper) == {}
    assert last_sms_to(shopper.phone).kind == SmsKind.ALERT_ORDER_PLACED
    assert db.session.scalar(select(func.count(OtpChallenge.id))) == 0


def test_a_large_order_waits_for_the_code_sent_to_the_verified_number(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    fill_cart(shopper, (product, 1))
    result = start_checkout(shopper, ADDRESS, KEY, CLIENT)
    assert result.outcome == CheckoutOutcome.CODE_SENT
    order = result.order
    assert order.status == OrderStatus.PENDING_VERIFICATION and order.risk_outcome == "otp"
    assert result.message.startswith("This order is above the amount we ask you to confirm.")
    assert result.challenge.order_id == order.id and result.code_queued is False
    assert result.challenge.expires_at == frozen_clock.now + timedelta(minutes=5)
    assert order.expires_at == result.challenge.expires_at
    assert stock(product) == 4  # reserved while the code is pending
    assert carts.load_user_cart(shopper) == {product.id: 1}  # kept until the code confirms it
    sms = last_sms_to(shopper.phone)
    assert sms.kind == SmsKind.OTP_ORDER
    assert f"is your code to confirm order {order.ref} for €300.00" in sms_text(sms)
    assert "code_sent" in events(shopper)


def test_a_second_code_inside_the_cool_down_is_queued_not_refused(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    first = start_checkout_with(shopper, product, "first-key-0000000000")
    frozen_clock.advance(seconds=10)
    fill_cart(shopper, (product, 2))
    second = start_checkout(shopper, ADDRESS, "second-key-000000000", CLIENT)
    assert second.outcome == CheckoutOutcome.CODE_SENT and second.code_queued is True
    assert second.challenge.send_at == first.challenge.send_at + timedelta(seconds=30)
    assert second.order.expires_at == second.challenge.send_at + timedelta(minutes=5)


def test_a_very_large_order_is_held_for_the_owner(shopper, frozen_clock):
    product = make_product(price_minor=649_900, stock=2)
    fill_cart(shopper, (product, 1))
    result = start_checkout(shopper, ADDRESS, KEY, CLIENT)
    assert result.outcome == CheckoutOutcome.HELD
    assert result.order.status == OrderStatus.HELD and result.challenge is None
    assert result.message.startswith(f"Order {result.order.ref} is held for the shop's review.")
    assert "Large orders are reviewed by the shop first." in result.message
    assert stock(product) == 1
    assert carts.load_user_cart(shopper) == {}
    sms = last_sms_to(shopper.phone)
    assert sms.kind == SmsKind.ALERT_ORDER_PLACED and "held for the shop's review" in sms_text(sms)


def test_a_blocked_order_takes_no_stock_and_keeps_the_cart(shopper, frozen_clock):
    set_rules(block_threshold_minor=100_000)
    product = make_product(price_minor=149_900, stock=2)
    fill_cart(shopper, (product, 1))
    result = start_checkout(shopper, ADDRESS, KEY, CLIENT)
    assert result.outcome == CheckoutOutcome.BLOCKED
    assert result.order.status == OrderStatus.BLOCKED
    assert result.message == (
        "We cannot accept this order online. Orders of this size cannot be placed online."
    )
    assert stock(product) == 2
    assert carts.load_user_cart(shopper) == {product.id: 1}
    assert sms_count(SmsKind.ALERT_ORDER_PLACED) == 0


def test_an_empty_cart_is_refused(shopper):
    result = start_checkout(shopper, ADDRESS, KEY, CLIENT)
    assert result.outcome == CheckoutOutcome.REFUSED
    assert result.refusal == CheckoutRefusal.EMPTY_CART and result.order is None
    assert result.message == "Your cart is empty."
    assert db.session.scalar(select(func.count(Order.id))) == 0


def test_more_than_the_stock_is_refused_and_nothing_is_taken(shopper):
    scarce = make_product("Lamp", price_minor=1_000, stock=1)
    plenty = make_product(price_minor=500, stock=9)
    fill_cart(shopper, (plenty, 1), (scarce, 2))
    result = start_checkout(shopper, ADDRESS, KEY, CLIENT)
    assert result.outcome == CheckoutOutcome.REFUSED
    assert result.refusal == CheckoutRefusal.OUT_OF_STOCK
    assert "not enough Lamp left in stock" in result.message
    assert (stock(scarce), stock(plenty)) == (1, 9)
    assert db.session.scalar(select(func.count(Order.id))) == 0
    assert carts.load_user_cart(shopper) == {plenty.id: 1, scarce.id: 2}


def test_a_replayed_key_answers_with_the_placed_order(shopper, frozen_clock):
    product = make_product(price_minor=2_499, stock=5)
    fill_cart(shopper, (product, 1))
    first = start_checkout(shopper, ADDRESS, KEY, CLIENT)
    again = start_checkout(shopper, ADDRESS, KEY, CLIENT)  # the emptied cart is its own doing
    assert again.outcome == CheckoutOutcome.PLACED and again.replayed is True
    assert again.order.id == first.order.id
    assert stock(product) == 4
    assert db.session.scalar(select(func.count(Order.id))) == 1
    assert sms_count(SmsKind.ALERT_ORDER_PLACED) == 1


def test_a_replayed_key_answers_with_the_pending_order_and_its_live_code(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    first = start_checkout_with(shopper, product, KEY)
    again = start_checkout(shopper, ADDRESS, KEY, CLIENT)
    assert again.outcome == CheckoutOutcome.CODE_SENT and again.replayed is True
    assert again.order.id == first.order.id
    assert again.challenge.id == first.challenge.id
    assert sms_count(SmsKind.OTP_ORDER) == 1
    assert stock(product) == 4


def test_a_key_reused_for_another_cart_is_refused(shopper, frozen_clock):
    product = make_product(price_minor=2_499, stock=5)
    fill_cart(shopper, (product, 1))
    start_checkout(shopper, ADDRESS, KEY, CLIENT)
    fill_cart(shopper, (product, 2))
    result = start_checkout(shopper, ADDRESS, KEY, CLIENT)
    assert result.outcome == CheckoutOutcome.REFUSED
    assert result.refusal == CheckoutRefusal.KEY_REUSED
    assert "already used for a different cart or address" in result.message
    assert stock(product) == 4
    assert db.session.scalar(select(func.count(Order.id))) == 1


def test_a_key_reused_for_another_address_is_refused(shopper, frozen_clock):
    fill_cart(shopper, (make_product(price_minor=2_499, stock=5), 1))
    start_checkout(shopper, ADDRESS, KEY, CLIENT)
    elsewhere = ShippingAddress("Ada Lovelace", "1 Other Road", "Leeds", "LS1 1AA", "GB")
    result = start_checkout(shopper, elsewhere, KEY, CLIENT)
    assert result.refusal == CheckoutRefusal.KEY_REUSED


def test_a_replayed_key_of_an_expired_order_is_closed(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    order = pending_order(shopper, product)
    frozen_clock.advance(minutes=5)
    assert confirm_order(shopper, order.ref, "000000", CLIENT).outcome == ConfirmOutcome.EXPIRED
    again = start_checkout(shopper, ADDRESS, KEY, CLIENT)
    assert again.outcome == CheckoutOutcome.CLOSED and again.replayed is True
    assert again.order.id == order.id and again.challenge is None
    assert again.message.startswith("This order expired because its code was not entered")
    assert stock(product) == 5
    assert db.session.scalar(select(func.count(Order.id))) == 1


def test_an_order_needing_a_code_for_an_unverified_number_is_refused(app, frozen_clock):
    user = make_user(verified=False)
    product = make_product(price_minor=30_000, stock=5)
    fill_cart(user, (product, 1))
    result = start_checkout(user, ADDRESS, KEY, CLIENT)
    assert result.outcome == CheckoutOutcome.REFUSED
    assert result.refusal == CheckoutRefusal.CODE_NOT_SENT
    assert result.send_refused.reason == Refusal.NUMBER_NOT_VERIFIED
    assert result.message.startswith("Confirm your phone number first")
    assert result.order is None
    # Nothing of the order survives: no row, no stock taken, no SMS; the refusal is recorded.
    assert db.session.scalar(select(func.count(Order.id))) == 0
    assert stock(product) == 5
    assert db.session.scalar(select(func.count(SmsMessage.id))) == 0
    refusal = db.session.scalar(select(SendRefusal))
    assert (refusal.reason, refusal.purpose, refusal.user_id) == (
        "number_not_verified",
        "order",
        user.id,
    )
    assert carts.load_user_cart(user) == {product.id: 1}


def test_an_order_needing_a_code_is_held_once_codes_are_locked(shopper, frozen_clock):
    lock_step_up(shopper, frozen_clock)
    product = make_product(price_minor=30_000, stock=5)
    fill_cart(shopper, (product, 1))
    result = start_checkout(shopper, ADDRESS, "after-lock-key-00000", CLIENT)
    assert result.outcome == CheckoutOutcome.HELD
    assert "SMS confirmation is locked on your account today." in result.message
    assert result.challenge is None


# confirm_order -------------------------------------------------------------------------------


def test_the_right_code_places_the_order(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    order = pending_order(shopper, product)
    frozen_clock.advance(minutes=4, seconds=59)
    result = confirm_order(shopper, order.ref, last_code_sent_to(shopper.phone), CLIENT)
    assert result.outcome == ConfirmOutcome.PLACED
    assert result.message == f"Thank you! Order {order.ref} is confirmed and placed."
    assert result.order.status == OrderStatus.PLACED
    assert result.order.step_up_verified_at == frozen_clock.now
    assert result.order.expires_at is None
    assert stock(product) == 4  # taken once, at checkout
    assert carts.load_user_cart(shopper) == {}
    assert last_sms_to(shopper.phone).kind == SmsKind.ALERT_ORDER_PLACED
    assert "code_verified" in events(shopper)
    assert order_challenge(shopper, result.order) is None


def test_confirming_a_placed_order_again_says_already_placed(shopper, frozen_clock):
    order = pending_order(shopper, make_product(price_minor=30_000, stock=5))
    code = last_code_sent_to(shopper.phone)
    confirm_order(shopper, order.ref, code, CLIENT)
    again = confirm_order(shopper, order.ref, code, CLIENT)
    assert again.outcome == ConfirmOutcome.ALREADY_PLACED
    assert again.message == "This order is already confirmed."
    assert sms_count(SmsKind.ALERT_ORDER_PLACED) == 1


def test_a_wrong_code_says_the_tries_left_and_counts_a_failure(shopper, frozen_clock):
    order = pending_order(shopper, make_product(price_minor=30_000, stock=5))
    result = confirm_order(shopper, order.ref, wrong(last_code_sent_to(shopper.phone)), CLIENT)
    assert result.outcome == ConfirmOutcome.WRONG_CODE
    assert result.tries_left == 4
    assert result.message == "That code is not right. 4 attempts left."
    assert status(order) == OrderStatus.PENDING_VERIFICATION
    assert db.session.scalar(select(func.count(OtpFailure.id))) == 1
    assert "code_failed" in events(shopper)


@pytest.mark.parametrize("hostile", ["' OR 1=1 --", "１２３４５６", "9" * 10_000, ""])
def test_input_that_is_not_six_digits_is_a_wrong_code(shopper, frozen_clock, hostile):
    order = pending_order(shopper, make_product(price_minor=30_000, stock=5))
    result = confirm_order(shopper, order.ref, hostile, CLIENT)
    assert (result.outcome, result.tries_left) == (ConfirmOutcome.WRONG_CODE, 4)


@pytest.mark.parametrize("look_alike", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_input_made_from_the_code_is_a_wrong_code_and_the_code_still_places(
    shopper, frozen_clock, look_alike
):
    order = pending_order(shopper, make_product(price_minor=30_000, stock=5))
    code = last_code_sent_to(shopper.phone)
    result = confirm_order(shopper, order.ref, look_alike(code), CLIENT)
    assert (result.outcome, result.tries_left) == (ConfirmOutcome.WRONG_CODE, 4)
    assert db.session.scalar(select(func.count(OtpFailure.id))) == 1
    assert status(order) == OrderStatus.PENDING_VERIFICATION
    assert confirm_order(shopper, order.ref, f" {code}  ", CLIENT).outcome == ConfirmOutcome.PLACED
    assert status(order) == OrderStatus.PLACED


def test_a_code_replaced_by_another_orders_code_is_dead(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    first = pending_order(shopper, product, key="first-key-0000000000")
    first_code = last_code_sent_to(shopper.phone)
    frozen_clock.advance(seconds=30)
    pending_order(shopper, product, key="second-key-000000000", quantity=2)
    result = confirm_order(shopper, first.ref, first_code, CLIENT)
    assert result.outcome == ConfirmOutcome.CODE_DEAD
    assert result.message == "There is no code waiting for this order. Ask for a new one."
    assert status(first) == OrderStatus.PENDING_VERIFICATION
    assert order_challenge(shopper, first) is None


def test_the_fifth_wrong_code_cancels_the_order_and_gives_the_stock_back(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    order = pending_order(shopper, product)
    bad = wrong(last_code_sent_to(shopper.phone))
    outcomes = [confirm_order(shopper, order.ref, bad, CLIENT).outcome for _ in range(5)]
    assert outcomes == [ConfirmOutcome.WRONG_CODE] * 4 + [ConfirmOutcome.TOO_MANY_TRIES]
    assert status(order) == OrderStatus.CANCELLED
    assert stock(product) == 5
    assert sms_count(SmsKind.ALERT_ORDER_PLACED) == 0


def test_a_cart_change_after_the_code_cancels_the_order(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    order = pending_order(shopper, product)
    code = last_code_sent_to(shopper.phone)
    fill_cart(shopper, (product, 1), (make_product(price_minor=100, stock=5), 1))
    result = confirm_order(shopper, order.ref, code, CLIENT)
    assert result.outcome == ConfirmOutcome.CART_CHANGED
    assert "Your cart changed after the code was sent" in result.message
    assert status(order) == OrderStatus.CANCELLED
    assert stock(product) == 5
    assert "code_invalidated" in events(shopper)


def test_rules_that_now_hold_the_order_hold_it_whatever_the_code(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    order = pending_order(shopper, product)
    set_rules(hold_threshold_minor=30_000)
    result = confirm_order(shopper, order.ref, last_code_sent_to(shopper.phone), CLIENT)
    assert result.outcome == ConfirmOutcome.HELD
    assert result.message == (
        "This order is held for the shop's review. Large orders are reviewed by the shop first."
    )
    assert status(order) == OrderStatus.HELD
    assert [reason["code"] for reason in result.order.reasons].count("hold_threshold") == 1
    assert stock(product) == 4
    assert carts.load_user_cart(shopper) == {}
    assert "held for the shop's review" in sms_text(last_sms_to(shopper.phone))


def test_rules_that_now_block_the_order_block_it_and_give_the_stock_back(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    order = pending_order(shopper, product)
    set_rules(block_threshold_minor=30_000)
    result = confirm_order(shopper, order.ref, last_code_sent_to(shopper.phone), CLIENT)
    assert result.outcome == ConfirmOutcome.BLOCKED
    assert result.message == (
        "This order was not accepted. Orders of this size cannot be placed online."
    )
    assert status(order) == OrderStatus.BLOCKED
    assert stock(product) == 5
    assert sms_count(SmsKind.ALERT_ORDER_PLACED) == 0


def lock_step_up(user, frozen_clock, *, leave: int = 0):
    """Wrong codes on two pending orders: 10 - `leave` failures on the account today."""
    product = make_product(price_minor=30_000, stock=20)
    for index, count in enumerate((5, 5 - leave)):
        order = pending_order(user, product, key=f"lock-key-{index}-0000000000")
        bad = wrong(last_code_sent_to(user.phone))
        for _ in range(count):
            confirm_order(user, order.ref, bad, CLIENT)
        frozen_clock.advance(seconds=30)


def test_the_tenth_wrong_code_of_the_day_locks_codes_and_holds_the_order(shopper, frozen_clock):
    lock_step_up(shopper, frozen_clock, leave=1)
    assert db.session.scalar(select(func.count(OtpFailure.id))) == 9
    product = make_product(price_minor=30_000, stock=5)
    order = pending_order(shopper, product, key="locked-key-000000000")
    result = confirm_order(shopper, order.ref, wrong(last_code_sent_to(shopper.phone)), CLIENT)
    assert result.outcome == ConfirmOutcome.LOCKED
    assert result.message.startswith("Too many wrong codes today")
    assert status(order) == OrderStatus.HELD
    assert stock(product) == 4  # a held order keeps its stock
    assert "step_up_locked" in events(shopper)
    assert sms_count(SmsKind.ALERT_CODE_LOCKED) == 1


def test_an_order_whose_code_lapsed_expires_and_gives_the_stock_back(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    order = pending_order(shopper, product)
    code = last_code_sent_to(shopper.phone)
    frozen_clock.advance(minutes=5)
    result = confirm_order(shopper, order.ref, code, CLIENT)
    assert result.outcome == ConfirmOutcome.EXPIRED
    assert result.message.startswith("This order expired")
    assert status(order) == OrderStatus.EXPIRED
    assert stock(product) == 5


def test_an_order_not_waiting_for_a_code_is_closed(shopper, frozen_clock):
    product = make_product(price_minor=649_900, stock=2)
    fill_cart(shopper, (product, 1))
    held = start_checkout(shopper, ADDRESS, KEY, CLIENT).order
    result = confirm_order(shopper, held.ref, "123456", CLIENT)
    assert result.outcome == ConfirmOutcome.CLOSED
    assert result.message == "This order is held for the shop's review."
    assert status(held) == OrderStatus.HELD
    assert db.session.scalar(select(func.count(OtpFailure.id))) == 0


def test_someone_elses_order_is_not_found(shopper, frozen_clock):
    order = pending_order(shopper, make_product(price_minor=30_000, stock=5))
    thief = make_user()
    result = confirm_order(thief, order.ref, last_code_sent_to(shopper.phone), CLIENT)
    assert result.outcome == ConfirmOutcome.NOT_FOUND and result.order is None
    assert result.message == "There is no such order on your account."
    assert status(order) == OrderStatus.PENDING_VERIFICATION
    assert confirm_order(shopper, "SH-NOSUCH00", "123456", CLIENT).outcome == (
        ConfirmOutcome.NOT_FOUND
    )


# resend_order_code ---------------------------------------------------------------------------


def test_a_resend_after_the_cool_down_sends_a_new_code_with_the_same_tries(shopper, frozen_clock):
    order = pending_order(shopper, make_product(price_minor=30_000, stock=5))
    old_code = last_code_sent_to(shopper.phone)
    confirm_order(shopper, order.ref, wrong(old_code), CLIENT)
    old = order_challenge(shopper, order)
    frozen_clock.advance(seconds=30)
    result = resend_order_code(shopper, order.ref, CLIENT)
    assert result.outcome == ResendOutcome.SENT
    assert result.send.outcome == Sent.SENT
    assert result.message == "A new code is on its way. The old one no longer works."
    new = order_challenge(shopper, order)
    assert new.id != old.id and new.failed_attempts == 1
    db.session.refresh(old)
    assert old.end_reason == "replaced"
    assert status(order) == OrderStatus.PENDING_VERIFICATION
    assert db.session.get(Order, order.id).expires_at == frozen_clock.now + timedelta(minutes=5)
    assert sms_count(SmsKind.OTP_ORDER) == 2
    new_code = last_code_sent_to(shopper.phone)
    if new_code != old_code:
        assert confirm_order(shopper, order.ref, old_code, CLIENT).tries_left == 3
    placed = confirm_order(shopper, order.ref, new_code, CLIENT)
    assert placed.outcome == ConfirmOutcome.PLACED


def test_a_resend_inside_the_cool_down_is_refused_and_the_code_stays(shopper, frozen_clock):
    order = pending_order(shopper, make_product(price_minor=30_000, stock=5))
    live = order_challenge(shopper, order)
    frozen_clock.advance(seconds=10)
    result = resend_order_code(shopper, order.ref, CLIENT)
    assert result.outcome == ResendOutcome.REFUSED
    assert result.send.refused.reason == Refusal.COOLDOWN
    assert result.send.refused.retry_after == 20
    assert result.message.startswith("A code was sent a moment ago")
    assert order_challenge(shopper, order).id == live.id
    assert sms_count(SmsKind.OTP_ORDER) == 1
    assert db.session.scalar(select(SendRefusal.reason)) == "cooldown"


def test_a_resend_for_an_order_no_longer_pending_is_refused(shopper, frozen_clock):
    order = pending_order(shopper, make_product(price_minor=30_000, stock=5))
    confirm_order(shopper, order.ref, last_code_sent_to(shopper.phone), CLIENT)
    frozen_clock.advance(seconds=30)
    result = resend_order_code(shopper, order.ref, CLIENT)
    assert result.outcome == ResendOutcome.NOT_PENDING
    assert result.message == "This order is already confirmed."
    assert sms_count(SmsKind.OTP_ORDER) == 1


def test_a_resend_for_a_lapsed_order_is_refused(shopper, frozen_clock):
    order = pending_order(shopper, make_product(price_minor=30_000, stock=5))
    frozen_clock.advance(minutes=5)
    result = resend_order_code(shopper, order.ref, CLIENT)
    assert result.outcome == ResendOutcome.NOT_PENDING
    assert sms_count(SmsKind.OTP_ORDER) == 1


def test_a_resend_for_someone_elses_order_is_not_found(shopper, frozen_clock):
    order = pending_order(shopper, make_product(price_minor=30_000, stock=5))
    frozen_clock.advance(seconds=30)
    result = resend_order_code(make_user(), order.ref, CLIENT)
    assert result.outcome == ResendOutcome.NOT_FOUND and result.order is None
    assert result.message == "There is no such order on your account."
    assert sms_count(SmsKind.OTP_ORDER) == 1


# order_binding, order_challenge --------------------------------------------------------------


def test_the_binding_follows_the_cart_and_address(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    order = pending_order(shopper, product)
    assert order_binding(order) == order_challenge(shopper, order).binding
    bound = order_binding(order)
    same = fingerprint({product.id: 1}, ADDRESS)
    assert order_binding(order, same) == bound
    assert order_binding(order, fingerprint({product.id: 2}, ADDRESS)) != bound
    elsewhere = replace(ADDRESS, address_line1="1 Other Street")
    assert order_binding(order, fingerprint({product.id: 1}, elsewhere)) != bound
    # The amount and the currency are bound apart from the items: the same items at another
    # price, or in another currency, are another thing to confirm.
    order.total_minor += 1
    assert order_binding(order) != bound
    order.total_minor -= 1
    assert order_binding(order) == bound
    order.currency = "GBP"
    assert order_binding(order) != bound
    db.session.rollback()


@pytest.mark.parametrize(
    "change",
    [{"total_minor": 30_001}, {"currency": "GBP"}, {"address_line1": "1 Other Street"}],
    ids=["amount", "currency", "address"],
)
def test_an_order_changed_after_its_code_was_sent_is_not_confirmed_by_it(
    shopper, frozen_clock, change
):
    product = make_product(price_minor=30_000, stock=5)
    order = pending_order(shopper, product)
    code = last_code_sent_to(shopper.phone)
    with db.engine.begin() as other:  # the stored order changes under the code
        other.execute(Order.__table__.update().where(Order.__table__.c.id == order.id), change)
    result = confirm_order(shopper, order.ref, code, CLIENT)
    assert result.outcome == ConfirmOutcome.CART_CHANGED
    assert status(order) == OrderStatus.CANCELLED
    assert stock(product) == 5
    assert "code_invalidated" in events(shopper) and "code_verified" not in events(shopper)


def test_order_challenge_is_the_live_code_of_that_order_only(shopper, frozen_clock):
    product = make_product(price_minor=30_000, stock=5)
    first = pending_order(shopper, product, key="first-key-0000000000")
    assert order_challenge(shopper, first).order_id == first.id
    frozen_clock.advance(seconds=30)
    second = pending_order(shopper, product, key="second-key-000000000", quantity=2)
    assert order_challenge(shopper, first) is None
    assert order_challenge(shopper, second).order_id == second.id
    assert order_challenge(make_user(), second) is None


# Another request got there first, or the account changed meanwhile ----------------------------


def place_elsewhere(order_id: int) -> None:
    """Another request (a confirm in another worker) places the order and commits."""
    with db.engine.begin() as other:
        other.execute(
            Order.__table__.update()
            .where(Order.__table__.c.id == order_id)
            .values(status=OrderStatus.PLACED, expires_at=None)
        )


@pytest.mark.parametrize("use_case", ["resend", "confirm"])
def test_what_a_view_loaded_before_another_request_placed_the_order_is_read_again(
    shopper, frozen_clock, use_case
):
    # A view loads the order, then calls the use case; meanwhile another worker's confirm
    # placed it. The use case reads it again under the account's lock: no code is sent for
    # a placed order, and a double-clicked confirm is told it is placed.
    order = pending_order(shopper, make_product(price_minor=30_000, stock=5))
    code = last_code_sent_to(shopper.phone)
    frozen_clock.advance(seconds=31)  # past the cool-down: a resend would send
    assert order.status == OrderStatus.PENDING_VERIFICATION  # loaded, as by the view
    place_elsewhere(order.id)

    if use_case == "resend":
        assert resend_order_code(shopper, order.ref, CLIENT).outcome == ResendOutcome.NOT_PENDING
    else:
        result = confirm_order(shopper, order.ref, code, CLIENT)
        assert result.outcome == ConfirmOutcome.ALREADY_PLACED
    codes = select(func.count(OtpChallenge.id)).where(OtpChallenge.order_id == order.id)
    assert db.session.scalar(codes) == 1
    assert status(order) == OrderStatus.PLACED and order.expires_at is None


@pytest.mark.parametrize("then", ["resend", "confirm"])
def test_a_number_changed_after_the_owner_asked_for_a_code_holds_the_order_again(
    app, owner, frozen_clock, then
):
    from shop.orders.review import approve

    order = make_held_order(make_user())
    shopper = order.user
    approve(order.ref, owner, "Call the shopper first.", CLIENT, ask_code=True)
    code = last_code_sent_to(shopper.phone)
    frozen_clock.advance(seconds=40)
    # Someone with the password puts in their own number (the change needs its code).
    shopper.phone, shopper.phone_changed_at = "+447700900999", frozen_clock.now
    db.session.commit()

    if then == "resend":
        result = resend_order_code(shopper, order.ref, CLIENT)
        assert result.outcome == ResendOutcome.HELD
        assert "phone number changed after the shop asked for a code" in result.message
    else:
        result = confirm_order(shopper, order.ref, code, CLIENT)
        assert result.outcome == ConfirmOutcome.HELD
        assert "phone number changed after the shop asked for a code" in result.message
    assert result.message.startswith("This order is held for the shop's review.")
    assert status(order) == OrderStatus.HELD
    assert (
        db.session.scalar(
            select(func.count(OtpChallenge.id)).where(OtpChallenge.phone == "+447700900999")
        )
        == 0
    )


def test_a_checkout_takes_each_lock_once(shopper, frozen_clock):
    # Its steps each ask for the account's lock (checkout, the step-up, the code): the
    # transaction takes it once, and the code's number and address beside it.
    from sqlalchemy import event

    upserts = []

    def note(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("INSERT INTO SEND_LOCKS"):
            upserts.append(parameters[0])

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        pending_order(shopper, make_product(price_minor=30_000, stock=5))
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert sorted(upserts) == sorted(
        [f"account:{shopper.id}", f"ip:{CLIENT.ip}", f"phone:{shopper.phone}"]
    )
