"""The SMS-abuse console and alarm: figures on a known data set, a pumping run through the
real registration form, and the owner alarm (SMS through the outbox, and a banner) raised at
the configured thresholds, once per hour."""

import re
from collections import namedtuple
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from shop import settings
from shop.blueprints.admin import PER_PAGE
from shop.extensions import db
from shop.models import (
    AuditEvent,
    OtpChallenge,
    OwnerAlert,
    Role,
    SendRefusal,
    SmsKind,
    SmsMessage,
    SmsStatus,
)
from shop.otp import Otp
from shop.sms import abuse, attempts, delivery
from shop.sms.delivery import Every
from shop.sms.watch import recent_alarms, watch_sms_abuse
from tests.factories import make_user, text_of
from tests.pumping import pump

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # the frozen clock's time


def sent_code(age, *, phone="+447700900111", ip="203.0.113.1", country="GB", verified=False):
    user = make_user()
    at = NOW - age
    db.session.add(
        OtpChallenge(
            user_id=user.id,
            purpose="phone",
            binding="b",
            phone=phone,
            country=country,
            client_ip=ip,
            code_hmac="0" * 64,
            created_at=at,
            send_at=at,
            expires_at=at + timedelta(minutes=5),
            consumed_at=at + timedelta(minutes=1) if verified else None,
            ended_at=None if verified else at + timedelta(minutes=5),
        )
    )
    db.session.commit()


def refusal(
    age, reason="country_not_allowed", *, phone="+33612345678", ip="198.18.0.1", country="FR"
):
    db.session.add(
        SendRefusal(
            at=NOW - age,
            reason=reason,
            purpose="phone",
            phone=phone,
            country=country,
            client_ip=ip,
        )
    )
    db.session.commit()


def priced(sent_ago, price: str | None, *, status=SmsStatus.DELIVERED):
    db.session.add(
        SmsMessage(
            to_number="+447700900123",
            kind=SmsKind.OTP_LOGIN,
            body="x",
            status=status,
            provider_price=price,
            created_at=NOW - sent_ago,
            sent_at=NOW - sent_ago,
        )
    )
    db.session.commit()


MINUTES = timedelta(minutes=1)
HOURS = timedelta(hours=1)


def known_data_set() -> None:
    sent_code(10 * MINUTES, verified=True)
    sent_code(20 * MINUTES)
    sent_code(2 * HOURS, verified=True, phone="+447700900222", ip="203.0.113.2")
    sent_code(3 * HOURS, country="FR", phone="+33612345600", ip="198.18.0.1")
    sent_code(30 * HOURS)  # outside both windows
    refusal(5 * MINUTES)
    refusal(15 * MINUTES, "ip_numbers", phone="+447700900111", ip="198.18.0.1", country="GB")
    refusal(5 * HOURS, phone="+2348021234500", country="NG")
    refusal(5 * HOURS, "invalid_number", phone="+99912", country=None, ip="198.18.0.2")
    refusal(26 * HOURS)


def test_sends_and_refusals_by_reason_in_the_hour_and_the_day(app, frozen_clock):
    known_data_set()
    hour = abuse.send_figures(NOW - HOURS)
    assert (hour.sent, hour.verified, hour.refused) == (2, 1, 2)
    assert hour.refused_by_reason["country_not_allowed"] == 1
    assert hour.refused_by_reason["ip_numbers"] == 1
    assert hour.refused_by_reason["cooldown"] == 0  # every reason is listed
    day = abuse.send_figures(NOW - 24 * HOURS)
    assert (day.sent, day.verified, day.refused) == (4, 2, 4)
    assert day.refused_by_reason["invalid_number"] == 1


def test_conversion_per_country_is_the_signature(app, frozen_clock):
    known_data_set()
    countries = {row.country: row for row in abuse.send_figures(NOW - 24 * HOURS).countries}
    assert list(countries) == ["GB", "FR", "??", "NG"]  # busiest first
    gb, fr = countries["GB"], countries["FR"]
    assert (gb.sent, gb.verified, gb.refused, gb.conversion) == (3, 2, 1, pytest.approx(2 / 3))
    assert (fr.sent, fr.verified, fr.refused, fr.conversion) == (1, 0, 1, 0.0)
    assert countries["NG"].conversion is None and countries["??"].refused == 1


def test_top_numbers_and_addresses(app, frozen_clock):
    known_data_set()
    numbers = abuse.top_numbers(abuse.latest(NOW - 24 * HOURS))
    assert (numbers[0].key, numbers[0].sent, numbers[0].refused) == ("+447700900111", 2, 1)
    addresses = abuse.top_addresses(abuse.latest(NOW - 24 * HOURS))
    assert (addresses[0].key, addresses[0].attempts) == ("198.18.0.1", 4)


