"""Recovery codes: ten single-use codes, shown once, kept only as keyed HMACs.

For when the phone, the app and the passkeys are all out of reach. A code is 10 characters
of Crockford's base32 (50 bits), printed as two groups of five; typing is forgiving (case,
spaces, dashes, O for 0, I and L for 1). Using one is consumed by a conditional UPDATE and
always alerts the account holder by SMS.
"""

import hashlib
import hmac
import secrets

from flask import current_app
from sqlalchemy import delete, func, select, update

from shop import clock
from shop.extensions import db
from shop.models import RecoveryCode, User

COUNT = 10
LENGTH = 10
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _key() -> bytes:
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, b"shop.recovery-codes", hashlib.sha256).digest()


def normalise(text: str) -> str:
    return "".join(text.upper().split()).replace("-", "").translate(_READ_AS)[:32]


def _digest(user_id: int, code: str) -> str:
    return hmac.new(_key(), f"{user_id}|{normalise(code)}".encode(), hashlib.sha256).hexdigest()


def new_codes(user: User) -> list[str]:
    """Ten new codes for `user`, replacing every earlier one (not committed). Shown once."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(COUNT):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_hmac=_digest(user.id, raw)))
    db.session.flush()
    return codes


def codes_left(user: User) -> int:
    return db.session.scalar(
        select(func.count(RecoveryCode.id)).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
    )


def use(user: User, submitted: str) -> bool:
    """Use one code if it is one of `user`'s unused ones (the caller commits)."""
    if len(normalise(submitted)) != LENGTH:
        return False
    used = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hmac == _digest(user.id, submitted),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return used.rowcount == 1
