"""The catalog pages: the grid a page at a time, the search, a page per product."""

import re

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


# Pages and search -----------------------------------------------------------------------------


def names_on(page: str) -> list[str]:
    return re.findall(r'<h2><a href="/products/\d+">([^<]+)</a></h2>', page)


def test_the_catalog_comes_a_page_of_24_at_a_time(client):
    for number in range(50):
        make_product(f"Product {number:02d}")
    first = client.get("/").get_data(as_text=True)
    assert names_on(first) == [f"Product {n:02d}" for n in range(24)]
    assert "50 products." in first and "Page 1 of 3" in first
    assert 'href="/?page=2" rel="next"' in first and 'rel="prev"' not in first

    second = client.get("/?page=2").get_data(as_text=True)
    assert names_on(second) == [f"Product {n:02d}" for n in range(24, 48)]
    assert 'href="/" rel="prev"' in second and 'href="/?page=3" rel="next"' in second

    last = client.get("/?page=3").get_data(as_text=True)
    assert names_on(last) == ["Product 48", "Product 49"]
    assert last.count('name="csrf_token"') == 2 and 'rel="next"' not in last


def test_a_page_past_the_last_is_404_and_a_malformed_one_400(client):
    make_product("Only product")
    assert client.get("/?page=2").status_code == 404
    for bad in ("0", "-1", "abc", "1.5", "١", "9999999"):
        response = client.get(f"/?page={bad}")
        assert response.status_code == 400
        assert "whole number from 1" in response.get_data(as_text=True)


def test_search_finds_names_containing_the_words_whatever_the_case(client):
    for name in ("Walnut desk lamp", "Brass LAMP", "Wool scarf", "100% cotton tote", "A_B mug"):
        make_product(name)
    page = client.get("/?q=lamp").get_data(as_text=True)
    assert names_on(page) == ["Walnut desk lamp", "Brass LAMP"]
    assert "2 products match “lamp”." in page
    assert 'name="q" type="search" value="lamp"' in page
    # Wildcards are plain characters; spaces are tidied.
    assert names_on(client.get("/?q=100%25").get_data(as_text=True)) == ["100% cotton tote"]
    assert names_on(client.get("/?q=A_B").get_data(as_text=True)) == ["A_B mug"]
    assert names_on(client.get("/?q=%20%20desk%20%20%20lamp%20").get_data(as_text=True)) == [
        "Walnut desk lamp"
    ]
    nothing = client.get("/?q=sofa").get_data(as_text=True)
    assert "No product matches “sofa”." in nothing and names_on(nothing) == []


def test_search_results_come_in_pages_that_keep_the_search(client):
    for number in range(30):
        make_product(f"Mug {number:02d}")
        make_product(f"Plate {number:02d}")
    first = client.get("/?q=mug").get_data(as_text=True)
    assert len(names_on(first)) == 24 and "30 products match “mug”." in first
    assert 'href="/?q=mug&amp;page=2" rel="next"' in first
    second = client.get("/?q=mug&page=2").get_data(as_text=True)
    assert names_on(second) == [f"Mug {n:02d}" for n in range(24, 30)]


def test_a_search_too_long_is_refused_with_a_message(client):
    response = client.get("/?q=" + "a" * 81)
    assert response.status_code == 400
    assert "at most 80 characters" in response.get_data(as_text=True)
    assert client.get("/?q=" + "a" * 80).status_code == 200
