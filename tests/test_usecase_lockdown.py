""" "Not me" and "sign out everywhere" called directly: what a link can do, once, and what
locking down ends (sessions, API tokens, open orders and their stock)."""

import json

import pytest
from sqlalchemy import select

from shop import alerts
from shop.accounts.client import Client
from shop.accounts.lockdown import NotMeOutcome, inspect_not_me, not_me, sign_out_everywhere
from shop.accounts.passwords import ResetOutcome, reset_password, start_password_reset
from shop.accounts.sessions import open_session
from shop.accounts.signin import PasswordOutcome, sign_in_with_password
from shop.accounts.tokens import issue_token, live_tokens, user_for_token
from shop.accounts.verification import ConfirmPhoneOutcome, confirm_phone, start_phone_change
from shop.extensions import db
from shop.models import (
    NotMeLink,
    Order,
    OrderStatus,
    OtpChallenge,
    Product,
    SmsKind,
    SmsMessage,
    SmsStatus,
    User,
)
from shop.orders import ShippingAddress
from shop.orders.checkout import CheckoutOutcome, start_checkout
from tests.factories import (
    PASSWORD,
    audit_rows,
    fill_cart,
    last_code_sent_to,
    last_sms_to,
    live_sessions,
    make_product,
    make_user,
    set_rules,
    sms_text,
)

CLIENT = Client("203.0.113.5", "device-1")
ADDRESS = ShippingAddress("Ada Lovelace", "12 St James's Square", "London", "SW1Y 4JH", "GB")


def sms_to(number: str) -> list[SmsMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(SmsMessage).where(SmsMessage.to_number == number)))


def link_token(user: User) -> str:
    """The token of the "not me" link in the newest SMS to `user`."""
    body = sms_text(last_sms_to(user.phone))
    assert "/account/not-me/" in body, body
    return body.rsplit("/", 1)[-1]


def fresh_link(user: User) -> str:
    url = alerts.not_me_url(user)
    db.session.commit()
    return url.rsplit("/", 1)[-1]


def reload(model, row):
    db.session.expire_all()
    return db.session.get(model, row.id)


def checkout(user, product, key) -> Order:
    fill_cart(user, (product, 1))
    return start_checkout(user, ADDRESS, key, CLIENT)


@pytest.fixture
def shopper(app):
    return make_user()


def test_a_fresh_link_is_ready_and_checking_it_changes_nothing(shopper, frozen_clock):
    token = fresh_link(shopper)
    assert inspect_not_me(token).outcome == NotMeOutcome.READY
    assert inspect_not_me(token).outcome == NotMeOutcome.READY
    assert db.session.scalar(select(NotMeLink.used_at)) is None


def test_not_me_ends_sessions_and_tokens_cancels_open_orders_and_asks_a_code(shopper, frozen_clock):
    open_session(shopper, CLIENT, remember=True)
    api = issue_token(shopper, "CLI", CLIENT)
    pin = make_product(price_minor=2_499, stock=5)
    chair = make_product(price_minor=30_000, stock=5)
    sofa = make_product(price_minor=649_900, stock=2)
    placed = checkout(shopper, pin, "placed-key-000000000")
    token = link_token(shopper)  # from the order alert
    pending = checkout(shopper, chair, "pending-key-00000000")
    held = checkout(shopper, sofa, "held-key-00000000000")
    assert [placed.outcome, pending.outcome, held.outcome] == [
        CheckoutOutcome.PLACED,
        CheckoutOutcome.CODE_SENT,
        CheckoutOutcome.HELD,
    ]

    result = not_me(token, Client("198.51.100.9"))
    assert result.outcome == NotMeOutcome.LOCKED_DOWN
    refs = {placed.order.ref, pending.order.ref, held.order.ref}
    assert {order.ref for order in result.cancelled} == refs
    for each in (placed, pending, held):
        assert reload(Order, each.order).status == OrderStatus.CANCELLED
    assert [reload(Product, p).stock for p in (pin, chair, sofa)] == [5, 5, 2]
    user = reload(User, shopper)
    assert live_sessions(user) == 0
    assert user.login_code_required is True
    assert user_for_token(api) is None and live_tokens(user) == []
    (event,) = audit_rows(user, "not_me")
    assert event.ip == "198.51.100.9"
    assert sorted(json.loads(event.detail)["cancelled"]) == sorted(refs)
    assert alerts.link_for_token(token).used_at == frozen_clock.now
    used = db.session.scalars(select(NotMeLink.used_at).where(NotMeLink.used_at.is_not(None)))
    assert used.all() == [frozen_clock.now]  # the other alerts' links still work once


