"""Registration: the options that make a new passkey of an account, and the passkey a
browser's answer makes."""

from dataclasses import dataclass
from typing import Any

from shop.models import User
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
    user_handle,
    webauthn_library,
    why,
)


def registration_options(user: User, binding: str, nonce: str) -> dict[str, Any]:
    """`PublicKeyCredentialCreationOptionsJSON` for a new passkey of `user`."""
    party = relying_party()
    options = webauthn_library().generate_registration_options(
        rp_id=party.id,
        rp_name=party.name,
        user_name=user.email,
        user_id=user_handle(user),
        challenge=challenge_for(binding, nonce),
        timeout=CEREMONY_SECONDS * 1000,
        authenticator_selection=webauthn_library().helpers.structs.AuthenticatorSelectionCriteria(
            resident_key=webauthn_library().helpers.structs.ResidentKeyRequirement.PREFERRED,
            user_verification=webauthn_library().helpers.structs.UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[descriptor(passkey) for passkey in passkeys_of(user)],
    )
    return as_json(options)


@dataclass(frozen=True)
class NewPasskey:
    credential_id: str
    public_key: bytes
    sign_count: int
    transports: str
    backed_up: bool


def verify_registration(credential: str | dict, binding: str, nonce: str) -> NewPasskey:
    """The passkey a registration response makes; raises Refused."""
    data = parsed(credential)
    party = relying_party()
    try:
        verified = webauthn_library().verify_registration_response(
            credential=data,
            expected_challenge=challenge_for(binding, nonce),
            expected_rp_id=party.id,
            expected_origin=party.origin,
            require_user_verification=True,
        )
    except parse_errors() as error:
        raise Refused(why(error, "The passkey could not be added")) from None
    transports = data.get("response", {}).get("transports") if isinstance(data, dict) else None
    names = [name for name in transports or [] if isinstance(name, str) and len(name) < 20]
    return NewPasskey(
        credential_id=webauthn_library().helpers.bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=",".join(names)[:200],
        backed_up=bool(getattr(verified, "credential_backed_up", False)),
    )
