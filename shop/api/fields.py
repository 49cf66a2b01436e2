"""The JSON API's field rules: text without control characters or lone surrogates, JSON
integers only, ids within range, money as minor units with the amount as shown."""

import re
from typing import Any

import marshmallow as ma
from marshmallow import validate

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
