"""The cart: quantities, bad input and where the cart lives."""

import pytest

from shop import cart as carts
from tests.factories import make_product, make_user


def add(client, product_id, quantity=1, **extra):
    return client.post_form("/cart/add", {"product_id": product_id, "quantity": quantity, **extra})


def update(client, product_id, quantity):
    return client.post_form("/cart/update", {"product_id": product_id, "quantity": quantity})


def test_add_update_and_remove(client):
    mug = make_product("Mug", price_minor=1800, stock=20)
    response = add(client, mug.id, 2)
    assert response.status_code == 302 and response.headers["Location"] == "/cart"
    page = client.get("/cart").get_data(as_text=True)
    assert "Mug" in page and "€36.00" in page
    add(client, mug.id, 1)
    assert "€54.00" in client.get("/cart").get_data(as_text=True)
    assert update(client, mug.id, 5).status_code == 302
    assert "€90.00" in client.get("/cart").get_data(as_text=True)
    assert update(client, mug.id, 0).status_code == 302
    assert "Your cart is empty" in client.get("/cart").get_data(as_text=True)


def test_signed_in_cart_is_stored_with_the_user(client, app):
    user = make_user()
    mug = make_product(stock=20)
    client.sign_in_as(user)
    add(client, mug.id, 4)
    assert carts.load_user_cart(user) == {mug.id: 4}
    elsewhere = app.test_client()
    elsewhere.sign_in_as(user)
    assert 'value="4"' in elsewhere.get("/cart").get_data(as_text=True)


@pytest.mark.parametrize(
    "quantity", ["0", "-1", "abc", "1000000000", "1e3", "٣", "1_0", " ", "", "2.5", "99999999999"]
)
def test_bad_quantities_get_422_with_a_message(client, quantity):
    mug = make_product(stock=20)
    response = add(client, mug.id, quantity)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    # One message, the same whatever was typed ("-1" is a whole number: saying so contradicts).
    assert page.count("Quantity: Enter") == 1
    assert "Quantity: Enter a whole number from 1 to 99." in page
    assert "Your cart is empty" in page


def test_99_is_accepted_and_100_refused_when_adding_and_updating(client):
    user = make_user()
    client.sign_in_as(user)
    mug = make_product("Mug", price_minor=100, stock=500)
    response = add(client, mug.id, 100)
    assert response.status_code == 422
    assert "Quantity: Enter a whole number from 1 to 99." in response.get_data(as_text=True)
    assert carts.load_user_cart(user) == {}
    assert add(client, mug.id, 99).status_code == 302
    assert carts.load_user_cart(user) == {mug.id: 99}
    assert update(client, mug.id, 1).status_code == 302
    assert update(client, mug.id, 100).status_code == 422
    assert carts.load_user_cart(user) == {mug.id: 1}
    assert update(client, mug.id, 99).status_code == 302
    assert carts.load_user_cart(user) == {mug.id: 99}
    assert "€99.00" in client.get("/cart").get_data(as_text=True)


@pytest.mark.parametrize("quantity", ["-1", "abc", "100"])
def test_bad_update_quantities_get_422(client, quantity):
    mug = make_product(stock=200)
    add(client, mug.id, 1)
    assert update(client, mug.id, quantity).status_code == 422


def test_unknown_product_gets_404(client):
    response = add(client, 999999)
    assert response.status_code == 404
    assert "There is no such product." in response.get_data(as_text=True)
    assert update(client, 999999, 1).status_code == 404


@pytest.mark.parametrize("product_id", ["abc", "", "-5", "1 OR 1=1"])
def test_malformed_product_id_gets_422(client, product_id):
    assert add(client, product_id).status_code == 422


def test_duplicated_quantity_field_gets_400(client):
    mug = make_product(stock=20)
    data = {"csrf_token": client.csrf_token(), "product_id": mug.id, "quantity": ["1", "99"]}
    response = client.post("/cart/add", data=data)
    assert response.status_code == 400
    assert "sent more than once" in response.get_data(as_text=True)


def test_tampered_price_field_gets_400(client):
    mug = make_product(stock=20)
    response = add(client, mug.id, 1, price_minor="1")
    assert response.status_code == 400
    assert "Unexpected field" in response.get_data(as_text=True)
    assert "Your cart is empty" in client.get("/cart").get_data(as_text=True)


def test_missing_csrf_token_gets_400(client):
    mug = make_product(stock=20)
    response = client.post("/cart/add", data={"product_id": mug.id, "quantity": 1})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)


def test_more_than_in_stock_or_over_99_is_refused(client):
    scarce = make_product("Scarce", stock=3)
    plenty = make_product("Plenty", stock=500)
    response = add(client, scarce.id, 4)
    assert response.status_code == 422
    assert "Only 3 of Scarce left in stock." in response.get_data(as_text=True)
    add(client, plenty.id, 60)
    response = add(client, plenty.id, 40)
    assert response.status_code == 422
    assert "at most 99" in response.get_data(as_text=True)


def test_sold_out_product_cannot_be_added(client):
    gone = make_product("Gone", stock=0)
    response = add(client, gone.id, 1)
    assert response.status_code == 422
    assert "Gone is out of stock." in response.get_data(as_text=True)


def test_merge_caps_each_item_at_99():
    assert carts.merge({1: 60, 2: 1}, {1: 60, 3: 2}) == {1: 99, 2: 1, 3: 2}


def test_price_drops_unknown_products_and_uses_database_prices(app):
    mug = make_product(price_minor=1800)
    priced = carts.price({mug.id: 2, 424242: 1}, "EUR")
    assert [(line.product.id, line.quantity) for line in priced.lines] == [(mug.id, 2)]
    assert priced.total_minor == 3600
    assert priced.item_count == 2
