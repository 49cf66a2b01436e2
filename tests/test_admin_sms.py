"""The owner's SMS log at /admin/sms: owner only, never a code, filters, figures, pages."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from shop import alerts, clock
from shop.accounts.phone import mask_phone
from shop.alerts import NOT_ME_TOKEN
from shop.blueprints.admin import PER_PAGE
from shop.extensions import db
from shop.models import SmsKind, SmsMessage, SmsStatus
from shop.sms.figures import SmsFigures, sms_figures
from tests.factories import last_sms_to, make_user, sms_text

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def add_sms(
    status: SmsStatus = SmsStatus.SENT, *, age: timedelta = timedelta(minutes=5), **fields
) -> SmsMessage:
    values = {
        "to_number": "+447700900123",
        "kind": SmsKind.ALERT_ORDER_PLACED,
        "body": "Shop: order SH-ABCD2345 for €300.00 was placed on your account.",
        "status": status,
        "created_at": NOW - age,
    } | fields
    message = SmsMessage(**values)
    db.session.add(message)
    db.session.commit()
    return message


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/admin/sms")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")


def test_shoppers_get_403(client):
    client.sign_in_as(make_user())
    assert client.get("/admin/sms").status_code == 403


def test_owner_sees_every_message_newest_first(client, owner):
    add_sms(
        age=timedelta(hours=2),
        body="Older message body",
        provider_message_id="0A00000011112222",
        provider_price="0.03330000",
        attempts=2,
        last_error="Vonage answered HTTP 503",
        receipt_status="delivered",
        receipt_error_code="0",
        receipt_at=NOW - timedelta(hours=1),
    )
    add_sms(age=timedelta(hours=1), body="Newer message body", to_number="+447700900456")
    page = client.get("/admin/sms").get_data(as_text=True)
    assert page.index("Newer message body") < page.index("Older message body")
    for shown in ("0A00000011112222", "0.03330000", "Vonage answered HTTP 503", "order placed"):
        assert shown in page
    assert mask_phone("+447700900456") in page and "+447700900456" not in page


def test_codes_are_never_shown(client, owner):
    add_sms(
        kind=SmsKind.OTP_ORDER,
        body="Shop: 123456 is your code to confirm order SH-ABCD2345 for €300.00.",
        redacted_body="Shop: •••••• is your code to confirm order SH-ABCD2345 for €300.00.",
        status=SmsStatus.QUEUED,
    )
    add_sms(kind=SmsKind.OTP_LOGIN, body="Shop: 654321 is your sign-in code.", redacted_body=None)
    page = client.get("/admin/sms").get_data(as_text=True)
    assert "123456" not in page and "654321" not in page
    assert "Shop: •••••• is your code to confirm order SH-ABCD2345" in page
    assert "(code hidden)" in page


def test_not_me_links_are_never_shown(client, owner):
    """A "not me" link locks the account down and cancels its orders: the owner sees it
    masked, in an alert queued now (its masked copy) and in one stored before such copies
    were kept (masked as shown)."""
    shopper = make_user(phone="+447700900777")
    assert alerts.new_device(shopper, browser="Chrome on Linux", ip="198.51.100.9", at=NOW)
    db.session.commit()
    token = NOT_ME_TOKEN.search(sms_text(last_sms_to(shopper.phone))).group()
    link = "http://127.0.0.1:5000/account/not-me/eyJ1.abc_DEF-1"
    add_sms(kind=SmsKind.ALERT_NEW_DEVICE, body=f"Shop: new sign-in. Not you? {link}")

    page = client.get("/admin/sms").get_data(as_text=True)

    assert token not in page and "eyJ1.abc_DEF-1" not in page and "sealed:v1:" not in page
    assert page.count("/account/not-me/••••••") == 2


def test_filter_by_status(client, owner):
    add_sms(SmsStatus.DELIVERED, body="This one was delivered")
    add_sms(SmsStatus.FAILED, body="This one failed")
    page = client.get("/admin/sms?status=failed").get_data(as_text=True)
    assert "This one failed" in page and "This one was delivered" not in page
    page = client.get("/admin/sms?status=").get_data(as_text=True)
    assert "This one failed" in page and "This one was delivered" in page


def test_an_unknown_status_filter_is_400(client, owner):
    response = client.get("/admin/sms?status=lost")
    assert response.status_code == 400
    assert "Unknown status" in response.get_data(as_text=True)


def known_data_set() -> None:
    hours = timedelta(hours=1)
    add_sms(SmsStatus.DELIVERED, age=1 * hours, sent_at=NOW - hours)
    add_sms(SmsStatus.DELIVERED, age=2 * hours, sent_at=NOW - hours)
    add_sms(SmsStatus.SENT, age=3 * hours, sent_at=NOW - hours)
    add_sms(SmsStatus.FAILED, age=4 * hours, sent_at=NOW - hours)  # failed by its receipt
    add_sms(SmsStatus.FAILED, age=5 * hours)  # the provider never took it
    add_sms(SmsStatus.QUEUED, age=6 * hours)
    add_sms(SmsStatus.SENDING, age=7 * hours)
    add_sms(SmsStatus.DROPPED, age=8 * hours)
    add_sms(SmsStatus.EXPIRED, age=30 * hours, sent_at=NOW - 30 * hours)
    add_sms(SmsStatus.REJECTED, age=48 * hours, sent_at=NOW - 48 * hours)
    add_sms(SmsStatus.DELIVERED, age=6 * 24 * hours, sent_at=NOW - 6 * 24 * hours)
    add_sms(SmsStatus.DELIVERED, age=8 * 24 * hours, sent_at=NOW - 8 * 24 * hours)


def test_figures_on_a_known_data_set(app, frozen):
    known_data_set()
    day = sms_figures(NOW - timedelta(hours=24))
    assert day == SmsFigures(
        NOW - timedelta(hours=24), total=8, sent=4, delivered=2, failed=2, pending=2, dropped=1
    )
    assert day.delivery_rate == 0.5
    week = sms_figures(NOW - timedelta(days=7))
    assert week == SmsFigures(
        NOW - timedelta(days=7), total=11, sent=7, delivered=3, failed=4, pending=2, dropped=1
    )
    assert week.delivery_rate == pytest.approx(3 / 7)
    assert sms_figures(NOW).delivery_rate is None


def test_the_page_shows_both_windows(client, owner, frozen):
    known_data_set()
    page = client.get("/admin/sms").get_data(as_text=True)
    figures = dict.fromkeys(("sent", "delivered", "failed", "pending", "delivery_rate"))
    for name in figures:
        figures[name] = re.findall(rf'data-figure="{name}">([^<]+)<', page)
    assert figures == {
        "sent": ["4", "7"],
        "delivered": ["2", "3"],
        "failed": ["2", "4"],
        "pending": ["2", "2"],
        "delivery_rate": ["50.0%", "42.9%"],
    }


def link(page: str, rel: str) -> str:
    """The href of the page's link to the `rel` ("next": older, "prev": newer) page."""
    match = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    assert match, f"no {rel} link"
    return match.group(1).replace("&amp;", "&")


