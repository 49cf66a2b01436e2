"""The Vonage sender, driving the real SDK over TLS against a local stand-in (tests/fake_vonage)."""

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from vonage import Auth, HttpClientOptions, Vonage
from vonage_sms import SmsMessage as VonageSms
from werkzeug import Response

from shop import clock
from shop.config import Config
from shop.models.sms import SmsKind, SmsMessage
from shop.sms.backends import make_sender
from shop.sms.senders import Accepted, SendFailure
from shop.sms.vonage import (
    GSM_BASIC_CHARSET,
    GSM_EXTENSION_CHARSET,
    TTL_MAX_MS,
    TTL_MIN_MS,
    VonageSender,
    needs_unicode,
)
from tests.fake_vonage import (  # noqa: F401 (fixtures)
    closed_port,
    fake_vonage_fixture,
    httpserver_ssl_context,
    vonage_ca,
    vonage_ca_bundle,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
CODE_TEXT = "Your Shop code is 482913. It expires in 5 minutes."


@pytest.fixture
def senders():
    """Makes senders from a config, and closes them after the test."""
    made: list[VonageSender] = []

    def make(config) -> VonageSender:
        sender = VonageSender.from_config(config)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close()


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    return NOW


def alert(body: str = "New sign-in to your Shop account.", id: int = 42) -> SmsMessage:
    return SmsMessage(id=id, to_number="+447700900123", kind=SmsKind.ALERT_NEW_DEVICE, body=body)


def code_message(expires_at: datetime, body: str = CODE_TEXT, id: int = 7) -> SmsMessage:
    return SmsMessage(
        id=id,
        to_number="+447700900456",
        kind=SmsKind.OTP_LOGIN,
        body=body,
        expires_at=expires_at,
    )


def send_failure(sender: VonageSender, message: SmsMessage) -> SendFailure:
    with pytest.raises(SendFailure) as caught:
        sender.send(message)
    return caught.value


# --- success and the request on the wire ----------------------------------------------------


def test_accepted_with_api_secret(fake_vonage, senders):
    fake_vonage.accept(message_id="0A0000000123ABCD", price="0.03330000")
    sender = senders(fake_vonage.config)

    result = sender.send(alert())

    assert result == Accepted(provider_message_id="0A0000000123ABCD", price="0.03330000")
    assert len(fake_vonage.requests) == 1
    form = fake_vonage.requests[0]
    assert form == {
        "to": "447700900123",
        "from": "Shop",
        "text": "New sign-in to your Shop account.",
        "client-ref": "sms-42",
    }
    # Without a signature secret the SDK authenticates with HTTP Basic: key and secret
    # travel in the Authorization header, not in the form.
    assert fake_vonage.basic_auth(fake_vonage.headers[0]) == ("test-key", "test-secret")


def test_accepted_with_signature_secret(fake_vonage, senders, frozen_now):
    fake_vonage.use_signature("sig-secret-0123456789")
    sender = senders(fake_vonage.config)
    # A code in Cyrillic: signed fields include the integer ttl and the unicode type.
    message = code_message(NOW + timedelta(minutes=5), body="Ваш код: 482913 & не = делитесь")

    result = sender.send(message)

    assert result.provider_message_id
    form = fake_vonage.requests[0]
    assert form["api_key"] == "test-key"
    assert "api_secret" not in form
    assert "Authorization" not in fake_vonage.headers[0]
    assert form["to"] == "447700900456"
    assert form["from"] == "Shop"
    assert form["text"] == "Ваш код: 482913 & не = делитесь"
    assert form["client-ref"] == "sms-7"
    assert form["type"] == "unicode"
    assert form["ttl"] == "300000"
    assert form["timestamp"]
    assert fake_vonage.check_signature(form)
    assert not fake_vonage.check_signature({**form, "text": "Ваш код: 000000"})
    assert not fake_vonage.check_signature({**form, "sig": "0" * 64})


def test_sdk_alone_would_send_a_bad_signature(fake_vonage):
    """Why the sender dumps messages without None fields: the SDK signs them, requests drops
    them, and the signature no longer matches what arrives."""
    fake_vonage.use_signature("sig-secret-0123456789")
    auth = Auth(
        api_key="test-key", signature_secret="sig-secret-0123456789", signature_method="sha256"
    )
    options = HttpClientOptions(
        rest_host=fake_vonage.host, timeout=5, max_retries=0, pool_maxsize=1
    )
    client = Vonage(auth, options)
    try:
        client.sms.send(VonageSms(to="447700900123", from_="Shop", text="hello"))
    finally:
        client.http_client._session.close()
    assert not fake_vonage.check_signature(fake_vonage.requests[0])


def test_long_message_in_parts(fake_vonage, senders):
    fake_vonage.accept_parts(3, price="0.03330000")
    result = senders(fake_vonage.config).send(alert("x" * 400))
    assert result.provider_message_id
    assert result.price == "0.09990000"
    assert len(fake_vonage.requests) == 1


# --- ttl and encoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "ttl"),
    [
        (timedelta(minutes=5), 300_000),
        (timedelta(seconds=20), 20_000),
        (timedelta(seconds=5), TTL_MIN_MS),  # too little left: still sent, with the minimum
        (timedelta(seconds=-30), TTL_MIN_MS),
        (timedelta(days=30), TTL_MAX_MS),
    ],
)
def test_ttl_is_the_time_left_on_the_code(frozen_now, left, ttl):
    sender = VonageSender(api_key="k", api_secret="s", sender_id="Shop", timeout=5)
    try:
        assert sender.ttl_ms(code_message(NOW + left)) == ttl
    finally:
        sender.close()


