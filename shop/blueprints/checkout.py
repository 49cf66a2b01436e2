"""Checkout pages: the shipping form, the code page of a pending order, a new code.

Each view parses its form, calls one use case of `shop.orders.checkout` or
`shop.orders.confirmation` and maps the outcome to a page or a redirect.
"""

import secrets

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug import Response
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Regexp, ValidationError

from shop import orders
from shop.blueprints.cart import current_cart
from shop.countries import InvalidPostcode, check_postcode, country_choices
from shop.models import Order, OrderStatus
from shop.orders.checkout import (
    CLOSED_MESSAGES,
    CheckoutOutcome,
    CheckoutRefusal,
    order_challenge,
    order_resend_blocker,
    order_step_up,
    shopper_reason,
    start_checkout,
)
from shop.orders.confirmation import (
    ConfirmOutcome,
    ConfirmResult,
    OptionsOutcome,
    ResendOutcome,
    confirm_order,
    order_passkey_options,
    resend_order_code,
)
from shop.orders.history import find_order
from shop.risk import Outcome
from shop.web.client import current_client
from shop.web.code_page import (
    CodeForm,
    FactorForm,
    factor_forms,
    flash_send,
    options_response,
    render_code_page,
    status_response,
    submitted_factor,
)
from shop.web.forms import StrictForm
from shop.web.ratelimits import limit_code_entry
from shop.web.sessions import renew_session

bp = Blueprint("checkout", __name__)
POSTCODE_HINT = "Leave it empty only if addresses in your country have none."


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(24)


