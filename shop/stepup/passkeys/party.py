"""What both passkey ceremonies share: the relying party, the challenge of a step-up, the
account's passkeys, and reading a browser's answer."""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
from dataclasses import dataclass
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


def webauthn_library():
    """The webauthn library, imported at the first ceremony rather than at start-up: it adds
    about 6 MB to every web worker (SPEC section 8 caps a worker at 120 MB) and most requests
    never run a ceremony."""
    import webauthn
    import webauthn.helpers.exceptions
    import webauthn.helpers.structs

    return webauthn


def parse_errors() -> tuple[type[Exception], ...]:
    """Errors a hostile or broken client can provoke inside the parsers, beside the
    library's own."""
    return (
        webauthn_library().helpers.exceptions.WebAuthnException,
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


def descriptor(passkey: Passkey) -> "PublicKeyCredentialDescriptor":
    transports = []
    for name in filter(None, passkey.transports.split(",")):
        try:
            transports.append(webauthn_library().helpers.structs.AuthenticatorTransport(name))
        except ValueError:
            continue
    return webauthn_library().helpers.structs.PublicKeyCredentialDescriptor(
        id=_raw_id(passkey.credential_id), transports=transports or None
    )


def _raw_id(credential_id: str) -> bytes:
    return base64.urlsafe_b64decode(credential_id + "=" * (-len(credential_id) % 4))


def as_json(options) -> dict[str, Any]:
    return json.loads(webauthn_library().options_to_json(options))


class Refused(Exception):
    """A ceremony's response that does not verify; `message` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


MALFORMED = "The passkey's answer could not be read. Try again."


def parsed(credential: str | dict) -> dict[str, Any]:
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


def why(error: Exception, prefix: str) -> str:
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
