"""API: step-up as a resource. A challenge is one code sent by SMS, or an order's step-up
that a stronger factor may answer before any SMS is sent; either is named by a random id.

`POST .../verify` with a code (`factor`: `sms`, `totp` for an authenticator app, `recovery`)
does what it was for: places the order, issues the API token of a sign-in, or confirms a
phone number. `POST .../passkey/options` and `POST .../passkey` are the WebAuthn ceremony for
an order (shop.api.passkeys). `POST .../resend` sends a new SMS code (201, its own id); the
old one then answers as ended. The limits, the binding and the counts are the same as on
the site's code pages, enforced once in the use cases.
"""

from flask import url_for
from sqlalchemy import select

from shop.accounts import signin_stepup, tokens, verification
from shop.accounts.signin_stepup import LoginAttempt
from shop.accounts.tokens import TokenOutcome
from shop.accounts.verification import ConfirmPhoneOutcome
from shop.api import Blueprint, challenge_links, errors
from shop.api.auth import api_user
from shop.api.challenge_schemas import ChallengeSchema, VerifySchema
from shop.api.problems import ApiProblem, code_not_sent
from shop.api.representations import challenge_of, order_of
from shop.api.schemas import VerifiedSchema
from shop.extensions import db
from shop.models import Factor, Order, OtpChallenge, OtpPurpose, StepUp
from shop.orders.confirmation import ConfirmOutcome, confirm_order
from shop.orders.resend import ResendOutcome, resend_order_code
from shop.otp import CodeSend, Sent
from shop.web.client import current_client
from shop.web.ratelimits import limit_code_entry

blp = Blueprint("api_challenges", __name__, url_prefix="/api/v1", description="Codes sent by SMS.")
# A sign-in challenge is reached by its id alone (the password step gave it); the others
# need the account they belong to.
SECURITY = [{"bearer": []}, {"session": []}, {}]
# Password codes are the site's own (a change or a reset): the API never shows or takes them.
API_PURPOSES = (OtpPurpose.LOGIN, OtpPurpose.PHONE, OtpPurpose.ORDER)
CHALLENGE_ID = "<string(length=22):challenge_id>"

CONFIRM_STATUS = {
    ConfirmOutcome.ALREADY_PLACED: 409,
    ConfirmOutcome.WRONG_CODE: 422,
    ConfirmOutcome.CODE_DEAD: 410,
    ConfirmOutcome.TOO_MANY_TRIES: 409,
    ConfirmOutcome.CART_CHANGED: 409,
    ConfirmOutcome.HELD: 409,
    ConfirmOutcome.BLOCKED: 409,
    ConfirmOutcome.LOCKED: 423,
    ConfirmOutcome.EXPIRED: 410,
    ConfirmOutcome.NOT_ALLOWED: 409,
    ConfirmOutcome.CLOSED: 409,
    ConfirmOutcome.NOT_FOUND: 404,
}
CODE_STATUS = {"wrong_code": 422, "code_dead": 410, "no_code": 410, "locked": 423}


def find_challenge(challenge_id: str) -> OtpChallenge | StepUp:
    """The challenge, if the caller may see it: its account's, or a sign-in's by its id. An
    order's step-up (answered by any factor) is one too."""
    challenge = db.session.scalar(
        select(OtpChallenge).where(
            OtpChallenge.public_id == challenge_id, OtpChallenge.purpose.in_(API_PURPOSES)
        )
    ) or db.session.scalar(
        select(StepUp).where(StepUp.public_id == challenge_id, StepUp.purpose == OtpPurpose.ORDER)
    )
    if challenge is not None and challenge.purpose != OtpPurpose.LOGIN:
        user = api_user()
        if user is None or user.id != challenge.user_id:
            challenge = None
    if challenge is None:
        raise ApiProblem(404, "There is no such challenge.", name="not_found")
    return challenge


def _is_live(challenge: OtpChallenge | StepUp) -> bool:
    return challenge.consumed_at is None and challenge.ended_at is None


def _dead() -> ApiProblem:
    return ApiProblem(
        410, "This code no longer works: ask for a new one (resend).", name="code_dead"
    )


@blp.get(f"/challenges/{CHALLENGE_ID}")
@blp.doc(operationId="getChallenge", security=SECURITY)
@blp.response(200, ChallengeSchema)
@errors(blp, 404, 429)
def challenge(challenge_id: str):
    """Where the code went, its SMS delivery status, its countdowns and tries left."""
    return challenge_of(find_challenge(challenge_id))


