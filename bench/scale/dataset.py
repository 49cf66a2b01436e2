"""A busy shop's last month, written in bulk on top of the demo (`make bench-scale`).

Customers, products with stock, and a month of events in time order, so that ids grow with
time as in a real shop: orders with their items, each decided by the real rule engine
(`shop.risk.evaluate`, default rules) from the customer's history so far, its inputs and
reasons stored as checkout stores them; an order code, its SMS and audit trail for every
order that needed one (verified, abandoned or cancelled); the "order placed" alert; sign-ins
with and without a code, new-device alerts, failed sign-ins and refused sends. SMS end in
every status a real outbox holds, and the newest few are left due, retrying or in flight for
the delivery worker. Counts are steered so that orders, SMS and audit events all reach
their size together.

Rows go through `BulkWriter` (executemany or COPY), not the ORM: a million orders through
the use cases would take hours. Everything random comes from one seeded `random.Random`.
"""

import base64
import json
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text, update

from bench.scale.bulk import BulkWriter
from bench.scale.sizes import Size
from shop.extensions import db
from shop.models import (
    AuditEvent,
    KnownDevice,
    OrderStatus,
    OtpChallenge,
    OtpFailure,
    Product,
    SendRefusal,
    SmsMessage,
    SmsStatus,
    User,
)
from shop.models import Order as OrderRow
from shop.models import OrderItem as OrderItemRow
from shop.orders.placement import REF_ALPHABET
from shop.otp.codes import REDACTED
from shop.otp.texts import code_sms
from shop.risk import RiskInputs, RiskRules, address_key, evaluate

HISTORY_DAYS = 30
CODE_SECONDS = 300
DUE_MESSAGES = 10  # queued and due: what the delivery worker's next claim takes
RETRYING_MESSAGES = 5  # queued for a later attempt after a failure
IN_FLIGHT_MESSAGES = 3  # claimed by a worker whose lease is still running
PENDING_ORDERS = 5
UNSENT_COLUMNS = (
    "provider_message_id",
    "provider_price",
    "sent_at",
    "receipt_status",
    "receipt_error_code",
    "receipt_at",
)  # waiting for their code when the data set ends

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
LINES = (1,) * 6 + (2,) * 3 + (3,)  # lines per order, as often as they come
QUANTITIES = (1,) * 16 + (2,) * 3 + (3,)
# Order references: the order id scrambled by an odd multiplier modulo 32**8, written in the
# shop's alphabet: as random-looking as real ones, and never twice the same.
REF_SPACE = len(REF_ALPHABET) ** 8
REF_SCRAMBLE = 0x9E3779B97F
REFUSALS = ("cooldown", "number_10_min", "number_day", "ip_numbers", "ip_codes")


def _json(**values) -> str:
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


