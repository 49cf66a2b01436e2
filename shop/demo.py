"""Demo data for `make run`: a catalog of 24 products, two accounts to sign in with, and a
month of past orders from a few other customers for the owner's dashboard and backtest."""

import json
import random
import secrets
import zlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from shop import accounts, audit, clock, risk
from shop.extensions import db
from shop.models import (
    KnownDevice,
    Order,
    OrderItem,
    OrderStatus,
    OtpChallenge,
    OtpPurpose,
    Product,
    Role,
    SmsKind,
    SmsMessage,
    SmsStatus,
    User,
)
from shop.money import format_money
from shop.orders import ShippingAddress, fingerprint, record_decision
from shop.orders.placement import REF_ALPHABET, STATUS_FOR
from shop.otp import REDACTED, binding_for
from shop.otp.policy import OtpPolicy
from shop.otp.texts import code_sms, order_action

# (name, price in minor units, stock, description)
PRODUCTS: list[tuple[str, int, int, str]] = [
    ("Enamel pin", 499, 200, "A small enamel pin with the shop's logo."),
    ("Sticker sheet", 650, 150, "Twelve weatherproof vinyl stickers."),
    ("Canvas tote bag", 1500, 80, "Heavy cotton tote with a long strap."),
    ("Ceramic mug", 1800, 60, "Stoneware mug, 350 ml, dishwasher safe."),
    ("Notebook, dotted", 2200, 90, "A5, 160 pages of 100 g paper, lay-flat binding."),
    ("Merino socks", 2450, 3, "Two pairs of light merino socks."),
    ("Desk plant", 2900, 25, "A hardy snake plant in a 12 cm pot."),
    ("Phone stand", 3500, 40, "Aluminium stand that folds flat."),
    ("Cotton hoodie", 6500, 30, "Organic cotton, brushed inside."),
    ("Wireless mouse", 7900, 35, "Quiet clicks, USB-C charging."),
    ("Desk lamp", 11900, 20, "LED lamp with warm and cool light."),
    ("Mechanical keyboard", 14900, 15, "Tenkeyless, hot-swappable switches."),
    ("Running shoes", 15900, 2, "Light trainers for road running."),
    ("Noise-cancelling headphones", 19900, 12, "Over-ear, 30 hours of battery."),
    ("Smart watch", 22900, 10, "Heart rate, GPS and a week of battery."),
    ("Espresso grinder", 24900, 1, "Flat burrs, stepless adjustment."),
    ("Office chair", 32900, 8, "Mesh back, adjustable arms and lumbar."),
    ("Tablet", 44900, 9, "11-inch screen, 128 GB."),
    ("Road bike helmet", 27500, 14, "MIPS helmet, 260 g."),
    ("Espresso machine", 69900, 5, "Dual boiler, PID temperature control."),
    ("4K monitor", 54900, 6, "27-inch IPS panel, USB-C with 90 W."),
    ("Laptop", 149900, 4, "14-inch, 16 GB memory, 1 TB storage."),
    ("Camera kit", 249900, 3, "Full-frame body with a 24-70 mm lens."),
    ("Designer sofa", 649900, 1, "Three-seater in wool, made to order."),
]


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str
    phone: str


DEMO_DEVICE = "Shop app on iOS"
DEMO_SHOPPER = DemoLogin("shopper", "shopper@example.com", "demo-shopper-pass", "+447700900123")
DEMO_OWNER = DemoLogin("owner", "owner@example.com", "demo-owner-pass", "+447700900456")


def seed_products(currency: str) -> int:
    """Add the demo products that are not there yet; return how many were added."""
    existing = set(db.session.scalars(select(Product.name)))
    added = 0
    for name, price_minor, stock, description in PRODUCTS:
        if name not in existing:
            db.session.add(
                Product(
                    name=name,
                    price_minor=price_minor,
                    currency=currency,
                    stock=stock,
                    description=description,
                )
            )
            added += 1
    return added


