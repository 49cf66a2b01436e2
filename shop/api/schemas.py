"""What the JSON API reads and writes (marshmallow), and so what its OpenAPI document says.

Input schemas refuse unknown fields and text with control characters; integers must be JSON
integers. Money is integer minor units with its currency, plus the amount as shown.
"""

import re
from typing import Any

import marshmallow as ma
from marshmallow import validate

from shop.countries import InvalidPostcode, check_postcode, country_choices
from shop.money import format_money
from shop.otp import ChallengeStatus

MAX_ID = 2**31 - 1
PRINTABLE = validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="Control characters are not allowed.")
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def encodable(value: str) -> None:
    """JSON can carry a lone surrogate ("\\ud800"); UTF-8, and so the database, cannot."""
    if LONE_SURROGATE.search(value):
        raise ma.ValidationError("Invalid characters.")


IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


def text(maximum: int, *, minimum: int = 1, **kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=[validate.Length(minimum, maximum), PRINTABLE, encodable, _not_blank], **kwargs
    )


class JsonInteger(ma.fields.Integer):
    """A JSON integer: 2 or 2.0 (JSON Schema's "integer"), never "2", 2.5 or true."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._deserialize(int(value), attr, data, **kwargs)


def whole(minimum: int, maximum: int, *, strict: bool = True, **kwargs: Any) -> ma.fields.Integer:
    """A whole number in range: a JSON integer in a body (`strict`), digits in a query."""
    field = JsonInteger if strict else ma.fields.Integer
    return field(validate=validate.Range(minimum, maximum), **kwargs)


def money_fields(prefix: str, description: str) -> dict[str, ma.fields.Field]:
    return {
        f"{prefix}_minor": ma.fields.Integer(
            required=True, metadata={"description": f"{description}, in minor units"}
        ),
        prefix: ma.fields.String(required=True, metadata={"description": f"{description}, shown"}),
    }


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


# Challenges ----------------------------------------------------------------------------------


class ChallengeSchema(ma.Schema):
    """A code sent by SMS, as its owner may see it: never the code."""

    id = ma.fields.String(required=True)
    purpose = ma.fields.String(required=True, validate=validate.OneOf(["login", "phone", "order"]))
    masked_phone = ma.fields.String(required=True)
    live = ma.fields.Boolean(required=True, metadata={"description": "It can still be entered"})
    end_reason = ma.fields.String(allow_none=True, required=True)
    send_at = ma.fields.AwareDateTime(required=True)
    expires_at = ma.fields.AwareDateTime(required=True)
    queued_seconds = ma.fields.Integer(
        required=True, metadata={"description": "Seconds before it goes out (cool-down)"}
    )
    expires_in_seconds = ma.fields.Integer(required=True)
    resend_in_seconds = ma.fields.Integer(required=True)
    tries_left = ma.fields.Integer(required=True)
    delivery = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "SMS status: queued, sending, sent, delivered, failed, ..."},
    )
    order_ref = ma.fields.String(allow_none=True, required=True)


def challenge_data(status: ChallengeStatus, order_ref: str | None) -> dict[str, Any]:
    return {
        "id": status.public_id,
        "purpose": str(status.purpose),
        "masked_phone": status.masked_phone,
        "live": status.live,
        "end_reason": status.end_reason,
        "send_at": status.send_at,
        "expires_at": status.expires_at,
        "queued_seconds": status.queued_seconds,
        "expires_in_seconds": status.expires_in_seconds,
        "resend_in_seconds": status.resend_in_seconds,
        "tries_left": status.tries_left,
        "delivery": str(status.delivery) if status.delivery else None,
        "order_ref": order_ref,
    }


class VerifySchema(ma.Schema):
    code = ma.fields.String(
        required=True,
        validate=[validate.Length(1, 64), encodable],
        metadata={"description": "The digits from the SMS; spaces are ignored"},
    )


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
