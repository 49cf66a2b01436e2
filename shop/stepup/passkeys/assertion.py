"""Assertion: the options that ask a passkey of an account to prove something, and the
check of its answer (counting tries and single use are `shop.stepup.answers`'s)."""

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from shop.extensions import db
from shop.models import Passkey, User
from shop.stepup.passkeys.party import (
    CEREMONY_SECONDS,
    Refused,
    as_json,
    challenge_for,
    descriptor,
    parse_errors,
    parsed,
    passkeys_of,
    relying_party,
    webauthn_library,
    why,
)


def request_options(user: User, binding: str, nonce: str) -> dict[str, Any]:
    """`PublicKeyCredentialRequestOptionsJSON` for proving `binding` with a passkey of `user`."""
    options = webauthn_library().generate_authentication_options(
        rp_id=relying_party().id,
        challenge=challenge_for(binding, nonce),
        timeout=CEREMONY_SECONDS * 1000,
        allow_credentials=[descriptor(passkey) for passkey in passkeys_of(user)],
        user_verification=webauthn_library().helpers.structs.UserVerificationRequirement.REQUIRED,
    )
    return as_json(options)


# A credential id as stored: base64url (`bytes_to_base64url`), within the column's 1,400
# characters. Anything else is no passkey of any account, and is not looked up (a lone
# surrogate or a NUL, which JSON can carry, cannot be sent to the database).
CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,1400}")


class AssertionOutcome(StrEnum):
    VERIFIED = "verified"
    INVALID = "invalid"  # malformed, another origin or site, another challenge, a bad signature
    UNKNOWN = "unknown"  # not a passkey of this account
    CLONED = "cloned"  # a valid signature whose counter went backwards: a copied credential


@dataclass(frozen=True)
class Assertion:
    outcome: AssertionOutcome
    message: str = ""
    passkey: Passkey | None = None
    sign_count: int = 0


def check_assertion(user: User, credential: str | dict, binding: str, nonce: str) -> Assertion:
    """Check an assertion against the challenge of `binding` and `nonce`; changes nothing."""
    try:
        data = parsed(credential)
    except Refused as refused:
        return Assertion(AssertionOutcome.INVALID, refused.message)
    credential_id = data.get("id")
    passkey = (
        db.session.scalar(
            select(Passkey).where(
                Passkey.user_id == user.id, Passkey.credential_id == credential_id
            )
        )
        if isinstance(credential_id, str) and CREDENTIAL_ID.fullmatch(credential_id)
        else None
    )
    if passkey is None:
        return Assertion(AssertionOutcome.UNKNOWN, "That passkey is not one of this account's.")
    party = relying_party()
    try:
        # The counter is checked below, once the signature is known to be good: a stale
        # counter under a good signature is the mark of a cloned credential.
        verified = webauthn_library().verify_authentication_response(
            credential=data,
            expected_challenge=challenge_for(binding, nonce),
            expected_rp_id=party.id,
            expected_origin=party.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except parse_errors() as error:
        return Assertion(AssertionOutcome.INVALID, why(error, "The passkey did not confirm this"))
    new_count = verified.new_sign_count
    if (new_count > 0 or passkey.sign_count > 0) and new_count <= passkey.sign_count:
        return Assertion(
            AssertionOutcome.CLONED,
            "This passkey's counter went backwards, the mark of a copied passkey: it was "
            "refused. Use another factor, and remove this passkey if you did not copy it.",
            passkey,
            new_count,
        )
    return Assertion(AssertionOutcome.VERIFIED, passkey=passkey, sign_count=new_count)