def ensure_account(login: DemoLogin, role: Role, hash_method: str) -> User:
    """The account for `login`, created with a verified phone if it does not exist yet."""
    user = accounts.find_user_by_email(login.email)
    if user is None:
        user = accounts.register_user(
            login.email, login.phone, login.password, hash_method=hash_method, role=role
        )
        user.phone_verified_at = clock.now()
        db.session.flush()
        # A device already known, so that the first browser sign-in shows a new-device alert.
        db.session.add(KnownDevice(user_id=user.id, device_id="demo-phone", browser=DEMO_DEVICE))
    return user


def seed_demo(currency: str, hash_method: str) -> list[DemoLogin]:
    """Load the demo catalog, accounts and order history (idempotent); return the logins."""
    seed_products(currency)
    ensure_account(DEMO_SHOPPER, Role.SHOPPER, hash_method)
    ensure_account(DEMO_OWNER, Role.OWNER, hash_method)
    seed_history(clock.now(), currency)
    db.session.commit()
    return [DEMO_SHOPPER, DEMO_OWNER]


# Order history -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoCustomer:
    """A shopper with past orders only: not an account to sign in with."""

    name: str
    email: str
    phone: str
    joined_days_ago: float
    orders: int  # over the last 30 days
    max_price_minor: int  # the dearest product they buy
    homes: tuple[tuple[str, str, str], ...]  # address line, town, postcode
    devices: int = 1
    phone_changed_days_ago: float | None = None
    splurges: tuple[str, ...] = ()  # one order each, whatever their price


HISTORY_MARKER = "demo-history-"
HISTORY_DAYS = 30
HISTORY_CUSTOMERS = (
    DemoCustomer(
        "Amira Haddad",
        "amira.haddad@example.com",
        "+447700900201",
        240,
        22,
        25_000,
        (("4 Elm Row", "Edinburgh", "EH7 4AA"), ("1 Princes Street", "Edinburgh", "EH2 2EQ")),
        devices=2,
    ),
    DemoCustomer(
        "Ben Okafor",
        "ben.okafor@example.com",
        "+447700900202",
        75,
        16,
        250_000,
        (("22 Mill Lane", "Leeds", "LS1 4AP"),),
        splurges=("Camera kit", "Laptop"),
    ),
    # Joined last week: everything over the new-account amount asks for a code.
    DemoCustomer(
        "Chloe Martin",
        "chloe.martin@example.com",
        "+447700900203",
        6,
        7,
        70_000,
        (("9 Harbour Road", "Bristol", "BS1 5TY"),),
    ),
    # Changed their number recently: orders in the 72 h after it are held.
    DemoCustomer(
        "Dmitri Volkov",
        "dmitri.volkov@example.com",
        "+447700900204",
        400,
        17,
        700_000,
        (("31 Queen's Drive", "Glasgow", "G42 8BS"),),
        devices=2,
        phone_changed_days_ago=11,
        splurges=("Designer sofa",),
    ),
    # Many small orders: the low-value exemption and the 24-hour rule at work.
    DemoCustomer(
        "Eve Nakamura",
        "eve.nakamura@example.com",
        "+447700900205",
        150,
        28,
        7_000,
        (("7 Castle Hill", "Cardiff", "CF10 1BH"),),
    ),
)
GIFT_ADDRESSES = (
    ("18 Rose Street", "Manchester", "M4 1HN"),
    ("5 Station Road", "Norwich", "NR1 1EF"),
    ("60 High Street", "Oxford", "OX1 4AP"),
)


@dataclass(frozen=True)
class PlannedOrder:
    at: datetime
    customer: DemoCustomer
    contents: dict[str, int]  # product name -> quantity
    device_id: str
    home: tuple[str, str, str]


def has_history() -> bool:
    return (
        db.session.scalar(
            select(Order.id).where(Order.idempotency_key.startswith(HISTORY_MARKER)).limit(1)
        )
        is not None
    )


