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

from shop.stepup.passkeys.assertion import (
    CREDENTIAL_ID,
    Assertion,
    AssertionOutcome,
    check_assertion,
    request_options,
)
from shop.stepup.passkeys.party import (
    CEREMONY_SECONDS,
    MAX_CREDENTIAL_JSON,
    Refused,
    RelyingParty,
    challenge_for,
    passkeys_of,
    relying_party,
    user_handle,
)
from shop.stepup.passkeys.registration import NewPasskey, registration_options, verify_registration

__all__ = [
    "CEREMONY_SECONDS",
    "CREDENTIAL_ID",
    "MAX_CREDENTIAL_JSON",
    "Assertion",
    "AssertionOutcome",
    "NewPasskey",
    "Refused",
    "RelyingParty",
    "challenge_for",
    "check_assertion",
    "passkeys_of",
    "registration_options",
    "relying_party",
    "request_options",
    "user_handle",
    "verify_registration",
]
