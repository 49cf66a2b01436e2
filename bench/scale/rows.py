"""The rows of a generated history, each as the shop itself writes it (`make bench-scale`).

`Rows` hands tuples in the models' column order to a `BulkWriter`: products, customers with
their known devices, SMS in the final states real ones end in, codes with their failures and
audit trail, audit events, refused sends. Ids are counted on from the database's highest, so
the rows go on top of the demo; everything random comes from the caller's `random.Random`.
"""

import base64
import json
import random
from collections import deque
from dataclasses import dataclass, field

from sqlalchemy import func, select

from bench.scale.bulk import BulkWriter
from shop.extensions import db
from shop.models import (
    AuditEvent,
    DecisionInputs,
    KnownDevice,
    OrderEvent,
    OtpChallenge,
    OtpFailure,
    Product,
    SendRefusal,
    SmsMessage,
    SmsStatus,
    StepUp,
    User,
)
from shop.models import Order as OrderRow
from shop.models import OrderItem as OrderItemRow
from shop.orders.placement import REF_ALPHABET
from shop.otp.texts import code_sms
from shop.risk import address_key
from shop.sms.sealing import MASK

CODE_SECONDS = 300
BROWSERS = (
    "Firefox on Linux",
    "Chrome on Windows",
    "Safari on iOS",
    "Chrome on Android",
    "Safari on macOS",
    "Edge on Windows",
)
FIRST_NAMES = ("Alex", "Sam", "Priya", "Tom", "Mei", "Jonas", "Aisha", "Luca", "Nora", "Kofi")
LAST_NAMES = ("Smith", "Patel", "Nowak", "Garcia", "Okafor", "Chen", "Murphy", "Rossi", "Berg")
STREETS = ("High Street", "Station Road", "Church Lane", "Mill Road", "Park Avenue", "Green")
TOWNS = (("London", "SW1A 1AA"), ("Leeds", "LS1 4AP"), ("York", "YO1 7HH"), ("Bath", "BA1 1SU"))
ADJECTIVES = ("Walnut", "Linen", "Copper", "Wool", "Oak", "Ceramic", "Steel", "Cotton", "Glass")
NOUNS = ("lamp", "throw", "kettle", "scarf", "stool", "mug", "rack", "tote", "vase", "clock")
# Order references: the order id scrambled by an odd multiplier modulo 32**8, written in the
# shop's alphabet: as random-looking as real ones, and never twice the same.
REF_SPACE = len(REF_ALPHABET) ** 8
REF_SCRAMBLE = 0x9E3779B97F
# Tables written, parents before the tables that refer to them (see BulkWriter).
MODELS = (
    User,
    KnownDevice,
    Product,
    OrderRow,
    OrderItemRow,
    OrderEvent,
    DecisionInputs,
    SmsMessage,
    OtpChallenge,
    StepUp,
    OtpFailure,
    SendRefusal,
    AuditEvent,
)


def detail(**values) -> str:
    """An audit event's detail, as `shop.audit.record` writes it."""
    return json.dumps(values, sort_keys=True) if values else ""


@dataclass(eq=False)
class Customer:
    """A generated account and its history as the risk rules see it."""

    id: int
    phone: str
    name: str
    ip: str
    created_at: float
    homes: list[tuple[str, str, str, str]]  # line, town, postcode, address key
    devices: list[str]
    phone_changed_at: float | None
    alerts: bool
    counted: int = 0
    recent: deque = field(default_factory=deque)  # (time, total) of the last 24 h
    last_otp: float | None = None
    since_otp: int = 0
    since_otp_amount: int = 0
    seen_devices: set = field(default_factory=set)
    seen_addresses: set = field(default_factory=set)
    live_order_code: bool = False


