"""Vonage webhooks: signed delivery receipts and inbound STOP/START, signed with the real SDK."""

import json
from datetime import datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import select
from vonage_http_client.auth import Auth

from shop import clock
from shop.extensions import db
from shop.models import AuditEvent, SmsKind, SmsMessage, SmsStatus
from shop.sms.receipts import opt_out_command
from tests.factories import make_user

SECRET = "test-signature-secret-0123456789"
API_KEY = "abcd1234"
RECEIPTS = "/webhooks/vonage/delivery-receipt"
INBOUND = "/webhooks/vonage/inbound"


@pytest.fixture(autouse=True)
def signature_secret(app):
    app.config["VONAGE_SIGNATURE_SECRET"] = SECRET
    app.config["VONAGE_API_KEY"] = API_KEY


def signed(params: dict, *, secret: str = SECRET, at: datetime | None = None) -> dict:
    """`params` as Vonage would send them: with api-key, timestamp, nonce and sig."""
    params = {
        "api-key": API_KEY,
        "timestamp": str(int((at or clock.now()).timestamp())),
        "nonce": "6b3c8a1e-0c4f-4e57-9f0e-3d1f2a7b9c10",
        **params,
    }
    signer = Auth(api_key=API_KEY, signature_secret=secret, signature_method="sha256")
    return params | {"sig": signer.sign_params(dict(params))}


def make_sms(**fields) -> SmsMessage:
    values = {
        "to_number": "+447700900123",
        "kind": SmsKind.ALERT_ORDER_PLACED,
        "body": "Shop: order SH-ABCD2345 for €300.00 was placed on your account.",
        "status": SmsStatus.SENT,
        "attempts": 1,
        "provider_message_id": "0A0000001234ABCD",
        "sent_at": clock.now(),
    } | fields
    message = SmsMessage(**values)
    db.session.add(message)
    db.session.commit()
    return message


def receipt_for(message: SmsMessage, status: str = "delivered", **extra: str) -> dict:
    return {
        "msisdn": message.to_number.removeprefix("+"),
        "to": "Shop",
        "network-code": "23410",
        "messageId": message.provider_message_id or "",
        "price": "0.03330000",
        "status": status,
        "scts": "2611021200",
        "err-code": "0",
        "message-timestamp": "2026-11-02 12:00:00",
        "client-ref": f"sms-{message.id}",
        **extra,
    }


def post(client, url: str, params: dict, how: str = "form"):
    if how == "json":
        return client.post(url, json=params)
    if how == "query":
        return client.post(url, query_string=params)
    return client.post(url, data=params)


def state(message: SmsMessage) -> tuple:
    db.session.refresh(message)
    return (
        message.status,
        message.body,
        message.receipt_status,
        message.receipt_error_code,
        message.receipt_at,
        message.updated_at,
    )


@pytest.mark.parametrize("how", ["form", "json", "query"])
def test_a_signed_receipt_marks_the_message_delivered(client, how):
    message = make_sms()
    response = post(client, RECEIPTS, signed(receipt_for(message)), how)
    assert response.status_code == 200
    assert response.get_data() == b""
    db.session.refresh(message)
    assert message.status == SmsStatus.DELIVERED
    assert message.receipt_status == "delivered"
    assert message.receipt_error_code == "0"
    assert abs(message.receipt_at - clock.now()) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("receipt_status", "expected"),
    [
        ("delivered", SmsStatus.DELIVERED),
        ("expired", SmsStatus.EXPIRED),
        ("failed", SmsStatus.FAILED),
        ("rejected", SmsStatus.REJECTED),
        ("accepted", SmsStatus.SENT),
        ("buffered", SmsStatus.SENT),
        ("unknown", SmsStatus.SENT),
    ],
)
def test_receipt_statuses(client, receipt_status, expected):
    message = make_sms()
    params = signed(receipt_for(message, receipt_status, **{"err-code": "6"}))
    assert client.post(RECEIPTS, data=params).status_code == 200
    db.session.refresh(message)
    assert message.status == expected
    assert (message.receipt_status, message.receipt_error_code) == (receipt_status, "6")


def test_numbers_in_a_json_receipt_keep_their_signed_text(client):
    message = make_sms()
    params = signed(receipt_for(message, "failed", **{"err-code": "4"}))
    body = json.dumps(params).replace('"err-code": "4"', '"err-code": 4')
    response = client.post(RECEIPTS, data=body, content_type="application/json")
    assert response.status_code == 200
    assert state(message)[:4] == (SmsStatus.FAILED, message.body, "failed", "4")