def test_top_sources_are_counted_exactly_on_both_sides(app, frozen_clock):
    """An address busy with sends but with few refusals: its refusals still count, though it
    is not among the addresses with the most refusals."""
    for _ in range(12):
        sent_code(MINUTES, ip="192.0.2.99", phone="+447700900999")
    refusal(MINUTES, ip="192.0.2.99")
    for number in range(12):
        refusal(MINUTES, ip=f"198.18.9.{number}")
        refusal(MINUTES, ip=f"198.18.9.{number}")
    [busiest, *_] = abuse.top_addresses(abuse.latest(NOW - HOURS), limit=5)
    assert (busiest.key, busiest.sent, busiest.refused) == ("192.0.2.99", 12, 1)


def test_the_busiest_sources_rank_by_attempts_then_by_value():
    """Ties go to the lower value, and a refusal without an address counts for no address."""
    latest = abuse.Latest(
        codes=[
            ("+447700900003", "10.0.0.3"),
            ("+447700900001", "10.0.0.1"),
            ("+447700900002", "10.0.0.2"),
            ("+447700900002", "10.0.0.9"),
        ],
        refusals=[("+447700900009", None), ("+447700900003", "10.0.0.9")],
    )
    numbers = abuse.top_numbers(latest, limit=3)
    assert [(row.key, row.sent, row.refused) for row in numbers] == [
        ("+447700900002", 2, 0),
        ("+447700900003", 1, 1),
        ("+447700900001", 1, 0),
    ]
    addresses = abuse.top_addresses(latest, limit=10)
    assert [(row.key, row.attempts) for row in addresses] == [
        ("10.0.0.9", 2),
        ("10.0.0.1", 1),
        ("10.0.0.2", 1),
        ("10.0.0.3", 1),
    ]


def test_sources_read_the_latest_codes_and_refusals_and_countries_every_one(
    client, owner, frozen_clock, monkeypatch
):
    """Past `SAMPLE` codes (or refusals) in the day, the busiest sources are counted from
    the latest ones, and the page says so; the totals and the countries stay exact (from
    the tallies)."""
    monkeypatch.setattr(abuse, "SAMPLE", 3)
    sent_code(3 * HOURS, country="FR", phone="+33612345600", ip="198.18.0.1")
    for minutes in (1, 2, 3):
        sent_code(minutes * MINUTES, verified=True)
    refusal(4 * HOURS, phone="+2348021234500", country="NG")
    for minutes in (1, 2, 3):
        refusal(minutes * MINUTES, "ip_numbers", phone="+447700900111", country="GB")
    [number] = abuse.top_numbers(abuse.latest(NOW - 24 * HOURS))
    assert (number.key, number.sent, number.refused) == ("+447700900111", 3, 3)
    day = abuse.send_figures(NOW - 24 * HOURS)
    assert (day.sent, day.verified, day.refused) == (4, 3, 4)
    countries = {row.country: (row.sent, row.verified, row.refused) for row in day.countries}
    assert countries == {"GB": (3, 3, 3), "FR": (1, 0, 0), "NG": (0, 0, 1)}
    page = text_of(client.get("/admin/sms"))
    assert (
        "The top numbers and addresses count the latest 3 codes and the latest 3 refusals of "
        "the last 24 hours" in page
    )
    assert re.search(r'data-country="NG">.*?data-abuse="refused">1<', page, re.S)
    monkeypatch.setattr(abuse, "SAMPLE", 4)
    assert "count the latest" not in text_of(client.get("/admin/sms"))
    refusal(5 * MINUTES, phone="+2348021234501", country="NG")  # five refusals: one too many
    page = text_of(client.get("/admin/sms"))
    assert "count every code and the latest 4 refusals of the last 24 hours" in page


def test_provider_spend_per_day_adds_the_prices(app, frozen_clock):
    priced(1 * HOURS, "0.03330000")
    priced(2 * HOURS, "0.05000000")
    priced(3 * HOURS, None)  # a price the provider did not give
    priced(13 * HOURS, "1.00000000")  # yesterday (UTC)
    priced(15 * 24 * HOURS, "9.00000000")  # before the 14 days
    days = abuse.spend_per_day(NOW, 14)
    assert len(days) == 14 and days[0].day == date(2026, 11, 2)
    assert (days[0].messages, days[0].spend) == (2, Decimal("0.0833"))
    assert (days[1].messages, days[1].spend) == (1, Decimal("1"))
    assert sum(day.spend for day in days) == Decimal("1.0833")
    assert abuse.spend_since(NOW - HOURS * 1.5) == Decimal("0.0333")


