"""The cached catalog: never stale after a change, never one visitor's page for another,
and an order changes the stock shown without rendering any page again.

Two apps on one database stand for two web processes (two gunicorn workers, or a web
worker and a CLI command): each keeps its own cached pages, and a change made through one
must show on the other's next page.
"""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import request
from flask_login.utils import encode_cookie
from sqlalchemy import select, text

from shop import catalog_cache, create_app
from shop.accounts.client import Client
from shop.accounts.sessions import open_session
from shop.blueprints import catalog as catalog_views
from shop.catalog_cache import CSRF_PLACEHOLDER, CatalogCache
from shop.config import Config
from shop.extensions import db
from shop.models import CatalogVersion, Product, Role
from shop.orders.lifecycle import cancel_open_orders
from tests import postgres
from tests.conftest import CSRF_FIELD, ShopClient
from tests.factories import ADDRESS, ALLOW_ALL, fill_cart, make_product, make_user, set_rules

# PostgreSQL fixtures (tests/postgres.py): its trigger is not SQLite's.
postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app


@pytest.fixture
def other_process(app) -> ShopClient:
    """A client of a second app on the same database: another web process."""
    other = create_app(dict(app.config))
    other.test_client_class = ShopClient
    yield other.test_client()
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def card(page: str, product: Product) -> str:
    """The product's card on the catalog page."""
    match = re.search(
        rf'<li class="product-card">\s*<h2><a href="/products/{product.id}">.*?</li>',
        page,
        re.DOTALL,
    )
    assert match, f"no card for {product.name}"
    return match.group(0)


