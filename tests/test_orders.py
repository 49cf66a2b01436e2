"""Order history and confirmation pages."""

from sqlalchemy import select

from shop import orders
from shop.extensions import db
from shop.models import Order
from tests.factories import fill_cart, make_product, make_user, place_allowed

ADDRESS = orders.ShippingAddress("Ada Lovelace", "1 Main St", "London", "N1 1AA", "GB")


def place(user, product, quantity=1, key="order-key-000000000"):
    fill_cart(user, (product, quantity))
    return place_allowed(user, ADDRESS, key)


def test_history_lists_only_my_orders_newest_first(client):
    me, someone = make_user(), make_user()
    product = make_product(price_minor=2500, stock=10)
    first = place(me, product, key="first-key-0000000000")
    second = place(me, product, 2, key="second-key-000000000")
    theirs = place(someone, product, key="their-key-0000000000")
    client.sign_in_as(me)
    page = client.get("/orders").get_data(as_text=True)
    assert page.index(second.ref) < page.index(first.ref)
    assert theirs.ref not in page
    assert "€50.00" in page and "placed" in page


def test_someone_elses_order_is_404(client):
    me, someone = make_user(), make_user()
    theirs = place(someone, make_product(stock=10))
    client.sign_in_as(me)
    response = client.get(f"/orders/{theirs.ref}")
    assert response.status_code == 404
    assert theirs.full_name not in response.get_data(as_text=True)
    assert client.get("/orders/SH-NOSUCH00").status_code == 404


def test_orders_need_sign_in(client):
    assert client.get("/orders").status_code == 302
    assert client.get("/orders/SH-ANYTHING").status_code == 302


def test_order_keeps_the_price_it_was_sold_at(client):
    me = make_user()
    product = make_product("Mug", price_minor=1800, stock=10)
    order = place(me, product, 2)
    product.price_minor = 9900
    product.name = "Renamed mug"
    db.session.commit()
    client.sign_in_as(me)
    page = client.get(f"/orders/{order.ref}").get_data(as_text=True)
    assert "Mug" in page and "€36.00" in page and "€99.00" not in page


def test_order_refs_are_unique_and_readable(app):
    me = make_user()
    product = make_product(stock=50)
    refs = [place(me, product, key=f"key-{n:02d}-0000000000000").ref for n in range(20)]
    assert len(set(refs)) == 20
    assert all(ref.startswith("SH-") and len(ref) == 11 for ref in refs)
    assert not any(char in ref[3:] for ref in refs for char in "ILOU")
    assert db.session.scalar(select(db.func.count(Order.id))) == 20
