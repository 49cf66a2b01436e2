"""Hypothesis fuzzing of every parser that faces input: phone numbers, `next`, codes,
quantities, money, delivery receipts and inbound SMS, and the JSON API's bodies. Each parser
answers with its value or its own documented refusal, and HTTP with a 4xx: no uncaught
exception, no 500."""

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from vonage_http_client.auth import Auth
from werkzeug.datastructures import MultiDict
from wtforms import Form

from shop import clock
from shop.accounts import InvalidPhone, normalise_phone
from shop.api import challenge_schemas, schemas
from shop.blueprints.admin.rules_form import MoneyField
from shop.blueprints.auth import safe_next
from shop.money import format_money
from shop.sms.receipts import MalformedWebhook, Receipt, apply_inbound, opt_out_command
from tests.factories import make_product, make_user

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SECRET = "fuzzing-signature-secret"
anything = st.text(max_size=80)
digitish = st.text(alphabet="0123456789 +-()./٣٤x\t\x00", max_size=24)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | anything,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(
    st.sampled_from(
        [
            "product_id",
            "quantity",
            "code",
            "email",
            "password",
            "name",
            "full_name",
            "address_line1",
            "city",
            "postal_code",
            "country",
            "price",
        ]
    )
    | anything,
    json_values,
    max_size=8,
)


@FUZZ
@given(raw=digitish | anything)
def test_phone_numbers(raw):
    try:
        e164 = normalise_phone(raw, ("GB",))
    except InvalidPhone:
        return
    assert e164.startswith("+44") and e164[1:].isdigit()


@FUZZ
@given(
    target=anything
    | st.sampled_from(["/", "//", "/\\", "/%2F", "/%5C", "/%09", "%2F"]).map(
        lambda prefix: prefix + "evil.com"
    )
)
def test_next(target):
    safe = safe_next(target)
    assert safe is None or (safe.startswith("/") and not safe.startswith("//"))


@FUZZ
@given(
    amount=st.integers(-(10**15), 10**15), currency=st.sampled_from(["EUR", "GBP", "JPY", "BHD"])
)
def test_money_is_formatted(amount, currency):
    assert isinstance(format_money(amount, currency), str)


class AmountForm(Form):
    amount = MoneyField("Amount")


@FUZZ
@given(text=digitish | anything)
def test_money_typed_by_the_owner(text):
    form = AmountForm(formdata=MultiDict({"amount": text}))
    form.validate()
    assert form.amount.data is None or form.amount.data >= 0


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["status", "messageId", "client-ref", "msisdn", "err-code", "to", "price"])
        | anything,
        anything,
        max_size=8,
    )
)
def test_delivery_receipts(params):
    with contextlib.suppress(MalformedWebhook):
        Receipt.from_params(params)


@FUZZ
@given(keyword=anything, text=anything)
def test_opt_out_words(keyword, text):
    assert opt_out_command(keyword, text) in (True, False, None)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["msisdn", "messageId", "text", "keyword", "concat", "concat-part"])
        | anything,
        anything | digitish,
        max_size=7,
    )
)
def test_inbound_messages(app, params):
    try:
        apply_inbound(params)
    except MalformedWebhook:
        pass
    finally:
        from shop.extensions import db

        db.session.rollback()


def signed(params: dict) -> dict:
    params = {"api-key": "key", "timestamp": str(int(clock.now().timestamp())), **params}
    signer = Auth(api_key="key", signature_secret=SECRET, signature_method="sha256")
    return params | {"sig": signer.sign_params(dict(params))}


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["msisdn", "messageId", "text", "status", "client-ref", "keyword"]),
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30),
        max_size=6,
    ),
    path=st.sampled_from(["delivery-receipt", "inbound"]),
    how=st.sampled_from(["form", "json"]),
)
def test_signed_webhooks_over_http(app, client, params, path, how):
    app.config["VONAGE_SIGNATURE_SECRET"] = SECRET
    body = signed(params)
    kwargs = {"json": body} if how == "json" else {"data": body}
    response = client.post(f"/webhooks/vonage/{path}", **kwargs)
    assert response.status_code in (200, 400, 401), response.get_data(as_text=True)


@FUZZ
@given(body=st.binary(max_size=200), path=st.sampled_from(["delivery-receipt", "inbound"]))
def test_raw_webhook_bodies_over_http(app, client, body, path):
    app.config["VONAGE_SIGNATURE_SECRET"] = SECRET
    response = client.post(f"/webhooks/vonage/{path}", data=body, content_type="application/json")
    assert response.status_code in (400, 401)


@pytest.mark.parametrize(
    "schema",
    [
        schemas.AddItemSchema,
        schemas.SetQuantitySchema,
        challenge_schemas.VerifySchema,
        schemas.ShippingAddressSchema,
        schemas.TokenRequestSchema,
    ],
    ids=lambda schema: schema.__name__,
)
def test_api_schemas(schema):
    @FUZZ
    @given(data=json_objects)
    def load(data):
        with contextlib.suppress(ValidationError):
            schema().load(data)

    load()


@pytest.fixture
def api(app, client):
    from shop.accounts.client import Client
    from shop.accounts.tokens import issue_token

    user = make_user()
    product = make_product(price_minor=900, stock=1000)
    token = issue_token(user, "fuzz", Client("127.0.0.1"))
    return {"Authorization": f"Bearer {token}"}, product.id


@FUZZ
@given(
    body=json_objects | json_values,
    operation=st.sampled_from(
        [
            ("POST", "/api/v1/cart/items"),
            ("PUT", "/api/v1/cart/items/{product}"),
            ("POST", "/api/v1/checkout"),
            ("POST", "/api/v1/tokens"),
            ("POST", "/api/v1/challenges/AAAAAAAAAAAAAAAAAAAAAA/verify"),
        ]
    ),
    key=st.text(max_size=70),
)
def test_api_bodies_over_http(client, api, body, operation, key):
    headers, product_id = api
    method, path = operation
    headers = headers | ({"Idempotency-Key": key} if key.isprintable() and key.isascii() else {})
    response = client.open(
        path.format(product=product_id), method=method, json=body, headers=headers
    )
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.status_code < 300 or response.mimetype == "application/problem+json"


@FUZZ
@given(quantity=digitish | anything, product=digitish)
def test_quantities_typed_into_the_cart(client, quantity, product):
    response = client.post_form("/cart/add", {"product_id": product, "quantity": quantity})
    assert response.status_code in (302, 400, 404, 422, 429)


@FUZZ
@given(code=digitish | anything)
def test_codes_typed_in(app, client, code):
    user = make_user(verified=False)
    client.sign_in_as(user)
    response = client.post_form("/auth/verify-phone", {"code": code})
    assert response.status_code in (302, 400, 422, 423, 429)