def catalog(client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert CSRF_PLACEHOLDER not in page
    return page


def tokens(page: str) -> set[str]:
    return set(CSRF_FIELD.findall(page))


def buy(client, user, product: Product, quantity: int = 1) -> None:
    """Check out `quantity` of `product` over HTTP, as `user`."""
    fill_cart(user, (product, quantity))
    client.sign_in_as(user)
    form = client.get("/checkout").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([^"]+)"', form).group(1)
    response = client.post_form("/checkout", {**ADDRESS, "idempotency_key": key})
    assert response.status_code == 302 and "/orders/" in response.headers["Location"]


def test_stock_on_the_grid_follows_checkouts_made_by_another_process(client, other_process):
    set_rules(**ALLOW_ALL.as_dict())
    socks = make_product("Merino socks", stock=3)
    assert "Only 3 left" in card(catalog(client), socks)
    assert "Only 3 left" in card(catalog(client), socks)  # from the cache

    buy(other_process, make_user(), socks)
    assert "Only 2 left" in card(catalog(client), socks)

    buy(other_process, make_user(), socks, quantity=2)
    sold_out = card(catalog(client), socks)
    assert "Out of stock" in sold_out and "Sold out" in sold_out
    assert 'action="/cart/add"' not in sold_out


def test_stock_comes_back_on_the_grid_when_an_order_is_cancelled(client, other_process, app):
    set_rules(**ALLOW_ALL.as_dict())
    helmet = make_product("Road bike helmet", stock=1)
    user = make_user()
    buy(other_process, user, helmet)
    assert "Sold out" in card(catalog(client), helmet)

    with other_process.application.app_context():
        cancel_open_orders(db.session.merge(user))
        db.session.commit()

    restocked = card(catalog(client), helmet)
    assert "Only 1 left" in restocked and 'action="/cart/add"' in restocked


def test_product_edits_show_at_once_whether_by_the_orm_or_by_sql(client, other_process):
    lamp = make_product("Desk lamp", price_minor=11900, stock=20)
    assert "€119.00" in card(catalog(client), lamp)

    with other_process.application.app_context():
        edited = db.session.get(Product, lamp.id)
        edited.name, edited.price_minor = "Desk lamp, brass", 9900
        db.session.commit()
    page = card(catalog(client), lamp)
    assert "Desk lamp, brass" in page and "€99.00" in page

    with other_process.application.app_context():
        db.session.execute(text("UPDATE products SET stock = 2 WHERE id = :id"), {"id": lamp.id})
        db.session.commit()
    assert "Only 2 left" in card(catalog(client), lamp)

    mug = make_product("Ceramic mug")
    assert "Ceramic mug" in catalog(client)
    db.session.delete(mug)
    db.session.commit()
    assert "Ceramic mug" not in catalog(client)


def test_each_visitor_gets_a_token_of_their_own_that_works(app):
    make_product("Enamel pin", stock=5)
    first, second = app.test_client(), app.test_client()
    first_page, second_page = catalog(first), catalog(second)
    (first_token,) = tokens(first_page)
    (second_token,) = tokens(second_page)
    assert first_token != second_token
    assert first_page.replace(first_token, "") == second_page.replace(second_token, "")

    product_id = re.search(r'name="product_id" value="(\d+)"', second_page).group(1)
    form = {"product_id": product_id, "quantity": "1"}
    stolen = second.post("/cart/add", data={**form, "csrf_token": first_token})
    assert stolen.status_code == 400
    added = second.post("/cart/add", data={**form, "csrf_token": second_token})
    assert added.status_code == 302 and added.headers["Location"] == "/cart"
    assert "1 × Enamel pin" in second.get("/cart").get_data(as_text=True)


def test_a_signed_in_page_is_never_served_to_someone_else(app):
    make_product("Tablet", stock=9)
    shopper, stranger = app.test_client(), app.test_client()
    shopper.sign_in_as(make_user())

    for client in (stranger, shopper, stranger, shopper):
        page = catalog(client)
        if client is shopper:
            assert "Sign out" in page and "Sign in" not in page
            # One token for the whole page: the sign-out form's and the grid's.
            assert len(tokens(page)) == 1
        else:
            assert "Sign out" not in page and "Sign in" in page
    assert tokens(catalog(shopper)).isdisjoint(tokens(catalog(stranger)))


def test_a_remember_me_cookie_alone_signs_the_visitor_in(app):
    make_product("Tablet", stock=9)
    catalog(app.test_client())  # the page for visitors not signed in is now cached
    returning = app.test_client()
    with app.test_request_context():
        session_id = open_session(make_user(), Client("127.0.0.1"), remember=True)
        returning.set_cookie("remember_token", encode_cookie(session_id))
    assert "Sign out" in catalog(returning)


def test_flash_messages_reach_only_their_visitor(app):
    make_product("Desk plant", stock=25)
    flashed, other = app.test_client(), app.test_client()
    catalog(other)  # the page for visitors without messages is now cached
    with flashed.session_transaction() as session:
        session["_flashes"] = [("info", "Your basket was saved.")]

    assert "Your basket was saved." in catalog(flashed)
    assert "Your basket was saved." not in catalog(other)
    assert "Your basket was saved." not in catalog(flashed)  # shown once


def test_the_cached_page_is_what_each_visitor_would_get_anyway(app):
    """What the page around the grid shows must not depend on the visitor once they are not
    signed in and have no message: if it ever does (a cart count in the header...), this
    fails rather than one visitor's page going to another."""
    pin = make_product("Enamel pin", stock=5)
    with_cart, without = app.test_client(), app.test_client()
    with with_cart.session_transaction() as session:
        session["cart"] = {str(pin.id): 2}

    catalog(without)  # cached from this visitor's page
    from_cache = catalog(with_cart)
    app.extensions["catalog_cache"] = CatalogCache()
    fresh = catalog(with_cart)
    (token,) = tokens(fresh)
    assert from_cache == fresh
    assert tokens(from_cache) == {token}


def test_without_a_version_row_every_page_is_rendered_afresh(client):
    db.session.execute(text("DELETE FROM catalog_version"))
    db.session.commit()
    socks = make_product("Merino socks", stock=3)
    assert "Only 3 left" in card(catalog(client), socks)
    socks.stock = 1
    db.session.commit()
    assert "Only 1 left" in card(catalog(client), socks)


class Renders:
    """Counts the catalog's renders: listings (the products of a page) and pages around them."""

    def __init__(self, monkeypatch) -> None:
        self.listings = self.pages = 0
        render_listing, render_page = catalog_views.render_listing, catalog_views.render_page

        def listing(*args):
            self.listings += 1
            return render_listing(*args)

        def page(*args):
            self.pages += 1
            return render_page(*args)

        monkeypatch.setattr(catalog_views, "render_listing", listing)
        monkeypatch.setattr(catalog_views, "render_page", page)


def test_an_order_changes_the_stock_shown_but_renders_no_page_again(
    client, other_process, monkeypatch
):
    set_rules(**ALLOW_ALL.as_dict())
    socks, scarf = make_product("Merino socks", stock=3), make_product("Wool scarf", stock=9)
    renders = Renders(monkeypatch)
    assert "Only 3 left" in card(catalog(client), socks)
    assert (renders.listings, renders.pages) == (1, 1)

    buy(other_process, make_user(), socks, quantity=3)
    page = catalog(client)
    assert "Sold out" in card(page, socks) and "In stock (9)" in card(page, scarf)
    assert renders.listings == 1  # the products were not rendered again, only their stock

    with other_process.application.app_context():
        db.session.execute(
            text("UPDATE products SET price_minor = 1234 WHERE id = :id"), {"id": scarf.id}
        )
        db.session.commit()
    assert "€12.34" in card(catalog(client), scarf)
    assert renders.listings == 2  # an edit renders the page again


def test_each_page_and_search_is_kept_on_its_own_the_least_used_going_first(
    app, client, monkeypatch
):
    for number in range(30):
        make_product(f"Lamp {number:02d}")
    app.extensions["catalog_cache"] = CatalogCache(size=2)
    renders = Renders(monkeypatch)
    for url in ("/", "/?page=2", "/", "/?page=2", "/?q=lamp+1"):
        assert client.get(url).status_code == 200
    assert renders.listings == 3 and len(app.extensions["catalog_cache"]) == 2
    client.get("/?page=2")
    assert renders.listings == 3  # still kept
    client.get("/")  # the least recently used, it made way for the search
    assert renders.listings == 4


def test_signed_in_pages_are_kept_per_audience_with_their_own_navigation(app, monkeypatch):
    make_product("Tablet", stock=9)
    renders = Renders(monkeypatch)
    shoppers, owners = [], []
    for _ in range(2):
        shopper, owner = app.test_client(), app.test_client()
        shopper.sign_in_as(make_user())
        owner.sign_in_as(make_user(role=Role.OWNER))
        shoppers.append(catalog(shopper))
        owners.append(catalog(owner))
    assert renders.pages == 2  # one page around the grid for shoppers, one for owners
    assert all('href="/admin"' in page and "Sign out" in page for page in owners)
    assert all('href="/admin"' not in page and "Sign out" in page for page in shoppers)
    assert len({frozenset(tokens(page)) for page in shoppers + owners}) == 4


def test_a_visitor_keeps_one_token_for_a_minute_and_it_works(app, client):
    pin = make_product("Enamel pin", stock=5)
    first, again = tokens(catalog(client)), tokens(catalog(client))
    assert first == again and len(first) == 1
    added = client.post(
        "/cart/add", data={"product_id": pin.id, "quantity": "1", "csrf_token": first.pop()}
    )
    assert added.status_code == 302


# --- PostgreSQL -------------------------------------------------------------------------------


def versions() -> tuple[int, int]:
    with db.engine.connect() as connection:
        return tuple(
            connection.execute(select(CatalogVersion.version, CatalogVersion.stock_version)).one()
        )


def version() -> int:
    return versions()[0]


def test_on_postgresql_the_versions_move_when_the_change_commits(pg_app):
    socks = make_product("Merino socks", stock=3)
    client = pg_app.test_client()
    assert "Only 3 left" in card(catalog(client), socks)
    catalog_before, stock_before = versions()

    socks.stock = 2
    db.session.flush()
    assert versions() == (catalog_before, stock_before)  # not yet: the trigger runs at commit
    db.session.commit()
    assert versions() == (catalog_before, stock_before + 1)
    assert "Only 2 left" in card(catalog(client), socks)

    socks.price_minor = 1999
    db.session.commit()
    assert versions() == (catalog_before + 1, stock_before + 1)
    assert "€19.99" in card(catalog(client), socks)


def test_on_postgresql_overlapping_orders_in_parallel_never_deadlock(pg_app):
    """Orders of two products each, overlapping (1+2, 2+3, 3+1...), placed at once: each
    locks its product rows in turn, and only then, at commit, the version row."""
    set_rules(**ALLOW_ALL.as_dict())
    products = [make_product(stock=100) for _ in range(3)]
    clients, forms = [], []
    for number in range(24):
        user = make_user()
        fill_cart(user, (products[number % 3], 1), (products[(number + 1) % 3], 1))
        each = pg_app.test_client()
        each.sign_in_as(user)
        clients.append(each)
        key = f"key-{number:04d}-abcdefghijk"
        forms.append({**ADDRESS, "idempotency_key": key, "csrf_token": each.csrf_token()})
    before = versions()[1]
    db.session.commit()

    with ThreadPoolExecutor(max_workers=24) as pool:
        statuses = list(
            pool.map(lambda i: clients[i].post("/checkout", data=forms[i]).status_code, range(24))
        )

    assert statuses == [302] * 24
    assert versions()[1] >= before + 48
    assert all("In stock (84)" in card(catalog(clients[0]), p) for p in products)


def test_the_catalog_is_answered_before_the_extensions_hooks(app, client):
    """Neither the rate limiter's nor CSRF's before-request hook applies to GET / (no limit,
    no CSRF check on a GET), so it is answered before they run; every other page still goes
    through them. Only the input guard comes first: a search for a NUL is still a 400."""
    hooks = app.before_request_funcs[None]
    names = [hook.__name__ for hook in hooks[:3]]
    assert names == ["refuse_control_characters", "answer_catalog_first", "csrf_protect"]
    assert client.get("/?q=pin%00").status_code == 400
    seen = []
    hooks.append(lambda: seen.append(request.endpoint))
    make_product("Enamel pin", stock=5)
    assert client.get("/").status_code == 200 and client.head("/").status_code == 200
    assert seen == []
    assert client.get("/cart").status_code == 200 and seen == ["cart.show"]
    assert client.post("/", data={}).status_code == 405


def test_by_default_a_process_reads_the_versions_once_a_second(app, client, monkeypatch):
    """With CATALOG_RECHECK_SECONDS at its default (1), a change shows within a second;
    in between, a cached page costs no query at all."""
    app.config["CATALOG_RECHECK_SECONDS"] = Config().CATALOG_RECHECK_SECONDS
    assert app.config["CATALOG_RECHECK_SECONDS"] == 1
    now = [1000.0]
    monkeypatch.setattr("shop.catalog_cache.time.monotonic", lambda: now[0])
    socks = make_product("Merino socks", stock=3)
    assert "Only 3 left" in card(catalog(client), socks)

    reads = []
    read_versions = catalog_cache.read_versions
    monkeypatch.setattr(catalog_cache, "read_versions", lambda: reads.append(1) or read_versions())
    socks.stock = 2
    db.session.commit()
    now[0] += 0.5
    assert "Only 3 left" in card(catalog(client), socks)  # the versions read half a second ago
    assert reads == []
    now[0] += 0.6
    assert "Only 2 left" in card(catalog(client), socks)
    assert reads == [1]


def test_a_plain_catalog_request_parses_no_arguments_and_no_form(app, client, monkeypatch):
    """The input guard looks at what a request carries: GET / with no query string and no
    body parses neither (it is the shop's busiest request), while a query string or a form
    body with a NUL is still refused."""
    from werkzeug.wrappers import Request

    make_product("Enamel pin", stock=5)
    client.get("/")
    parsed = []
    for name in ("args", "form"):
        original = getattr(Request, name)

        def spy(request, _name=name, _original=original):
            parsed.append(_name)
            return _original.__get__(request)

        monkeypatch.setattr(Request, name, property(spy))
    assert client.get("/").status_code == 200
    assert parsed == []
    assert client.get("/?q=pin%00").status_code == 400
    assert client.post("/cart/add", data={"product_id": "1\x00"}).status_code == 400
