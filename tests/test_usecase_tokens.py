"""API tokens and the account's own settings, called directly: issuing (shown once, stored
hashed, alerted), using, listing and revoking tokens; alert preferences and the security page."""

import hashlib
import json
from datetime import timedelta

from sqlalchemy import select

from shop.accounts.client import Client
from shop.accounts.preferences import RECENT_EVENTS, security_overview, set_alerts
from shop.accounts.signin import finish_sign_in
from shop.accounts.tokens import (
    issue_token,
    live_tokens,
    revoke_all,
    revoke_token,
    user_for_token,
)
from shop.audit import Event, record
from shop.extensions import db
from shop.models import ApiToken, KnownDevice, SmsKind
from shop.orders import ShippingAddress
from tests.factories import (
    audit_rows,
    fill_cart,
    last_sms_to,
    make_product,
    make_user,
    place_allowed,
    sms_count,
    sms_text,
)

CLIENT = Client("203.0.113.5", "device-1")
ADDRESS = ShippingAddress("Ada Lovelace", "12 St James's Square", "London", "SW1Y 4JH", "GB")


def token_row(raw: str) -> ApiToken:
    db.session.expire_all()
    return db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hashlib.sha256(raw.encode()).hexdigest())
    )


# issue_token, user_for_token -----------------------------------------------------------------


def test_a_token_is_shown_once_stored_hashed_alerted_and_audited(app, frozen_clock):
    user = make_user()
    raw = issue_token(user, "Stock script", CLIENT)
    assert raw.startswith("shop_") and len(raw) > 40
    row = token_row(raw)
    assert row.user_id == user.id and row.name == "Stock script"
    assert row.client_ip == "203.0.113.5" and row.created_at == frozen_clock.now
    assert row.token_hash != raw and raw not in row.token_hash
    assert row.revoked_at is None and row.last_used_at is None
    sms = last_sms_to(user.phone)
    assert sms.kind == SmsKind.ALERT_NEW_DEVICE
    # The name is the caller's text: the SMS does not carry it.
    assert "new sign-in on an API client, IP 203.0.113.5" in sms_text(sms)
    assert "Stock script" not in sms_text(sms)
    (event,) = audit_rows(user, "token_issued")
    assert json.loads(event.detail) == {"name": "Stock script"} and event.ip == "203.0.113.5"
    assert raw not in event.detail


def test_two_tokens_are_different_secrets(app):
    user = make_user()
    assert issue_token(user, "A", CLIENT) != issue_token(user, "A", CLIENT)


def test_a_long_name_is_cut_short(app):
    raw = issue_token(make_user(), "x" * 200, CLIENT)
    assert token_row(raw).name == "x" * 80


def test_a_live_token_names_its_account_and_records_its_use_every_few_minutes(app, frozen_clock):
    user = make_user()
    raw = issue_token(user, "CLI", CLIENT)
    assert user_for_token(raw).id == user.id
    assert token_row(raw).last_used_at == frozen_clock.now
    first_use = frozen_clock.now
    frozen_clock.advance(minutes=5)
    assert user_for_token(raw).id == user.id
    assert token_row(raw).last_used_at == first_use  # not written again so soon
    frozen_clock.advance(seconds=1)
    user_for_token(raw)
    assert token_row(raw).last_used_at == first_use + timedelta(minutes=5, seconds=1)


def test_anything_but_a_live_token_names_no_account(app):
    user = make_user()
    raw = issue_token(user, "CLI", CLIENT)
    assert user_for_token("") is None
    assert user_for_token(raw[len("shop_") :]) is None  # without its prefix
    assert user_for_token(raw + "x") is None
    assert user_for_token("shop_" + "a" * 200) is None
    assert user_for_token(token_row(raw).token_hash) is None  # the stored hash is no key
    revoke_token(user, token_row(raw).id, CLIENT)
    assert user_for_token(raw) is None


# revoke_token, revoke_all, live_tokens -------------------------------------------------------


def test_revoking_a_token_works_once_and_is_audited(app, frozen_clock):
    user = make_user()
    raw = issue_token(user, "CLI", CLIENT)
    token_id = token_row(raw).id
    assert revoke_token(user, token_id, Client("198.51.100.9")) is True
    assert token_row(raw).revoked_at == frozen_clock.now
    assert revoke_token(user, token_id, CLIENT) is False
    (event,) = audit_rows(user, "token_revoked")
    assert event.ip == "198.51.100.9" and json.loads(event.detail) == {"token": token_id}


