"""Checkout: the shipping form, and the order placed from the server-priced cart."""

import secrets

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug import Response
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Regexp

from shop import orders
from shop.blueprints.cart import current_cart
from shop.blueprints.forms import StrictForm
from shop.countries import country_choices

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
            currency=current_app.config["SHOP_CURRENCY"],
        )
    except orders.CheckoutError as error:
        # A fresh key, so that the shopper's next submit is a new attempt.
        form.idempotency_key.data = new_idempotency_key()
        return render_checkout(form, error.status, error.message)
    flash(f"Thank you! Order {order.ref} is placed.", "success")
    return redirect(url_for("orders.detail", order_ref=order.ref))
