"""Checkout: the shipping form, and the order placed from the server-priced cart."""

import secrets

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug import Response
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Regexp

from shop import cart as carts
from shop import clock, orders, risk
from shop.blueprints.cart import current_cart
from shop.blueprints.codes import (
    CodeForm,
    client_ip,
    limit_code_entry,
    otp,
    render_code_page,
    renew_session,
    send_and_commit,
)
from shop.blueprints.device_cookie import current_device_id
from shop.blueprints.forms import StrictForm
from shop.countries import country_choices
from shop.extensions import db
from shop.models import Order, OrderStatus, OtpPurpose
from shop.money import format_money
from shop.otp import SendRefused, binding_for
from shop.otp.texts import code_sms, order_action
from shop.risk import Outcome

bp = Blueprint("checkout", __name__)


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(24)


class CheckoutForm(StrictForm):
    full_name = StringField("Full name", [InputRequired(), Length(1, 120)])
    address_line1 = StringField("Address", [InputRequired(), Length(1, 200)])
    city = StringField("Town or city", [InputRequired(), Length(1, 100)])
    postal_code = StringField(
        "Postcode",
        [
            InputRequired(),
            Length(2, 20),
            Regexp(r"^[A-Za-z0-9][A-Za-z0-9 -]*$", message="Use letters, digits, spaces and -."),
        ],
    )
    country = SelectField("Country", [InputRequired()], choices=country_choices, default="GB")
    idempotency_key = HiddenField(
        validators=[
            InputRequired("The form is incomplete: reload the page and try again."),
            Regexp(r"^[A-Za-z0-9_-]{16,64}$", message="The form was altered: reload the page."),
        ]
    )

    def shipping_address(self) -> orders.ShippingAddress:
        return orders.ShippingAddress(
            full_name=self.full_name.data.strip(),
            address_line1=self.address_line1.data.strip(),
            city=self.city.data.strip(),
            postal_code=self.postal_code.data.strip().upper(),
            country=self.country.data,
        )


def render_checkout(form: CheckoutForm, status: int = 200, error: str | None = None):
    return render_template(
        "checkout/form.html", form=form, cart=current_cart(), error=error
    ), status


def checkout_context(user) -> orders.CheckoutContext:
    return orders.CheckoutContext(
        currency=current_app.config["SHOP_CURRENCY"],
        rules=risk.current_rules(),
        device_id=current_device_id(),
        step_up_locked=otp().is_locked(user),
        send_code=lambda order: send_order_code(order, user),
    )


def order_binding(order: Order, fingerprint: str) -> str:
    """A code confirms this order, this amount and these items to this address, nothing else."""
    return binding_for("order", order.ref, order.total_minor, order.currency, fingerprint)


def send_order_code(order: Order, user) -> None:
    """Queue the order's code; the order lapses with it (the caller commits)."""
    config = current_app.config
    amount = format_money(order.total_minor, order.currency)
    challenge = otp().issue(
        user,
        OtpPurpose.ORDER,
        order_binding(order, order.fingerprint),
        client_ip=client_ip(),
        text=code_sms(
            config["SHOP_NAME"], order_action(order.ref, amount), config["PUBLIC_BASE_URL"]
        ),
        order_id=order.id,
    )
    order.expires_at = challenge.expires_at


@bp.route("/checkout", methods=["GET", "POST"])
@login_required
def checkout() -> Response | tuple[str, int]:
    form = CheckoutForm()
    if not form.is_submitted():
        if not current_cart().lines:
            flash("Your cart is empty: add something first.", "info")
            return redirect(url_for("cart.show"))
        form.idempotency_key.data = new_idempotency_key()
        return render_checkout(form)
    if not form.validate_on_submit():
        return render_checkout(form, 422)
    try:
        order = orders.place_order(
            current_user,
            form.shipping_address(),
            form.idempotency_key.data,
            checkout_context(current_user),
        )
    except (orders.CheckoutError, SendRefused) as error:
        db.session.rollback()
        # A fresh key, so that the shopper's next submit is a new attempt.
        form.idempotency_key.data = new_idempotency_key()
        status = getattr(error, "status", 429 if getattr(error, "retry_after", None) else 409)
        return render_checkout(form, status, error.message)
    return after_placing(order, form)


def after_placing(order: Order, form: CheckoutForm) -> Response | tuple[str, int]:
    """Where an order goes next, by its risk decision."""
    if order.status == OrderStatus.PENDING_VERIFICATION:
        return redirect(url_for("checkout.verify", order_ref=order.ref))
    if order.status == OrderStatus.BLOCKED:
        form.idempotency_key.data = new_idempotency_key()
        message = "We cannot accept this order online. " + shopper_reason(order, "block")
        return render_checkout(form, 403, message)
    if order.status == OrderStatus.HELD:
        flash(
            f"Order {order.ref} is held for the shop's review. " + shopper_reason(order, "hold"),
            "info",
        )
    else:
        flash(f"Thank you! Order {order.ref} is placed.", "success")
    return redirect(url_for("orders.detail", order_ref=order.ref))