class Rows:
    """Writes rows through `writer`, counting the SMS and audit events written."""

    def __init__(self, writer: BulkWriter, rng: random.Random, now: float, end: float) -> None:
        self.writer = writer
        self.rng = rng
        self.now = now
        self.end = end  # the last moment of the history
        self.next_id: dict[str, int] = {}
        self.refs: set[str] = set()
        self.products: list[tuple[int, str, int]] = []  # id, name, price
        self.currency = "EUR"
        self.shop = "Shop"
        self.host = "127.0.0.1"
        self.sms = self.audit = 0
        for model in MODELS:
            table = model.__table__
            writer.table(table.name, [column.name for column in table.columns])
            if "id" in table.columns:
                self.next_id[table.name] = (db.session.scalar(select(func.max(model.id))) or 0) + 1
        self.refs = set(db.session.scalars(select(OrderRow.ref)))

    def new_id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def add_products(self, count: int) -> None:
        """The demo's products, and enough new ones to make `count`."""
        existing = db.session.execute(
            select(Product.id, Product.name, Product.price_minor, Product.currency).order_by(
                Product.id
            )
        ).all()
        if existing:
            self.currency = existing[0].currency
        self.products = [(row.id, row.name, row.price_minor) for row in existing]
        rng = self.rng
        for number in range(max(0, count - len(existing))):
            product_id = self.new_id("products")
            adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
            name = f"{adjective} {noun} {number + 1:05d}"
            band = rng.random()
            if band < 0.7:
                price = rng.randrange(199, 6_000)
            elif band < 0.95:
                price = rng.randrange(6_000, 40_000)
            else:
                price = rng.randrange(40_000, 650_000)
            stock = 0 if rng.random() < 0.03 else rng.choice((1, 2, 3, 8, 20, 60, 250))
            description = f"A {adjective.lower()} {noun}, made to last. Item {number + 1}."
            self.writer.add(
                "products", (product_id, name, description, price, self.currency, stock)
            )
            self.products.append((product_id, name, price))

    def add_customers(self, count: int) -> list[Customer]:
        rng, customers = self.rng, []
        for number in range(count):
            user_id = self.new_id("users")
            young = rng.random() < 0.03
            created = self.now - 86400 * (rng.uniform(0, 7) if young else rng.uniform(7, 720))
            homes = []
            for _ in range(1 if rng.random() < 0.8 else 2):
                line = f"{rng.randrange(1, 200)} {rng.choice(STREETS)}"
                town, postcode = rng.choice(TOWNS)
                homes.append((line, town, postcode, address_key(line, town, postcode, "GB")))
            devices = [f"gen-{user_id}-{k}" for k in range(1 if rng.random() < 0.6 else 2)]
            changed = self.now - rng.uniform(0, 4) * 86400 if rng.random() < 0.01 else None
            customer = Customer(
                id=user_id,
                phone=f"+447700900{number % 1000:03d}",
                name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                ip=f"81.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                created_at=created,
                homes=homes,
                devices=devices,
                phone_changed_at=changed,
                alerts=rng.random() < 0.95,
            )
            customers.append(customer)
            self.writer.add(
                "users",
                (
                    user_id,
                    f"customer{number:06d}@example.com",
                    customer.phone,
                    created + 60,
                    "!",  # matches no password: these accounts cannot sign in
                    "shopper",
                    created,
                    changed,
                    customer.alerts,
                    customer.alerts,
                    False,
                    False,
                    None,
                    customer.alerts,
                ),
            )
            for device in devices:
                seen = rng.uniform(created, self.end)
                browser = rng.choice(BROWSERS)
                row = (self.new_id("known_devices"), user_id, device, browser, created, seen)
                self.writer.add("known_devices", row)
        return customers

    def random_token(self, size: int) -> str:
        raw = self.rng.getrandbits(size * 8).to_bytes(size, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def random_hex(self) -> str:
        return f"{self.rng.getrandbits(256):064x}"

    def ref(self, order_id: int) -> str:
        scrambled = order_id * REF_SCRAMBLE % REF_SPACE
        while True:
            number, digits = scrambled, []
            for _ in range(8):
                number, digit = divmod(number, len(REF_ALPHABET))
                digits.append(REF_ALPHABET[digit])
            ref = "SH-" + "".join(digits)
            if ref not in self.refs:  # one of the demo's random references: very unlikely
                return ref
            scrambled = (scrambled + 1) % REF_SPACE

    def money(self, minor: int) -> str:
        return f"€{minor / 100:,.2f}" if self.currency == "EUR" else f"{minor / 100:,.2f}"

    def audit_event(self, at: float, event: str, user: Customer, detail: str = "") -> None:
        self.audit += 1
        self.writer.add(
            "audit_events",
            (self.new_id("audit_events"), at, event, user.id, user.id, user.ip, detail),
        )

    def message(
        self,
        at: float,
        user: Customer,
        kind: str,
        body: str,
        *,
        code: bool,
        masked: bool = False,
        order_id: int | None = None,
    ) -> int:
        """One message, in the final state most messages end in; returns its id. A code's
        body, or a `masked` one (an alert's "not me" link), is the masked copy it keeps once
        handed over."""
        self.sms += 1
        sms_id = self.new_id("sms_messages")
        rng = self.rng
        roll = rng.random()
        sent_at = at + rng.uniform(0.2, 2)
        provider_id, price, error, receipt, receipt_code, receipt_at = (
            f"{sms_id:016X}",
            "0.0333",
            None,
            "delivered",
            "0",
            sent_at + rng.uniform(1, 20),
        )
        status = SmsStatus.DELIVERED
        if roll < 0.04:
            status, receipt, receipt_code, receipt_at = SmsStatus.SENT, None, None, None
        elif roll < 0.07:
            status, receipt, receipt_code = SmsStatus.FAILED, "failed", "1"
        elif roll < 0.08:
            status, receipt, receipt_code = SmsStatus.EXPIRED, "expired", "5"
        elif roll < 0.085:
            status, receipt, receipt_code = SmsStatus.REJECTED, "rejected", "6"
        elif code and roll < 0.1:
            status, provider_id, price, receipt, receipt_code, receipt_at, sent_at = (
                SmsStatus.DROPPED,
                None,
                None,
                None,
                None,
                None,
                None,
            )
            error = "code expired before sending"
        self.writer.add(
            "sms_messages",
            (
                sms_id,
                user.id,
                order_id,
                user.phone,
                kind,
                body,
                body if code or masked else None,
                at + CODE_SECONDS if code else None,
                status,
                0 if status == SmsStatus.DROPPED else 1,
                at,
                None,
                None,
                provider_id,
                price,
                error,
                receipt,
                receipt_code,
                receipt_at,
                at,
                sent_at,
                receipt_at or sent_at or at,
            ),
        )
        return sms_id

    def code_text(self, action: str) -> str:
        return code_sms(self.shop, action, f"http://{self.host}:5000")(MASK)

    def alert(
        self, at: float, user: Customer, kind: str, words: str, order_id: int | None = None
    ) -> None:
        if user.alerts:
            link = f"http://{self.host}:5000/account/not-me/{MASK}"
            body = f"{self.shop}: {words} Not you? {link}"
            self.message(at, user, kind, body, code=False, masked=True, order_id=order_id)

    def order_event(self, order_id: int, at: float, kind: str, **facts) -> None:
        """One line of an order's timeline, as `shop.orders.timeline.record` writes it."""
        text = json.dumps(facts, sort_keys=True) if facts else ""
        self.writer.add(
            "order_events", (self.new_id("order_events"), order_id, at, kind, None, None, text)
        )

    def challenge(
        self,
        at: float,
        user: Customer,
        purpose: str,
        sms_id: int,
        order_id: int | None,
        end: str,
        settled: float,
    ) -> None:
        """A code sent at `at`: `end` is "verified" or "binding_changed" (at `settled`),
        "expired" or "live"."""
        rng = self.rng
        challenge_id = self.new_id("otp_challenges")
        failures = 1 if rng.random() < 0.06 else 0
        consumed = settled if end == "verified" else None
        ended = None
        if end == "expired":
            ended = at + CODE_SECONDS
        elif end == "binding_changed":
            ended = settled
        self.writer.add(
            "otp_challenges",
            (
                challenge_id,
                self.random_token(16),
                user.id,
                purpose,
                self.random_hex(),
                order_id,
                user.phone,
                "GB",
                user.ip,
                self.random_hex(),
                sms_id,
                failures,
                at,
                at,
                at + CODE_SECONDS if end != "live" else self.now + 7200,
                consumed,
                ended,
                None if end in ("verified", "live") else end,
            ),
        )
        self.step_up(at, user, purpose, order_id, end, consumed, ended)
        self.audit_event(at, "code_sent", user, detail(purpose=purpose, queued=False))
        for _ in range(failures):
            failed_at = at + rng.uniform(5, 20)
            self.writer.add(
                "otp_failures",
                (self.new_id("otp_failures"), user.id, challenge_id, "sms", failed_at),
            )
            self.audit_event(failed_at, "code_failed", user, detail(purpose=purpose))
        if consumed is not None:
            self.audit_event(consumed, "code_verified", user, detail(purpose=purpose))
        elif end == "binding_changed":
            self.audit_event(
                ended,
                "code_invalidated",
                user,
                detail(purpose=purpose, reason="changed after the code was sent"),
            )

    def step_up(
        self,
        at: float,
        user: Customer,
        purpose: str,
        order_id: int | None,
        end: str,
        consumed: float | None,
        ended: float | None,
    ) -> None:
        """The step-up a code answers (the customers of the data set have no passkey or
        app: SMS is the one factor offered)."""
        self.writer.add(
            "step_ups",
            (
                self.new_id("step_ups"),
                self.random_token(16),
                user.id,
                purpose,
                self.random_hex(),
                order_id,
                "sms",
                at,
                at + CODE_SECONDS if end != "live" else self.now + 7200,
                0,
                None,
                None,
                consumed,
                "sms" if consumed is not None else None,
                ended,
                None if end in ("verified", "live") else end,
            ),
        )

    def refusal(self, at: float, user: Customer, reason: str) -> None:
        """A sign-in code that was not sent, and why."""
        row = (self.new_id("sms_refusals"), at, reason, "login", user.phone, "GB", user.ip, user.id)
        self.writer.add("sms_refusals", row)
