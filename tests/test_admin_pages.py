"""The owner's dashboard, orders and audit pages; every admin page is for the owner only."""

import json
import re
from datetime import UTC, date, datetime, timedelta
from html import unescape
from itertools import count

import pytest
from sqlalchemy import select

from shop import audit
from shop.blueprints.admin import PER_PAGE
from shop.extensions import db
from shop.models import (
    AuditEvent,
    Order,
    OrderStatus,
    OtpChallenge,
    Role,
    SmsKind,
    SmsMessage,
    SmsStatus,
)
from shop.risk.figures import Rate, orders_per_day, step_up_figures
from tests import postgres
from tests.factories import (
    ADDRESS,
    fill_cart,
    last_code_sent_to,
    make_product,
    make_user,
    stored_order,
    text_of,
)
from tests.test_query_plans import Statements

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # the frozen clock's time
PAGES = ["/admin", "/admin/risk", "/admin/orders", "/admin/sms", "/admin/audit", "/admin/settings"]
POSTS = ["/admin/risk", "/admin/risk/backtest"]
_numbers = count(1)

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app
any_app = postgres.any_app


def add_order(
    user,
    *,
    age: timedelta,
    outcome: str | None,
    status: OrderStatus = OrderStatus.PLACED,
    total_minor: int = 10_000,
    reasons: list[dict] | None = None,
    codes: int = 0,
    verified: bool = False,
) -> Order:
    """An order created `age` before NOW, with `codes` order codes (the last one consumed if
    `verified`)."""
    number = next(_numbers)
    at = NOW - age
    order = stored_order(
        user,
        f"SH-PAGE{number:04d}",
        status=status,
        total_minor=total_minor,
        risk_outcome=outcome,
        risk_reasons=json.dumps(reasons or []),
        step_up_verified_at=at + timedelta(minutes=2) if verified else None,
        created_at=at,
    )
    db.session.flush()
    for index in range(codes):
        last = index == codes - 1
        db.session.add(
            OtpChallenge(
                user_id=user.id,
                purpose="order",
                binding="b" * 64,
                order_id=order.id,
                phone=user.phone,
                client_ip="127.0.0.1",
                code_hmac="c" * 64,
                created_at=at + timedelta(seconds=30 * index),
                expires_at=at + timedelta(minutes=5),
                consumed_at=at + timedelta(minutes=2) if verified and last else None,
                # Each code but a verified last one has ended: replaced, or expired.
                ended_at=None if verified and last else at + timedelta(seconds=30 * index + 1),
            )
        )
    db.session.commit()
    return order


# Owner only --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")