def shopper_reason(order: Order, outcome: str) -> str:
    return " ".join(reason["text"] for reason in order.reasons if reason["outcome"] == outcome)


def _own_order(order_ref: str) -> Order:
    order = db.session.scalar(
        select(Order).where(Order.ref == order_ref, Order.user_id == current_user.id)
    )
    if order is None:
        abort(404, description="There is no such order on your account.")
    return order


def _order_page(order: Order, message: str, status: int) -> tuple[str, int]:
    return render_template("checkout/closed.html", order=order, message=message), status


CLOSED = {
    OrderStatus.HELD: "This order is held for the shop's review.",
    OrderStatus.BLOCKED: "This order was not accepted.",
    OrderStatus.CANCELLED: "This order was cancelled.",
    OrderStatus.EXPIRED: "This order expired because its code was not entered in time.",
}


@bp.route("/checkout/verify/<order_ref>", methods=["GET", "POST"])
@login_required
@limit_code_entry
def verify(order_ref: str) -> Response | tuple[str, int]:
    order = _own_order(order_ref)
    if order.status == OrderStatus.PLACED:
        flash(f"Order {order.ref} is already confirmed.", "info")
        return redirect(url_for("orders.detail", order_ref=order.ref))
    if order.status != OrderStatus.PENDING_VERIFICATION:
        return _order_page(order, CLOSED[order.status], 409)
    if order.expires_at is not None and clock.now() >= order.expires_at:
        if request.method == "POST":  # a GET never changes state; the worker's sweep will
            orders.release(order, OrderStatus.EXPIRED, allowed_from=[order.status])
            db.session.commit()
        return _order_page(order, CLOSED[OrderStatus.EXPIRED] + " Check out again.", 410)
    challenge = otp().live_challenge(current_user, OtpPurpose.ORDER)
    if challenge is not None and challenge.order_id != order.id:
        challenge = None
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        outcome = _confirm(order, form.code.data)
        if isinstance(outcome, str):
            error = outcome
        else:
            return outcome
        challenge = otp().live_challenge(current_user, OtpPurpose.ORDER)
    return render_code_page(
        title=f"Confirm order {order.ref}",
        reason=shopper_reason(order, "otp") or "This order needs a code.",
        challenge=challenge,
        form=form,
        resend_url=url_for("checkout.resend", order_ref=order.ref),
        status=422 if form.errors or error else 200,
        error=error,
        extra={"order": order},
    )


def _confirm(order: Order, code: str) -> Response | tuple[str, int] | str:
    """Check the code against the order as it is now; a str is an error for the same page."""
    user = current_user._get_current_object()
    address = orders.address_of(order)
    current = orders.fingerprint(carts.load_user_cart(user), address)
    decision, _ = orders.decide(
        user, order.total_minor, address, checkout_context(user), clock.now()
    )
    if decision.outcome in (Outcome.HOLD, Outcome.BLOCK):
        # The rules, evaluated again at confirmation, no longer allow a code to be enough.
        orders.record_decision(order, decision)
        if decision.outcome == Outcome.HOLD:
            orders.hold(order, user)
        else:
            orders.release(order, OrderStatus.BLOCKED, allowed_from=[order.status])
        db.session.commit()
        return _order_page(order, CLOSED[order.status] + " " + decision.shopper_message(), 409)
    result = otp().verify(
        user,
        OtpPurpose.ORDER,
        order_binding(order, current),
        code,
        client_ip=client_ip(),
        order_id=order.id,
    )
    if result.ok:
        if not orders.confirm(order, user):
            db.session.rollback()
            return _order_page(order, "This order was already handled.", 409)
        db.session.commit()
        renew_session(user)
        flash(f"Thank you! Order {order.ref} is confirmed and placed.", "success")
        return redirect(url_for("orders.detail", order_ref=order.ref))
    if result.outcome == "mismatch":
        orders.release(order, OrderStatus.CANCELLED, allowed_from=[order.status])
        db.session.commit()
        return _order_page(
            order,
            "Your cart changed after the code was sent, so the code no longer works and this "
            "order was cancelled. Nothing was charged: check out again.",
            409,
        )
    if result.outcome == "locked":
        orders.hold(order, user)
        db.session.commit()
        return _order_page(order, result.message + " " + CLOSED[OrderStatus.HELD], 423)
    if result.outcome == "expired":
        orders.release(order, OrderStatus.EXPIRED, allowed_from=[order.status])
        db.session.commit()
        return _order_page(order, CLOSED[OrderStatus.EXPIRED] + " Check out again.", 410)
    db.session.commit()
    return result.message


@bp.post("/checkout/verify/<order_ref>/resend")
@login_required
def resend(order_ref: str) -> Response | tuple[str, int]:
    order = _own_order(order_ref)
    if order.status != OrderStatus.PENDING_VERIFICATION:
        return redirect(url_for("checkout.verify", order_ref=order.ref))
    send_and_commit(lambda: send_order_code(order, current_user))
    return redirect(url_for("checkout.verify", order_ref=order.ref))
