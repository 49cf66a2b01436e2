"""`make bench`'s shoppers are signed in as the shop signs people in (a server-side session
named in the signed cookie), so the timed checkouts run as real shoppers'."""

from bench.checkout import PRODUCT_NAME, make_accounts
from shop.demo import seed_products
from shop.extensions import db
from shop.models import Product


def test_each_bench_shopper_cookie_is_a_signed_in_session(app, client, monkeypatch):
    monkeypatch.setenv("ALLOW_CONSOLE_SMS", "1")  # its own app, outside debug mode
    seed_products("EUR")
    db.session.commit()

    cookies, product_id = make_accounts(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config["SECRET_KEY"], 2
    )

    assert db.session.get(Product, product_id).name == PRODUCT_NAME
    for cookie in cookies:
        client.set_cookie("session", cookie)
        assert "Sign out" in client.get("/").get_data(as_text=True)
