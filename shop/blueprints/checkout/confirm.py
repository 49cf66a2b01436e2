"""The code page of a pending order: confirm with the SMS code or a stronger factor, the
passkey challenge, the delivery status the page follows, and a new code.

Each view calls one use case of `shop.orders.confirmation` and maps its outcome to a page.
"""

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug import Response

from shop import orders
from shop.blueprints.checkout import bp
from shop.models import Order, OrderStatus
from shop.orders.checkout import (
    CLOSED_MESSAGES,
    order_challenge,
    order_resend_blocker,
    order_step_up,
    shopper_reason,
)
from shop.orders.confirmation import (
    ConfirmOutcome,
    ConfirmResult,
    OptionsOutcome,
    confirm_order,
    order_passkey_options,
)
from shop.orders.history import find_order
from shop.orders.resend import ResendOutcome, resend_order_code
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
from shop.web.ratelimits import limit_code_entry
from shop.web.sessions import renew_session


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
    elif result.outcome in (ResendOutcome.NOT_ALLOWED, ResendOutcome.HELD):
        flash(result.message, "error")
    return redirect(url_for("checkout.verify", order_ref=order_ref))