def test_a_price_that_is_not_a_number_is_not_kept(app):
    assert attempts.provider_price("0.03330000") == "0.03330000"
    for odd in ("free", "1e3", "-0.5", "0.0333 EUR", "12345678.0"):
        assert attempts.provider_price(odd) is None


def test_refused_sends_page_newest_first_by_keyset(client, owner, frozen_clock):
    for number in reversed(range(60)):  # oldest first, as they happened
        refusal(number * MINUTES, phone=f"+336123456{number:02d}", ip=f"198.18.3.{number}")
    page = text_of(client.get("/admin/sms"))
    listed = re.findall(r"<td>(198\.18\.3\.\d+)</td>", page)
    assert listed[0] == "198.18.3.0" and len(listed) == PER_PAGE
    oldest = db.session.scalar(select(SendRefusal.id).where(SendRefusal.client_ip == listed[-1]))
    assert f"refusals_before={oldest}" in page
    assert "Newest refusals" not in page
    older = text_of(client.get(f"/admin/sms?refusals_before={oldest}"))
    assert re.findall(r"<td>(198\.18\.3\.\d+)</td>", older)[0] == f"198.18.3.{PER_PAGE}"
    newest = '<a href="/admin/sms#refusals-title">Newest refusals</a>'
    assert newest in older
    first = db.session.scalar(select(func.min(SendRefusal.id)))
    past_the_end = text_of(client.get(f"/admin/sms?refusals_before={first}"))
    assert "No send was refused before these." in past_the_end and newest in past_the_end
    assert client.get("/admin/sms?refusals_before=abc").status_code == 400


def test_the_console_shows_the_figures(client, owner, frozen_clock):
    known_data_set()
    priced(1 * HOURS, "0.0500")
    page = text_of(client.get("/admin/sms"))
    assert re.findall(r'data-abuse="refused">(\d+)<', page)[:2] == ["2", "4"]
    assert re.search(r'data-country="FR">.*?data-abuse="conversion">0\.0%<', page, re.S)
    assert re.search(r'data-country="GB">.*?data-abuse="conversion">66\.7%<', page, re.S)
    assert 'data-abuse="spend">0.0500<' in page
    assert 'data-figure="allowed_countries">GB<' in page


def test_refusals_read_in_the_owners_words_with_the_configured_numbers(
    app, client, owner, frozen_clock
):
    app.extensions["otp"] = Otp.from_config({**app.config, "OTP_NUMBERS_PER_IP_HOUR": 7})
    known_data_set()
    page = text_of(client.get("/admin/sms"))
    assert "Refused: more than 7 numbers from one address in an hour" in page
    assert "<td>more than 7 numbers from one address in an hour</td>" in page
    assert "Refused: more than 5 codes to one number in 10 minutes" in page
    assert "Refused: country not allowed" in page
    assert "ip numbers" not in page and "number 10 min" not in page


# The alarm --------------------------------------------------------------------------------------


def test_refusals_raise_the_alarm_only_above_the_threshold(client, owner, frozen_clock):
    second_owner = make_user("partner@example.com", role=Role.OWNER)
    make_user("new-owner@example.com", role=Role.OWNER, verified=False)
    for _ in range(100):
        refusal(10 * MINUTES)
    refusal(2 * HOURS)  # outside the hour
    assert watch_sms_abuse() == []  # 100 is the threshold, not past it

    refusal(1 * MINUTES)
    [alarm] = watch_sms_abuse()

    assert (alarm.kind, alarm.figure, alarm.threshold) == ("sms_refusals", "101", "100")
    texts = db.session.scalars(
        select(SmsMessage).where(SmsMessage.kind == SmsKind.OWNER_SMS_ABUSE)
    ).all()
    assert sorted(sms.to_number for sms in texts) == sorted([owner.phone, second_owner.phone])
    assert all(sms.status == SmsStatus.QUEUED for sms in texts)  # the outbox, not a provider
    assert texts[0].body == (
        "Shop: SMS abuse alert: 101 code sends were refused in the last hour (alert above 100). "
        "See http://127.0.0.1:5000/admin/sms"
    )
    assert db.session.scalar(select(AuditEvent.event)) == "sms_abuse_alert"
    for url in ("/admin", "/admin/sms", "/admin/orders"):
        banner = text_of(client.get(url))
        assert "SMS alarm" in banner and "101 code sends were refused" in banner

    # Not again within the hour; again after it, if the surge goes on.
    frozen_clock.advance(minutes=30)
    refusal(-29 * MINUTES)
    assert watch_sms_abuse() == []
    frozen_clock.advance(minutes=31)
    for _ in range(101):
        refusal(-60 * MINUTES)
    assert len(watch_sms_abuse()) == 1
    assert len(recent_alarms()) == 2


