"""The JSON API's step-up: a challenge as its owner may see it, and the answers to one (a
code with its factor, a passkey's options and assertion)."""

from typing import Any

import marshmallow as ma
from marshmallow import validate

from shop.api.fields import encodable
from shop.otp import ChallengeStatus

# Challenges ----------------------------------------------------------------------------------


FACTORS = ["passkey", "totp", "sms", "recovery"]
CODE_FACTORS = ["sms", "totp", "recovery"]


class ChallengeSchema(ma.Schema):
    """A step-up as its owner may see it: a code sent by SMS (never the code), or an order's
    step-up that a passkey, an app code or a recovery code may answer before any SMS is sent
    (then `send_at` and `delivery` are null until the shopper asks for the SMS: resend)."""

    id = ma.fields.String(required=True)
    purpose = ma.fields.String(required=True, validate=validate.OneOf(["login", "phone", "order"]))
    masked_phone = ma.fields.String(required=True)
    live = ma.fields.Boolean(required=True, metadata={"description": "It can still be entered"})
    end_reason = ma.fields.String(allow_none=True, required=True)
    send_at = ma.fields.AwareDateTime(required=True, allow_none=True)
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
    factors = ma.fields.List(
        ma.fields.String(validate=validate.OneOf(FACTORS)),
        required=True,
        metadata={
            "description": "What may answer it, strongest first: `passkey` (see .../passkey), "
            "`totp`, `sms`, `recovery` (the `factor` of .../verify)"
        },
    )


def challenge_data(
    status: ChallengeStatus, order_ref: str | None, factors: list[str]
) -> dict[str, Any]:
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
        "factors": factors,
    }


class VerifySchema(ma.Schema):
    code = ma.fields.String(
        required=True,
        validate=[validate.Length(1, 64), encodable],
        metadata={"description": "The digits from the SMS or the app, or a recovery code"},
    )
    factor = ma.fields.String(
        load_default="sms",
        validate=validate.OneOf(CODE_FACTORS),
        metadata={"description": "Where the code comes from: `sms` (default), `totp`, `recovery`"},
    )


class PasskeyOptionsSchema(ma.Schema):
    public_key = ma.fields.Dict(
        data_key="publicKey",
        required=True,
        metadata={
            "description": "PublicKeyCredentialRequestOptionsJSON for navigator.credentials.get: "
            "single use, 5 minutes, its challenge derived from the order and a nonce"
        },
    )


class PasskeyAssertionSchema(ma.Schema):
    credential = ma.fields.Dict(
        keys=ma.fields.String(),
        required=True,
        metadata={"description": "The PublicKeyCredential's toJSON(): id, rawId, response..."},
    )