def test_a_tampered_receipt_is_refused_and_changes_nothing(client):
    message = make_sms()
    before = state(message)
    params = signed(receipt_for(message, "failed")) | {"status": "delivered"}
    response = client.post(RECEIPTS, data=params)
    assert response.status_code == 401
    assert response.mimetype == "text/plain"
    assert state(message) == before


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(lambda m: {**signed(receipt_for(m)), "sig": ""}, id="empty sig"),
        pytest.param(
            lambda m: {k: v for k, v in signed(receipt_for(m)).items() if k != "sig"},
            id="missing sig",
        ),
        pytest.param(lambda m: signed(receipt_for(m), secret="some-other-secret"), id="wrong key"),
        pytest.param(
            lambda m: {k: v for k, v in signed(receipt_for(m)).items() if k != "timestamp"},
            id="missing timestamp",
        ),
        pytest.param(lambda m: {**signed(receipt_for(m)), "extra": "1"}, id="added field"),
        pytest.param(lambda m: {**signed(receipt_for(m)), "sig": "é" * 64}, id="non-hex sig"),
    ],
)
def test_unsigned_or_badly_signed_receipts_are_refused(client, params):
    message = make_sms()
    before = state(message)
    assert client.post(RECEIPTS, data=params(message)).status_code == 401
    assert state(message) == before


def test_without_a_configured_secret_every_receipt_is_refused(app, client):
    message = make_sms()
    params = signed(receipt_for(message))
    app.config["VONAGE_SIGNATURE_SECRET"] = ""
    before = state(message)
    assert client.post(RECEIPTS, data=params).status_code == 401
    assert state(message) == before


def test_the_same_receipt_twice_changes_nothing_the_second_time(client):
    message = make_sms()
    params = signed(receipt_for(message))
    assert client.post(RECEIPTS, data=params).status_code == 200
    after_first = state(message)
    assert client.post(RECEIPTS, data=params).status_code == 200
    assert state(message) == after_first
    assert after_first[0] == SmsStatus.DELIVERED


@pytest.mark.parametrize(
    "skew",
    [timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1), timedelta(hours=2)],
    ids=["5-minutes-old", "5-minutes-ahead", "2-hours-ahead"],
)
def test_a_receipt_signed_more_than_5_minutes_either_way_is_refused(client, frozen_clock, skew):
    message = make_sms()
    before = state(message)
    stale = signed(receipt_for(message), at=clock.now() + skew)
    assert client.post(RECEIPTS, data=stale).status_code == 401
    assert state(message) == before


@pytest.mark.parametrize("skew", [timedelta(minutes=-5), timedelta(minutes=5)])
def test_a_receipt_signed_within_5_minutes_either_way_is_taken(client, frozen_clock, skew):
    message = make_sms()
    recent = signed(receipt_for(message), at=clock.now() + skew)
    assert client.post(RECEIPTS, data=recent).status_code == 200
    assert state(message)[0] == SmsStatus.DELIVERED


def test_a_late_interim_receipt_never_undoes_delivered(client):
    message = make_sms()
    assert client.post(RECEIPTS, data=signed(receipt_for(message))).status_code == 200
    delivered = state(message)
    for late in ("accepted", "buffered", "unknown"):
        params = signed(receipt_for(message, late, **{"err-code": "1"}))
        assert client.post(RECEIPTS, data=params).status_code == 200
    assert state(message) == delivered
    assert delivered[:3] == (SmsStatus.DELIVERED, message.body, "delivered")


def test_an_interim_receipt_then_the_final_one(client):
    message = make_sms()
    assert client.post(RECEIPTS, data=signed(receipt_for(message, "buffered"))).status_code == 200
    status, _, receipt_status, *_ = state(message)
    assert (status, receipt_status) == (SmsStatus.SENT, "buffered")
    assert client.post(RECEIPTS, data=signed(receipt_for(message, "expired"))).status_code == 200
    status, _, receipt_status, *_ = state(message)
    assert (status, receipt_status) == (SmsStatus.EXPIRED, "expired")


def test_a_receipt_for_an_unknown_message_is_acknowledged_and_ignored(client):
    message = make_sms()
    before = state(message)
    params = receipt_for(message) | {"messageId": "0B00000099999999", "client-ref": "sms-99999"}
    assert client.post(RECEIPTS, data=signed(params)).status_code == 200
    params = receipt_for(message) | {"messageId": "0B00000099999999", "client-ref": "not-ours"}
    assert client.post(RECEIPTS, data=signed(params)).status_code == 200
    assert state(message) == before


def test_a_later_part_of_a_long_text_is_found_by_its_client_ref(client):
    message = make_sms()
    params = receipt_for(message) | {"messageId": "0A0000001234ABCE"}
    assert client.post(RECEIPTS, data=signed(params)).status_code == 200
    assert state(message)[0] == SmsStatus.DELIVERED


