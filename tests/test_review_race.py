"""Owners deciding one held order at once, on SQLite and on PostgreSQL: one wins, every other
one is told it was already handled, and nothing happens twice (stock, SMS, audit, timeline).

Each owner is a request of its own in a thread of its own, as on several web processes.
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from sqlalchemy import func, select

from shop.extensions import db
from shop.models import (
    AuditEvent,
    Order,
    OrderEvent,
    OrderStatus,
    Product,
    Role,
    SmsKind,
    SmsMessage,
)
from tests import postgres
from tests.factories import make_held_order, make_user

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app

OWNERS = 12


@pytest.fixture(params=["sqlite", "postgresql"])
def shop_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_owners_racing_on_one_held_order_decide_it_once(shop_app):
    order = make_held_order()
    ref, product_id = order.ref, order.items[0].product_id
    stock = db.session.get(Product, product_id).stock
    clients, tokens = [], []
    for number in range(OWNERS):
        owner = make_user(f"owner{number}@example.com", role=Role.OWNER)
        client = shop_app.test_client()
        client.sign_in_as(owner)
        clients.append(client)
        tokens.append(client.csrf_token())
    db.session.commit()  # the test's own connection goes back to the pool
    start = Barrier(OWNERS)

    def decide(index: int) -> tuple[str, int, str]:
        action = "approve" if index % 2 == 0 else "cancel"
        data = {"note": f"owner {index} decides", "csrf_token": tokens[index]}
        start.wait()
        response = clients[index].post(f"/admin/orders/{ref}/{action}", data=data)
        return action, response.status_code, response.get_data(as_text=True)

    with ThreadPoolExecutor(max_workers=OWNERS) as pool:
        results = list(pool.map(decide, range(OWNERS)))

    statuses = Counter(status for _, status, _ in results)
    assert statuses == {302: 1, 409: OWNERS - 1}
    [winner] = [action for action, status, _ in results if status == 302]
    for _, status, page in results:
        if status == 409:
            assert "already handled" in page
    db.session.expire_all()
    order = db.session.scalar(select(Order).where(Order.ref == ref))
    decided = {"approve": OrderStatus.PLACED, "cancel": OrderStatus.CANCELLED}[winner]
    assert order.status == decided
    returned = 1 if winner == "cancel" else 0
    assert db.session.get(Product, product_id).stock == stock + returned
    told = count(SmsMessage, SmsMessage.kind.in_([SmsKind.ORDER_APPROVED, SmsKind.ORDER_CANCELLED]))
    assert told == 1
    audited = count(AuditEvent, AuditEvent.event.in_(["order_approved", "order_cancelled"]))
    assert audited == 1
    on_timeline = count(
        OrderEvent,
        OrderEvent.order_id == order.id,
        OrderEvent.kind.in_(["approved", "cancelled", "released"]),
    )
    assert on_timeline == 1 + returned