class Generator:
    """Writes one data set through `writer`; `run()` returns the rows written per table."""

    def __init__(self, writer: BulkWriter, size: Size, *, now: datetime, seed: int) -> None:
        self.writer = writer
        self.size = size
        self.rng = random.Random(seed)  # noqa: S311
        self.now = now.timestamp()
        self.end = self.now - 300  # nothing after "now", verification times included
        self.start = self.now - HISTORY_DAYS * 86400
        self.rules = RiskRules()
        self.next_id: dict[str, int] = {}
        self.customers: list[Customer] = []
        self.products: list[tuple[int, str, int]] = []  # id, name, price
        self.currency = "EUR"
        self.shop = "Shop"
        self.host = "127.0.0.1"
        self.refs: set[str] = set()
        self.orders = self.sms = self.audit = 0
        self.pending_left = PENDING_ORDERS

    # Set-up ---------------------------------------------------------------------------------

    def _first_ids(self) -> None:
        for name, model in (
            ("users", User),
            ("products", Product),
            ("known_devices", KnownDevice),
            ("orders", OrderRow),
            ("order_items", OrderItemRow),
            ("otp_challenges", OtpChallenge),
            ("otp_failures", OtpFailure),
            ("sms_messages", SmsMessage),
            ("sms_refusals", SendRefusal),
            ("audit_events", AuditEvent),
        ):
            self.next_id[name] = (db.session.scalar(select(func.max(model.id))) or 0) + 1
        self.refs = set(db.session.scalars(select(OrderRow.ref)))

    def _id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def _declare_tables(self) -> None:
        # Parents before the tables that refer to them (see BulkWriter).
        for model in (
            User,
            KnownDevice,
            Product,
            SmsMessage,
            OrderRow,
            OrderItemRow,
            OtpChallenge,
            OtpFailure,
            SendRefusal,
            AuditEvent,
        ):
            table = model.__table__
            self.writer.table(table.name, [column.name for column in table.columns])

    def _products(self) -> None:
        existing = db.session.execute(
            select(Product.id, Product.name, Product.price_minor, Product.currency).order_by(
                Product.id
            )
        ).all()
        if existing:
            self.currency = existing[0].currency
        self.products = [(row.id, row.name, row.price_minor) for row in existing]
        rng = self.rng
        for number in range(max(0, self.size.products - len(existing))):
            product_id = self._id("products")
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

    def _customers(self) -> None:
        rng = self.rng
        for number in range(self.size.users):
            user_id = self._id("users")
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
            self.customers.append(customer)
            self.writer.add(
                "users",
                (
                    user_id,
                    f"customer{number:06d}@example.com",
                    customer.phone,
                    created + 60,
                    "!",  # matches no password: these accounts cannot sign in
                    "shopper",
                    self._token(24),
                    created,
                    changed,
                    customer.alerts,
                    customer.alerts,
                    False,
                    False,
                ),
            )
            for device in devices:
                seen = rng.uniform(created, self.end)
                browser = rng.choice(BROWSERS)
                row = (self._id("known_devices"), user_id, device, browser, created, seen)
                self.writer.add("known_devices", row)

    def _token(self, size: int) -> str:
        raw = self.rng.getrandbits(size * 8).to_bytes(size, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def _hex(self) -> str:
        return f"{self.rng.getrandbits(256):064x}"

    def _ref(self, order_id: int) -> str:
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

    def _money(self, minor: int) -> str:
        return f"€{minor / 100:,.2f}" if self.currency == "EUR" else f"{minor / 100:,.2f}"

    # Rows -----------------------------------------------------------------------------------

    def _audit(self, at: float, event: str, user: Customer, detail: str = "") -> None:
        self.audit += 1
        self.writer.add(
            "audit_events",
            (self._id("audit_events"), at, event, user.id, user.id, user.ip, detail),
        )

    def _sms(self, at: float, user: Customer, kind: str, body: str, *, code: bool) -> int:
        """One message, in the final state most messages end in; returns its id."""
        self.sms += 1
        sms_id = self._id("sms_messages")
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
                user.phone,
                kind,
                body,
                body if code else None,
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

    def _code_text(self, action: str) -> str:
        return code_sms(self.shop, action, f"http://{self.host}:5000")(REDACTED)

    def _alert(self, at: float, user: Customer, kind: str, words: str) -> None:
        if user.alerts:
            link = f"http://{self.host}:5000/account/not-me/{self._token(45)}"
            self._sms(at, user, kind, f"{self.shop}: {words} Not you? {link}", code=False)

    def _challenge(
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
        challenge_id = self._id("otp_challenges")
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
                self._token(16),
                user.id,
                purpose,
                self._hex(),
                order_id,
                user.phone,
                user.ip,
                self._hex(),
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
        self._audit(at, "code_sent", user, _json(purpose=purpose, queued=False))
        for _ in range(failures):
            failed_at = at + rng.uniform(5, 20)
            self.writer.add(
                "otp_failures", (self._id("otp_failures"), user.id, challenge_id, failed_at)
            )
            self._audit(failed_at, "code_failed", user, _json(purpose=purpose))
        if consumed is not None:
            self._audit(consumed, "code_verified", user, _json(purpose=purpose))
        elif end == "binding_changed":
            self._audit(
                ended,
                "code_invalidated",
                user,
                _json(purpose=purpose, reason="changed after the code was sent"),
            )

    # Events ---------------------------------------------------------------------------------

    def _order(self, at: float) -> None:
        rng = self.rng
        user = rng.choice(self.customers)
        order_id = self._id("orders")
        lines = {}
        for _ in range(rng.choice(LINES)):
            product = rng.choice(self.products)
            lines[product] = rng.choice(QUANTITIES)
        total = sum(product[2] * quantity for product, quantity in lines.items())
        if rng.random() < 0.92:
            line, town, postcode, key = rng.choice(user.homes)
        else:
            line, (town, postcode) = f"{rng.randrange(1, 99)} Gift Lane", rng.choice(TOWNS)
            key = address_key(line, town, postcode, "GB")
        device = rng.choice(user.devices) if rng.random() < 0.9 else f"{user.devices[0]}-new"
        while user.recent and user.recent[0][0] <= at - 86400:
            user.recent.popleft()
        inputs = {
            "total_minor": total,
            "account_created_at": datetime.fromtimestamp(user.created_at, UTC),
            "previous_orders": user.counted,
            "orders_24h": len(user.recent),
            "amount_24h_minor": sum(amount for _, amount in user.recent),
            "device_known": device in user.seen_devices,
            "address_known": key in user.seen_addresses,
            "phone_changed_at": (
                datetime.fromtimestamp(user.phone_changed_at, UTC)
                if user.phone_changed_at
                else None
            ),
            "orders_since_otp": user.since_otp,
            "amount_since_otp_minor": user.since_otp_amount,
            "step_up_locked": False,
        }
        decision = evaluate(RiskInputs(**inputs), self.rules, datetime.fromtimestamp(at, UTC))
        outcome = decision.outcome.value
        for key_name in ("account_created_at", "phone_changed_at"):
            if inputs[key_name] is not None:
                inputs[key_name] = inputs[key_name].isoformat()
        reasons = [
            {"code": reason.code, "outcome": reason.outcome.value, "text": reason.text}
            for reason in decision.reasons
        ]
        ref = self._ref(order_id)
        roll = rng.random()
        verified_at = expires_at = None
        code_end = None
        if outcome == "allow":
            status = OrderStatus.PLACED
        elif outcome == "block":
            status = OrderStatus.BLOCKED
        elif outcome == "hold":
            status = OrderStatus.HELD if roll < 0.7 else OrderStatus.CANCELLED
        elif at > self.end - 900 and self.pending_left and not user.live_order_code:
            status, code_end, expires_at = OrderStatus.PENDING_VERIFICATION, "live", self.now + 7200
            self.pending_left -= 1
            user.live_order_code = True
        elif roll < 0.86:
            status, code_end = OrderStatus.PLACED, "verified"
        elif roll < 0.95:
            status, code_end, expires_at = OrderStatus.EXPIRED, "expired", at + CODE_SECONDS
        else:
            status, code_end = OrderStatus.CANCELLED, "binding_changed"
            expires_at = at + CODE_SECONDS
        settled = at + rng.uniform(20, 200)  # when the code was entered, or the cart changed
        if code_end == "verified":
            verified_at = settled
        updated = verified_at or (expires_at if status == OrderStatus.EXPIRED else at)
        self.writer.add(
            "orders",
            (
                order_id,
                ref,
                user.id,
                status,
                self.currency,
                total,
                user.name,
                line,
                town,
                postcode,
                "GB",
                f"gen-{order_id}",
                self._hex(),
                outcome,
                json.dumps(reasons),
                json.dumps(inputs),
                device,
                key,
                expires_at,
                verified_at,
                at,
                updated,
            ),
        )
        for (product_id, name, price), quantity in lines.items():
            self.writer.add(
                "order_items",
                (self._id("order_items"), order_id, product_id, name, price, quantity),
            )
        if code_end is not None:
            body = self._code_text(f"confirm order {ref} for {self._money(total)}")
            sms_id = self._sms(at, user, "otp_order", body, code=True)
            self._challenge(at, user, "order", sms_id, order_id, code_end, settled)
        self.orders += 1
        if status in (OrderStatus.PLACED, OrderStatus.HELD):
            state = "is held for the shop's review" if status == OrderStatus.HELD else "was placed"
            placed = verified_at or at
            self._alert(
                placed, user, "alert_order_placed", f"order {ref} for {self._money(total)} {state}."
            )
            user.counted += 1
            user.recent.append((at, total))
            user.seen_devices.add(device)
            user.seen_addresses.add(key)
            if verified_at is not None:
                user.last_otp, user.since_otp, user.since_otp_amount = verified_at, 0, 0
            else:
                user.since_otp += 1
                user.since_otp_amount += total

    def _sign_in_with_code(self, at: float) -> None:
        rng = self.rng
        user = rng.choice(self.customers)
        if rng.random() < 0.1:
            self._audit(at - 30, "sign_in_failed", user)
        if rng.random() < 0.03:
            self.writer.add(
                "sms_refusals",
                (
                    self._id("sms_refusals"),
                    at - 10,
                    rng.choice(REFUSALS),
                    "login",
                    user.phone,
                    "GB",
                    user.ip,
                    user.id,
                ),
            )
        sms_id = self._sms(at, user, "otp_login", self._code_text("sign in"), code=True)
        verified = rng.random() < 0.9
        end = "verified" if verified else "expired"
        self._challenge(at, user, "login", sms_id, None, end, at + rng.uniform(15, 90))
        if verified:
            browser = rng.choice(BROWSERS)
            self._audit(at + 60, "sign_in", user, _json(browser=browser))
            if rng.random() < 0.35:
                when = datetime.fromtimestamp(at, UTC).strftime("%d %b %H:%M UTC")
                words = f"new sign-in on {browser}, IP {user.ip}, {when}."
                self._alert(at + 61, user, "alert_new_device", words)

    def _audit_only(self, at: float) -> None:
        rng = self.rng
        user = rng.choice(self.customers)
        roll = rng.random()
        if roll < 0.75:
            self._audit(at, "sign_in", user, _json(browser=rng.choice(BROWSERS)))
        elif roll < 0.9:
            self._audit(at, "sign_out", user)
        elif roll < 0.97:
            self._audit(at, "sign_in_failed", user)
        else:
            old, new = {"new_device": True, "order": True}, {"new_device": False, "order": True}
            self._audit(at, "alerts_changed", user, _json(old=old, new=new))

    # The whole data set -----------------------------------------------------------------------

    def run(self) -> dict[str, int]:
        self._first_ids()
        self._declare_tables()
        self._products()
        if self.size.users:
            self._customers()
        size, rng = self.size, self.rng
        span = self.end - self.start
        jitter = span / max(1, size.orders + size.sms + size.audit_events)
        last = self.start
        while self.customers and (
            self.orders < size.orders or self.sms < size.sms or self.audit < size.audit_events
        ):
            progress = {
                "order": self.orders / size.orders if size.orders else 1.0,
                "sign_in_with_code": self.sms / size.sms if size.sms else 1.0,
                "audit_only": self.audit / size.audit_events if size.audit_events else 1.0,
            }
            kind = min((value, name) for name, value in progress.items() if value < 1)[1]
            at = self.start + span * progress[kind] + rng.random() * jitter
            at = last = min(self.end, max(last, at))
            getattr(self, f"_{kind}")(at)
        self.writer.close()
        return dict(self.writer.counts)


def leave_work_for_the_worker(connection, now: datetime) -> None:
    """The newest alerts become due, retrying after a failure, or in flight: the outbox as
    a delivery worker finds it on a busy day (the demo's too, for S)."""
    newest = connection.scalars(
        select(SmsMessage.id)
        .where(SmsMessage.kind.like("alert_%"))
        .order_by(SmsMessage.id.desc())
        .limit(DUE_MESSAGES + RETRYING_MESSAGES + IN_FLIGHT_MESSAGES)
    ).all()
    # Never handed to the provider: no provider id, price, send time or receipt.
    unsent = dict.fromkeys(UNSENT_COLUMNS)
    due = {"status": SmsStatus.QUEUED, "attempts": 0, "next_attempt_at": SmsMessage.created_at}
    retrying = {
        "status": SmsStatus.QUEUED,
        "attempts": 2,
        "next_attempt_at": now + timedelta(minutes=30),
        "last_error": "ReadTimeout",
    }
    in_flight = {
        "status": SmsStatus.SENDING,
        "attempts": 1,
        "claimed_by": "bench-worker:0001",
        "lease_expires_at": now + timedelta(hours=1),
    }
    first_retrying, first_in_flight = DUE_MESSAGES, DUE_MESSAGES + RETRYING_MESSAGES
    for ids, values in (
        (newest[:first_retrying], due),
        (newest[first_retrying:first_in_flight], retrying),
        (newest[first_in_flight:], in_flight),
    ):
        if ids:
            connection.execute(
                update(SmsMessage).where(SmsMessage.id.in_(ids)).values(**unsent, **values)
            )


BIG_TABLES = ("orders", "order_items", "otp_challenges", "sms_messages", "audit_events")


def _indexes_set_aside(cursor, dialect: str) -> list[str]:
    """Drop the big tables' plain indexes (not those behind a constraint) and return the
    statements that make them again: built once after the load, from sorted data, they
    cost a fraction of keeping them up to date row by row."""
    if dialect == "sqlite":
        marks = ", ".join("?" * len(BIG_TABLES))
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608 (placeholders)
            f"AND tbl_name IN ({marks})",
            BIG_TABLES,
        )
    else:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            (list(BIG_TABLES),),
        )
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [statement for _, statement in indexes]