def test_a_receipt_naming_another_number_does_not_touch_the_message(client):
    message = make_sms()
    before = state(message)
    params = receipt_for(message) | {"msisdn": "447700900999"}
    assert client.post(RECEIPTS, data=signed(params)).status_code == 200
    assert state(message) == before


def test_a_final_receipt_redacts_a_code_the_process_never_saw_accepted(client):
    # The provider took it but the answer was lost: the row waits for a retry.
    message = make_sms(
        kind=SmsKind.OTP_ORDER,
        body="Shop: 123456 is your code to confirm order SH-ABCD2345 for €300.00.",
        redacted_body="Shop: •••••• is your code to confirm order SH-ABCD2345 for €300.00.",
        status=SmsStatus.QUEUED,
        sent_at=None,
    )
    assert client.post(RECEIPTS, data=signed(receipt_for(message))).status_code == 200
    status, body, *_ = state(message)
    assert status == SmsStatus.DELIVERED
    assert "123456" not in body


def test_a_receipt_for_a_message_being_sent_leaves_its_status_to_the_sender(client):
    message = make_sms(status=SmsStatus.SENDING, claimed_by="worker-1:abc")
    assert client.post(RECEIPTS, data=signed(receipt_for(message))).status_code == 200
    status, _, receipt_status, *_ = state(message)
    assert (status, receipt_status) == (SmsStatus.SENDING, "delivered")


def test_settled_messages_keep_their_status(client):
    message = make_sms(status=SmsStatus.FAILED, last_error="gave up")
    assert client.post(RECEIPTS, data=signed(receipt_for(message))).status_code == 200
    status, _, receipt_status, *_ = state(message)
    assert (status, receipt_status) == (SmsStatus.FAILED, "delivered")


def test_garbage_gets_a_4xx_never_a_500(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    message = make_sms()
    before = state(message)
    good = receipt_for(message)
    deep = "[" * 30_000 + "]" * 30_000
    attempts = [
        {"data": b"\x00\xff\xfe garbage", "content_type": "application/octet-stream"},
        {"data": b"\x00\xff\xfe garbage", "content_type": "application/x-www-form-urlencoded"},
        {"data": b"{not json", "content_type": "application/json"},
        {"data": b"[1, 2, 3]", "content_type": "application/json"},
        {"data": b'"a string"', "content_type": "application/json"},
        {"data": deep, "content_type": "application/json"},
        {"data": b'{"status": NaN}', "content_type": "application/json"},
        {"data": b'{"status": "\\ud800"}', "content_type": "application/json"},
        {"data": b'{"a": "1", "a": "2"}', "content_type": "application/json"},
        {"json": {"messageId": {"nested": True}}},
        {"json": signed(good) | {"status": ["delivered"]}},
        {
            "data": "status=delivered&status=failed",
            "content_type": "application/x-www-form-urlencoded",
        },
        {"data": {"messageId": "x" * 60_000}},
        {"data": b"x" * 200_000, "content_type": "application/x-www-form-urlencoded"},
        {"query_string": "sig=" + "a" * 100_000},
        {"data": signed(good | {"status": "exploded"})},
        {"data": signed({k: v for k, v in good.items() if k != "status"})},
        {"data": signed(good | {"err-code": "not a number"})},
        {"data": signed(good | {"err-code": "1" * 50})},
        {"data": signed(good | {"messageId": "x" * 10_000})},
        {"data": signed(good | {"msisdn": "+44 7700 900123"})},
        {"data": signed(good | {"timestamp": "9" * 40})},
        {"data": signed(good | {"timestamp": "9" * 12})},  # after the year 9999
        {"data": signed(good | {"timestamp": "-5"})},
        {"data": signed(good), "query_string": {"status": "failed"}},
    ]
    for attempt in attempts:
        response = client.post(RECEIPTS, **attempt)
        assert 400 <= response.status_code < 500, (attempt, response.status_code)
    assert client.get(RECEIPTS).status_code == 405
    assert state(message) == before


def test_a_client_ref_too_big_for_an_id_is_simply_not_ours(client):
    message = make_sms()
    params = receipt_for(message) | {"messageId": "", "client-ref": "sms-" + "9" * 30}
    assert client.post(RECEIPTS, data=signed(params)).status_code == 200
    assert state(message)[0] == SmsStatus.SENT


_message_ids = count(0xABCD)


def inbound(user_phone: str, text: str, **extra: str) -> dict:
    """An inbound SMS as Vonage posts it, each with a message id of its own."""
    return {
        "msisdn": user_phone.removeprefix("+"),
        "to": "447700900000",
        "messageId": f"0C00000000{next(_message_ids):06X}",
        "text": text,
        "type": "text",
        "message-timestamp": "2026-11-02 12:00:00",
        **extra,
    }


def audit_events(event: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == event)))


