"""Price, currency and quantity tampering: the server prices everything; a field it does
not expect, a quantity outside 1..99 or a field sent twice is a 4xx, and the cart and stock
are untouched (SPEC section 7)."""

import pytest
from sqlalchemy import select

from shop import cart as carts
from shop.extensions import db
from shop.models import Order
from tests.factories import ADDRESS, ALLOW_ALL, fill_cart, make_product, make_user, set_rules
from tests.security.world import snapshot

BAD_QUANTITIES = ["0", "-1", "100", "1.5", "1e3", "٣", " 1_0", "+5", "0x10", "", "99999999999"]


@pytest.fixture
def shopper(client):
    user = make_user()
    client.sign_in_as(user)
    return user


@pytest.mark.parametrize("extra", [{"price": "1"}, {"price_minor": "1"}, {"currency": "XXX"}])
def test_a_price_or_currency_sent_to_the_cart_is_refused(client, shopper, extra):
    chair = make_product(price_minor=30_000, stock=5)
    before = snapshot()
    response = client.post_form("/cart/add", {"product_id": chair.id, "quantity": 1, **extra})
    assert response.status_code == 400
    assert snapshot() == before


@pytest.mark.parametrize("quantity", BAD_QUANTITIES, ids=repr)
def test_a_quantity_outside_1_to_99_is_refused(client, shopper, quantity):
    chair = make_product(price_minor=30_000, stock=500)
    before = snapshot()
    response = client.post_form("/cart/add", {"product_id": chair.id, "quantity": quantity})
    assert response.status_code == 422
    assert snapshot() == before


@pytest.mark.parametrize("quantity", ["1", "99"])
def test_a_quantity_of_1_to_99_is_taken(client, shopper, quantity):
    chair = make_product(price_minor=30_000, stock=500)
    response = client.post_form("/cart/add", {"product_id": chair.id, "quantity": quantity})
    assert response.status_code == 302
    assert carts.load_user_cart(shopper) == {chair.id: int(quantity)}


def test_a_field_sent_twice_is_refused(client, shopper):
    chair = make_product(price_minor=30_000, stock=5)
    token = client.csrf_token()
    body = f"csrf_token={token}&product_id={chair.id}&quantity=1&quantity=99"
    response = client.post("/cart/add", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert carts.load_user_cart(shopper) == {}


@pytest.mark.parametrize("extra", [{"total": "1"}, {"total_minor": "1"}, {"currency": "XXX"}])
def test_a_total_or_currency_sent_at_checkout_is_refused_and_no_order_made(client, shopper, extra):
    set_rules(**ALLOW_ALL.as_dict())
    fill_cart(shopper, (make_product(price_minor=30_000, stock=5), 2))
    form = {**ADDRESS, "idempotency_key": "tamper-key-00000001", **extra}
    assert client.post_form("/checkout", form).status_code == 400
    assert db.session.scalar(select(Order)) is None


def test_the_order_is_priced_by_the_server(client, shopper):
    set_rules(**ALLOW_ALL.as_dict())
    chair = make_product(price_minor=30_000, stock=5, currency="EUR")
    fill_cart(shopper, (chair, 2))
    client.post_form("/checkout", {**ADDRESS, "idempotency_key": "priced-key-00000001"})
    order = db.session.scalar(select(Order))
    assert (order.total_minor, order.currency) == (60_000, "EUR")


def bearer(client, user) -> dict:
    from shop.accounts.client import Client
    from shop.accounts.tokens import issue_token

    return {"Authorization": f"Bearer {issue_token(user, 'tests', Client('127.0.0.1'))}"}


@pytest.mark.parametrize(
    "body",
    [
        {"quantity": 1, "price": 1},
        {"quantity": 1, "currency": "XXX"},
        {"quantity": 0},
        {"quantity": 100},
        {"quantity": 1.5},
        {"quantity": "1"},
        {"quantity": True},
        {"quantity": 9223372036854775808},
    ],
    ids=repr,
)
def test_the_api_refuses_the_same_tampering(client, body):
    user = make_user()
    chair = make_product(price_minor=30_000, stock=500)
    headers = bearer(client, user)
    before = snapshot()
    response = client.post(
        "/api/v1/cart/items", json={"product_id": chair.id, **body}, headers=headers
    )
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert snapshot() == before


def test_the_api_checkout_takes_no_total(client):
    set_rules(**ALLOW_ALL.as_dict())
    user = make_user()
    fill_cart(user, (make_product(price_minor=30_000, stock=5), 1))
    headers = bearer(client, user) | {"Idempotency-Key": "api-tamper-key-0001"}
    response = client.post("/api/v1/checkout", json={**ADDRESS, "total": 1}, headers=headers)
    assert response.status_code == 422
    assert db.session.scalar(select(Order)) is None