def _stripped(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _text(label: str, maximum: int, missing: str) -> StringField:
    # Stripped first, so that a name of spaces is a missing name.
    return StringField(label, [DataRequired(missing), Length(max=maximum)], filters=[_stripped])


class CheckoutForm(StrictForm):
    full_name = _text("Full name", 120, "Enter the name to deliver to.")
    address_line1 = _text("Address", 200, "Enter the street address.")
    city = _text("Town or city", 100, "Enter the town or city.")
    postal_code = StringField(
        "Postcode", [Length(max=40)], filters=[_stripped], description=POSTCODE_HINT
    )
    country = SelectField("Country", [InputRequired()], choices=country_choices, default="GB")
    idempotency_key = HiddenField(
        validators=[
            InputRequired("The form came back incomplete: check it and place the order again."),
            Regexp(
                r"^[A-Za-z0-9_-]{16,64}$",
                message="The form came back altered: check it and place the order again.",
            ),
        ]
    )

    def validate_postal_code(self, field: StringField) -> None:
        try:
            field.data = check_postcode(self.country.data or "", field.data or "")
        except InvalidPostcode as error:
            raise ValidationError(str(error)) from None

    def shipping_address(self) -> orders.ShippingAddress:
        return orders.ShippingAddress(
            full_name=self.full_name.data,
            address_line1=self.address_line1.data,
            city=self.city.data,
            postal_code=self.postal_code.data,
            country=self.country.data,
        )


def render_checkout(form: CheckoutForm, status: int = 200, error: str | None = None):
    return render_template(
        "checkout/form.html", form=form, cart=current_cart(), error=error
    ), status


REFUSAL_STATUS = {
    CheckoutRefusal.EMPTY_CART: 400,
    CheckoutRefusal.OUT_OF_STOCK: 409,
    CheckoutRefusal.KEY_REUSED: 422,
}


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
        # A hidden field has no place on the page for its message: say it above the form, and
        # give a fresh key so that the next submit can go through (no order used this one).
        problem = next(iter(form.idempotency_key.errors), None)
        if problem is not None:
            form.idempotency_key.data = new_idempotency_key()
        return render_checkout(form, 422, problem)
    result = start_checkout(
        current_user, form.shipping_address(), form.idempotency_key.data, current_client()
    )
    if result.outcome == CheckoutOutcome.CODE_SENT:
        return redirect(url_for("checkout.verify", order_ref=result.order.ref))
    if result.outcome in (CheckoutOutcome.REFUSED, CheckoutOutcome.BLOCKED):
        # A fresh key, so that the shopper's next submit is a new attempt.
        form.idempotency_key.data = new_idempotency_key()
        if result.outcome == CheckoutOutcome.BLOCKED:
            status = 403
        elif result.send_refused is not None:
            status = 429 if result.send_refused.retry_after else 409
        else:
            status = REFUSAL_STATUS[result.refusal]
        return render_checkout(form, status, result.message)
    flash(result.message, "success" if result.outcome == CheckoutOutcome.PLACED else "info")
    return redirect(url_for("orders.detail", order_ref=result.order.ref))


def _own_order(order_ref: str) -> Order:
    order = find_order(current_user, order_ref)
    if order is None:
        abort(404, description="There is no such order on your account.")
    return order


def _order_page(order: Order, message: str, status: int) -> tuple[str, int]:
    return render_template("checkout/closed.html", order=order, message=message), status


CONFIRM_STATUS = {
    ConfirmOutcome.CART_CHANGED: 409,
    ConfirmOutcome.TOO_MANY_TRIES: 409,
    ConfirmOutcome.HELD: 409,
    ConfirmOutcome.BLOCKED: 409,
    ConfirmOutcome.CLOSED: 409,
    ConfirmOutcome.LOCKED: 423,
    ConfirmOutcome.EXPIRED: 410,
}


def _confirmed(order: Order, result: ConfirmResult) -> Response | tuple[str, int] | str | None:
    """The page after a confirm, if it is not the code page again (then the error, or None)."""
    if result.outcome == ConfirmOutcome.PLACED:
        renew_session(current_user._get_current_object())
        flash(result.message, "success")
        return redirect(url_for("orders.detail", order_ref=order.ref))
    if result.outcome in CONFIRM_STATUS:
        return _order_page(result.order, result.message, CONFIRM_STATUS[result.outcome])
    if result.outcome != ConfirmOutcome.ALREADY_PLACED:
        return result.message
    return None


def _code_page(order: Order, form: CodeForm, error: str | None, failed: bool):
    """The order's step-up page: the order's factors, strongest first, then SMS."""
    if order.status == OrderStatus.PLACED:
        flash(CLOSED_MESSAGES[OrderStatus.PLACED], "info")
        return redirect(url_for("orders.detail", order_ref=order.ref))
    if order.status != OrderStatus.PENDING_VERIFICATION:
        return _order_page(order, CLOSED_MESSAGES[OrderStatus(order.status)], 409)
    if orders.lapsed(order):
        # A GET never changes state: the delivery process's sweep expires it.
        return _order_page(order, CLOSED_MESSAGES[OrderStatus.EXPIRED], 410)
    step_up = order_step_up(current_user, order)
    return render_code_page(
        title=f"Confirm order {order.ref}",
        reason=shopper_reason(order, Outcome.OTP) or "This order needs a code.",
        challenge=order_challenge(current_user, order),
        form=form,
        resend_url=url_for("checkout.resend", order_ref=order.ref),
        status_url=url_for("checkout.verify_status", order_ref=order.ref),
        blocker=order_resend_blocker(current_user, order, current_client()),
        status=422 if failed else 200,
        error=error,
        extra={
            "order": order,
            **factor_forms(
                step_up,
                factor_url=url_for("checkout.verify_factor", order_ref=order.ref),
                options_url=url_for("checkout.passkey_options", order_ref=order.ref),
            ),
        },
    )


@bp.route("/checkout/verify/<order_ref>", methods=["GET", "POST"])
@login_required
@limit_code_entry
def verify(order_ref: str) -> Response | tuple[str, int]:
    order = _own_order(order_ref)
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        result = confirm_order(current_user, order_ref, form.code.data, current_client())
        page = _confirmed(order, result)
        if not isinstance(page, str | None):
            return page
        error = page
    return _code_page(order, form, error, bool(form.errors or error))


@bp.post("/checkout/verify/<order_ref>/factor")
@login_required
@limit_code_entry
def verify_factor(order_ref: str) -> Response | tuple[str, int]:
    """A passkey's assertion, an app code or a recovery code instead of the SMS code."""
    order = _own_order(order_ref)
    form = FactorForm()
    error = None
    if form.validate_on_submit():
        result = confirm_order(
            current_user,
            order_ref,
            form.answer.data,
            current_client(),
            factor=submitted_factor(form),
        )
        page = _confirmed(order, result)
        if not isinstance(page, str | None):
            return page
        error = page
    else:
        error = " ".join(message for errors in form.errors.values() for message in errors)
    return _code_page(order, CodeForm(formdata=None), error, True)


OPTIONS_STATUS = {
    OptionsOutcome.NOT_PENDING: 409,
    OptionsOutcome.NOT_ALLOWED: 409,
    OptionsOutcome.NOT_FOUND: 404,
}


@bp.post("/checkout/verify/<order_ref>/passkey-options")
@login_required
@limit_code_entry
def passkey_options(order_ref: str) -> Response:
    """The passkey challenge of the order, for passkey.js (JSON)."""
    _own_order(order_ref)
    result = order_passkey_options(current_user, order_ref)
    return options_response(result.options, result.message, OPTIONS_STATUS.get(result.outcome, 200))


@bp.get("/checkout/verify/<order_ref>/status")
@login_required
def verify_status(order_ref: str) -> Response:
    order = _own_order(order_ref)
    pending = order.status == OrderStatus.PENDING_VERIFICATION and not orders.lapsed(order)
    if not pending:
        return status_response(None, None)
    return status_response(
        order_challenge(current_user, order),
        order_resend_blocker(current_user, order, current_client()),
    )


@bp.post("/checkout/verify/<order_ref>/resend")
@login_required
def resend(order_ref: str) -> Response:
    result = resend_order_code(current_user, order_ref, current_client())
    if result.order is None:
        abort(404, description=result.message)
    if result.send is not None:
        flash_send(result.send)
    elif result.outcome == ResendOutcome.NOT_ALLOWED:
        flash(result.message, "error")
    return redirect(url_for("checkout.verify", order_ref=order_ref))
