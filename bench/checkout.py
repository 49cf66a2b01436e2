"""Shoppers for `make bench`: signed-in sessions with a cart, each ready to POST its checkout.

Accounts are made straight in the bench's database, and each shopper's session cookie is
signed with the bench's SECRET_KEY, as the tests' `sign_in_as` does: signing in over HTTP
would cost a deliberate scrypt hash (~0.4 s) and, from a new device, a login code by SMS.
Everything else goes over HTTP like a browser: the catalog page for a CSRF token, POST
/cart/add, GET /checkout for the form, then the timed POST /checkout.
"""

import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from sqlalchemy import update

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
IDEMPOTENCY_KEY = re.compile(r'name="idempotency_key"[^>]*value="([^"]+)"')
ORDER_REF = re.compile(r"/orders/(SH-[0-9A-Z]+)")
# The cheapest demo product: an order of one is far under every risk threshold, so it is
# placed at once (no step-up code) and queues the "order placed" alert SMS.
PRODUCT_NAME = "Enamel pin"
ADDRESS = {
    "full_name": "Bench Shopper",
    "address_line1": "1 Test Street",
    "city": "London",
    "postal_code": "SW1A 1AA",
    "country": "GB",
}


@dataclass
class Shopper:
    session: requests.Session
    form: dict[str, str] | None = None


@dataclass(frozen=True)
class Checkout:
    seconds: float
    status: int
    order_ref: str | None


def make_accounts(database_url: str, secret_key: str, count: int) -> tuple[list[str], int]:
    """`count` shoppers with verified phones, each signed in (a server-side session); their
    signed session cookies and the product id.

    The product gets stock enough for every order, so that no checkout fails on stock.
    """
    from shop import clock, create_app
    from shop.accounts.client import Client
    from shop.accounts.sessions import open_session
    from shop.extensions import db
    from shop.models import Product, User

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": secret_key})
    with app.app_context():
        users = [
            User(
                email=f"bench{number}@example.com",
                phone=f"+447700900{number % 1000:03d}",
                # Matches no password: these shoppers never sign in, their sessions are signed.
                password_hash="!",  # noqa: S106
                phone_verified_at=clock.now(),
            )
            for number in range(count)
        ]
        db.session.add_all(users)
        product = db.session.scalar(db.select(Product).where(Product.name == PRODUCT_NAME))
        db.session.execute(update(Product).where(Product.id == product.id).values(stock=100_000))
        db.session.commit()
        serializer = app.session_interface.get_signing_serializer(app)
        # Sessions live on the server: each shopper gets one, named in its signed cookie.
        sessions = [open_session(user, Client("127.0.0.1")) for user in users]
        cookies = [serializer.dumps({"_user_id": sid, "_fresh": True}) for sid in sessions]
        product_id = product.id
        db.session.remove()
        db.engine.dispose()
    return cookies, product_id


def prepare(base_url: str, cookie: str, product_id: int) -> Shopper:
    """A signed-in session with one item in its cart and a filled checkout form."""
    session = requests.Session()
    session.cookies.set("session", cookie, domain="127.0.0.1", path="/")
    page = session.get(f"{base_url}/")
    page.raise_for_status()
    if "Sign out" not in page.text:
        raise RuntimeError("the bench shopper's session cookie was not accepted")
    added = session.post(
        f"{base_url}/cart/add",
        data={"csrf_token": _match(CSRF, page.text), "product_id": product_id, "quantity": 1},
        allow_redirects=False,
    )
    if added.status_code != 302:
        raise RuntimeError(f"POST /cart/add answered {added.status_code}")
    form_page = session.get(f"{base_url}/checkout")
    form_page.raise_for_status()
    form = {
        **ADDRESS,
        "csrf_token": _match(CSRF, form_page.text),
        "idempotency_key": _match(IDEMPOTENCY_KEY, form_page.text),
    }
    return Shopper(session, form)


def check_out(base_url: str, shopper: Shopper) -> Checkout:
    started = time.perf_counter()
    response = shopper.session.post(
        f"{base_url}/checkout", data=shopper.form, allow_redirects=False
    )
    seconds = time.perf_counter() - started
    match = ORDER_REF.search(response.headers.get("Location", ""))
    return Checkout(seconds, response.status_code, match.group(1) if match else None)


def run_paced(base_url: str, shoppers: Iterable[Shopper], rate: float) -> list[Checkout]:
    """POST each shopper's checkout, starting one every 1/rate s whatever the answers take
    (an open loop, as real shoppers arrive), with up to 8 in flight."""
    shoppers = list(shoppers)
    with ThreadPoolExecutor(max_workers=8) as pool:
        start = time.perf_counter()
        futures = []
        for index, shopper in enumerate(shoppers):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(check_out, base_url, shopper))
        return [future.result() for future in futures]


def _match(pattern: re.Pattern, text: str) -> str:
    match = pattern.search(text)
    if match is None:
        raise RuntimeError(f"no {pattern.pattern!r} on the page")
    return match.group(1)
