"""A month of past orders from a few demo customers, made through the real use cases.

Each customer fills a cart and checks out with the clock moved to the moment of the order
(`shop.clock.moved_to`): the same `start_checkout` as the shop decides allow, code or hold
from the account's earlier orders, and a code is read from the outbox as the customer's
phone would and entered with `confirm_order` (or left to expire, or killed by a cart
change). A phone number is changed through the same confirmation as on the account page.
Messages go through a delivery worker and get delivery receipts. So the history can never
disagree with the rules; order references and codes are random, the rest is the same for a
given "now".
"""

import random
import re
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from werkzeug.security import generate_password_hash

from shop import accounts, clock
from shop import cart as carts
from shop.accounts.client import Client
from shop.accounts.verification import confirm_phone, start_phone_change
from shop.demo.catalog import PRODUCTS, seed_products
from shop.demo.customers import (
    HISTORY_CUSTOMERS,
    HISTORY_MARKER,
    DemoCustomer,
    PlannedOrder,
    plan_orders,
)
from shop.extensions import db
from shop.models import Order, OtpChallenge, Product, Role, SmsMessage, User
from shop.orders import ShippingAddress, expire_pending
from shop.orders.checkout import CheckoutOutcome, start_checkout
from shop.orders.confirmation import confirm_order
from shop.orders.review import cancel_held_too_long
from shop.sms import sealing
from shop.sms.delivery import DeliveryWorker
from shop.sms.receipts import apply_receipt
from shop.sms.senders import Accepted, SmsSender

# While the history is placed every product has plenty, so that no past order fails for
# stock; the catalog's own stock is put back afterwards (the shop restocked).
HISTORY_STOCK = 10_000
CODE_IN_SMS = re.compile(r": ([0-9]{6,8}) is your code")


@dataclass
class _Customer:
    user: User
    password: str  # random, known only while the history is made


def has_history() -> bool:
    return (
        db.session.scalar(
            select(Order.id).where(Order.idempotency_key.startswith(HISTORY_MARKER)).limit(1)
        )
        is not None
    )


def seed_history(now: datetime, currency: str) -> int:
    """A month of past orders before `now`, placed by the current rules; committed.

    Adds nothing if the history is already there. Returns how many orders it placed.
    """
    if has_history():
        return 0
    seed_products(currency)
    db.session.commit()
    # Not a secret: a fixed seed so that every demo shows the same month.
    rng = random.Random(42)  # noqa: S311
    history = _History(rng)
    plan = sorted(plan_orders(rng, now), key=lambda planned: planned.at)
    events: list[tuple[datetime, int, Callable[[], None]]] = []
    for order_number, planned in enumerate(plan):
        events.append((planned.at, 1, lambda n=order_number, p=planned: history.order(n, p)))
    for customer in HISTORY_CUSTOMERS:
        joined = now - timedelta(days=customer.joined_days_ago)
        events.append((joined, 0, lambda c=customer: history.join(c)))
        if customer.phone_changed_days_ago is not None:
            changed = now - timedelta(days=customer.phone_changed_days_ago)
            events.append((changed, 1, lambda c=customer: history.change_phone(c)))
    with _plenty_of_stock():
        for at, _, event in sorted(events, key=lambda item: (item[0], item[1])):
            with clock.moved_to(at):
                event()
        # The delivery process's chore, as it would have run by now.
        with clock.moved_to(now):
            history.cancel_stale_holds()
    return len(plan)


class _plenty_of_stock:
    def __enter__(self) -> None:
        db.session.execute(update(Product).values(stock=HISTORY_STOCK))
        db.session.commit()

    def __exit__(self, *_) -> None:
        db.session.rollback()
        for name, _, stock, _ in PRODUCTS:
            db.session.execute(update(Product).where(Product.name == name).values(stock=stock))
        db.session.commit()


class _Provider(SmsSender):
    """Stands in for the SMS provider of the past: takes every message, keeps no copy."""

    def __init__(self) -> None:
        self.accepted: list[SmsMessage] = []

    def send(self, message: SmsMessage) -> Accepted:
        self.accepted.append(message)
        return Accepted(provider_message_id=f"demo-{message.id}", price="0.0450")


