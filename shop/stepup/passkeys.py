"""Passkeys (WebAuthn, with the `webauthn` package): the two ceremonies, and nothing else.

Registration makes a credential bound to this shop's relying party (`WEBAUTHN_RP_ID`, by
default the host of `PUBLIC_BASE_URL`) and origin (`WEBAUTHN_ORIGIN`, by default
`PUBLIC_BASE_URL`'s), with user verification required
and a discoverable ("resident") key preferred. An assertion is checked against a challenge
that the server derives from what is being proved (`binding`, e.g. the order's ref, amount,
currency, items and address) and a random nonce: the signature covers that challenge and the
origin, so it proves this order, on this site, and nothing else. Counting tries, single use
and lockout are `shop.stepup.answers`'s.
"""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from shop.extensions import db
from shop.models import Passkey, User

if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

# How long the browser may take over a ceremony; the server's challenge lives as long.
CEREMONY_SECONDS = 300
MAX_CREDENTIAL_JSON = 16 * 1024
# Errors a hostile or broken client can provoke inside the parsers, beside the library's own.


def _webauthn():
    """The webauthn library, imported at the first ceremony rather than at start-up: it adds
    about 6 MB to every web worker (SPEC section 8 caps a worker at 120 MB) and most requests
    never run a ceremony."""
    import webauthn
    import webauthn.helpers.exceptions
    import webauthn.helpers.structs

    return webauthn


def _parse_errors() -> tuple[type[Exception], ...]:
    return (
        _webauthn().helpers.exceptions.WebAuthnException,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        binascii.Error,
    )


@dataclass(frozen=True)
class RelyingParty:
    id: str  # the host, without scheme or port
    origin: str  # scheme://host[:port], exactly as the browser reports it
    name: str


def relying_party() -> RelyingParty:
    """The shop as WebAuthn names it: from `WEBAUTHN_RP_ID`/`WEBAUTHN_ORIGIN`, or else from
    `PUBLIC_BASE_URL`. A relying party id must be a domain (browsers refuse an IP address),
    so the demo's `http://127.0.0.1:5000` gives `localhost` and `http://localhost:5000`."""
    config = current_app.config
    parts = urlsplit(config["PUBLIC_BASE_URL"])
    host = parts.hostname or "localhost"
    if _is_ip_address(host):
        host = "localhost"
    port = f":{parts.port}" if parts.port else ""
    return RelyingParty(
        id=config["WEBAUTHN_RP_ID"] or host,
        origin=config["WEBAUTHN_ORIGIN"] or f"{parts.scheme}://{host}{port}",
        name=config["SHOP_NAME"],
    )


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def challenge_for(binding: str, nonce: str) -> bytes:
    """The WebAuthn challenge of a step-up: what it proves, and a nonce used once."""
    return hashlib.sha256(f"shop.webauthn|{binding}|{nonce}".encode()).digest()


def user_handle(user: User) -> bytes:
    """The opaque WebAuthn user id of an account: stable, and says nothing of the account."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"shop.webauthn.user|{user.id}".encode(), hashlib.sha256).digest()


def passkeys_of(user: User) -> list[Passkey]:
    return list(
        db.session.scalars(select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.id))
    )


def _descriptor(passkey: Passkey) -> "PublicKeyCredentialDescriptor":
    transports = []
    for name in filter(None, passkey.transports.split(",")):
        try:
            transports.append(_webauthn().helpers.structs.AuthenticatorTransport(name))
        except ValueError:
            continue
    return _webauthn().helpers.structs.PublicKeyCredentialDescriptor(
        id=_raw_id(passkey.credential_id), transports=transports or None
    )


def _raw_id(credential_id: str) -> bytes:
    return base64.urlsafe_b64decode(credential_id + "=" * (-len(credential_id) % 4))


def _as_json(options) -> dict[str, Any]:
    return json.loads(_webauthn().options_to_json(options))


# Registration ----------------------------------------------------------------------------------


def registration_options(user: User, binding: str, nonce: str) -> dict[str, Any]:
    """`PublicKeyCredentialCreationOptionsJSON` for a new passkey of `user`."""
    party = relying_party()
    options = _webauthn().generate_registration_options(
        rp_id=party.id,
        rp_name=party.name,
        user_name=user.email,
        user_id=user_handle(user),
        challenge=challenge_for(binding, nonce),
        timeout=CEREMONY_SECONDS * 1000,
        authenticator_selection=_webauthn().helpers.structs.AuthenticatorSelectionCriteria(
            resident_key=_webauthn().helpers.structs.ResidentKeyRequirement.PREFERRED,
            user_verification=_webauthn().helpers.structs.UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[_descriptor(passkey) for passkey in passkeys_of(user)],
    )
    return _as_json(options)


class Refused(Exception):
    """A ceremony's response that does not verify; `message` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


