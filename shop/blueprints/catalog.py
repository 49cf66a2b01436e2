"""The catalog: the product grid and one page per product."""

from flask import Blueprint, render_template
from sqlalchemy import select

from shop.blueprints.cart import AddToCartForm
from shop.extensions import db
from shop.models import Product

bp = Blueprint("catalog", __name__)


@bp.get("/")
def index() -> str:
    products = db.session.scalars(select(Product).order_by(Product.id)).all()
    return render_template("catalog/index.html", products=products, form=AddToCartForm())


@bp.get("/products/<int:product_id>")
def product(product_id: int) -> str:
    item = db.get_or_404(Product, product_id, description="There is no such product.")
    return render_template("catalog/product.html", product=item, form=AddToCartForm())