def test_not_me_leaves_orders_that_hold_no_stock_alone(shopper, frozen_clock):
    set_rules(block_threshold_minor=100_000)
    product = make_product(price_minor=149_900, stock=2)
    blocked = checkout(shopper, product, "blocked-key-00000000")
    assert blocked.outcome == CheckoutOutcome.BLOCKED
    result = not_me(fresh_link(shopper), CLIENT)
    assert result.outcome == NotMeOutcome.LOCKED_DOWN and result.cancelled == []
    assert reload(Order, blocked.order).status == OrderStatus.BLOCKED
    assert reload(Product, product).stock == 2
    assert json.loads(audit_rows(shopper, "not_me")[0].detail) == {"cancelled": []}


def test_a_link_works_once(shopper, frozen_clock):
    token = fresh_link(shopper)
    assert not_me(token, CLIENT).outcome == NotMeOutcome.LOCKED_DOWN
    open_session(shopper, CLIENT)  # signed in again afterwards
    assert inspect_not_me(token).outcome == NotMeOutcome.USED
    again = not_me(token, CLIENT)
    assert again.outcome == NotMeOutcome.USED and again.cancelled == []
    assert live_sessions(shopper) == 1
    assert len(audit_rows(shopper, "not_me")) == 1


def test_each_alert_carries_its_own_link(shopper, frozen_clock):
    first, second = fresh_link(shopper), fresh_link(shopper)
    assert not_me(first, CLIENT).outcome == NotMeOutcome.LOCKED_DOWN
    assert inspect_not_me(second).outcome == NotMeOutcome.READY


@pytest.mark.parametrize("forged", ["", "garbage", "eyJ1IjoxfQ.Zx9-Ab_c.AAAA"])
def test_a_forged_link_is_invalid_and_changes_nothing(shopper, forged):
    fresh_link(shopper)
    open_session(shopper, CLIENT)
    assert inspect_not_me(forged).outcome == NotMeOutcome.INVALID
    assert not_me(forged, CLIENT).outcome == NotMeOutcome.INVALID
    assert live_sessions(shopper) == 1
    assert audit_rows(shopper, "not_me") == []


def test_a_tampered_link_is_invalid(shopper):
    token = fresh_link(shopper)
    # A character inside the signature: the last one also holds padding bits, and changing
    # only those leaves the same signature.
    at = len(token) - 5
    tampered = token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]
    assert inspect_not_me(tampered).outcome == NotMeOutcome.INVALID
    assert not_me(tampered, CLIENT).outcome == NotMeOutcome.INVALID
    assert inspect_not_me(token).outcome == NotMeOutcome.READY


def test_a_link_is_invalid_after_24_hours(shopper, frozen_clock):
    token = fresh_link(shopper)
    frozen_clock.advance(hours=23, minutes=59, seconds=59)
    assert inspect_not_me(token).outcome == NotMeOutcome.READY
    frozen_clock.advance(seconds=2)
    assert inspect_not_me(token).outcome == NotMeOutcome.INVALID
    assert not_me(token, CLIENT).outcome == NotMeOutcome.INVALID
    assert reload(User, shopper).login_code_required is False
    assert db.session.scalar(select(NotMeLink.used_at)) is None


def test_sign_out_everywhere_ends_sessions_and_tokens_of_this_account_only(shopper, frozen_clock):
    other = make_user()
    open_session(shopper, CLIENT)
    open_session(other, CLIENT)
    mine = [issue_token(shopper, name, CLIENT) for name in ("CLI", "Backup script")]
    theirs = issue_token(other, "CLI", CLIENT)
    sign_out_everywhere(shopper, Client("198.51.100.9"))
    user = reload(User, shopper)
    assert (live_sessions(user), live_sessions(other)) == (0, 1)
    assert [user_for_token(raw) for raw in mine] == [None, None]
    assert live_tokens(user) == []
    assert user_for_token(theirs).id == other.id
    assert user.login_code_required is False  # unlike "not me", no code is forced
    (event,) = audit_rows(user, "signed_out_everywhere")
    assert event.ip == "198.51.100.9"


# A "not me" from the "phone number changed" alert ---------------------------------------------

OLD, NEW, THIRD = "+447700900111", "+447700900222", "+447700900333"
THIEF = Client("198.51.100.66", "thief-laptop")