def seed_history(now: datetime, currency: str) -> int:
    """A month of past orders before `now`, decided by the default rules (not committed).

    Each order's risk inputs come from the orders created before it, as at a real checkout;
    stock is left alone. Deterministic for a given `now`; adds nothing if the history is
    already there. Returns how many orders it added.
    """
    if has_history():
        return 0
    seed_products(currency)
    # Not a secret: a fixed seed so that every demo shows the same month.
    rng = random.Random(42)  # noqa: S311
    products = {product.name: product for product in db.session.scalars(select(Product))}
    customers = {customer.email: _history_customer(customer, now) for customer in HISTORY_CUSTOMERS}
    rules = risk.RiskRules()
    plan = sorted(_plan_orders(rng, now), key=lambda planned: planned.at)
    for number, planned in enumerate(plan):
        _add_history_order(
            rng, number, planned, customers[planned.customer.email], products, rules, currency
        )
    db.session.flush()
    return len(plan)


def _history_customer(customer: DemoCustomer, now: datetime) -> User:
    user = accounts.find_user_by_email(customer.email)
    if user is not None:
        return user
    joined = now - timedelta(days=customer.joined_days_ago)
    changed = customer.phone_changed_days_ago
    user = User(
        email=customer.email,
        phone=customer.phone,
        # A random password nobody knows, cheaply hashed: these accounts are never signed in.
        password_hash=generate_password_hash(
            secrets.token_urlsafe(24), method="pbkdf2:sha256:1000"
        ),
        role=Role.SHOPPER,
        created_at=joined,
        phone_verified_at=joined,
        phone_changed_at=now - timedelta(days=changed) if changed is not None else None,
    )
    db.session.add(user)
    return user


def _plan_orders(rng: random.Random, now: datetime) -> list[PlannedOrder]:
    start = now - timedelta(days=HISTORY_DAYS) + timedelta(hours=1)
    latest = now - timedelta(minutes=30)
    plan = []
    for customer in HISTORY_CUSTOMERS:
        earliest = max(start, now - timedelta(days=customer.joined_days_ago, hours=-1))
        span = (latest - earliest).total_seconds()
        times = [earliest + timedelta(seconds=rng.random() * span) for _ in range(customer.orders)]
        if customer.phone_changed_days_ago is not None:
            changed = now - timedelta(days=customer.phone_changed_days_ago)
            times += [changed + timedelta(hours=rng.uniform(3, 60)) for _ in range(2)]
        splurges = [
            (earliest + timedelta(seconds=rng.random() * span), {name: 1})
            for name in customer.splurges
        ]
        slug = customer.email.split(".")[0]
        usual = [f"demo-{slug}-device-{index}" for index in range(customer.devices)]
        eligible = [name for name, price, _, _ in PRODUCTS if price <= customer.max_price_minor]
        # Cheaper things sell more often.
        weights = [
            1 / price**0.3 for _, price, _, _ in PRODUCTS if price <= customer.max_price_minor
        ]
        baskets = []
        for at in times:
            contents: dict[str, int] = {}
            for name in rng.choices(eligible, weights=weights, k=rng.choice((1, 1, 2, 2, 3))):
                contents[name] = rng.choice((1, 1, 1, 1, 2))
            baskets.append((at, contents))
        for index, (at, contents) in enumerate(baskets + splurges):
            device = rng.choice(usual) if rng.random() < 0.8 else f"demo-{slug}-new-{index}"
            home = rng.choice(customer.homes) if rng.random() < 0.85 else rng.choice(GIFT_ADDRESSES)
            plan.append(PlannedOrder(at, customer, contents, device, home))
    return plan