def generate(size: Size, *, now: datetime | None = None, seed: int = 12) -> dict[str, int]:
    """Add `size`'s rows to the app's database (in an app context, after `seed-demo`)."""
    now = now or datetime.now(UTC)
    dialect = db.engine.dialect.name
    raw = db.engine.raw_connection()
    try:
        driver = raw.driver_connection
        cursor = raw.cursor()
        if dialect == "sqlite":
            cursor.execute("PRAGMA synchronous = OFF")
            cursor.execute("PRAGMA cache_size = -200000")
        else:
            # The generator keeps the rows consistent; foreign-key checks row by row and the
            # catalog trigger would only slow the load (the version is bumped below).
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("SET maintenance_work_mem = '256MB'")
        indexes = _indexes_set_aside(cursor, dialect)
        raw.commit()
        writer = BulkWriter(driver, dialect)
        counts = Generator(writer, size, now=now, seed=seed).run()
        for statement in indexes:
            cursor.execute(statement)
        if dialect != "sqlite":
            cursor.execute("SET session_replication_role = DEFAULT")
        raw.commit()
        cursor.close()
    finally:
        raw.close()
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE catalog_version SET version = version + 1 WHERE id = 1"))
        if dialect == "postgresql":
            for table in counts:
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    if dialect == "postgresql":
        # What autovacuum would have done by the time a shop has this much history.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    return counts