def change_phone(user: User, to: str, frozen_clock) -> str:
    """Change the number with the password and the new number's code (as a thief who knows
    the password can); the token of the link the alert took to the number before."""
    before = reload(User, user).phone
    frozen_clock.advance(minutes=1)  # past every number's cool-down
    start_phone_change(user, PASSWORD, to, THIEF)
    assert confirm_phone(user, last_code_sent_to(to), THIEF).outcome == ConfirmPhoneOutcome.CHANGED
    alert = last_sms_to(before)
    assert alert.kind == SmsKind.ALERT_PHONE_CHANGED
    return sms_text(alert).rsplit("/", 1)[-1]


def test_not_me_from_the_phone_changed_alert_puts_the_old_number_back(frozen_clock, app):
    holder = make_user(phone=OLD)
    token = change_phone(holder, NEW, frozen_clock)
    frozen_clock.advance(minutes=1)
    thief_reset = start_password_reset(holder.email, THIEF)  # a code to the thief's phone
    thief_code = last_code_sent_to(NEW)
    to_new = len(sms_to(NEW))

    frozen_clock.advance(minutes=1)  # the thief's code still live
    result = not_me(token, CLIENT)
    assert result.outcome == NotMeOutcome.LOCKED_DOWN
    user = reload(User, holder)
    assert (user.phone, user.phone_verified_at) == (OLD, frozen_clock.now)
    assert result.phone_restored == OLD
    assert user.phone_changed_at == frozen_clock.now  # orders needing a code held 72 h more
    assert user.login_code_required is True
    # The thief's live code for the new number no longer works, nor goes out if unsent.
    assert last_sms_to(NEW).status == SmsStatus.DROPPED
    thief_try = reset_password(thief_reset, thief_code, "a brand new password", THIEF)
    assert thief_try.outcome == ResetOutcome.WRONG_CODE
    assert reload(User, holder).password_hash == holder.password_hash
    # Sign-in and reset codes go to the old number again, never to the new one.
    signing_in = sign_in_with_password(holder.email, PASSWORD, THIEF)
    assert signing_in.outcome == PasswordOutcome.CODE_NEEDED
    assert last_sms_to(OLD).kind == SmsKind.OTP_LOGIN
    frozen_clock.advance(minutes=1)
    start_password_reset(holder.email, CLIENT)
    assert last_sms_to(OLD).kind == SmsKind.OTP_RESET
    assert len(sms_to(NEW)) == to_new
    (restored,) = audit_rows(holder, "phone_restored")
    assert restored.ip == CLIENT.ip
    assert json.loads(restored.detail) == {
        "restored": "+44 ••••••• 111",
        "replaced": "+44 ••••••• 222",
    }
    assert "+447700900" not in restored.detail  # no whole number in the audit trail
    assert len(audit_rows(holder, "not_me")) == 1


def test_not_me_from_another_alert_changes_no_number(frozen_clock, app):
    holder = make_user(phone=OLD)
    change_phone(holder, NEW, frozen_clock)
    alerts.new_device(reload(User, holder), browser="Firefox", ip=THIEF.ip, at=frozen_clock.now)
    db.session.commit()
    result = not_me(sms_text(last_sms_to(NEW)).rsplit("/", 1)[-1], CLIENT)
    assert result.outcome == NotMeOutcome.LOCKED_DOWN
    assert reload(User, holder).phone == NEW
    assert audit_rows(holder, "phone_restored") == []
    assert result.phone_restored is None


@pytest.mark.parametrize("thief_first", [False, True])
def test_after_a_second_change_only_the_first_alerts_link_restores(app, frozen_clock, thief_first):
    """Changed twice, the number is not the one the first change set. The second alert, and
    its link, went to the thief's number: it puts back nothing, whenever it is followed. The
    first alert's link still puts back the number it was sent to."""
    holder = make_user(phone=OLD)
    holders_link = change_phone(holder, NEW, frozen_clock)
    thiefs_link = change_phone(holder, THIRD, frozen_clock)
    start_phone_change(reload(User, holder), PASSWORD, NEW, THIEF)  # a live code to NEW
    if thief_first:
        assert not_me(thiefs_link, THIEF).phone_restored is None
        assert reload(User, holder).phone == THIRD
    assert not_me(holders_link, CLIENT).phone_restored == OLD
    assert reload(User, holder).phone == OLD
    live = select(OtpChallenge).where(OtpChallenge.ended_at.is_(None))
    assert [c.phone for c in db.session.scalars(live) if c.consumed_at is None] == []
    if not thief_first:
        assert not_me(thiefs_link, THIEF).phone_restored is None
        assert reload(User, holder).phone == OLD
