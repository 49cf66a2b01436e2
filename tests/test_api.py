"""The JSON API under /api/v1: its document, its errors, and the step-up flow end to end.

The code is always read from the SMS in the outbox, as the shopper's phone would read it.
"""

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shop.accounts.client import Client
from shop.accounts.passwords import start_password_change, start_password_reset
from shop.extensions import db
from shop.models import ApiToken, Order, OrderStatus, OtpChallenge, Product, SmsKind
from shop.sms.delivery import DeliveryWorker
from shop.sms.senders import ConsoleSender
from tests.factories import (
    PASSWORD,
    fill_cart,
    last_code_sent_to,
    last_sms_to,
    make_product,
    make_user,
    set_rules,
    sms_text,
)

ADDRESS = {
    "full_name": "Ada Lovelace",
    "address_line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}
KEY = "api-checkout-key-0001"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client, user, frozen_clock=None) -> dict:
    """Sign in as an API client: password, then the code from the SMS; the bearer headers."""
    started = client.post(
        "/api/v1/tokens", json={"email": user.email, "password": PASSWORD, "name": "tests"}
    )
    assert started.status_code == 202, started.json
    challenge = started.json["challenge"]
    assert challenge["purpose"] == "login" and challenge["live"]
    done = client.post(
        f"/api/v1/challenges/{challenge['id']}/verify",
        json={"code": last_code_sent_to(user.phone)},
    )
    assert done.status_code == 201, done.json
    if frozen_clock is not None:
        frozen_clock.advance(seconds=30)  # past the number's cool-down
    return bearer(done.json["token"]["token"])


def checkout(client, headers, key=KEY, address=ADDRESS):
    return client.post(
        "/api/v1/checkout", json=address, headers={**headers, "Idempotency-Key": key}
    )


