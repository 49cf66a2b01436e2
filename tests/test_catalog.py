"""The catalog pages."""

from shop.demo import PRODUCTS, seed_products
from shop.extensions import db
from tests.factories import make_product


def test_catalog_lists_every_product_with_price_and_stock(client):
    seed_products("EUR")
    db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert page.count('class="product-card"') == len(PRODUCTS) == 24
    assert "€4.99" in page and "€2,499.00" in page
    assert "Only 1 left" in page
    assert page.count('action="/cart/add"') == 24
    assert page.count('name="csrf_token"') == 24


def test_product_page(client):
    lamp = make_product("Desk lamp", price_minor=11900, stock=0)
    page = client.get(f"/products/{lamp.id}").get_data(as_text=True)
    assert "<h1>Desk lamp</h1>" in page
    assert "€119.00" in page
    assert "Sold out" in page


def test_unknown_or_malformed_product_gets_404(client):
    for path in ("/products/424242", "/products/abc", "/products/-1", "/products/1.5"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Not Found" in response.get_data(as_text=True)


def test_catalog_html_escapes_product_text(client):
    make_product("<script>alert(1)</script>")
    page = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
