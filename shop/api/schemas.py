"""What the JSON API reads and writes (marshmallow), and so what its OpenAPI document says.

Input schemas refuse unknown fields and text with control characters; integers must be JSON
integers. Money is integer minor units with its currency, plus the amount as shown.
"""

from typing import Any

import marshmallow as ma
from marshmallow import validate

from shop.api.challenge_schemas import ChallengeSchema
from shop.api.fields import IDEMPOTENCY_KEY, MAX_ID, PRINTABLE, encodable, text, whole
from shop.countries import InvalidPostcode, check_postcode, country_choices
from shop.money import format_money

# Catalog -------------------------------------------------------------------------------------


class ProductSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    price_minor = ma.fields.Integer(required=True)
    currency = ma.fields.String(required=True)
    price = ma.fields.Method("formatted_price", required=True)
    stock = ma.fields.Integer(required=True)

    def formatted_price(self, product) -> str:
        return format_money(product.price_minor, product.currency)


class ProductPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ProductSchema), required=True)
    next = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "The next page, if any"}
    )


class ProductPageArgs(ma.Schema):
    after = whole(
        0, MAX_ID, strict=False, load_default=0, metadata={"description": "Products after this id"}
    )
    limit = whole(1, 100, strict=False, load_default=24)


# Cart ----------------------------------------------------------------------------------------


class CartLineSchema(ma.Schema):
    product_id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True)
    unit_price_minor = ma.fields.Integer(required=True)
    line_total_minor = ma.fields.Integer(required=True)


class CartSchema(ma.Schema):
    lines = ma.fields.List(ma.fields.Nested(CartLineSchema), required=True)
    item_count = ma.fields.Integer(required=True)
    currency = ma.fields.String(required=True)
    total_minor = ma.fields.Integer(required=True)
    total = ma.fields.String(required=True)


class AddItemSchema(ma.Schema):
    product_id = whole(1, MAX_ID, required=True)
    quantity = whole(1, 99, required=True)


class SetQuantitySchema(ma.Schema):
    quantity = whole(0, 99, required=True, metadata={"description": "0 removes the item"})


# Orders --------------------------------------------------------------------------------------


class ShippingAddressSchema(ma.Schema):
    full_name = text(120, required=True)
    address_line1 = text(200, required=True)
    city = text(100, required=True)
    postal_code = ma.fields.String(
        required=True,
        validate=[validate.Length(0, 40), PRINTABLE, encodable],
        metadata={"description": "As the country writes it; empty where addresses have none"},
    )
    country = ma.fields.String(
        required=True, validate=validate.OneOf([code for code, _ in country_choices()])
    )

    @ma.validates_schema
    def postcode_of_the_country(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "country" in data and "postal_code" in data:
            try:
                check_postcode(data["country"], data["postal_code"])
            except InvalidPostcode as error:
                raise ma.ValidationError(str(error), "postal_code") from None

    @ma.post_load
    def as_written_on_mail(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["postal_code"] = check_postcode(data["country"], data["postal_code"])
        for name in ("full_name", "address_line1", "city"):
            data[name] = data[name].strip()
        return data


class IdempotencyHeaderSchema(ma.Schema):
    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        required=True,
        validate=validate.Regexp(IDEMPOTENCY_KEY, error="16 to 64 of A-Z a-z 0-9 _ -."),
        metadata={"description": "One per checkout attempt: a repeat answers the same"},
    )


class OrderItemSchema(ma.Schema):
    product_id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True, attribute="product_name")
    quantity = ma.fields.Integer(required=True)
    unit_price_minor = ma.fields.Integer(required=True)
    line_total_minor = ma.fields.Integer(required=True)


class OrderSchema(ma.Schema):
    ref = ma.fields.String(required=True)
    status = ma.fields.String(
        required=True,
        validate=validate.OneOf(
            ["pending_verification", "placed", "held", "blocked", "cancelled", "expired"]
        ),
    )
    currency = ma.fields.String(required=True)
    total_minor = ma.fields.Integer(required=True)
    total = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    items = ma.fields.List(ma.fields.Nested(OrderItemSchema), required=True)
    shipping = ma.fields.Nested(ShippingAddressSchema, required=True)
    reasons = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"description": "Why it needs a code, or is held"},
    )
    message = ma.fields.String(required=True)
    challenge = ma.fields.Nested(ChallengeSchema, allow_none=True, required=True)


class OrderPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(OrderSchema), required=True)
    next = ma.fields.String(allow_none=True, required=True)


class OrderPageArgs(ma.Schema):
    before = ma.fields.String(
        validate=validate.Regexp(r"^SH-[0-9A-Z]{8}$"),
        metadata={"description": "Orders older than this one"},
    )
    limit = whole(1, 100, strict=False, load_default=20)


# Tokens --------------------------------------------------------------------------------------


class TokenRequestSchema(ma.Schema):
    email = ma.fields.String(
        required=True, validate=[validate.Length(1, 254), PRINTABLE, encodable]
    )
    password = ma.fields.String(required=True, validate=[validate.Length(1, 128), encodable])
    name = text(80, load_default="API client")


class TokenSchema(ma.Schema):
    token = ma.fields.String(required=True, metadata={"description": "Shown once"})
    token_type = ma.fields.String(required=True, dump_default="Bearer")


class CodeNeededSchema(ma.Schema):
    challenge = ma.fields.Nested(ChallengeSchema, required=True)
    message = ma.fields.String(required=True)


class VerifiedSchema(ma.Schema):
    """What a right code did: placed an order, issued a token, or confirmed a number."""

    purpose = ma.fields.String(required=True)
    order = ma.fields.Nested(OrderSchema, allow_none=True, required=True)
    token = ma.fields.Nested(TokenSchema, allow_none=True, required=True)
    message = ma.fields.String(required=True)


class CsrfSchema(ma.Schema):
    csrf_token = ma.fields.String(required=True)