def is_problem(response, status: int, name: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["status"] == status and body["title"] and body["detail"]
    if name is not None:
        assert body["type"] == f"urn:shop:problem:{name}", body
    return body


@pytest.fixture
def shopper(app):
    return make_user()


# The document --------------------------------------------------------------------------------


def test_the_openapi_document_is_3_1_generated_from_the_code(client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"] == "3.1.0"
    operations = [
        op for path in spec["paths"].values() for op in path.values() if "responses" in op
    ]
    ids = {op["operationId"] for op in operations}
    assert {
        "listProducts",
        "getProduct",
        "getCart",
        "addToCart",
        "setCartQuantity",
        "checkout",
        "getChallenge",
        "verifyChallenge",
        "resendChallenge",
        "listOrders",
        "getOrder",
        "createToken",
        "revokeCurrentToken",
    } <= ids
    problem = spec["components"]["responses"]["NOT_FOUND"]["content"]
    assert list(problem) == ["application/problem+json"]
    links = spec["paths"]["/api/v1/checkout"]["post"]["responses"]["202"]["links"]
    assert links["VerifyChallenge"]["operationId"] == "verifyChallenge"
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_docs_page_is_served_by_the_shop_itself(client):
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "/api/v1/openapi.json" in page and "https://" not in page
    asset = client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and b"SwaggerUIBundle" in asset.data
    assert client.get("/api/v1/docs/assets/../../shop.sqlite3").status_code == 404


# Errors are problems -------------------------------------------------------------------------


def test_every_api_error_is_problem_json(client, shopper):
    is_problem(client.get("/api/v1/no-such-thing"), 404)
    is_problem(client.put("/api/v1/products"), 405)
    is_problem(client.get("/api/v1/products/999"), 404, "not_found")
    is_problem(client.get("/api/v1/cart"), 401, "unauthorized")
    body = is_problem(client.get("/api/v1/products?limit=0"), 422)
    assert "limit" in body["errors"]["query"]


def test_bad_bodies_are_refused_with_the_fields_named(client, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    unknown = client.post(
        "/api/v1/cart/items", json={"product_id": 1, "quantity": 1, "price": 1}, headers=headers
    )
    assert "price" in is_problem(unknown, 422)["errors"]["json"]
    text_number = client.post(
        "/api/v1/cart/items", json={"product_id": "1", "quantity": 1.5}, headers=headers
    )
    assert set(is_problem(text_number, 422)["errors"]["json"]) == {"product_id", "quantity"}
    broken = client.post(
        "/api/v1/cart/items", data="{not json", content_type="application/json", headers=headers
    )
    is_problem(broken, 400)
    nul = checkout(client, headers, address={**ADDRESS, "city": "Lon\x00don"})
    assert "city" in is_problem(nul, 422)["errors"]["json"]
    spaces = checkout(client, headers, address={**ADDRESS, "full_name": "   "})
    assert "full_name" in is_problem(spaces, 422)["errors"]["json"]
    postcode = checkout(client, headers, address={**ADDRESS, "postal_code": "12345"})
    assert "not how postcodes are written" in str(is_problem(postcode, 422)["errors"])
    union = checkout(client, headers, address={**ADDRESS, "country": "EU"})
    assert "country" in is_problem(union, 422)["errors"]["json"]
    no_key = client.post("/api/v1/checkout", json=ADDRESS, headers=headers)
    assert "Idempotency-Key" in is_problem(no_key, 422)["errors"]["headers"]


def test_a_key_sent_twice_is_refused_and_changes_nothing(client, shopper, frozen_clock):
    """SPEC section 7: duplicated fields get a 4xx, in JSON as in forms (Python's decoder
    would keep the last value: 7 items, or an order shipped to the second country)."""
    headers = sign_in(client, shopper, frozen_clock)
    product = make_product(price_minor=1_000, stock=50)
    twice = f'{{"product_id": {product.id}, "quantity": 1, "quantity": 7}}'
    cart = client.post(
        "/api/v1/cart/items", data=twice, content_type="application/json", headers=headers
    )
    assert is_problem(cart, 400)["errors"]["json"] == [
        "A JSON key was sent more than once: quantity."
    ]
    assert client.get("/api/v1/cart", headers=headers).json["lines"] == []
    client.post(
        "/api/v1/cart/items", json={"product_id": product.id, "quantity": 1}, headers=headers
    )
    address = json.dumps(ADDRESS)[:-1] + ', "country": "FR", "postal_code": "75001"}'
    shipped = client.post(
        "/api/v1/checkout",
        data=address,
        content_type="application/json",
        headers={**headers, "Idempotency-Key": "k" * 20},
    )
    assert is_problem(shipped, 400)["errors"]["json"] == [
        "A JSON key was sent more than once: country, postal_code."
    ]
    assert db.session.scalar(select(func.count(Order.id))) == 0


@pytest.mark.parametrize("body", ["[" * 5000, '{"a":' * 5000])
def test_a_body_nested_too_deeply_to_decode_is_invalid_json(client, shopper, frozen_clock, body):
    # Python's JSON decoder raises RecursionError, not a JSONDecodeError, on such a body.
    anyone = client.post("/api/v1/tokens", data=body, content_type="application/json")
    assert "json" in is_problem(anyone, 400)["errors"]
    headers = sign_in(client, shopper, frozen_clock)
    cart = client.post(
        "/api/v1/cart/items", data=body, content_type="application/json", headers=headers
    )
    is_problem(cart, 400)


def test_rate_limit_headers_come_from_flask_limiter(client):
    response = client.get("/api/v1/products")
    assert int(response.headers["X-RateLimit-Limit"]) == 300
    assert "Retry-After" not in response.headers


# Signing in ----------------------------------------------------------------------------------


def test_a_token_needs_the_password_then_the_code_and_alerts(client, shopper):
    wrong = client.post(
        "/api/v1/tokens", json={"email": shopper.email, "password": "not it at all"}
    )
    is_problem(wrong, 401, "wrong_credentials")
    headers = sign_in(client, shopper)
    assert client.get("/api/v1/cart", headers=headers).status_code == 200
    alert = last_sms_to(shopper.phone)
    assert alert.kind == SmsKind.ALERT_NEW_DEVICE and "on an API client," in sms_text(alert)
    stored = db.session.scalar(select(ApiToken))
    assert headers["Authorization"].split()[1] not in (stored.token_hash, stored.name)


def test_a_revoked_token_stops_working(client, app, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    assert client.delete("/api/v1/tokens/current", headers=headers).status_code == 204
    is_problem(client.get("/api/v1/cart", headers=headers), 401, "unauthorized")

    headers = sign_in(client, shopper, frozen_clock)
    browser = app.test_client()
    browser.sign_in_as(shopper)
    page = browser.get("/account/security").get_data(as_text=True)
    assert "tests: created" in page
    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.revoked_at.is_(None)))
    browser.post_form(f"/account/security/tokens/{token_id}/revoke")
    is_problem(client.get("/api/v1/cart", headers=headers), 401)


def test_sign_out_everywhere_revokes_tokens_too(client, app, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    browser = app.test_client()
    browser.sign_in_as(shopper)
    browser.post_form("/account/security")
    is_problem(client.get("/api/v1/cart", headers=headers), 401)


def test_the_session_cookie_works_with_the_csrf_header(app, shopper):
    browser = app.test_client()
    browser.sign_in_as(shopper)
    product = make_product(stock=5)
    assert browser.get("/api/v1/cart").status_code == 200
    body = {"product_id": product.id, "quantity": 1}
    is_problem(browser.post("/api/v1/cart/items", json=body), 403, "csrf")
    token = browser.get("/api/v1/csrf-token").json["csrf_token"]
    added = browser.post("/api/v1/cart/items", json=body, headers={"X-CSRFToken": token})
    assert added.status_code == 200 and added.json["item_count"] == 1


# Cart and catalog ----------------------------------------------------------------------------


def test_catalog_pages_follow_next(client):
    for number in range(5):
        make_product(f"Thing {number}")
    first = client.get("/api/v1/products?limit=2").json
    assert [item["name"] for item in first["items"]] == ["Thing 0", "Thing 1"]
    second = client.get(first["next"]).json
    assert [item["name"] for item in second["items"]] == ["Thing 2", "Thing 3"]
    assert client.get(client.get(second["next"]).json["next"] or "/").status_code == 200


def test_cart_add_update_and_refusals(client, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    product = make_product(price_minor=1_250, stock=3)
    cart = client.post(
        "/api/v1/cart/items", json={"product_id": product.id, "quantity": 2}, headers=headers
    ).json
    assert cart["total_minor"] == 2_500 and cart["total"] == "€25.00"
    too_many = client.put(f"/api/v1/cart/items/{product.id}", json={"quantity": 4}, headers=headers)
    assert "Only 3" in is_problem(too_many, 409, "cart_refused")["detail"]
    missing = client.post(
        "/api/v1/cart/items", json={"product_id": 99_999, "quantity": 1}, headers=headers
    )
    is_problem(missing, 404, "not_found")
    emptied = client.put(f"/api/v1/cart/items/{product.id}", json={"quantity": 0}, headers=headers)
    assert emptied.json["lines"] == []


def test_cart_quantities_run_from_1_to_99(client, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    product = make_product(price_minor=100, stock=500)
    items, item = "/api/v1/cart/items", f"/api/v1/cart/items/{product.id}"
    too_many = client.post(items, json={"product_id": product.id, "quantity": 100}, headers=headers)
    assert set(is_problem(too_many, 422)["errors"]["json"]) == {"quantity"}
    added = client.post(items, json={"product_id": product.id, "quantity": 99}, headers=headers)
    assert added.status_code == 200
    assert [line["quantity"] for line in added.json["lines"]] == [99]
    assert added.json["total_minor"] == 9_900
    client.put(item, json={"quantity": 1}, headers=headers)
    too_many = client.put(item, json={"quantity": 100}, headers=headers)
    assert set(is_problem(too_many, 422)["errors"]["json"]) == {"quantity"}
    updated = client.put(item, json={"quantity": 99}, headers=headers)
    assert updated.status_code == 200
    assert [line["quantity"] for line in updated.json["lines"]] == [99]


# Checkout and step-up ------------------------------------------------------------------------


def test_a_300_order_is_confirmed_through_its_challenge(client, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    product = make_product("Office chair", price_minor=30_000, stock=5)
    fill_cart(shopper, (product, 1))

    started = checkout(client, headers)
    assert started.status_code == 202
    order = started.json
    challenge = order["challenge"]
    assert order["status"] == "pending_verification" and challenge["purpose"] == "order"
    assert started.headers["Location"] == f"/api/v1/challenges/{challenge['id']}"
    assert challenge["order_ref"] == order["ref"] and challenge["tries_left"] == 5
    assert challenge["masked_phone"].startswith("+44 ") and challenge["delivery"] == "queued"

    code = last_code_sent_to(shopper.phone)
    assert f"to confirm order {order['ref']} for €300.00" in sms_text(last_sms_to(shopper.phone))
    DeliveryWorker(ConsoleSender()).run_once()
    status = client.get(started.headers["Location"], headers=headers).json
    assert status["delivery"] == "sent"
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    verify = f"/api/v1/challenges/{challenge['id']}/verify"
    refused = client.post(verify, json={"code": wrong}, headers=headers)
    assert is_problem(refused, 422, "wrong_code")["tries_left"] == 4

    placed = client.post(verify, json={"code": code}, headers=headers)
    assert placed.status_code == 200
    assert placed.json["order"]["status"] == "placed"
    again = client.post(verify, json={"code": code}, headers=headers)
    is_problem(again, 410, "code_dead")
    assert client.get(f"/api/v1/orders/{order['ref']}", headers=headers).json["status"] == "placed"


def test_the_idempotency_key_answers_the_same_or_422(client, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    product = make_product(price_minor=2_000, stock=5)
    fill_cart(shopper, (product, 2))
    first = checkout(client, headers)
    assert first.status_code == 201 and first.headers["Location"].startswith("/api/v1/orders/")
    replay = checkout(client, headers)
    assert replay.status_code == 201 and replay.json["ref"] == first.json["ref"]
    other = checkout(client, headers, address={**ADDRESS, "city": "Bath"})
    is_problem(other, 422, "key_reused")
    assert db.session.scalar(select(func.count(Order.id))) == 1
    assert db.session.get(Product, product.id).stock == 3


def test_held_blocked_and_empty(client, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    is_problem(checkout(client, headers, key="empty-cart-key-000001"), 409, "empty_cart")
    fill_cart(shopper, (make_product(price_minor=649_900, stock=2), 1))
    held = checkout(client, headers, key="held-order-key-000001")
    assert held.status_code == 201 and held.json["status"] == "held"
    assert held.json["challenge"] is None and held.json["reasons"]
    set_rules(block_threshold_minor=100_000)
    fill_cart(shopper, (make_product(price_minor=149_900, stock=2), 1))
    is_problem(checkout(client, headers, key="block-order-key-00001"), 403, "blocked")


def test_resend_waits_for_the_cooldown_and_replaces_the_challenge(client, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    fill_cart(shopper, (make_product(price_minor=30_000, stock=5), 1))
    old = checkout(client, headers).json["challenge"]["id"]
    early = client.post(f"/api/v1/challenges/{old}/resend", headers=headers)
    body = is_problem(early, 429, "code_not_sent")
    assert body["reason"] == "cooldown" and early.headers["Retry-After"] == "30"
    frozen_clock.advance(seconds=30)
    new = client.post(f"/api/v1/challenges/{old}/resend", headers=headers)
    assert new.status_code == 201 and new.json["id"] != old
    assert new.headers["Location"] == f"/api/v1/challenges/{new.json['id']}"
    stale = client.get(f"/api/v1/challenges/{old}", headers=headers).json
    assert stale["live"] is False and stale["end_reason"] == "replaced"
    is_problem(
        client.post(f"/api/v1/challenges/{old}/verify", json={"code": "123456"}, headers=headers),
        410,
        "code_dead",
    )
    code = last_code_sent_to(shopper.phone)
    done = client.post(
        f"/api/v1/challenges/{new.json['id']}/verify", json={"code": code}, headers=headers
    )
    assert done.status_code == 200


def test_a_cart_change_kills_the_challenge(client, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    product = make_product(price_minor=30_000, stock=5)
    fill_cart(shopper, (product, 1))
    challenge = checkout(client, headers).json["challenge"]["id"]
    client.put(f"/api/v1/cart/items/{product.id}", json={"quantity": 2}, headers=headers)
    frozen_clock.advance(seconds=31)
    result = client.post(
        f"/api/v1/challenges/{challenge}/verify",
        json={"code": last_code_sent_to(shopper.phone)},
        headers=headers,
    )
    is_problem(result, 409, "cart_changed")
    assert db.session.scalar(select(Order.status)) == OrderStatus.CANCELLED


def test_another_accounts_order_and_challenge_are_not_found(client, app, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    fill_cart(shopper, (make_product(price_minor=30_000, stock=5), 1))
    order = checkout(client, headers).json
    thief = app.test_client()
    thief_headers = sign_in(thief, make_user())
    is_problem(thief.get(f"/api/v1/orders/{order['ref']}", headers=thief_headers), 404)
    challenge = f"/api/v1/challenges/{order['challenge']['id']}"
    is_problem(thief.get(challenge, headers=thief_headers), 404)
    is_problem(thief.get(challenge), 404)
    stolen = thief.post(
        f"{challenge}/verify",
        json={"code": last_code_sent_to(shopper.phone)},
        headers=thief_headers,
    )
    is_problem(stolen, 404)
    assert db.session.scalar(select(Order.status)) == OrderStatus.PENDING_VERIFICATION


def test_orders_list_pages_newest_first(client, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    set_rules(
        otp_threshold_minor=None,
        new_account_threshold_minor=None,
        new_device_or_address_threshold_minor=None,
    )
    product = make_product(price_minor=1_000, stock=10)
    refs = []
    for number in range(3):
        fill_cart(shopper, (product, 1))
        refs.append(checkout(client, headers, key=f"list-order-key-0000{number}").json["ref"])
        frozen_clock.advance(minutes=1)
    first = client.get("/api/v1/orders?limit=2", headers=headers).json
    assert [order["ref"] for order in first["items"]] == refs[::-1][:2]
    rest = client.get(first["next"], headers=headers).json
    assert [order["ref"] for order in rest["items"]] == refs[:1] and rest["next"] is None


def test_a_queued_code_says_when_it_goes_out(client, shopper, frozen_clock):
    headers = sign_in(client, shopper)
    frozen_clock.advance(seconds=10)
    fill_cart(shopper, (make_product(price_minor=30_000, stock=5), 1))
    challenge = checkout(client, headers).json["challenge"]
    assert challenge["queued_seconds"] == 20
    assert challenge["expires_in_seconds"] == 20 + 300
    frozen_clock.advance(seconds=20)
    assert (
        client.get(f"/api/v1/challenges/{challenge['id']}", headers=headers).json["queued_seconds"]
        == 0
    )
    assert timedelta(seconds=challenge["expires_in_seconds"]) == timedelta(minutes=5, seconds=20)


def test_no_api_route_answers_html(client):
    for path in ("/api/v1/orders", "/api/v1/challenges/x", "/api/v1/checkout", "/api/v1/zzz"):
        response = client.get(path)
        assert response.mimetype in ("application/json", "application/problem+json"), path
        assert not re.search(r"<html", response.get_data(as_text=True))


def test_password_codes_are_not_api_challenges(client, shopper, frozen_clock):
    headers = sign_in(client, shopper, frozen_clock)
    start_password_change(shopper, PASSWORD, Client("127.0.0.1"))
    start_password_reset(shopper.email, Client("127.0.0.1"))
    for purpose in ("password", "reset"):
        public_id = db.session.scalar(
            select(OtpChallenge.public_id).where(OtpChallenge.purpose == purpose)
        )
        path = f"/api/v1/challenges/{public_id}"
        is_problem(client.get(path, headers=headers), 404)
        code = {"code": last_code_sent_to(shopper.phone)}
        is_problem(client.post(f"{path}/verify", json=code, headers=headers), 404)
        is_problem(client.post(f"{path}/resend", headers=headers), 404)


def test_a_new_number_confirmed_through_the_api_ends_its_token_and_says_so(
    client, shopper, frozen_clock
):
    from shop.accounts.verification import start_phone_change
    from shop.models import OtpChallenge
    from tests.factories import PASSWORD

    headers = sign_in(client, shopper, frozen_clock)
    start_phone_change(shopper, PASSWORD, "+447700900555", Client("203.0.113.5"))
    challenge = db.session.scalar(
        select(OtpChallenge.public_id).where(OtpChallenge.phone == "+447700900555")
    )
    done = client.post(
        f"/api/v1/challenges/{challenge}/verify",
        json={"code": last_code_sent_to("+447700900555")},
        headers=headers,
    )
    assert done.status_code == 200, done.json
    assert "this one included: ask for a new token" in done.json["message"]
    is_problem(client.get("/api/v1/cart", headers=headers), 401)
