"""Code-bearing SMS bodies sealed at rest with AES-256-GCM, under keys from configuration.

A code's SMS is stored sealed from the moment it is queued (in the outbox, and in the console
backend's copy for /dev/phone), so neither a copy of the database nor its WAL, dead tuples
or a backup ever holds a usable code: the key lives in the configuration, never in the
database. The SMS is opened only to hand it to the provider, or to show it on the demo phone.
The number it goes to is the associated data, so a sealed body opens only for its number.

Keys: `SMS_ENCRYPTION_KEYS`, base64url-encoded 32-byte keys separated by commas; the first
seals, every one opens (rotation: put a new key first, and drop an old one once the codes
it sealed are gone, minutes later). Without it, one key is derived from `SECRET_KEY`.
"""

import base64
import binascii
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

PREFIX = "sealed:v1:"
# What a masked copy shows in place of a sealed secret: a code, a "not me" link's token.
MASK = "••••••"
NONCE_BYTES = 12
KEY_BYTES = 32


class SealBroken(Exception):
    """A sealed body that no configured key opens (a retired key, or tampering)."""


def new_key() -> str:
    """A fresh key for `SMS_ENCRYPTION_KEYS`."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def _key_id(key: bytes) -> str:
    """A short name for a key, stored beside what it sealed (it says nothing of the key)."""
    return hashlib.sha256(b"shop.sms.key-id" + key).hexdigest()[:8]


def _decode_key(text: str, setting: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"{setting}: each key must be base64url") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{setting}: each key must be {KEY_BYTES} bytes")
    return key


class BodySeal:
    """Seals and opens SMS bodies; plain (unsealed) bodies, such as alerts, open as they are."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._keys = {_key_id(key): AESGCM(key) for key in keys}
        self._sealing_id = _key_id(keys[0]) if keys else None

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        setting: str = "SMS_ENCRYPTION_KEYS",
        info: bytes = b"shop.sms.body",
    ) -> "BodySeal":
        """The keys of `setting`, else one derived from `SECRET_KEY` for `info` (so that the
        SMS bodies and the authenticator-app secrets never share a derived key)."""
        listed = str(config.get(setting) or "").split(",")
        keys = [_decode_key(part, setting) for part in listed if part.strip()]
        if not keys and config.get("SECRET_KEY"):
            keys = [
                HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(
                    str(config["SECRET_KEY"]).encode()
                )
            ]
        return cls(keys)

    def seal(self, text: str, *, to_number: str) -> str:
        """`text` sealed; `to_number` is the associated data it opens only with: the number
        an SMS goes to (or, for an authenticator-app secret, the account it belongs to)."""
        if self._sealing_id is None:
            raise SealBroken("No key to seal SMS bodies: set SECRET_KEY or SMS_ENCRYPTION_KEYS.")
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._keys[self._sealing_id].encrypt(nonce, text.encode(), to_number.encode())
        payload = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{PREFIX}{self._sealing_id}:{payload}"

    def open(self, body: str, *, to_number: str) -> str:
        """The text of `body`: opened if sealed, as it is otherwise."""
        if not is_sealed(body):
            return body
        key_id, _, payload = body.removeprefix(PREFIX).partition(":")
        key = self._keys.get(key_id)
        if key is None:
            raise SealBroken(f"SMS sealed with key {key_id}, which is not configured.")
        try:
            raw = base64.urlsafe_b64decode(payload)
            text = key.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], to_number.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise SealBroken(
                "A sealed SMS body did not open: tampered, or another number."
            ) from None
        return text.decode()


def is_sealed(body: str | None) -> bool:
    return body is not None and body.startswith(PREFIX)


def seal() -> BodySeal:
    """The app's seal (made by `create_app` from its configuration)."""
    return current_app.extensions["sms_seal"]


def readable(body: str, to_number: str) -> str:
    """What a phone would show for a stored body; a body no key opens says so."""
    try:
        return seal().open(body, to_number=to_number)
    except SealBroken:
        return "[a sealed message no configured key opens]"
