"""A busy shop's last month, event after event in time order (`make bench-scale`).

Orders with their items, each decided by the real rule engine (`shop.risk.evaluate`,
default rules) from the customer's history so far, its inputs and reasons stored as checkout
stores them; an order code, its SMS and audit trail for every order that needed one
(verified, abandoned or cancelled); the "order placed" alert; sign-ins with and without a
code, new-device alerts, failed sign-ins and refused sends. Events come in time order, so
ids grow with time as in a real shop, and the next kind of event is always the one furthest
behind its target: orders, SMS and audit events reach their size together.
"""

import json
import random
from datetime import UTC, datetime

from bench.scale.rows import BROWSERS, CODE_SECONDS, TOWNS, Customer, Rows, detail
from bench.scale.sizes import Size
from shop.models import OrderStatus
from shop.risk import RiskInputs, RiskRules, address_key, evaluate

HISTORY_DAYS = 30
PENDING_ORDERS = 5  # waiting for their code when the history ends
LINES = (1,) * 6 + (2,) * 3 + (3,)  # lines per order, as often as they come
QUANTITIES = (1,) * 16 + (2,) * 3 + (3,)
REFUSALS = ("cooldown", "number_10_min", "number_day", "ip_numbers", "ip_codes")


class History:
    """The events of `size`, written through `rows`; `run()` returns the rows per table."""

    def __init__(self, rows: Rows, size: Size, rng: random.Random) -> None:
        self.rows = rows
        self.size = size
        self.rng = rng
        self.now, self.end = rows.now, rows.end
        self.start = self.now - HISTORY_DAYS * 86400
        self.rules = RiskRules()
        self.customers: list[Customer] = []
        self.orders = 0
        self.pending_left = PENDING_ORDERS

    def _order(self, at: float) -> None:
        rng = self.rng
        user = rng.choice(self.customers)
        order_id = self.rows.new_id("orders")
        lines = {}
        for _ in range(rng.choice(LINES)):
            product = rng.choice(self.rows.products)
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
            {
                "code": reason.code,
                "outcome": reason.outcome.value,
                "text": reason.text,
                "factor": reason.factor,
            }
            for reason in decision.reasons
        ]
        ref = self.rows.ref(order_id)
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
        self.rows.writer.add(
            "orders",
            (
                order_id,
                ref,
                user.id,
                status,
                self.rows.currency,
                total,
                user.name,
                line,
                town,
                postcode,
                "GB",
                f"gen-{order_id}",
                self.rows.random_hex(),
                outcome,
                json.dumps(reasons),
                json.dumps(inputs),
                device,
                key,
                expires_at,
                verified_at,
                None if verified_at is None else "sms",  # step_up_factor
                None,
                None,
                at,
                updated,
            ),
        )
        changed = user.phone_changed_at
        self.rows.writer.add(
            "decision_inputs",
            (
                order_id,
                at,
                total,
                at - user.created_at,
                inputs["previous_orders"],
                inputs["orders_24h"],
                inputs["amount_24h_minor"],
                inputs["device_known"],
                inputs["address_known"],
                None if changed is None else at - changed,
                inputs["orders_since_otp"],
                inputs["amount_since_otp_minor"],
                False,  # step_up_locked
                False,  # has_passkey
            ),
        )
        for (product_id, name, price), quantity in lines.items():
            self.rows.writer.add(
                "order_items",
                (self.rows.new_id("order_items"), order_id, product_id, name, price, quantity),
            )
        items = sum(lines.values())
        self.rows.order_event(
            order_id, at, "submitted", currency=self.rows.currency, items=items, total_minor=total
        )
        self.rows.order_event(
            order_id, at, "decision", outcome=outcome, reasons=reasons, stage="checkout"
        )
        ending = {
            OrderStatus.HELD: "held",
            OrderStatus.BLOCKED: "blocked",
            OrderStatus.EXPIRED: "expired",
        }.get(status)
        if verified_at is not None:
            self.rows.order_event(order_id, verified_at, "confirmed", factor="sms")
        elif ending is not None:
            self.rows.order_event(order_id, updated, ending)
        if code_end is not None:
            body = self.rows.code_text(f"confirm order {ref} for {self.rows.money(total)}")
            sms_id = self.rows.message(at, user, "otp_order", body, code=True, order_id=order_id)
            self.rows.challenge(at, user, "order", sms_id, order_id, code_end, settled)
        self.orders += 1
        if status in (OrderStatus.PLACED, OrderStatus.HELD):
            state = "is held for the shop's review" if status == OrderStatus.HELD else "was placed"
            placed = verified_at or at
            self.rows.alert(
                placed,
                user,
                "alert_order_placed",
                f"order {ref} for {self.rows.money(total)} {state}.",
                order_id,
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
            self.rows.audit_event(at - 30, "sign_in_failed", user)
        if rng.random() < 0.03:
            self.rows.refusal(at - 10, user, rng.choice(REFUSALS))
        sms_id = self.rows.message(at, user, "otp_login", self.rows.code_text("sign in"), code=True)
        verified = rng.random() < 0.9
        end = "verified" if verified else "expired"
        self.rows.challenge(at, user, "login", sms_id, None, end, at + rng.uniform(15, 90))
        if verified:
            browser = rng.choice(BROWSERS)
            self.rows.audit_event(at + 60, "sign_in", user, detail(browser=browser))
            if rng.random() < 0.35:
                when = datetime.fromtimestamp(at, UTC).strftime("%d %b %H:%M UTC")
                words = f"new sign-in on {browser}, IP {user.ip}, {when}."
                self.rows.alert(at + 61, user, "alert_new_device", words)

    def _audit_only(self, at: float) -> None:
        rng = self.rng
        user = rng.choice(self.customers)
        roll = rng.random()
        if roll < 0.75:
            self.rows.audit_event(at, "sign_in", user, detail(browser=rng.choice(BROWSERS)))
        elif roll < 0.9:
            self.rows.audit_event(at, "sign_out", user)
        elif roll < 0.97:
            self.rows.audit_event(at, "sign_in_failed", user)
        else:
            old, new = {"new_device": True, "order": True}, {"new_device": False, "order": True}
            self.rows.audit_event(at, "alerts_changed", user, detail(old=old, new=new))

    def run(self) -> dict[str, int]:
        self.rows.add_products(self.size.products)
        self.customers = self.rows.add_customers(self.size.users)
        size, rng, rows = self.size, self.rng, self.rows
        span = self.end - self.start
        jitter = span / max(1, size.orders + size.sms + size.audit_events)
        last = self.start
        while self.customers and (
            self.orders < size.orders or rows.sms < size.sms or rows.audit < size.audit_events
        ):
            progress = {
                "order": self.orders / size.orders if size.orders else 1.0,
                "sign_in_with_code": rows.sms / size.sms if size.sms else 1.0,
                "audit_only": rows.audit / size.audit_events if size.audit_events else 1.0,
            }
            kind = min((value, name) for name, value in progress.items() if value < 1)[1]
            at = self.start + span * progress[kind] + rng.random() * jitter
            at = last = min(self.end, max(last, at))
            getattr(self, f"_{kind}")(at)
        rows.writer.close()
        return dict(rows.writer.counts)