def test_a_page_at_a_time_by_keyset(client, owner):
    per, total = PER_PAGE, 2 * PER_PAGE + 10  # two full pages and a short one

    def message(number: int) -> str:
        return f"Message number {number:03d}."

    for number in range(total):
        add_sms(age=timedelta(minutes=number), body=message(number))
    first = client.get("/admin/sms").get_data(as_text=True)
    assert message(0) in first and message(per - 1) in first
    assert message(per) not in first
    assert f"{total} messages" in first and 'rel="prev"' not in first
    second = client.get(link(first, "next")).get_data(as_text=True)
    assert message(per) in second and message(2 * per - 1) in second
    third = client.get(link(second, "next")).get_data(as_text=True)
    assert message(2 * per) in third and message(total - 1) in third
    assert message(2 * per - 1) not in third and 'rel="next"' not in third
    # Back from the last page: the page of messages just newer than it.
    back = client.get(link(third, "prev")).get_data(as_text=True)
    assert message(per) in back and message(2 * per - 1) in back
    assert message(per - 1) not in back and message(2 * per) not in back
    assert client.get("/admin/sms?before=99999999").status_code == 404
    for query in ("before=0", "before=two", "after=-1", "before=1&after=2"):
        assert client.get(f"/admin/sms?{query}").status_code == 400


def test_one_message_is_counted_in_the_singular(client, owner):
    add_sms(status=SmsStatus.FAILED)
    assert "<span>1 message</span>" in client.get("/admin/sms").get_data(as_text=True)
    add_sms(status=SmsStatus.FAILED)
    assert "<span>2 messages</span>" in client.get("/admin/sms").get_data(as_text=True)


def test_a_page_that_came_out_empty_leads_back_to_the_newest(client, owner):
    """An old link can point past every row its filter still matches (the rows changed
    status since): the page says so and links to the newest page of the filter."""
    first = add_sms(status=SmsStatus.FAILED, age=timedelta(minutes=10))  # the oldest
    add_sms(status=SmsStatus.FAILED)
    newest = '<a href="/admin/sms?status=failed">Newest</a>'
    assert newest not in client.get("/admin/sms?status=failed").get_data(as_text=True)

    page = client.get(f"/admin/sms?status=failed&before={first.id}").get_data(as_text=True)

    assert "No messages past this point" in page and newest in page
    assert 'rel="next"' not in page and 'rel="prev"' not in page


def test_messages_of_one_moment_are_neither_lost_nor_repeated_across_pages(client, owner):
    """Rows created at the same instant are ordered by id: a page boundary among them
    skips none and shows none twice."""
    total = PER_PAGE + PER_PAGE // 2  # a page boundary in the middle of them
    for number in range(total):
        add_sms(age=timedelta(minutes=5), body=f"Same moment {number:03d}.")
    first = client.get("/admin/sms").get_data(as_text=True)
    second = client.get(link(first, "next")).get_data(as_text=True)
    seen = re.findall(r"Same moment (\d{3})\.", first) + re.findall(
        r"Same moment (\d{3})\.", second
    )
    assert sorted(seen) == [f"{number:03d}" for number in range(total)]


def test_pages_keep_the_filter(client, owner):
    for number in range(55):
        add_sms(SmsStatus.FAILED, age=timedelta(minutes=number))
    add_sms(SmsStatus.DELIVERED)
    page = client.get("/admin/sms?status=failed").get_data(as_text=True)
    assert "55 messages" in page
    assert re.search(r'/admin/sms\?before=\d+&amp;status=failed" rel="next"', page)


def test_a_count_past_a_thousand_is_not_counted_on(client, owner):
    db.session.add_all(
        SmsMessage(
            to_number="+447700900123",
            kind=SmsKind.ALERT_ORDER_PLACED,
            body="Shop: hello.",
            status=SmsStatus.FAILED,
            created_at=NOW - timedelta(seconds=number),
        )
        for number in range(1_001)
    )
    db.session.commit()
    page = client.get("/admin/sms?status=failed").get_data(as_text=True)
    assert "1,000+ messages" in page
