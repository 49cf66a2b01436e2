"""Accounts: registration, passwords and sign-in checks, free of Flask request objects."""

from functools import cache

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from shop.accounts.phone import InvalidPhone, mask_phone, normalise_phone
from shop.extensions import db
from shop.models import Role, User

__all__ = [
    "EmailTaken",
    "InvalidPhone",
    "authenticate",
    "mask_phone",
    "normalise_phone",
    "register_user",
]


class EmailTaken(ValueError):
    """An account with this e-mail already exists."""


@cache
def _dummy_hash(method: str) -> str:
    # Checked against when the e-mail is unknown, so both failures cost the same time.
    return generate_password_hash("not a real password", method=method)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def register_user(
    email: str, phone: str, password: str, *, hash_method: str, role: Role = Role.SHOPPER
) -> User:
    """Create an account (not committed). `phone` must already be in E.164."""
    email = normalise_email(email)
    if find_user_by_email(email) is not None:
        raise EmailTaken(email)
    user = User(
        email=email,
        phone=phone,
        password_hash=generate_password_hash(password, method=hash_method),
        role=role,
    )
    db.session.add(user)
    return user


def authenticate(email: str, password: str, *, hash_method: str) -> User | None:
    """The user whose e-mail and password match, else None, in the same time either way."""
    user = find_user_by_email(email)
    if user is None:
        check_password_hash(_dummy_hash(hash_method), password)
        return None
    return user if check_password_hash(user.password_hash, password) else None