@pytest.mark.parametrize("url", POSTS)
def test_anonymous_posts_are_sent_to_sign_in(client, url):
    response = client.post_form(url, {"otp_threshold_minor": "1.00"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")


@pytest.mark.parametrize("url", PAGES)
def test_shoppers_get_403(client, url):
    client.sign_in_as(make_user())
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", POSTS)
def test_shopper_posts_get_403_and_change_nothing(client, url):
    client.sign_in_as(make_user())
    assert client.post_form(url, {"otp_threshold_minor": "1.00"}).status_code == 403
    assert db.session.scalar(select(AuditEvent.id)) is None


@pytest.mark.parametrize("url", PAGES)
def test_every_page_has_the_admin_nav(client, owner, url):
    page = client.get(url).get_data(as_text=True)
    nav = re.search(r'<nav class="admin-nav" aria-label="Admin">(.*?)</nav>', page, re.S).group(1)
    links = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav)
    assert links == [
        ("/admin", "Dashboard"),
        ("/admin/risk", "Risk rules"),
        ("/admin/orders", "Orders"),
        ("/admin/sms", "SMS"),
        ("/admin/audit", "Audit"),
        ("/admin/settings", "Settings"),
    ]
    assert re.search(rf'<a href="{url}" aria-current="page">', nav)
    assert "Review queue: 0 held" in nav


# Orders ------------------------------------------------------------------------------------

HOLD_REASONS = [
    {"code": "otp_threshold", "outcome": "otp", "text": "This order is above the amount."},
    {"code": "hold_threshold", "outcome": "hold", "text": "Large orders are reviewed first."},
]


def test_orders_show_decisions_and_every_reason(client, owner):
    shopper = make_user("grace@example.com")
    add_order(shopper, age=timedelta(hours=3), outcome="allow")
    held = add_order(
        shopper,
        age=timedelta(hours=1),
        outcome="hold",
        status=OrderStatus.HELD,
        total_minor=600_000,
        # A re-evaluation at confirmation may record a reason twice: it is shown once.
        reasons=[*HOLD_REASONS, HOLD_REASONS[1]],
    )
    page = text_of(client.get("/admin/orders"))
    row = re.search(rf'<tr class="order-held" data-ref="{held.ref}">(.*?)</tr>', page, re.S)
    assert row, "held orders are marked"
    row = row.group(1)
    assert "Held: needs your review" in row
    assert "grace@example.com" in row and "€6,000.00" in row and ">hold<" in row
    assert "<code>otp_threshold</code> (otp): This order is above the amount." in row
    assert "<code>hold_threshold</code> (hold): Large orders are reviewed first." in row
    assert row.count("hold_threshold") == 1


def test_orders_newest_first_and_filtered(client, owner):
    shopper = make_user()
    placed = add_order(shopper, age=timedelta(hours=5), outcome="allow")
    expired = add_order(
        shopper, age=timedelta(hours=4), outcome="otp", status=OrderStatus.EXPIRED, codes=1
    )
    held = add_order(shopper, age=timedelta(hours=3), outcome="hold", status=OrderStatus.HELD)
    page = client.get("/admin/orders").get_data(as_text=True)
    assert page.index(held.ref) < page.index(expired.ref) < page.index(placed.ref)

    by_status = client.get("/admin/orders?status=held").get_data(as_text=True)
    assert held.ref in by_status and placed.ref not in by_status
    by_outcome = client.get("/admin/orders?outcome=otp").get_data(as_text=True)
    assert expired.ref in by_outcome and held.ref not in by_outcome
    both = client.get("/admin/orders?outcome=otp&status=placed").get_data(as_text=True)
    assert "No orders match this filter" in both
    assert client.get("/admin/orders?status=&outcome=").status_code == 200


@pytest.mark.parametrize("query", ["status=shipped", "outcome=maybe", "before=0", "after=x"])
def test_orders_refuse_unknown_filters(client, owner, query):
    assert client.get(f"/admin/orders?{query}").status_code == 400


def test_orders_a_page_at_a_time_keeping_the_filter(client, owner):
    shopper = make_user()
    for minutes in range(PER_PAGE + 5):
        add_order(shopper, age=timedelta(minutes=minutes), outcome="allow")
    page = client.get("/admin/orders?outcome=allow").get_data(as_text=True)
    assert page.count('data-ref="') == PER_PAGE
    assert f"{PER_PAGE + 5} orders" in page
    older = re.search(r'href="(/admin/orders\?before=\d+&amp;outcome=allow)" rel="next"', page)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert second.count('data-ref="') == 5 and 'rel="next"' not in second
    assert client.get("/admin/orders?before=987654321").status_code == 404


def test_a_full_page_of_orders_asks_what_a_page_of_one_asks(client, owner):
    """A row's shopper is joined into the page's one statement (never a query a row), and
    the count reads the orders alone."""

    def statements() -> tuple[str, list[str]]:
        with Statements() as seen:
            page = client.get("/admin/orders?outcome=allow").get_data(as_text=True)
        return page, [sql for sql, _ in seen.seen]

    add_order(make_user(), age=timedelta(minutes=1), outcome="allow")
    page, one = statements()
    assert page.count('data-ref="') == 1
    for minutes in range(2, PER_PAGE + 5):
        add_order(make_user(), age=timedelta(minutes=minutes), outcome="allow")
    page, full = statements()
    assert page.count('data-ref="') == PER_PAGE
    assert len(full) == len(one)
    emails = re.findall(r'href="/admin/accounts/\d+">([^<]+)</a>', page)
    assert len(set(emails)) == PER_PAGE
    [count] = [sql for sql in full if "count(" in sql and "risk_outcome" in sql]
    assert "users" not in count


# Audit trail -------------------------------------------------------------------------------


def add_event(event: audit.Event, *, age: timedelta, **values) -> AuditEvent:
    row = audit.record(event, **values)
    row.at = NOW - age
    db.session.commit()
    return row


def test_audit_shows_who_did_what_newest_first(client, owner):
    shopper = make_user("ada@example.com")
    add_event(audit.Event.SIGN_IN, age=timedelta(hours=2), user_id=shopper.id, ip="198.51.100.7")
    add_event(
        audit.Event.RULES_CHANGED,
        age=timedelta(hours=1),
        actor_id=owner.id,
        ip="203.0.113.5",
        changes={"otp_threshold_minor": {"old": 25_000, "new": 10_000}},
    )
    add_event(
        audit.Event.CODE_FAILED,
        age=timedelta(minutes=5),
        user_id=shopper.id,
        actor_id=owner.id,
        purpose="<script>alert(1)</script>",
    )
    raw = client.get("/admin/audit").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    rows = re.findall(r'<tr data-event="(\w+)">(.*?)</tr>', unescape(raw), re.S)
    assert [event for event, _ in rows] == ["code_failed", "rules_changed", "sign_in"]
    cells = {event: re.findall(r"<td>(.*?)</td>", row, re.S) for event, row in rows}
    assert "ada@example.com" in cells["sign_in"][2] and "—" in cells["sign_in"][3]
    assert "198.51.100.7" in cells["sign_in"][4]
    assert owner.email in cells["code_failed"][3]  # the actor, when not the account
    assert "—" in cells["rules_changed"][2] and owner.email in cells["rules_changed"][3]
    assert (
        '"otp_threshold_minor": {\n      "new": 10000,\n      "old": 25000'
        in (cells["rules_changed"][5])
    )


def test_audit_filter_by_event(client, owner):
    shopper = make_user()
    add_event(audit.Event.SIGN_IN, age=timedelta(hours=2), user_id=shopper.id)
    add_event(audit.Event.CODE_SENT, age=timedelta(hours=1), user_id=shopper.id, purpose="order")
    page = client.get("/admin/audit?event=code_sent").get_data(as_text=True)
    assert re.findall(r'<tr data-event="(\w+)">', page) == ["code_sent"]
    assert client.get("/admin/audit?event=stolen").status_code == 400
    assert "Unknown event" in client.get("/admin/audit?event=stolen").get_data(as_text=True)


def test_audit_after_a_whole_code_flow_holds_no_code(client, app, owner):
    shopper = make_user()
    shopper_client = app.test_client()
    shopper_client.sign_in_as(shopper)
    fill_cart(shopper, (make_product(price_minor=30_000), 1))  # over the default code threshold
    response = shopper_client.post_form("/checkout", {**ADDRESS, "idempotency_key": "k" * 24})
    verify_url = response.headers["Location"]
    assert verify_url.startswith("/checkout/verify/")
    code = last_code_sent_to(shopper.phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert shopper_client.post_form(verify_url, {"code": wrong}).status_code == 422
    assert shopper_client.post_form(verify_url, {"code": code}).status_code == 302

    page = client.get("/admin/audit").get_data(as_text=True)
    events = re.findall(r'<tr data-event="(\w+)">', page)
    assert {"code_sent", "code_failed", "code_verified"} <= set(events)
    without_tokens = re.sub(r'name="csrf_token"[^>]*>', "", page)
    assert code not in without_tokens
    assert wrong not in without_tokens
    for row in db.session.scalars(select(AuditEvent)):
        assert code not in row.detail


# Dashboard ---------------------------------------------------------------------------------


@pytest.fixture
def known_data_set(app, frozen_clock):
    """Eleven orders; the comments say which windows and figures each one counts in."""
    user = make_user()
    hours, days = timedelta(hours=1), timedelta(days=1)
    add_order(user, age=2 * hours, outcome="allow", total_minor=10_000)
    # Two codes (a resend), the second one entered.
    add_order(user, age=3 * hours, outcome="otp", total_minor=30_000, codes=2, verified=True)
    add_order(user, age=5 * hours, outcome="otp", status=OrderStatus.EXPIRED, codes=1)  # abandoned
    add_order(
        user,
        age=1 * hours,
        outcome="otp",
        status=OrderStatus.PENDING_VERIFICATION,
        total_minor=26_000,
        codes=1,
    )  # still waiting: not abandoned
    add_order(user, age=2 * days, outcome="otp", status=OrderStatus.CANCELLED, codes=1)
    add_order(user, age=2 * days, outcome=None, total_minor=2_000)  # before decisions existed
    add_order(user, age=3 * days, outcome="hold", status=OrderStatus.HELD, total_minor=600_000)
    # Asked a code, then held at confirmation: needed a code, held, not abandoned.
    add_order(user, age=3 * days, outcome="hold", status=OrderStatus.HELD, codes=1)
    add_order(user, age=4 * days, outcome="block", status=OrderStatus.BLOCKED, total_minor=900_000)
    add_order(user, age=10 * days, outcome="otp", codes=1, verified=True)  # chart only
    add_order(user, age=20 * days, outcome="allow")  # in no figure
    for age, status in ((hours, SmsStatus.DELIVERED), (2 * days, SmsStatus.FAILED)):
        db.session.add(
            SmsMessage(
                to_number=user.phone,
                kind=SmsKind.OTP_ORDER,
                body="Shop: •••••• is your code.",
                status=status,
                sent_at=NOW - age,
                created_at=NOW - age,
            )
        )
    db.session.commit()


def test_step_up_figures_on_a_known_data_set(known_data_set):
    day = step_up_figures(NOW - timedelta(hours=24))
    assert (day.orders, day.decided, day.challenged, day.abandoned) == (4, 4, 3, 1)
    assert (day.held, day.blocked, day.codes_sent, day.codes_verified) == (0, 0, 4, 1)
    assert day.challenge_rate == Rate(3, 4) and day.challenge_rate.value == 0.75
    assert day.code_conversion.value == 0.25
    assert day.abandonment.value == pytest.approx(1 / 3)

    week = step_up_figures(NOW - timedelta(days=7))
    assert (week.orders, week.decided, week.challenged, week.abandoned) == (9, 8, 5, 2)
    assert (week.held, week.blocked, week.codes_sent, week.codes_verified) == (2, 1, 6, 1)
    assert week.challenge_rate.value == 5 / 8
    assert week.abandonment.value == 2 / 5

    empty = step_up_figures(NOW)
    assert empty.challenge_rate.value is None and empty.code_conversion.value is None


def test_orders_per_day_on_a_known_data_set(known_data_set):
    days = orders_per_day(NOW, 14)
    assert [day.day for day in (days[0], days[-1])] == [date(2026, 10, 20), date(2026, 11, 2)]
    by_day = {day.day: day for day in days if day.total_orders}
    assert {day: figures.orders for day, figures in by_day.items()} == {
        date(2026, 11, 2): {"allow": 1, "otp": 3, "hold": 0, "block": 0, "none": 0},
        date(2026, 10, 31): {"allow": 0, "otp": 1, "hold": 0, "block": 0, "none": 1},
        date(2026, 10, 30): {"allow": 0, "otp": 0, "hold": 2, "block": 0, "none": 0},
        date(2026, 10, 29): {"allow": 0, "otp": 0, "hold": 0, "block": 1, "none": 0},
        date(2026, 10, 23): {"allow": 0, "otp": 1, "hold": 0, "block": 0, "none": 0},
    }
    today = by_day[date(2026, 11, 2)]
    assert today.value_minor["otp"] == 30_000 + 10_000 + 26_000
    assert today.total_value_minor == 76_000
    assert by_day[date(2026, 10, 30)].total_value_minor == 610_000


def test_orders_per_day_splits_at_midnight_utc(app, frozen_clock):
    """Days are counted as whole hours since the epoch: the last second of a day and the
    first of the next fall on their own days, on every database."""
    user = make_user()
    midnight = datetime(2026, 11, 2, tzinfo=UTC)
    for moment, total in ((midnight - timedelta(seconds=1), 1_000), (midnight, 2_000)):
        add_order(user, age=NOW - moment, outcome="allow", total_minor=total)
    db.session.commit()
    by_day = {day.day: day.total_value_minor for day in orders_per_day(NOW, 14)}
    assert by_day[date(2026, 11, 1)] == 1_000 and by_day[date(2026, 11, 2)] == 2_000
    assert sum(by_day.values()) == 3_000


def test_the_dashboard_draws_charts_with_their_numbers(client, owner, known_data_set):
    page = text_of(client.get("/admin"))
    figures = {
        name: re.findall(rf'data-figure="{name}">([^<]+)<', page)
        for name in (
            "orders",
            "challenge_rate",
            "code_conversion",
            "abandonment",
            "held",
            "blocked",
            "sms_delivery",
        )
    }
    assert figures["challenge_rate"] == ["75.0%", "62.5%"]
    assert figures["code_conversion"] == ["25.0%", "16.7%"]
    assert figures["abandonment"] == ["33.3%", "40.0%"]
    assert figures["held"] == ["0", "2"] and figures["blocked"] == ["0", "1"]
    assert figures["sms_delivery"] == ["100.0%", "50.0%"]
    # The day table: window figures first (24 h, 7 days), then one row per day, newest first.
    assert figures["orders"][:3] == ["4", "9", "4"]

    assert page.count("<svg") == 3
    assert page.count('role="img"') == 3
    assert "Challenge rate 62.5% (5 of 8)" in page
    assert "Orders per day, last 14 days, by risk outcome" in page
    assert "<title>Mon 02 Nov: 4 orders, 1 placed, 3 asked to confirm</title>" in page
    assert re.search(r'data-day="2026-11-02">.*?data-figure="value">€760.00<', page, re.S)


def test_the_dashboard_with_no_orders(client, owner, frozen_clock):
    page = text_of(client.get("/admin"))
    assert re.findall(r'data-figure="challenge_rate">([^<]+)<', page) == ["—", "—"]
    assert page.count("<svg") == 3


@pytest.mark.parametrize(
    "url",
    [
        "/admin/orders?before=2147483648",
        "/admin/audit?after=2147483648",
        "/admin/sms?refusals_before=2147483648",
        "/admin/accounts/{id}?before=2147483648",
    ],
)
def test_a_cursor_past_the_largest_row_id_is_refused_on_both_databases(any_app, url):
    # PostgreSQL's ids are 4-byte integers: a larger one failed in the driver (a 500).
    client = any_app.test_client()
    owner = make_user("boss@example.com", role=Role.OWNER)
    client.sign_in_as(owner)
    response = client.get(url.format(id=owner.id))
    assert response.status_code == 400
    assert "number" in response.get_data(as_text=True)
    assert client.get(url.format(id=owner.id).replace("2147483648", "2147483647")).status_code in (
        200,
        404,
    )
