"""The history beside each held order (shop/accounts/overview.py `histories`): every figure
from its own table, counted for several accounts in one statement, on SQLite and
PostgreSQL."""

from datetime import timedelta

from shop import audit, clock
from shop.accounts.overview import histories
from shop.extensions import db
from shop.models import AuditEvent, KnownDevice, OrderStatus, OtpFailure
from tests import postgres
from tests.factories import make_user, stored_order
from tests.test_query_plans import Statements

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app
any_app = postgres.any_app


def add_order(user, number: int, status: str, device_id: str | None) -> None:
    stored_order(user, f"SH-HIST{number:04d}", status=status, device_id=device_id)


def test_each_account_gets_its_own_figures_in_one_statement(any_app, frozen_clock):
    busy, quiet, other = make_user(), make_user(), make_user()
    for number, (status, device) in enumerate(
        [
            (OrderStatus.PLACED, "laptop"),
            (OrderStatus.PLACED, "laptop"),
            (OrderStatus.HELD, "phone"),
            (OrderStatus.CANCELLED, None),
        ]
    ):
        add_order(busy, number, status, device)
    add_order(other, 9, OrderStatus.PLACED, "tablet")  # another account: counted for it only
    for device in ("laptop", "phone", "tablet"):
        db.session.add(KnownDevice(user_id=busy.id, device_id=device, browser="Firefox"))
    for event in (audit.Event.PHONE_CHANGED, audit.Event.PHONE_CHANGED, audit.Event.SIGN_IN):
        db.session.add(AuditEvent(event=event, user_id=busy.id))
    now = clock.now()
    for age in (timedelta(hours=1), timedelta(hours=23), timedelta(hours=30)):
        db.session.add(OtpFailure(user_id=busy.id, at=now - age))
    db.session.commit()
    accounts = [busy, quiet, other]
    for user in accounts:
        db.session.refresh(user)  # read back after the commit, before counting statements

    with Statements() as statements:
        found = histories(accounts)
    assert len(statements.seen) == 1
    figures = {
        user_id: (
            history.orders,
            history.placed,
            history.order_devices,
            history.devices,
            history.phone_changes,
            history.failed_codes,
            history.failed_codes_24h,
        )
        for user_id, history in found.items()
    }
    assert figures == {
        busy.id: (4, 2, 2, 3, 2, 3, 2),
        quiet.id: (0, 0, 0, 0, 0, 0, 0),
        other.id: (1, 1, 1, 0, 0, 0, 0),
    }
    assert found[busy.id].email == busy.email
    assert histories([]) == {}
