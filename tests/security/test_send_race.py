"""Defect 1 on both databases: twenty parallel resends, and twenty parallel checkouts, of
one shopper at one instant send at most what the caps allow and leave exactly one live code.

One test body per race, run on SQLite and on a real PostgreSQL server (tests/postgres.py).
"""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from shop.extensions import db
from shop.models import Order, OrderStatus, OtpChallenge, Product, SendRefusal
from shop.otp import Refusal
from tests import postgres
from tests.factories import ADDRESS, fill_cart, make_product, make_user

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app

PARALLEL = 20
SENDS_PER_NUMBER_10_MIN = 5


@pytest.fixture(params=["sqlite", "postgresql"])
def shop(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def in_parallel(task, count: int = PARALLEL) -> list:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(task, range(count)))


def codes() -> int:
    return db.session.scalar(select(func.count(OtpChallenge.id)))


def live_codes() -> int:
    return db.session.scalar(
        select(func.count(OtpChallenge.id)).where(
            OtpChallenge.consumed_at.is_(None), OtpChallenge.ended_at.is_(None)
        )
    )


def refusals() -> list[str]:
    return list(db.session.scalars(select(SendRefusal.reason)))


def browsers(shop, user, count: int = PARALLEL) -> list:
    clients = []
    for _ in range(count):
        each = shop.test_client()
        each.sign_in_as(user)
        each.csrf = each.csrf_token()
        clients.append(each)
    db.session.commit()  # the test's connection goes back to the pool
    return clients


def test_twenty_parallel_resends_send_one_code_and_leave_one_live(shop, frozen_clock):
    shopper = make_user()
    fill_cart(shopper, (make_product(price_minor=30_000, stock=50), 1))
    clients = browsers(shop, shopper)
    started = clients[0].post(
        "/checkout",
        data={**ADDRESS, "idempotency_key": "race-key-000000001", "csrf_token": clients[0].csrf},
    )
    ref = started.headers["Location"].rsplit("/", 1)[-1]
    frozen_clock.advance(seconds=30)  # the first code's cool-down is over
    db.session.commit()

    statuses = in_parallel(
        lambda n: (
            clients[n]
            .post(f"/checkout/verify/{ref}/resend", data={"csrf_token": clients[n].csrf})
            .status_code
        )
    )

    assert statuses == [302] * PARALLEL
    assert codes() == 2  # the first, and exactly one resend
    assert live_codes() == 1
    assert refusals() == [Refusal.COOLDOWN] * (PARALLEL - 1)


def test_twenty_parallel_checkouts_stay_within_the_cap_and_leave_one_live_code(shop, frozen_clock):
    shopper = make_user()
    chair = make_product(price_minor=30_000, stock=100)
    chair_id = chair.id
    fill_cart(shopper, (chair, 1))
    clients = browsers(shop, shopper)

    def checkout(n: int) -> int:
        form = {
            **ADDRESS,
            "idempotency_key": f"race-checkout-{n:06d}",
            "csrf_token": clients[n].csrf,
        }
        return clients[n].post("/checkout", data=form).status_code

    statuses = in_parallel(checkout)

    sent = codes()
    assert sent == SENDS_PER_NUMBER_10_MIN  # at most the cap per number in 10 minutes
    assert live_codes() == 1
    assert statuses.count(302) == sent
    assert len(refusals()) == PARALLEL - sent
    assert set(refusals()) == {Refusal.NUMBER_10_MIN}
    pending = db.session.scalar(
        select(func.count(Order.id)).where(Order.status == OrderStatus.PENDING_VERIFICATION)
    )
    assert pending == sent  # a refused checkout made no order...
    db.session.expire_all()
    assert db.session.get(Product, chair_id).stock == 100 - sent  # ...and kept no stock
