"""The cart: kept with the signed-in user, or in the session before sign-in."""

from collections.abc import Callable

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug import Response
from wtforms.validators import InputRequired

from shop import cart as carts
from shop.extensions import db
from shop.models import Product
from shop.web.forms import StrictForm, WholeNumberField, error_messages, quantity_field
from shop.web.sessions import anonymous_cart, keep_anonymous_cart

bp = Blueprint("cart", __name__)


class AddToCartForm(StrictForm):
    product_id = WholeNumberField("Product", [InputRequired("Choose a product.")])
    quantity = quantity_field(minimum=1)


class UpdateCartForm(StrictForm):
    product_id = WholeNumberField("Product", [InputRequired("Choose a product.")])
    quantity = quantity_field(minimum=0)


def current_contents() -> carts.Contents:
    if current_user.is_authenticated:
        return carts.load_user_cart(current_user)
    return anonymous_cart()


def store_contents(contents: carts.Contents) -> None:
    if current_user.is_authenticated:
        carts.save_user_cart(current_user, contents)
        db.session.commit()
    else:
        keep_anonymous_cart(contents)


def current_cart() -> carts.PricedCart:
    return carts.price(current_contents(), current_app.config["SHOP_CURRENCY"])


def render_cart(errors: list[str] | None = None, status: int = 200) -> tuple[str, int]:
    page = render_template("cart/show.html", cart=current_cart(), errors=errors or [])
    return page, status


@bp.get("/cart")
def show() -> tuple[str, int]:
    return render_cart()


def change_cart(
    form: AddToCartForm | UpdateCartForm, *, add: bool, done: Callable[[Product, int], str]
) -> Response | tuple[str, int]:
    """Validate `form`, apply the change to the current cart, store it, and say what it did."""
    if not form.validate_on_submit():
        return render_cart(error_messages(form), 422)
    try:
        contents, product = carts.change(
            current_contents(), form.product_id.data, form.quantity.data, add=add
        )
    except carts.NoSuchProduct as error:
        abort(404, description=str(error))
    except carts.CartError as error:
        return render_cart([str(error)], 422)
    store_contents(contents)
    flash(done(product, form.quantity.data), "success")
    return redirect(url_for("cart.show"))


@bp.post("/cart/add")
def add() -> Response | tuple[str, int]:
    return change_cart(
        AddToCartForm(),
        add=True,
        done=lambda product, quantity: f"Added {quantity} × {product.name} to your cart.",
    )


@bp.post("/cart/update")
def update() -> Response | tuple[str, int]:
    return change_cart(
        UpdateCartForm(),
        add=False,
        done=lambda product, quantity: (
            f"Removed {product.name} from your cart."
            if quantity == 0
            else f"Your cart now has {quantity} × {product.name}."
        ),
    )
