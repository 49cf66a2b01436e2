"""The catalog: the product grid and one page per product."""

from flask import Blueprint, Response, current_app, render_template, request, session
from flask.blueprints import BlueprintSetupState
from flask_login import current_user
from flask_login.config import COOKIE_NAME
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import select

from shop.blueprints.cart import AddToCartForm
from shop.catalog_cache import CSRF_PLACEHOLDER, CatalogCache
from shop.extensions import db, limiter
from shop.models import Product

bp = Blueprint("catalog", __name__)


@limiter.request_filter
def catalog_page_is_not_rate_limited() -> bool:
    """The catalog page has no rate limit: saying so before Flask-Limiter looks for one spares
    about a tenth of the cost of a cached catalog request."""
    return request.endpoint == "catalog.index"


@bp.record_once
def add_catalog_cache(state: BlueprintSetupState) -> None:
    state.app.extensions["catalog_cache"] = CatalogCache()


def render_grid() -> str:
    """The product grid as every visitor sees it, with a placeholder for the CSRF token."""
    products = db.session.scalars(select(Product).order_by(Product.id)).all()
    return render_template("catalog/_grid.html", products=products, csrf_token=_placeholder)


def _placeholder() -> str:
    return CSRF_PLACEHOLDER


def render_page(grid: str) -> str:
    # The grid was escaped when it was rendered.
    return render_template("catalog/index.html", grid=Markup(grid))  # noqa: S704


def signed_in() -> bool:
    """Whether the visitor is signed in, without asking Flask-Login when it plainly is not:
    no user in the session and no remember-me cookie (that check is a fair share of a
    cached catalog request)."""
    remember_cookie = current_app.config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME)
    if "_user_id" not in session and remember_cookie not in request.cookies:
        return False
    return current_user.is_authenticated


@bp.get("/")
def index() -> Response:
    page = current_app.extensions["catalog_cache"].page(
        render_grid,
        render_page,
        # The only per-visitor parts of the page around the grid: the navigation, which
        # shows the sign-in state, and the flash messages.
        same_for_everyone=not signed_in() and "_flashes" not in session,
    )
    return Response(page.with_token(generate_csrf()), content_type="text/html; charset=utf-8")


@bp.get("/products/<int:product_id>")
def product(product_id: int) -> str:
    item = db.get_or_404(Product, product_id, description="There is no such product.")
    return render_template("catalog/product.html", product=item, form=AddToCartForm())
