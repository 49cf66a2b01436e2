"""API: the catalog (no sign-in needed)."""

from flask import url_for

from shop import catalog
from shop.api import Blueprint, errors
from shop.api.problems import ApiProblem
from shop.api.schemas import ProductPageArgs, ProductPageSchema, ProductSchema

blp = Blueprint("api_catalog", __name__, url_prefix="/api/v1", description="Products on sale.")


@blp.get("/products")
@blp.doc(operationId="listProducts", security=[])
@blp.arguments(ProductPageArgs, location="query")
@blp.response(200, ProductPageSchema)
@errors(blp, 429)
def products(args: dict):
    """Products in id order, a page at a time (follow `next`)."""
    page = catalog.products_after(args["after"], args["limit"])
    following = (
        url_for("api_catalog.products", after=page.next_after, limit=args["limit"])
        if page.next_after is not None
        else None
    )
    return {"items": page.products, "next": following}


@blp.get("/products/<int(max=2147483647):product_id>")
@blp.doc(operationId="getProduct", security=[])
@blp.response(200, ProductSchema)
@errors(blp, 404, 429)
def product(product_id: int):
    """One product, with its price and stock."""
    found = catalog.find_product(product_id)
    if found is None:
        raise ApiProblem(404, "There is no such product.", name="not_found")
    return found
