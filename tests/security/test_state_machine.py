"""A Hypothesis state machine over a shopper's whole journey through HTTP: cart edits,
checkout (with repeated idempotency keys), codes sent, resent and typed (right, wrong, and
the right one from several browsers at once), cart tampering and clock moves.

Invariants, checked after every step: no placed order at or above a code threshold without
a consumed code bound to that order and amount; stock never negative and conserved; one
order per idempotency key; never a 500.

Profiles: `security-ci` (the default, 500 examples) and `security-quick` (50), chosen with
SECURITY_HYPOTHESIS_PROFILE.
"""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from itertools import count

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from shop.extensions import db
from shop.models import Order, OrderItem, OrderStatus, OtpChallenge, OtpPurpose, Product, SmsMessage
from shop.orders import expire_pending
from shop.orders.checkout import order_binding
from shop.sms.sealing import readable
from tests.factories import ADDRESS, make_product, make_user

for name, examples in (("security-ci", 500), ("security-quick", 50)):
    settings.register_profile(
        name,
        max_examples=examples,
        stateful_step_count=10,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
PROFILE = os.environ.get("SECURITY_HYPOTHESIS_PROFILE", "security-ci")
# A new account's first order needs a code from 100.00 (the lowest code threshold).
CODE_THRESHOLD_MINOR = 10_000
HOLDING = (OrderStatus.PENDING_VERIFICATION, OrderStatus.PLACED, OrderStatus.HELD)
CODE = re.compile(r": (\d{6}) is your code")
_examples = count()


def test_the_shop_keeps_its_invariants_whatever_the_shopper_does(app, frozen_clock):
    class Shopping(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            number = next(_examples)
            frozen_clock.advance(days=2)  # every limit's window starts afresh
            self.shopper = make_user(f"machine{number}@example.com")
            self.products = [
                make_product(f"Chair {number}", price_minor=12_000, stock=4),
                make_product(f"Pin {number}", price_minor=900, stock=6),
            ]
            self.product_ids = [product.id for product in self.products]
            self.initial_stock = {product.id: product.stock for product in self.products}
            self.browser = app.test_client()
            self.browser.environ_base["REMOTE_ADDR"] = f"10.9.{number // 250 % 250}.{number % 250}"
            self.browser.sign_in_as(self.shopper)
            self.token = self.browser.csrf_token()
            self.prefix = f"m{number:05d}-"

        def post(self, path: str, data: dict | None = None):
            response = self.browser.post(path, data={"csrf_token": self.token, **(data or {})})
            assert response.status_code < 500, (path, response.status_code)
            return response

        def pending(self) -> Order | None:
            db.session.expire_all()
            return db.session.scalar(
                select(Order)
                .where(
                    Order.user_id == self.shopper.id,
                    Order.status == OrderStatus.PENDING_VERIFICATION,
                )
                .order_by(Order.id.desc())
                .limit(1)
            )

        def code_of(self, order: Order) -> str | None:
            challenge = db.session.scalar(
                select(OtpChallenge)
                .where(OtpChallenge.order_id == order.id)
                .order_by(OtpChallenge.id.desc())
                .limit(1)
            )
            sms = db.session.get(SmsMessage, challenge.sms_id) if challenge else None
            found = CODE.search(readable(sms.body, sms.to_number)) if sms else None
            return found.group(1) if found else None

        # The shopper's moves ------------------------------------------------------------

        @rule(which=st.integers(0, 1), quantity=st.integers(1, 3))
        def add_to_cart(self, which, quantity):
            self.post("/cart/add", {"product_id": self.product_ids[which], "quantity": quantity})

        @rule(which=st.integers(0, 1), quantity=st.integers(0, 3))
        def set_quantity(self, which, quantity):
            self.post("/cart/update", {"product_id": self.product_ids[which], "quantity": quantity})

        @rule(
            field=st.sampled_from(["price", "price_minor", "total", "currency"]),
            value=st.sampled_from(["1", "0", "-5", "EUR"]),
        )
        def tamper_with_the_cart(self, field, value):
            response = self.post(
                "/cart/add", {"product_id": self.product_ids[0], "quantity": 1, field: value}
            )
            assert response.status_code == 400

        @rule(key=st.sampled_from(["a", "b", "c"]))
        def check_out(self, key):
            self.post("/checkout", {**ADDRESS, "idempotency_key": f"{self.prefix}{key}" * 3})

        @rule()
        def type_the_right_code(self):
            order = self.pending()
            code = self.code_of(order) if order else None
            if code:
                self.post(f"/checkout/verify/{order.ref}", {"code": code})

        @rule(code=st.text("0123456789 x", min_size=0, max_size=8))
        def type_a_wrong_code(self, code):
            order = self.pending()
            if order is not None and code != self.code_of(order):
                self.post(f"/checkout/verify/{order.ref}", {"code": code})

        @rule()
        def ask_for_a_new_code(self):
            order = self.pending()
            if order is not None:
                self.post(f"/checkout/verify/{order.ref}/resend")

        @rule(browsers=st.integers(2, 5))
        def type_the_right_code_in_several_browsers_at_once(self, browsers):
            order = self.pending()
            code = self.code_of(order) if order else None
            if not code:
                return
            ref, order_id = order.ref, order.id
            clients = []
            for _ in range(browsers):
                each = app.test_client()
                each.sign_in_as(self.shopper)
                clients.append((each, each.csrf_token()))
            db.session.commit()

            def confirm(index: int) -> int:
                each, token = clients[index]
                data = {"csrf_token": token, "code": code}
                return each.post(f"/checkout/verify/{ref}", data=data).status_code

            with ThreadPoolExecutor(max_workers=browsers) as pool:
                statuses = list(pool.map(confirm, range(browsers)))
            assert all(status < 500 for status in statuses), statuses
            assert db.session.get(Order, order_id) is not None

        @rule(seconds=st.sampled_from([5, 31, 120, 301]))
        def time_passes(self, seconds):
            frozen_clock.advance(seconds=seconds)

        @rule()
        def the_delivery_process_sweeps(self):
            expire_pending()

        # Invariants ---------------------------------------------------------------------

        @invariant()
        def no_order_above_a_threshold_is_placed_without_its_code(self):
            db.session.expire_all()
            placed = db.session.scalars(
                select(Order).where(
                    Order.user_id == self.shopper.id,
                    Order.status == OrderStatus.PLACED,
                    Order.total_minor >= CODE_THRESHOLD_MINOR,
                )
            )
            for order in placed:
                consumed = db.session.scalars(
                    select(OtpChallenge).where(
                        OtpChallenge.order_id == order.id,
                        OtpChallenge.purpose == OtpPurpose.ORDER,
                        OtpChallenge.consumed_at.is_not(None),
                    )
                ).all()
                assert len(consumed) == 1, order.ref
                assert consumed[0].binding == order_binding(order), order.ref

        @invariant()
        def stock_is_never_negative_and_is_conserved(self):
            for product_id in self.product_ids:
                stock = db.session.get(Product, product_id).stock
                held = db.session.scalar(
                    select(func.coalesce(func.sum(OrderItem.quantity), 0))
                    .join(Order, Order.id == OrderItem.order_id)
                    .where(OrderItem.product_id == product_id, Order.status.in_(HOLDING))
                )
                assert stock >= 0
                assert stock + held == self.initial_stock[product_id]

        @invariant()
        def one_order_per_idempotency_key(self):
            repeated = db.session.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.user_id == self.shopper.id)
                .group_by(Order.idempotency_key)
                .having(func.count() > 1)
            )
            assert repeated is None
            db.session.commit()

    run_state_machine_as_test(Shopping, settings=settings.get_profile(PROFILE))
    # The runs reached the interesting states: orders placed with a code, and without.
    confirmed = select(func.count(OtpChallenge.id)).where(
        OtpChallenge.purpose == OtpPurpose.ORDER, OtpChallenge.consumed_at.is_not(None)
    )
    placed = select(func.count(Order.id)).where(Order.status == OrderStatus.PLACED)
    assert db.session.scalar(confirmed) > 0
    assert db.session.scalar(placed) > db.session.scalar(confirmed)