def test_code_message_sends_ttl(fake_vonage, senders, frozen_now):
    senders(fake_vonage.config).send(code_message(NOW + timedelta(seconds=90)))
    form = fake_vonage.requests[0]
    assert form["ttl"] == "90000"
    assert form["text"] == CODE_TEXT
    assert "type" not in form


def test_alert_has_no_ttl(fake_vonage, senders):
    senders(fake_vonage.config).send(alert())
    assert "ttl" not in fake_vonage.requests[0]


def test_gsm_charset_tables():
    assert len(GSM_BASIC_CHARSET) == 127  # 128 codes less the escape to the extension table
    assert len(GSM_EXTENSION_CHARSET) == 10
    assert not needs_unicode("Order A-1042: €12.50 [paid] {ok} ~^|\\ £ ¥ § @ Ç\nÉtat: réglé")
    assert needs_unicode("Ça coûte")  # û is not in GSM 03.38
    assert needs_unicode("2 × Mug")
    assert needs_unicode("Thanks 🙂")
    assert needs_unicode("Ваш код")


def test_unicode_type_only_when_needed(fake_vonage, senders):
    sender = senders(fake_vonage.config)
    sender.send(alert("Paid: €12.50 {ref [A-1]}"))
    sender.send(alert("Bestellung: 2 × Becher"))
    assert "type" not in fake_vonage.requests[0]
    assert fake_vonage.requests[1]["type"] == "unicode"
    assert fake_vonage.requests[1]["text"] == "Bestellung: 2 × Becher"


# --- provider statuses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_text"),
    [(1, "Throughput Rate Exceeded - please wait [ 10 ] and retry"), (5, "Internal Error")],
)
def test_throttled_and_internal_error_are_retriable(fake_vonage, senders, status, error_text):
    fake_vonage.reject(status, error_text)
    failure = send_failure(senders(fake_vonage.config), alert())
    assert failure.retriable is True
    assert failure.code == str(status)
    assert error_text in failure.reason


@pytest.mark.parametrize(
    ("status", "error_text"),
    [
        (2, "Missing to param"),
        (3, "Invalid to param"),
        (4, "Bad Credentials"),
        (6, "Invalid Message"),
        (7, "Number barred."),
        (9, "Partner quota violation"),
        (15, "Illegal Sender Address - rejected"),
    ],
)
def test_other_statuses_are_not_retriable(fake_vonage, senders, status, error_text):
    fake_vonage.reject(status, error_text)
    failure = send_failure(senders(fake_vonage.config), alert())
    assert failure.retriable is False
    assert failure.code == str(status)
    assert error_text in failure.reason
    assert len(fake_vonage.requests) == 1


@pytest.mark.parametrize(("status", "retriable"), [(1, True), (9, False)])
def test_partial_failure_reads_the_failed_part(fake_vonage, senders, status, retriable):
    fake_vonage.partial_failure(status, "Part refused")
    failure = send_failure(senders(fake_vonage.config), alert("y" * 300))
    assert failure.retriable is retriable
    assert failure.code == str(status)
    assert "Part refused" in failure.reason
    assert "1 of 2 parts" in failure.reason


# --- HTTP and network failures ------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_rate_limits_are_retriable(fake_vonage, senders, status):
    fake_vonage.http_error(status, "try later")
    failure = send_failure(senders(fake_vonage.config), alert())
    assert failure.retriable is True
    assert failure.code == str(status)
    assert str(status) in failure.reason
    assert len(fake_vonage.requests) == 1  # no hidden retry


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_other_http_errors_are_not_retriable(fake_vonage, senders, status):
    fake_vonage.http_error(status, '{"error": "nope"}')
    failure = send_failure(senders(fake_vonage.config), alert())
    assert failure.retriable is False
    assert failure.code == str(status)
    assert len(fake_vonage.requests) == 1


def test_bad_credentials_say_so(fake_vonage, senders):
    fake_vonage.http_error(401)
    failure = send_failure(senders(fake_vonage.config), alert())
    assert failure.retriable is False
    assert "credentials" in failure.reason
    assert "401" in failure.reason


def test_connection_refused_is_retriable(fake_vonage, senders):
    config = {**fake_vonage.config, "VONAGE_REST_HOST": f"127.0.0.1:{closed_port()}"}
    failure = send_failure(senders(config), alert())
    assert failure.retriable is True
    assert "Could not reach Vonage" in failure.reason