def test_stop_then_start_toggles_alerts_for_that_number_only(client):
    texter = make_user(phone="+447700900321")
    same_number = make_user(phone="+447700900321")
    someone_else = make_user(phone="+447700900322")

    assert client.post(INBOUND, data=signed(inbound(texter.phone, "STOP"))).status_code == 200
    for user in (texter, same_number, someone_else):
        db.session.refresh(user)
    assert texter.sms_stopped and same_number.sms_stopped
    assert not someone_else.sms_stopped
    assert {event.user_id for event in audit_events("sms_stop")} == {texter.id, same_number.id}

    assert client.post(INBOUND, data=signed(inbound(texter.phone, "Start"))).status_code == 200
    db.session.refresh(texter)
    assert not texter.sms_stopped
    assert {event.user_id for event in audit_events("sms_start")} == {texter.id, same_number.id}


def test_stop_is_idempotent(client):
    user = make_user(phone="+447700900331")
    params = signed(inbound(user.phone, "STOP"))
    assert client.post(INBOUND, data=params).status_code == 200
    assert client.post(INBOUND, data=params).status_code == 200
    assert client.post(INBOUND, data=signed(inbound(user.phone, "stop"))).status_code == 200
    db.session.refresh(user)
    assert user.sms_stopped
    assert len(audit_events("sms_stop")) == 1


@pytest.mark.parametrize("how", ["form", "json", "query"])
def test_lower_case_stop_with_spaces_works(client, how):
    user = make_user(phone="+447700900341")
    assert post(client, INBOUND, signed(inbound(user.phone, " stop ")), how).status_code == 200
    db.session.refresh(user)
    assert user.sms_stopped


def test_vonages_keyword_is_used_when_given(client):
    user = make_user(phone="+447700900351")
    params = inbound(user.phone, "Unsubscribe me please", keyword="UNSUBSCRIBE")
    assert client.post(INBOUND, data=signed(params)).status_code == 200
    db.session.refresh(user)
    assert user.sms_stopped


def test_other_texts_are_acknowledged_and_ignored(client):
    user = make_user(phone="+447700900361")
    for text in ("Hello", "Don't stop", "stopped", "", "🙂"):
        assert client.post(INBOUND, data=signed(inbound(user.phone, text))).status_code == 200
    db.session.refresh(user)
    assert not user.sms_stopped
    assert audit_events("sms_stop") == []


def test_unsigned_inbound_is_refused(client):
    user = make_user(phone="+447700900371")
    params = signed(inbound(user.phone, "START")) | {"text": "STOP"}
    assert client.post(INBOUND, data=params).status_code == 401
    assert client.post(INBOUND, data=inbound(user.phone, "STOP")).status_code == 401
    db.session.refresh(user)
    assert not user.sms_stopped


def test_a_replayed_stop_after_a_start_changes_nothing(client):
    user = make_user(phone="+447700900391")
    stop = signed(inbound(user.phone, "STOP"))
    assert client.post(INBOUND, data=stop).status_code == 200
    assert client.post(INBOUND, data=signed(inbound(user.phone, "START"))).status_code == 200
    assert client.post(INBOUND, data=stop).status_code == 200  # the same signed request again
    db.session.refresh(user)
    assert not user.sms_stopped
    assert len(audit_events("sms_stop")) == 1


def test_inbound_without_a_message_id_is_malformed(client):
    user = make_user(phone="+447700900392")
    params = {k: v for k, v in inbound(user.phone, "STOP").items() if k != "messageId"}
    assert client.post(INBOUND, data=signed(params)).status_code == 400
    db.session.refresh(user)
    assert not user.sms_stopped


def test_inbound_without_a_sender_is_malformed(client):
    params = {k: v for k, v in inbound("+447700900381", "STOP").items() if k != "msisdn"}
    assert client.post(INBOUND, data=signed(params)).status_code == 400


@pytest.mark.parametrize(
    ("keyword", "text", "expected"),
    [
        ("", "STOP", True),
        ("", "  stopall  ", True),
        ("", "Cancel.", True),
        ("", "end", True),
        ("", "quit please", True),
        ("", "unsubscribe", True),
        ("", "START", False),
        ("", "unstop", False),
        ("", "Subscribe", False),
        ("STOP", "whatever", True),
        ("", "stopped", None),
        ("", "please stop", None),
        ("", "", None),
    ],
)
def test_opt_out_commands(keyword, text, expected):
    assert opt_out_command(keyword, text) is expected