MALFORMED = "The passkey's answer could not be read. Try again."


def _parsed(credential: str | dict) -> dict[str, Any]:
    if isinstance(credential, str):
        if len(credential) > MAX_CREDENTIAL_JSON:
            raise Refused(MALFORMED)
        try:
            credential = json.loads(credential)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to decode
            raise Refused(MALFORMED) from None
    if not isinstance(credential, dict):
        raise Refused(MALFORMED)
    return credential


@dataclass(frozen=True)
class NewPasskey:
    credential_id: str
    public_key: bytes
    sign_count: int
    transports: str
    backed_up: bool


def verify_registration(credential: str | dict, binding: str, nonce: str) -> NewPasskey:
    """The passkey a registration response makes; raises Refused."""
    data = _parsed(credential)
    party = relying_party()
    try:
        verified = _webauthn().verify_registration_response(
            credential=data,
            expected_challenge=challenge_for(binding, nonce),
            expected_rp_id=party.id,
            expected_origin=party.origin,
            require_user_verification=True,
        )
    except _parse_errors() as error:
        raise Refused(_why(error, "The passkey could not be added")) from None
    transports = data.get("response", {}).get("transports") if isinstance(data, dict) else None
    names = [name for name in transports or [] if isinstance(name, str) and len(name) < 20]
    return NewPasskey(
        credential_id=_webauthn().helpers.bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=",".join(names)[:200],
        backed_up=bool(getattr(verified, "credential_backed_up", False)),
    )


# Assertion -------------------------------------------------------------------------------------


def request_options(user: User, binding: str, nonce: str) -> dict[str, Any]:
    """`PublicKeyCredentialRequestOptionsJSON` for proving `binding` with a passkey of `user`."""
    options = _webauthn().generate_authentication_options(
        rp_id=relying_party().id,
        challenge=challenge_for(binding, nonce),
        timeout=CEREMONY_SECONDS * 1000,
        allow_credentials=[_descriptor(passkey) for passkey in passkeys_of(user)],
        user_verification=_webauthn().helpers.structs.UserVerificationRequirement.REQUIRED,
    )
    return _as_json(options)


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
        data = _parsed(credential)
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
        verified = _webauthn().verify_authentication_response(
            credential=data,
            expected_challenge=challenge_for(binding, nonce),
            expected_rp_id=party.id,
            expected_origin=party.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except _parse_errors() as error:
        return Assertion(AssertionOutcome.INVALID, _why(error, "The passkey did not confirm this"))
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


def _why(error: Exception, prefix: str) -> str:
    """Plain words for a refused ceremony: what a shopper can act on, never a stack."""
    text = str(error).lower()
    if "origin" in text:
        reason = "it was made for another website"
    elif "rp id" in text:
        reason = "it was made for another site"
    elif "challenge" in text:
        reason = "it answers another request (another order, or an old page)"
    elif "user verification" in text or "not verified" in text:
        reason = "your device did not check it was you (PIN, fingerprint or face)"
    elif "signature" in text:
        reason = "its signature is not valid"
    else:
        reason = "its answer could not be read"
    return f"{prefix}: {reason}. Try again."
