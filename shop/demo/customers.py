"""The demo's past customers and the month of orders they place: who they are, what they
buy, when, from which device and to which address. `shop.demo.history` plays the plan
through the shop's use cases.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from shop.demo.catalog import PRODUCTS


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
    # A number changed recently: from `previous_phone` to `phone`, this many days ago.
    phone_changed_days_ago: float | None = None
    previous_phone: str | None = None
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
    # Changed their number recently: orders that need a code in the 72 h after it are held
    # (a few days ago, so that the owner's review queue has them).
    DemoCustomer(
        "Dmitri Volkov",
        "dmitri.volkov@example.com",
        "+447700900204",
        400,
        17,
        700_000,
        (("31 Queen's Drive", "Glasgow", "G42 8BS"),),
        devices=2,
        phone_changed_days_ago=4,
        previous_phone="+447700900214",
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


def plan_orders(rng: random.Random, now: datetime) -> list[PlannedOrder]:
    start = now - timedelta(days=HISTORY_DAYS) + timedelta(hours=1)
    latest = now - timedelta(minutes=30)
    plan = []
    for customer in HISTORY_CUSTOMERS:
        earliest = max(start, now - timedelta(days=customer.joined_days_ago, hours=-1))
        span = (latest - earliest).total_seconds()
        times = [earliest + timedelta(seconds=rng.random() * span) for _ in range(customer.orders)]
        splurges = [
            (earliest + timedelta(seconds=rng.random() * span), {name: 1})
            for name in customer.splurges
        ]
        if customer.phone_changed_days_ago is not None:
            # Soon after the change: a small order, and one that would need a code (held).
            changed = now - timedelta(days=customer.phone_changed_days_ago)
            times.append(changed + timedelta(hours=rng.uniform(3, 30)))
            splurges.append((changed + timedelta(hours=rng.uniform(31, 60)), {"Office chair": 1}))
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
