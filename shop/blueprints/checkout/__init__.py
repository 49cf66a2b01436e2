"""Checkout pages: the shipping form here, the code page of a pending order in `confirm`.

Each view parses its form, calls one use case of `shop.orders.checkout` or
`shop.orders.confirmation` and maps the outcome to a page or a redirect.
"""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug import Response

from shop.blueprints.cart import current_cart
from shop.blueprints.checkout.address_form import CheckoutForm, new_idempotency_key
from shop.orders.checkout import CheckoutOutcome, CheckoutRefusal, start_checkout
from shop.web.client import current_client

bp = Blueprint("checkout", __name__)


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


# The code page of a pending order has a module of its own.
from shop.blueprints.checkout import confirm  # noqa: E402

__all__ = ["bp", "confirm"]
