"""Demo data for `make run`: a catalog of 24 products, two accounts to sign in with, and a
month of past orders from a few other customers for the owner's dashboard and backtest
(`shop.demo.history`, placed through the real checkout with the clock moved)."""

from dataclasses import dataclass

from shop import accounts, clock
from shop.demo.catalog import PRODUCTS, seed_products
from shop.demo.customers import HISTORY_CUSTOMERS, HISTORY_MARKER
from shop.demo.history import seed_history
from shop.extensions import db
from shop.models import KnownDevice, Role, User

__all__ = [
    "DEMO_OWNER",
    "DEMO_SHOPPER",
    "HISTORY_CUSTOMERS",
    "HISTORY_MARKER",
    "PRODUCTS",
    "DemoLogin",
    "seed_demo",
    "seed_history",
    "seed_products",
]


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str
    phone: str


DEMO_DEVICE = "Shop app on iOS"
DEMO_SHOPPER = DemoLogin("shopper", "shopper@example.com", "demo-shopper-pass", "+447700900123")
DEMO_OWNER = DemoLogin("owner", "owner@example.com", "demo-owner-pass", "+447700900456")


def ensure_account(login: DemoLogin, role: Role, hash_method: str) -> User:
    """The account for `login`, created with a verified phone if it does not exist yet."""
    user = accounts.find_user_by_email(login.email)
    if user is None:
        user = accounts.register_user(
            login.email, login.phone, login.password, hash_method=hash_method, role=role
        )
        user.phone_verified_at = clock.now()
        db.session.flush()
        # A device already known, so that the first browser sign-in shows a new-device alert.
        db.session.add(KnownDevice(user_id=user.id, device_id="demo-phone", browser=DEMO_DEVICE))
    return user


def seed_demo(currency: str, hash_method: str) -> list[DemoLogin]:
    """Load the demo catalog, accounts and order history (idempotent); return the logins."""
    seed_products(currency)
    ensure_account(DEMO_SHOPPER, Role.SHOPPER, hash_method)
    ensure_account(DEMO_OWNER, Role.OWNER, hash_method)
    db.session.commit()
    seed_history(clock.now(), currency)
    return [DEMO_SHOPPER, DEMO_OWNER]
