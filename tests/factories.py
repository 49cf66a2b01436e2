"""Factories for rows the tests need, and readers of what the shop wrote; passwords are hashed
once per run, with the real method."""

import json
import re
from dataclasses import replace
from functools import cache
from html import unescape
from itertools import count

from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from shop import cart as carts
from shop import clock
from shop.accounts.client import Client
from shop.config import Config
from shop.extensions import db
from shop.models import (
    AuditEvent,
    Order,
    OrderEvent,
    OrderEventKind,
    OtpChallenge,
    OtpFailure,
    Product,
    RiskRuleSet,
    Role,
    SmsKind,
    SmsMessage,
    User,
    UserSession,
)
from shop.orders import ShippingAddress
from shop.orders.checkout import start_checkout
from shop.risk import RiskRules, current_rules
from shop.sms import sealing

PASSWORD = "correct horse battery"
# The checkout form's shipping fields, as a shopper fills them in.
ADDRESS = {
    "full_name": "Ada Lovelace",
    "address_line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}
# Made users' phone numbers (Ofcom's drama range) start in a stretch that no test and no demo
# account writes down (+447700900778 to 997), and each test counts afresh (conftest): a test
# never gets, by the luck of the tests run before it, a number it uses for something else.
FIRST_NUMBER = 778
_numbers = count(FIRST_NUMBER)


@cache
def password_hash(password: str = PASSWORD, method: str | None = None) -> str:
    return generate_password_hash(password, method=method or Config().PASSWORD_HASH_METHOD)


# For tests that sign in by password many times and are about something else than hashing.
QUICK_HASH = "scrypt:4096:8:1"


def quick_password(user: User) -> User:
    """`user` with PASSWORD hashed cheaply, so that signing in takes milliseconds."""
    user.password_hash = password_hash(PASSWORD, QUICK_HASH)
    db.session.commit()
    return user


def make_user(
    email: str | None = None,
    *,
    phone: str | None = None,
    role: Role = Role.SHOPPER,
    verified: bool = True,
) -> User:
    number = next(_numbers)
    user = User(
        email=email or f"user{number}@example.com",
        phone=phone or f"+447700900{number % 1000:03d}",
        password_hash=password_hash(),
        role=role,
        phone_verified_at=clock.now() if verified else None,
    )
    db.session.add(user)
    db.session.commit()
    return user


def make_product(
    name: str | None = None, *, price_minor: int = 1000, stock: int = 10, currency: str = "EUR"
) -> Product:
    product = Product(
        name=name or f"Product {next(_numbers)}",
        price_minor=price_minor,
        stock=stock,
        currency=currency,
        description="A test product.",
    )
    db.session.add(product)
    db.session.commit()
    return product


def fill_cart(user: User, *lines: tuple[Product, int]) -> None:
    carts.save_user_cart(user, {product.id: quantity for product, quantity in lines})
    db.session.commit()


def last_sms_to(phone: str) -> SmsMessage:
    db.session.expire_all()
    return db.session.scalar(
        select(SmsMessage).where(SmsMessage.to_number == phone).order_by(SmsMessage.id.desc())
    )


def sms_text(message: SmsMessage) -> str:
    """What the phone shows for `message` (a code's SMS is sealed in the outbox)."""
    return sealing.seal().open(message.body, to_number=message.to_number)


def last_code_sent_to(phone: str) -> str:
    """The code in the newest SMS to `phone`, read from the outbox as the phone would."""
    match = re.match(r"\S+: (\d{6,8}) is your code", sms_text(last_sms_to(phone)))
    assert match, "the newest SMS to this number carries no code"
    return match.group(1)


def wrong(code: str) -> str:
    """A code of the same length that is not `code`."""
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def _in_digits(code: str, zero: int) -> str:
    """`code` written in the ten digits from code point `zero` on."""
    return code.translate({ord("0") + digit: zero + digit for digit in range(10)})


# Inputs made from a real code that are not it: SPEC section 5 accepts exactly ^[0-9]{6}$ once
# the spaces around it are trimmed. Each catches one lenient reading of the input: cut to the
# code's length (one digit more), a prefix match (one less), Unicode digits or NFKC (full-width,
# Arabic-Indic), a number parser (a plus sign), spaces squeezed out (a no-break space inside).
LOOK_ALIKES = {
    "one-digit-more": lambda code: code + "0",
    "one-digit-less": lambda code: code[:-1],
    "full-width": lambda code: _in_digits(code, 0xFF10),
    "arabic-indic": lambda code: _in_digits(code, 0x0660),
    "plus-sign": lambda code: "+" + code,
    "no-break-space-inside": lambda code: f"{code[:3]}\u00a0{code[3:]}",
}


def sms_count(kind: SmsKind) -> int:
    return db.session.scalar(select(func.count(SmsMessage.id)).where(SmsMessage.kind == kind))


def audit_rows(user: User, event: str) -> list[AuditEvent]:
    """The account's audit rows of one event, oldest first."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.user_id == user.id, AuditEvent.event == event)
            .order_by(AuditEvent.id)
        )
    )


def failures(user: User) -> int:
    """Wrong answers, of every factor, in the account's count."""
    return db.session.scalar(select(func.count(OtpFailure.id)).where(OtpFailure.user_id == user.id))


def confirmations(order_ref: str) -> tuple[int, int, int]:
    """How often the order `order_ref` was confirmed by a code, counted three ways: its
    consumed codes, its account's `code_verified` audit rows, and the `confirmed` lines of its
    timeline. A code accepted twice (a replay, a lost race) shows as more than (1, 1, 1)."""
    db.session.expire_all()
    order = db.session.scalar(select(Order).where(Order.ref == order_ref))
    consumed = select(func.count(OtpChallenge.id)).where(
        OtpChallenge.order_id == order.id, OtpChallenge.consumed_at.is_not(None)
    )
    verified = select(func.count(AuditEvent.id)).where(
        AuditEvent.user_id == order.user_id, AuditEvent.event == "code_verified"
    )
    confirmed = select(func.count(OrderEvent.id)).where(
        OrderEvent.order_id == order.id, OrderEvent.kind == OrderEventKind.CONFIRMED
    )
    return db.session.scalar(consumed), db.session.scalar(verified), db.session.scalar(confirmed)


def text_of(response) -> str:
    """A page's text with its character references read, as a person reads the words."""
    return unescape(response.get_data(as_text=True))


def set_rules(**changes) -> RiskRules:
    """Make `changes` to the default risk rules the shop's current rules."""
    rules = replace(RiskRules(), **changes)
    db.session.add(RiskRuleSet(rules=json.dumps(rules.as_dict())))
    db.session.commit()
    return rules


# Rules under which every order is simply placed: for tests about something else.
ALLOW_ALL = RiskRules(
    otp_threshold_minor=None,
    hold_threshold_minor=None,
    new_account_threshold_minor=None,
    new_device_or_address_threshold_minor=None,
    velocity_enabled=False,
    phone_change_action="off",
)


def place_allowed(user: User, address: ShippingAddress, key: str) -> Order:
    """Check `user`'s cart out through the use case, under rules that place every order
    (the sign-in rule is left as it is)."""
    set_rules(**{**ALLOW_ALL.as_dict(), "login_mode": current_rules().login_mode})
    return start_checkout(user, address, key, Client("127.0.0.1")).order


def stored_order(user: User, ref: str, **fields) -> Order:
    """An order row written straight to the database (no checkout, not flushed): shipped to
    `ADDRESS`, 100.00 EUR, its key from `ref`, and `fields` over those."""
    order = Order(
        **{
            "ref": ref,
            "user_id": user.id,
            "currency": "EUR",
            "total_minor": 10_000,
            "idempotency_key": f"stored-{ref}",
            "fingerprint": "0" * 64,
            **ADDRESS,
            **fields,
        }
    )
    db.session.add(order)
    return order


def make_held_order(user: User | None = None, *, product: Product | None = None, key=None) -> Order:
    """An order the default rules hold for review (over 5,000.00), made through checkout."""
    user = user or make_user()
    product = product or make_product(price_minor=600_000, stock=5)
    fill_cart(user, (product, 1))
    address = ShippingAddress(**ADDRESS)
    order = start_checkout(
        user, address, key or f"held-{next(_numbers)}", Client("198.51.100.7")
    ).order
    assert order.status == "held"
    return order


def live_sessions(user: User) -> int:
    """How many signed-in sessions (browsers, remember-me cookies) the account has."""
    return len(db.session.scalars(select(UserSession).where(UserSession.user_id == user.id)).all())


def forged(signed: str) -> str:
    """`signed` with one character of its signature changed, ten from the end. Not the last
    two: the last character of a base64 signature carries padding bits, so a change there
    can decode to the same bytes and still verify (about once in a thousand)."""
    position = len(signed) - 10
    swapped = "B" if signed[position] == "A" else "A"
    return signed[:position] + swapped + signed[position + 1 :]
