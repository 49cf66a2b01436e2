"""The catalog: the product grid, a page at a time with a search box, and a page per product."""

import re
from typing import NamedTuple

from flask import Blueprint, Flask, Request, Response, abort, render_template
from flask.blueprints import BlueprintSetupState
from flask.globals import request_ctx
from flask.sessions import SessionMixin
from flask_login import current_user
from markupsafe import Markup

from shop import catalog
from shop.blueprints.cart import AddToCartForm
from shop.catalog_cache import (
    CSRF_PLACEHOLDER,
    STOCK_PLACEHOLDER,
    VISITORS,
    CatalogCache,
    Listing,
    plain_visitor,
)
from shop.extensions import db
from shop.models import Product
from shop.web.csrf_tokens import TokenMemo

bp = Blueprint("catalog", __name__)

PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,5}")
# Between two products' stock slots when they are rendered together, then cut apart.
SLOT_END = "\x00slot\x00"


class StockedProduct(NamedTuple):
    """What a product's stock slot shows: its stock note and add-to-cart form."""

    id: int
    name: str
    stock: int


@bp.record_once
def add_catalog_cache(state: BlueprintSetupState) -> None:
    state.app.extensions["catalog_cache"] = CatalogCache()
    state.app.extensions["csrf_tokens"] = TokenMemo()


def _placeholder() -> str:
    return CSRF_PLACEHOLDER


def search_arg(request: Request) -> str:
    """The search words (`?q=`), spaces tidied; empty for the whole catalog."""
    if not request.query_string:  # the first page, most visits: no arguments to parse
        return ""
    words = " ".join(request.args.get("q", "").split())
    if len(words) > catalog.MAX_SEARCH_LENGTH:
        abort(400, description=f"Search for at most {catalog.MAX_SEARCH_LENGTH} characters.")
    return words


def page_arg(request: Request) -> int:
    if not request.query_string:
        return 1
    raw = request.args.get("page", "1").strip()
    if not PAGE_NUMBER.fullmatch(raw):
        abort(400, description="The page number must be a whole number from 1.")
    return int(raw)


def render_listing(search: str, number: int) -> Listing:
    """A page of the grid as every visitor sees it: search box, products, page links, with
    a slot for each product's stock and a placeholder for the CSRF token."""
    page = catalog.catalog_page(search, number)
    if page is None:
        abort(404, description="There is no such page of the catalog.")
    html = render_template("catalog/_listing.html", page=page, stock_slot=STOCK_PLACEHOLDER)
    return Listing.cut([(product.id, product.name) for product in page.products], html)


def render_stock(listing: Listing) -> list[str]:
    """Each product's stock note and add-to-cart form, from its stock now."""
    stock = catalog.stock_of(product_id for product_id, _ in listing.products)
    products = [
        StockedProduct(product_id, name, stock.get(product_id, 0))
        for product_id, name in listing.products
    ]
    html = render_template(
        "catalog/_stock.html", products=products, slot_end=SLOT_END, csrf_token=_placeholder
    )
    return html.split(SLOT_END)[: len(products)]


def render_page(grid: str) -> str:
    # The grid was escaped when it was rendered.
    return render_template(
        "catalog/index.html",
        grid=Markup(grid),  # noqa: S704
        csrf_token=_placeholder,
    )


def audience(app: Flask, request: Request, session: SessionMixin) -> str | None:
    """Whom the page around the grid is for, when it is the same for all of them: the
    navigation shows only whether the visitor is signed in and is the owner, and nothing
    else may differ (no message waiting). None: this visitor's page is their own.

    Flask-Login is asked only when the visitor may be signed in: for a plain visitor that
    check is a fair share of a cached catalog request."""
    if plain_visitor(app.config, session, request.cookies):
        return VISITORS
    if "_flashes" in session:
        return None
    if not current_user.is_authenticated:
        return VISITORS
    return "owner" if current_user.is_owner else "shopper"


def answer_catalog_first() -> Response | None:
    """GET / answered before the extensions' before-request hooks (registered first by
    `create_app`). Neither applies to it: CSRF is checked on POSTs only and the catalog has
    no rate limit, yet running them was a quarter of a cached catalog request."""
    request = request_ctx.request
    if request.endpoint == "catalog.index" and request.method in ("GET", "HEAD"):
        return index()
    return None


@bp.get("/")
def index() -> Response:
    # The request, its session and the app looked up once: through Flask's proxies
    # (`request`, `session`, `current_app`) each use costs a context-variable look-up, and
    # a dozen of them were a tenth of a cached catalog request.
    context = request_ctx._get_current_object()
    app, request, session = context.app, context.request, context.session
    search, number = search_arg(request), page_arg(request)
    page = app.extensions["catalog_cache"].page(
        (search, number),
        render_listing=lambda: render_listing(search, number),
        render_stock=render_stock,
        render_page=render_page,
        audience=audience(app, request, session),
        recheck_seconds=app.config["CATALOG_RECHECK_SECONDS"],
    )
    token = app.extensions["csrf_tokens"].token(app, session)
    return Response(page.with_token(token), content_type="text/html; charset=utf-8")


@bp.get("/products/<int:product_id>")
def product(product_id: int) -> str:
    item = db.get_or_404(Product, product_id, description="There is no such product.")
    return render_template("catalog/product.html", product=item, form=AddToCartForm())
