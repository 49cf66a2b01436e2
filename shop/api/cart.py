"""API: the signed-in account's cart (the same cart as on the site)."""

from flask import current_app

from shop import cart as carts
from shop.api import Blueprint, errors
from shop.api.auth import require_user
from shop.api.problems import ApiProblem
from shop.api.schemas import AddItemSchema, CartSchema, SetQuantitySchema
from shop.extensions import db
from shop.money import format_money

blp = Blueprint("api_cart", __name__, url_prefix="/api/v1", description="The account's cart.")
SECURITY = [{"bearer": []}, {"session": []}]


def cart_of(user) -> dict:
    priced = carts.price(carts.load_user_cart(user), current_app.config["SHOP_CURRENCY"])
    return {
        "lines": [
            {
                "product_id": line.product.id,
                "name": line.product.name,
                "quantity": line.quantity,
                "unit_price_minor": line.product.price_minor,
                "line_total_minor": line.total_minor,
            }
            for line in priced.lines
        ],
        "item_count": priced.item_count,
        "currency": priced.currency,
        "total_minor": priced.total_minor,
        "total": format_money(priced.total_minor, priced.currency),
    }


def change(product_id: int, quantity: int, *, add: bool) -> dict:
    user = require_user()
    try:
        contents, _ = carts.change(carts.load_user_cart(user), product_id, quantity, add=add)
    except carts.NoSuchProduct as error:
        raise ApiProblem(404, str(error), name="not_found") from None
    except carts.CartError as error:
        # Conflicts with the cart or the stock as they are now.
        raise ApiProblem(409, str(error), name="cart_refused") from None
    carts.save_user_cart(user, contents)
    db.session.commit()
    return cart_of(user)


@blp.get("/cart")
@blp.doc(operationId="getCart", security=SECURITY)
@blp.response(200, CartSchema)
@errors(blp, 401, 429)
def show():
    """The cart, priced now by the shop."""
    return cart_of(require_user())


@blp.post("/cart/items")
@blp.doc(operationId="addToCart", security=SECURITY)
@blp.arguments(AddItemSchema)
@blp.response(200, CartSchema)
@errors(blp, 401, 403, 404, 409, 422, 429)
def add(body: dict):
    """Add a quantity of a product (at most 99 of one product, and no more than in stock)."""
    return change(body["product_id"], body["quantity"], add=True)


@blp.put("/cart/items/<int(max=2147483647):product_id>")
@blp.doc(operationId="setCartQuantity", security=SECURITY)
@blp.arguments(SetQuantitySchema)
@blp.response(200, CartSchema)
@errors(blp, 401, 403, 404, 409, 422, 429)
def set_quantity(body: dict, product_id: int):
    """Set the quantity of a product; 0 removes it."""
    return change(product_id, body["quantity"], add=False)