@blp.post(f"/challenges/{CHALLENGE_ID}/verify")
@limit_code_entry
@blp.doc(operationId="verifyChallenge", security=SECURITY)
@blp.arguments(VerifySchema)
@blp.response(200, VerifiedSchema, description="The order is placed, or the number confirmed")
@blp.alt_response(201, schema=VerifiedSchema, description="The token is issued", success=True)
@errors(blp, 403, 404, 409, 410, 422, 423, 429)
def verify(body: dict, challenge_id: str):
    """Enter the code from the SMS, from the authenticator app (`factor`: `totp`), or a
    recovery code (`factor`: `recovery`)."""
    found = find_challenge(challenge_id)
    factor = Factor(body["factor"])
    # An app or recovery code answers the order's step-up, whichever SMS code is live.
    if factor == Factor.SMS and not _is_live(found):
        raise _dead()
    client = current_client()
    if found.purpose == OtpPurpose.ORDER:
        return confirmed(found, body["code"], factor)
    if found.purpose == OtpPurpose.LOGIN:
        attempt = LoginAttempt(found.user_id, found.binding)
        issued = tokens.token_with_code(attempt, body["code"], client, factor=factor)
        if issued.outcome == TokenOutcome.NOT_ALLOWED:
            raise ApiProblem(409, issued.message, name="not_allowed")
        if issued.outcome != TokenOutcome.ISSUED:
            raise _code_problem(str(issued.outcome), issued.message, issued.tries_left)
        token = {"token": issued.token, "token_type": "Bearer"}
        return {"purpose": "login", "order": None, "token": token, "message": "Signed in."}, 201
    if factor != Factor.SMS:
        raise ApiProblem(
            409, "Only the code sent by SMS answers this challenge.", name="not_allowed"
        )
    result = verification.confirm_phone(api_user(), body["code"], client)
    if result.outcome not in (ConfirmPhoneOutcome.CONFIRMED, ConfirmPhoneOutcome.CHANGED):
        raise _code_problem(str(result.outcome), result.message, result.tries_left)
    message = result.message
    if result.outcome == ConfirmPhoneOutcome.CHANGED:
        # A new number ends every session and token of the account, the caller's included.
        message = (
            "Your new number is confirmed. Every session and API token of the account has "
            "ended, this one included: ask for a new token."
        )
    return {"purpose": "phone", "order": None, "token": None, "message": message}


def confirmed(found: OtpChallenge | StepUp, answer: str | dict, factor: Factor) -> dict:
    """Confirm the order of `found` with `answer`; its placed order, or a problem."""
    order = db.session.get(Order, found.order_id)
    result = confirm_order(api_user(), order.ref, answer, current_client(), factor=factor)
    if result.outcome != ConfirmOutcome.PLACED:
        raise ApiProblem(
            CONFIRM_STATUS[result.outcome],
            result.message,
            name=str(result.outcome),
            tries_left=result.tries_left if result.outcome == "wrong_code" else None,
            order_ref=order.ref,
        )
    placed = order_of(result.order, message=result.message)
    return {"purpose": "order", "order": placed, "token": None, "message": result.message}


def _code_problem(outcome: str, message: str, tries_left: int) -> ApiProblem:
    return ApiProblem(
        CODE_STATUS[outcome],
        message,
        name=outcome,
        tries_left=tries_left if outcome == "wrong_code" else None,
    )


@blp.post(f"/challenges/{CHALLENGE_ID}/resend")
@blp.doc(
    operationId="resendChallenge",
    security=SECURITY,
    responses={"201": {"links": challenge_links("#/id")}},
)
@blp.response(201, ChallengeSchema, description="A new challenge replaces this one")
@errors(blp, 404, 409, 429)
def resend(challenge_id: str):
    """Send a new code (30 s after the last one to the number); the old one stops working."""
    found = find_challenge(challenge_id)
    client = current_client()
    if found.purpose == OtpPurpose.ORDER:
        order = db.session.get(Order, found.order_id)
        result = resend_order_code(api_user(), order.ref, client)
        if result.outcome in (
            ResendOutcome.NOT_PENDING,
            ResendOutcome.NOT_FOUND,
            ResendOutcome.HELD,
        ):
            raise ApiProblem(409, result.message, name="not_pending", order_ref=order.ref)
        if result.outcome == ResendOutcome.NOT_ALLOWED:
            raise ApiProblem(409, result.message, name="not_allowed", order_ref=order.ref)
        send = result.send
    elif found.purpose == OtpPurpose.LOGIN:
        send = signin_stepup.resend_login_code(LoginAttempt(found.user_id, found.binding), client)
        if send is None:
            raise ApiProblem(404, "There is no such challenge.", name="not_found")
    else:
        send = verification.resend_phone_code(api_user(), client)
    return _sent(send)


def _sent(send: CodeSend):
    if send.outcome == Sent.REFUSED:
        raise code_not_sent(send.refused)
    location = url_for("api_challenges.challenge", challenge_id=send.challenge.public_id)
    return challenge_of(send.challenge), 201, {"Location": location}