def _add_history_order(
    rng: random.Random,
    number: int,
    planned: PlannedOrder,
    user: User,
    products: dict[str, Product],
    rules: risk.RiskRules,
    currency: str,
) -> None:
    at, customer = planned.at, planned.customer
    line1, city, postcode = planned.home
    address = ShippingAddress(customer.name, line1, city, postcode, "GB")
    lines = [(products[name], quantity) for name, quantity in planned.contents.items()]
    total = sum(product.price_minor * quantity for product, quantity in lines)
    db.session.flush()
    inputs = risk.gather_inputs(
        user,
        total_minor=total,
        device_id=planned.device_id,
        address=address.key,
        now=at,
        step_up_locked=False,
    )
    if inputs.phone_changed_at is not None and inputs.phone_changed_at > at:
        inputs = replace(inputs, phone_changed_at=None)  # the number changed later
    decision = risk.evaluate(inputs, rules, at)
    order = Order(
        ref="SH-" + "".join(rng.choice(REF_ALPHABET) for _ in range(8)),
        user_id=user.id,
        status=STATUS_FOR[decision.outcome],
        currency=currency,
        total_minor=total,
        idempotency_key=f"{HISTORY_MARKER}{number:03d}",
        fingerprint=fingerprint({product.id: quantity for product, quantity in lines}, address),
        risk_inputs=json.dumps(inputs.to_json()),
        device_id=planned.device_id,
        address_key=address.key,
        full_name=address.full_name,
        address_line1=address.address_line1,
        city=address.city,
        postal_code=address.postal_code,
        country=address.country,
        created_at=at,
        updated_at=at,
    )
    record_decision(order, decision)
    order.items = [
        OrderItem(
            product_id=product.id,
            product_name=product.name,
            unit_price_minor=product.price_minor,
            quantity=quantity,
        )
        for product, quantity in lines
    ]
    db.session.add(order)
    db.session.flush()
    if decision.outcome == risk.Outcome.OTP:
        _add_code_history(rng, order, user)


def _add_code_history(rng: random.Random, order: Order, user: User) -> None:
    """The order's code, as sent and then entered, left to expire, or killed by a cart change."""
    at = order.created_at
    expires = at + OtpPolicy().validity
    ip = f"198.51.100.{zlib.crc32((order.device_id or '').encode()) % 250 + 1}"
    amount = format_money(order.total_minor, order.currency)
    config = current_app.config
    text = code_sms(config["SHOP_NAME"], order_action(order.ref, amount), config["PUBLIC_BASE_URL"])
    roll = rng.random()
    ending = "verified" if roll < 0.8 else "expired" if roll < 0.92 else "cancelled"
    delivered = ending == "verified" or rng.random() < 0.7
    sms = SmsMessage(
        user_id=user.id,
        to_number=user.phone,
        kind=SmsKind.OTP_ORDER,
        # The code itself was never kept: history holds only the masked text.
        body=text(REDACTED),
        redacted_body=text(REDACTED),
        expires_at=expires,
        status=SmsStatus.DELIVERED if delivered else SmsStatus.FAILED,
        attempts=1,
        next_attempt_at=at,
        sent_at=at + timedelta(seconds=2),
        receipt_status="delivered" if delivered else "failed",
        receipt_error_code="0" if delivered else "1",
        receipt_at=at + timedelta(seconds=rng.uniform(4, 20)),
        created_at=at,
        updated_at=at + timedelta(seconds=20),
    )
    db.session.add(sms)
    db.session.flush()
    challenge = OtpChallenge(
        user_id=user.id,
        purpose=OtpPurpose.ORDER,
        binding=binding_for(
            "order", order.ref, order.total_minor, order.currency, order.fingerprint
        ),
        order_id=order.id,
        phone=user.phone,
        client_ip=ip,
        # Random, so that no code matches it.
        code_hmac=f"{rng.getrandbits(256):064x}",
        sms_id=sms.id,
        created_at=at,
        expires_at=expires,
    )
    events = [(audit.Event.CODE_SENT, at, {})]
    if ending == "verified":
        done = at + timedelta(seconds=rng.uniform(25, 150))
        challenge.consumed_at = done
        order.status, order.step_up_verified_at, order.updated_at = OrderStatus.PLACED, done, done
        events.append((audit.Event.CODE_VERIFIED, done, {}))
    elif ending == "expired":
        challenge.ended_at, challenge.end_reason = expires, "expired"
        order.status, order.expires_at, order.updated_at = OrderStatus.EXPIRED, expires, expires
    else:
        done = at + timedelta(seconds=rng.uniform(40, 200))
        challenge.ended_at, challenge.end_reason = done, "binding_changed"
        order.status, order.expires_at, order.updated_at = OrderStatus.CANCELLED, expires, done
        events.append(
            (audit.Event.CODE_INVALIDATED, done, {"reason": "changed after the code was sent"})
        )
    db.session.add(challenge)
    for event, when, detail in events:
        row = audit.record(event, user_id=user.id, ip=ip, purpose=str(OtpPurpose.ORDER), **detail)
        row.at = when