def test_read_timeout_is_retriable_and_bounded(fake_vonage, senders):
    fake_vonage.slow(4)
    sender = senders({**fake_vonage.config, "VONAGE_TIMEOUT": 1})
    started = time.monotonic()
    failure = send_failure(sender, alert())
    elapsed = time.monotonic() - started
    assert failure.retriable is True
    assert "within 1 s" in failure.reason
    assert elapsed < 2
    assert len(fake_vonage.requests) == 1


def test_untrusted_certificate_is_refused(fake_vonage, senders, monkeypatch):
    """Verification is on: without the test CA the stand-in's certificate is refused."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
    failure = send_failure(senders(fake_vonage.config), alert())
    assert failure.retriable is True
    assert "SSLError" in failure.reason
    assert fake_vonage.requests == []


def test_disconnect_is_retriable_and_not_resent(fake_vonage, senders):
    fake_vonage.disconnect()
    failure = send_failure(senders(fake_vonage.config), alert())
    assert failure.retriable is True
    assert "RemoteDisconnected" in failure.reason
    assert len(fake_vonage.requests) == 1


def test_sdk_defaults_would_resend_after_disconnect(fake_vonage):
    """Control for the test above: with its default options the SDK silently re-sends the
    POST after RemoteDisconnected, although the server had received it."""
    fake_vonage.disconnect()
    fake_vonage.disconnect()
    auth = Auth(api_key="test-key", api_secret="test-secret")
    client = Vonage(auth, HttpClientOptions(rest_host=fake_vonage.host, timeout=5))
    try:
        response = client.sms.send(VonageSms(to="447700900123", from_="Shop", text="hello"))
    finally:
        client.http_client._session.close()
    assert response.messages[0].status == "0"
    assert len(fake_vonage.requests) == 3


def test_sdk_options_have_no_retries_and_a_timeout(fake_vonage, senders):
    options = senders(fake_vonage.config)._client.http_client.http_client_options
    assert options.max_retries == 0
    assert options.pool_maxsize == 1
    assert options.timeout == 5


# --- nothing but SendFailure escapes --------------------------------------------------------


def test_status_without_error_text_is_a_send_failure(fake_vonage, senders):
    # The SDK itself raises KeyError on such an answer.
    fake_vonage.respond_json({"message-count": "1", "messages": [{"status": "3"}]})
    failure = send_failure(senders(fake_vonage.config), alert())
    assert failure.retriable is False
    assert failure.reason == "Unexpected error while sending through Vonage: KeyError"


@pytest.mark.parametrize("body", ["not json", "", '{"message-count": "1", "messages": []}'])
def test_garbled_answer_is_a_send_failure(fake_vonage, senders, body):
    fake_vonage.respond(lambda request: Response(body, status=200))
    failure = send_failure(senders(fake_vonage.config), alert())
    assert failure.retriable is False


# --- logs -------------------------------------------------------------------------------------


def test_debug_logging_never_shows_the_text(fake_vonage, senders, caplog, frozen_now):
    caplog.set_level(logging.DEBUG)
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    sender = senders(fake_vonage.config)
    fake_vonage.accept()
    fake_vonage.reject(1, "Throughput Rate Exceeded")
    fake_vonage.http_error(503, "down")
    fake_vonage.disconnect()

    sender.send(code_message(NOW + timedelta(minutes=5)))
    for _ in range(3):
        send_failure(sender, code_message(NOW + timedelta(minutes=5)))

    assert len(fake_vonage.requests) == 4
    assert caplog.records, "the debug-level root logger captured nothing at all"
    for record in caplog.records:
        assert "482913" not in record.getMessage()
    assert "482913" not in caplog.text
    assert logging.getLogger("vonage").getEffectiveLevel() >= logging.INFO
    assert logging.getLogger("vonage_http_client").getEffectiveLevel() >= logging.INFO


# --- configuration ------------------------------------------------------------------------------


def test_registry_builds_a_vonage_sender(fake_vonage):
    sender = make_sender(fake_vonage.config)
    try:
        assert isinstance(sender, VonageSender)
        assert sender.timeout == 5
    finally:
        sender.close()


def test_config_timeout_is_an_int(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    monkeypatch.setenv("VONAGE_TIMEOUT", "7")
    assert Config().VONAGE_TIMEOUT == 7
    assert isinstance(Config().VONAGE_TIMEOUT, int)


@pytest.mark.parametrize(
    "missing",
    [
        {"VONAGE_API_KEY": ""},
        {"VONAGE_API_SECRET": "", "VONAGE_SIGNATURE_SECRET": ""},
        {"VONAGE_FROM": ""},
        {"VONAGE_TIMEOUT": 0},
    ],
)
def test_incomplete_config_fails_at_start(fake_vonage, missing):
    with pytest.raises(ValueError, match="VONAGE_"):
        VonageSender.from_config({**fake_vonage.config, **missing})