class _History:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.customers: dict[str, _Customer] = {}
        self.provider = _Provider()
        self.worker = DeliveryWorker(self.provider, name="demo-history", batch_size=50)

    def join(self, customer: DemoCustomer) -> None:
        user = accounts.find_user_by_email(customer.email)
        # A random password nobody knows, cheaply hashed: these accounts are never signed in.
        password = secrets.token_urlsafe(24)
        if user is None:
            user = User(
                email=customer.email,
                phone=customer.previous_phone or customer.phone,
                password_hash=generate_password_hash(password, method="pbkdf2:sha256:1000"),
                role=Role.SHOPPER,
                phone_verified_at=clock.now(),
            )
            db.session.add(user)
            db.session.commit()
        self.customers[customer.email] = _Customer(user, password)

    def change_phone(self, customer: DemoCustomer) -> None:
        known = self.customers[customer.email]
        client = self._client(f"demo-{customer.email.split('.')[0]}-device-0")
        start_phone_change(known.user, known.password, customer.phone, client)
        code = self._code(db.session.scalar(_latest_code(known.user)))
        self._deliver(delivered=1.0)
        with clock.moved_to(clock.now() + timedelta(seconds=self.rng.uniform(20, 90))):
            confirm_phone(known.user, code, client)
            self._deliver(delivered=1.0)

    def cancel_stale_holds(self) -> None:
        """What the delivery process does every minute: cancel the orders held for longer
        than the owner's setting (and tell their shoppers). Without it the demo would start
        with an order held past that setting, cancelled a minute after `make run`."""
        if cancel_held_too_long():
            self._deliver(delivered=1.0)

    def order(self, number: int, planned: PlannedOrder) -> None:
        self.cancel_stale_holds()
        customer = planned.customer
        user = self.customers[customer.email].user
        products = {product.name: product for product in db.session.scalars(select(Product))}
        contents = {products[name].id: quantity for name, quantity in planned.contents.items()}
        carts.save_user_cart(user, contents)
        db.session.commit()
        line1, city, postcode = planned.home
        address = ShippingAddress(customer.name, line1, city, postcode, "GB")
        client = self._client(planned.device_id)
        result = start_checkout(user, address, f"{HISTORY_MARKER}{number:03d}", client)
        if result.outcome != CheckoutOutcome.CODE_SENT:
            self._deliver(delivered=0.97)
            return
        code = self._code(result.challenge)
        roll = self.rng.random()
        ending = "verified" if roll < 0.8 else "expired" if roll < 0.92 else "cancelled"
        self._deliver(delivered=1.0 if ending == "verified" else 0.7)
        ref = result.order.ref
        if ending == "verified":
            with clock.moved_to(clock.now() + timedelta(seconds=self.rng.uniform(25, 150))):
                confirm_order(user, ref, code, client)
                self._deliver(delivered=0.97)
        elif ending == "expired":
            with clock.moved_to(result.challenge.expires_at + timedelta(minutes=1)):
                expire_pending()
        else:
            with clock.moved_to(clock.now() + timedelta(seconds=self.rng.uniform(40, 200))):
                first = next(iter(contents))
                carts.save_user_cart(user, {**contents, first: contents[first] + 1})
                db.session.commit()
                confirm_order(user, ref, code, client)

    @staticmethod
    def _client(device_id: str) -> Client:
        ip = f"198.51.100.{zlib.crc32(device_id.encode()) % 250 + 1}"
        return Client(ip=ip, device_id=device_id, user_agent="")

    @staticmethod
    def _code(challenge: OtpChallenge) -> str:
        """The code in the challenge's SMS, read from the outbox as the phone would."""
        sms = db.session.get(SmsMessage, challenge.sms_id)
        return CODE_IN_SMS.search(sealing.readable(sms.body, sms.to_number)).group(1)

    def _deliver(self, *, delivered: float) -> None:
        """Hand what is due to the provider, then record its delivery receipts."""
        self.provider.accepted.clear()
        while self.worker.run_once():
            pass
        sent = list(self.provider.accepted)
        later = clock.now() + timedelta(seconds=self.rng.uniform(4, 20))
        with clock.moved_to(later):
            for message in sent:
                ok = self.rng.random() < delivered
                apply_receipt(
                    {
                        "status": "delivered" if ok else "failed",
                        "messageId": f"demo-{message.id}",
                        "msisdn": message.to_number.removeprefix("+"),
                        "err-code": "0" if ok else "1",
                    }
                )
            db.session.commit()


def _latest_code(user: User):
    return (
        select(OtpChallenge).where(OtpChallenge.user_id == user.id).order_by(OtpChallenge.id.desc())
    ).limit(1)