def test_someone_elses_token_cannot_be_revoked(app):
    owner, stranger = make_user(), make_user()
    raw = issue_token(owner, "CLI", CLIENT)
    assert revoke_token(stranger, token_row(raw).id, CLIENT) is False
    assert revoke_token(stranger, 10**9, CLIENT) is False
    assert user_for_token(raw).id == owner.id
    assert audit_rows(stranger, "token_revoked") == []


def test_revoke_all_counts_the_live_tokens_it_ends(app, frozen_clock):
    user, other = make_user(), make_user()
    raws = [issue_token(user, name, CLIENT) for name in ("A", "B", "C")]
    revoke_token(user, token_row(raws[0]).id, CLIENT)
    theirs = issue_token(other, "Theirs", CLIENT)
    assert revoke_all(user) == 2
    db.session.commit()  # the caller's transaction
    assert [user_for_token(raw) for raw in raws] == [None, None, None]
    assert user_for_token(theirs).id == other.id
    assert revoke_all(user) == 0


def test_live_tokens_lists_the_accounts_unrevoked_tokens_newest_first(app):
    user = make_user()
    first, second, third = (issue_token(user, name, CLIENT) for name in ("One", "Two", "Three"))
    issue_token(make_user(), "Someone else's", CLIENT)
    revoke_token(user, token_row(second).id, CLIENT)
    assert [token.name for token in live_tokens(user)] == ["Three", "One"]
    assert [token.id for token in live_tokens(user)] == [token_row(third).id, token_row(first).id]


# set_alerts, security_overview ---------------------------------------------------------------


def test_turning_optional_alerts_off_is_audited_and_silences_them(app, frozen_clock):
    user = make_user()
    db.session.add(KnownDevice(user_id=user.id, device_id="old-phone", browser="Safari on iOS"))
    db.session.commit()
    set_alerts(user, new_device=False, order_placed=False, client=CLIENT)
    db.session.refresh(user)
    assert (user.alert_new_device, user.alert_order_placed) == (False, False)
    (event,) = audit_rows(user, "alerts_changed")
    assert json.loads(event.detail) == {
        "old": {"new_device": True, "order": True},
        "new": {"new_device": False, "order": False},
    }
    assert finish_sign_in(user, CLIENT, {}) is True  # a new device, but no alert
    fill_cart(user, (make_product(price_minor=999, stock=5), 1))
    place_allowed(user, ADDRESS, "quiet-key-0000000000")
    assert sms_count(SmsKind.ALERT_NEW_DEVICE) == sms_count(SmsKind.ALERT_ORDER_PLACED) == 0


def test_alerts_can_be_turned_on_one_at_a_time(app, frozen_clock):
    user = make_user()
    set_alerts(user, new_device=False, order_placed=False, client=CLIENT)
    set_alerts(user, new_device=False, order_placed=True, client=CLIENT)
    db.session.refresh(user)
    assert (user.alert_new_device, user.alert_order_placed) == (False, True)
    fill_cart(user, (make_product(price_minor=999, stock=5), 1))
    place_allowed(user, ADDRESS, "loud-key-00000000000")
    assert last_sms_to(user.phone).kind == SmsKind.ALERT_ORDER_PLACED
    assert len(audit_rows(user, "alerts_changed")) == 2


def test_the_security_overview_shows_devices_tokens_and_recent_events(app, frozen_clock):
    user, other = make_user(), make_user()
    finish_sign_in(user, Client("203.0.113.5", "laptop"), {})
    frozen_clock.advance(minutes=1)
    finish_sign_in(user, Client("203.0.113.5", "phone"), {})
    finish_sign_in(other, Client("203.0.113.5", "theirs"), {})
    kept = issue_token(user, "Kept", CLIENT)
    revoke_token(user, token_row(issue_token(user, "Gone", CLIENT)).id, CLIENT)
    for _ in range(RECENT_EVENTS):
        record(Event.SIGN_OUT, user_id=user.id, ip="203.0.113.5")
    record(Event.SIGN_IN_FAILED, user_id=user.id, ip="203.0.113.5")
    db.session.commit()

    overview = security_overview(user)
    assert [device.device_id for device in overview["devices"]] == ["phone", "laptop"]
    assert [token.id for token in overview["tokens"]] == [token_row(kept).id]
    events = overview["events"]
    assert len(events) == RECENT_EVENTS
    assert events[0].event == "sign_in_failed"
    assert all(event.user_id == user.id for event in events)
    assert [event.id for event in events] == sorted((event.id for event in events), reverse=True)
