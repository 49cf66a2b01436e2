"""API: the WebAuthn ceremony on an order's challenge. `POST .../passkey/options` gives the
options for `navigator.credentials.get` (a challenge derived from the order and a fresh
nonce, single use, 5 minutes); `POST .../passkey` takes the credential it made and places the
order. A refused assertion counts as a wrong answer, as a wrong code does."""

from shop.api import Blueprint, errors
from shop.api.auth import require_user
from shop.api.challenge_schemas import PasskeyAssertionSchema, PasskeyOptionsSchema
from shop.api.challenges import SECURITY, confirmed, find_challenge
from shop.api.problems import ApiProblem
from shop.api.schemas import VerifiedSchema
from shop.extensions import db
from shop.models import Factor, Order, OtpPurpose
from shop.orders.confirmation import OptionsOutcome, order_passkey_options
from shop.web.ratelimits import limit_code_entry

blp = Blueprint(
    "api_passkeys", __name__, url_prefix="/api/v1", description="Passkeys on a challenge."
)
CHALLENGE_ID = "<string(length=22):challenge_id>"
OPTIONS_STATUS = {
    OptionsOutcome.NOT_PENDING: 409,
    OptionsOutcome.NOT_ALLOWED: 409,
    OptionsOutcome.NOT_FOUND: 404,
}


def _order(challenge_id: str) -> Order:
    found = find_challenge(challenge_id)
    if found.purpose != OtpPurpose.ORDER:
        raise ApiProblem(
            409, "Only an order's challenge can be answered with a passkey.", name="not_allowed"
        )
    return db.session.get(Order, found.order_id)


@blp.post(f"/challenges/{CHALLENGE_ID}/passkey/options")
@limit_code_entry
@blp.doc(operationId="passkeyOptions", security=SECURITY[:2])
@blp.response(200, PasskeyOptionsSchema)
@errors(blp, 401, 404, 409, 429)
def options(challenge_id: str):
    """A fresh WebAuthn challenge for the order; an earlier one stops working."""
    user = require_user()
    order = _order(challenge_id)
    result = order_passkey_options(user, order.ref)
    if result.outcome != OptionsOutcome.READY:
        raise ApiProblem(
            OPTIONS_STATUS[result.outcome],
            result.message,
            name=str(result.outcome),
            order_ref=order.ref,
        )
    return {"public_key": result.options}


@blp.post(f"/challenges/{CHALLENGE_ID}/passkey")
@limit_code_entry
@blp.doc(operationId="verifyPasskey", security=SECURITY[:2])
@blp.arguments(PasskeyAssertionSchema)
@blp.response(200, VerifiedSchema, description="The order is placed")
@errors(blp, 401, 404, 409, 410, 422, 423, 429)
def assertion(body: dict, challenge_id: str):
    """The passkey's answer (the credential as JSON) to the last options: places the order."""
    require_user()
    return confirmed(find_challenge(challenge_id), body["credential"], Factor.PASSKEY)