def test_the_threshold_is_the_owners(app, owner, frozen_clock):
    settings.save(replace(settings.current(), refusals_alert_per_hour=3), actor=owner, ip=None)
    db.session.commit()
    for _ in range(4):
        refusal(MINUTES)
    assert [alarm.threshold for alarm in watch_sms_abuse()] == ["3"]


def test_spend_raises_its_own_alarm(app, owner, frozen_clock):
    for _ in range(100):
        priced(10 * MINUTES, "0.0500")  # 5.0000: the threshold
    assert watch_sms_abuse() == []
    priced(MINUTES, "0.0333")
    [alarm] = watch_sms_abuse()
    assert (alarm.kind, alarm.figure, alarm.threshold) == ("sms_spend", "5.0333", "5.0000")
    [sms] = db.session.scalars(select(SmsMessage).where(SmsMessage.kind == SmsKind.OWNER_SMS_ABUSE))
    assert "SMS spend alert: 5.0333 spent on SMS in the last hour (alert above 5.0000)" in sms.body


def test_two_delivery_processes_raise_one_alarm(app, owner, frozen_clock):
    """Another process raised this hour's alarm between our check and our insert: its unique
    key stops a second one, and no second SMS goes out."""
    for _ in range(101):
        refusal(MINUTES)
    db.session.add(
        OwnerAlert(key="sms_refusals:2026-11-02T12", kind="elsewhere", figure="1", threshold="1")
    )
    db.session.commit()
    assert watch_sms_abuse() == []
    assert db.session.scalar(select(func.count(SmsMessage.id))) == 0


def test_the_chore_runs_at_most_once_per_interval(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(delivery.time, "monotonic", lambda: now[0])
    calls = []
    chore = Every(10, lambda: calls.append(now[0]))
    chore()
    now[0] += 9.9
    chore()
    now[0] += 0.1
    chore()
    assert calls == [1000.0, 1010.0]


# A pumping run through the real registration form ---------------------------------------------


def test_a_pumping_run_shows_in_the_console_and_raises_the_alarm(app, client, owner):
    app.config["PASSWORD_HASH_METHOD"] = "pbkdf2:sha256:1000"  # 300 sign-ups, not the point
    run = pump(app, 300)

    assert run.attempts == 300 and len(run.addresses) >= 50 and len(run.numbers) > 100
    reasons = dict(
        db.session.execute(
            select(SendRefusal.reason, func.count()).group_by(SendRefusal.reason)
        ).all()
    )
    assert reasons["country_not_allowed"] == 180 and reasons["invalid_number"] == 30
    assert reasons["ip_numbers"] > 0  # one address, many numbers
    assert sum(reasons.values()) > 200
    [alarm] = watch_sms_abuse()
    assert alarm.kind == "sms_refusals" and int(alarm.figure) > 200

    page = text_of(client.get("/admin/sms"))
    assert "SMS alarm" in page
    assert re.search(r'data-country="FR">.*?data-abuse="refused">20<', page, re.S)
    assert re.search(r'data-country="GB">.*?data-abuse="conversion">0\.0%<', page, re.S)
    assert "198.18.1." in page  # the busiest addresses


def _reference_top(latest, field, limit):
    """The busiest sources as first written: every value ranked, the first `limit` kept."""
    sent = [getattr(code, field) for code in latest.codes]
    refused = [getattr(refusal, field) for refusal in latest.refusals]
    keys = (set(sent) | set(refused)) - {None}
    ranked = sorted(
        ((key, sent.count(key), refused.count(key)) for key in keys),
        key=lambda item: (-(item[1] + item[2]), item[0]),
    )
    return ranked[:limit]


_sources = st.sampled_from([None, "+447700900001", "+447700900002", "10.0.0.1", "10.0.0.2", "a"])


@given(
    codes=st.lists(st.tuples(_sources, _sources), max_size=40),
    refusals=st.lists(st.tuples(_sources, _sources), max_size=40),
    limit=st.integers(min_value=1, max_value=4),
)
def test_sources_count_every_sampled_row(codes, refusals, limit):
    """Counted from the rows as read (tuples, as the database gives them): ties ranked by
    value, a missing source in no row."""
    Source = namedtuple("Source", ["phone", "client_ip"])
    latest = abuse.Latest([Source(*row) for row in codes], [Source(*row) for row in refusals])
    for field in ("phone", "client_ip"):
        top = abuse.top_numbers if field == "phone" else abuse.top_addresses
        assert [(row.key, row.sent, row.refused) for row in top(latest, limit)] == (
            _reference_top(latest, field, limit)
        )
