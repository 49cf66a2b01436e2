"""Codes at rest (defect 3): a copy of the database files, WAL included, taken at any moment
after a code is queued holds no usable code, because code-bearing bodies are sealed with
AES-256-GCM under a key from the configuration, never from the database."""

from pathlib import Path

import pytest
from sqlalchemy import select, text

from shop import alerts, clock
from shop.alerts import NOT_ME_TOKEN
from shop.extensions import db
from shop.models import ConsoleMessage, SmsMessage, SmsStatus
from shop.sms.delivery import DeliveryWorker
from shop.sms.sealing import BodySeal, SealBroken, new_key
from shop.sms.senders import ConsoleSender, SendFailure
from shop.sms.vonage import VonageSender
from tests import postgres
from tests.factories import (
    ADDRESS,
    fill_cart,
    last_sms_to,
    make_product,
    make_user,
    sms_text,
)

PHONE = "+447700900123"


def database_files(app) -> bytes:
    """Every file of the SQLite database as it is on disk now: main file, WAL and shm."""
    main = Path(db.engine.url.database)
    files = [main, main.with_name(main.name + "-wal"), main.with_name(main.name + "-shm")]
    return b"".join(path.read_bytes() for path in files if path.exists())


def traces_of(code: str) -> list[bytes]:
    """How a code would show in a stored SMS text: '123456 is your code', '#123456'."""
    return [f"{code} is your code".encode(), f"#{code}".encode()]


@pytest.fixture
def order_code(app, client):
    """A shopper's order waiting for its code; returns (shopper, code) before any delivery."""
    shopper = make_user(phone=PHONE)
    client.sign_in_as(shopper)
    fill_cart(shopper, (make_product(price_minor=30_000, stock=5), 1))
    response = client.post_form("/checkout", {**ADDRESS, "idempotency_key": "at-rest-key-0000000"})
    assert response.headers["Location"].startswith("/checkout/verify/")
    sms = last_sms_to(PHONE)
    return sms, sms_text(sms)[6:12]


def test_a_queued_code_is_sealed_in_the_outbox_and_its_wal(app, order_code):
    sms, code = order_code
    assert sms.status == SmsStatus.QUEUED
    assert sms.body.startswith("sealed:v1:") and code not in sms.body
    assert (Path(db.engine.url.database).parent / "shop.sqlite3-wal").stat().st_size > 0
    files = database_files(app)
    for trace in traces_of(code):
        assert trace not in files


def test_the_demo_phones_copy_is_sealed_too_and_nothing_holds_the_code_after(app, order_code):
    sms, code = order_code
    DeliveryWorker(ConsoleSender()).run_once()
    received = db.session.scalar(select(ConsoleMessage))
    assert received.body.startswith("sealed:v1:")
    assert code in sms_text(received)  # the demo phone can still read it
    db.session.expire_all()
    assert db.session.get(SmsMessage, sms.id).body == sms.redacted_body  # handed over: masked
    files = database_files(app)
    for trace in traces_of(code):
        assert trace not in files


def test_the_demo_phone_shows_the_code_and_the_page_source_of_another_key_does_not(
    app, order_code, build_app
):
    _, code = order_code
    DeliveryWorker(ConsoleSender()).run_once()
    assert code in app.test_client().get("/dev/phone").get_data(as_text=True)
    # The same database files under a shop whose key differs: the sealed copy stays shut.
    stolen = build_app(
        SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"], SECRET_KEY="another key"
    )
    with stolen.app_context():
        page = stolen.test_client().get("/dev/phone").get_data(as_text=True)
        db.session.remove()
    assert code not in page
    assert "[a sealed message no configured key opens]" in page


# Keys and their rotation -------------------------------------------------------------------------


def test_a_sealed_body_opens_only_for_its_number_and_untampered():
    seal = BodySeal.from_config({"SMS_ENCRYPTION_KEYS": new_key()})
    sealed = seal.seal("Shop: 123456 is your code", to_number=PHONE)
    assert seal.open(sealed, to_number=PHONE) == "Shop: 123456 is your code"
    with pytest.raises(SealBroken):
        seal.open(sealed, to_number="+447700900999")
    flipped = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(SealBroken):
        seal.open(flipped, to_number=PHONE)
    assert seal.open("Shop: an alert, not sealed", to_number=PHONE) == "Shop: an alert, not sealed"


def test_rotation_a_new_key_first_still_opens_what_the_old_one_sealed():
    old, new = new_key(), new_key()
    sealed_before = BodySeal.from_config({"SMS_ENCRYPTION_KEYS": old}).seal("a", to_number=PHONE)
    rotated = BodySeal.from_config({"SMS_ENCRYPTION_KEYS": f"{new}, {old}"})
    assert rotated.open(sealed_before, to_number=PHONE) == "a"
    sealed_after = rotated.seal("b", to_number=PHONE)
    assert BodySeal.from_config({"SMS_ENCRYPTION_KEYS": new}).open(sealed_after, to_number=PHONE)
    retired = BodySeal.from_config({"SMS_ENCRYPTION_KEYS": new})
    with pytest.raises(SealBroken, match="not configured"):
        retired.open(sealed_before, to_number=PHONE)


def test_without_listed_keys_the_key_comes_from_the_secret_key_not_the_database():
    one = BodySeal.from_config({"SECRET_KEY": "first"})
    sealed = one.seal("x", to_number=PHONE)
    assert BodySeal.from_config({"SECRET_KEY": "first"}).open(sealed, to_number=PHONE) == "x"
    with pytest.raises(SealBroken):
        BodySeal.from_config({"SECRET_KEY": "second"}).open(sealed, to_number=PHONE)


@pytest.mark.parametrize("bad", ["not base64 !", "c2hvcnQ", new_key()[:20]])
def test_a_malformed_key_stops_the_shop_from_starting(build_app, bad):
    with pytest.raises(ValueError, match="SMS_ENCRYPTION_KEYS"):
        build_app(SMS_ENCRYPTION_KEYS=bad)


def test_a_message_sealed_under_a_retired_key_fails_for_good_and_is_never_sent_garbled(app):
    sealed = BodySeal.from_config({"SMS_ENCRYPTION_KEYS": new_key()}).seal("x", to_number=PHONE)
    sender = VonageSender(
        api_key="key", api_secret="secret", sender_id="Shop", seal=BodySeal.from_config({})
    )
    message = SmsMessage(id=1, to_number=PHONE, kind="otp_order", body=sealed)
    with pytest.raises(SendFailure) as failure:
        sender.send(message)
    assert failure.value.retriable is False
    assert "not configured" in failure.value.reason


# PostgreSQL: its WAL and the dead tuples an UPDATE leaves behind -------------------------------

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app


def server_files(datadir: Path) -> bytes:
    """Every file of the server: heap, indexes and WAL of every database."""
    return b"".join(path.read_bytes() for path in sorted(datadir.rglob("*")) if path.is_file())


def test_on_postgresql_neither_the_wal_nor_the_heap_holds_a_code(pg_app, postgres_server):
    shopper = make_user(phone=PHONE)
    client = pg_app.test_client()
    client.sign_in_as(shopper)
    fill_cart(shopper, (make_product(price_minor=30_000, stock=5), 1))
    client.post_form("/checkout", {**ADDRESS, "idempotency_key": "pg-at-rest-key-00001"})
    sms = last_sms_to(PHONE)
    code = sms_text(sms)[6:12]
    DeliveryWorker(ConsoleSender()).run_once()  # sent, redacted: old row versions stay behind
    db.session.execute(text("CHECKPOINT"))
    db.session.commit()
    files = server_files(postgres_server.datadir)
    assert b"is your code" in files  # the masked copy is there, so the search reaches the data
    for trace in traces_of(code):
        assert trace not in files


def test_a_not_me_link_is_sealed_too_and_masked_once_handed_over(app):
    """A "not me" link signs the account out and cancels its orders: no copy of the
    database holds a usable one either, and the demo phone can still follow it."""
    shopper = make_user(phone=PHONE)
    assert alerts.new_device(shopper, browser="Chrome on Linux", ip="198.51.100.9", at=clock.now())
    db.session.commit()
    sms = last_sms_to(PHONE)
    token = NOT_ME_TOKEN.search(sms_text(sms)).group()
    assert sms.body.startswith("sealed:v1:")
    assert token.encode() not in database_files(app)

    DeliveryWorker(ConsoleSender()).run_once()

    db.session.expire_all()
    handed_over = db.session.get(SmsMessage, sms.id)
    assert handed_over.status == SmsStatus.SENT and handed_over.body == sms.redacted_body
    assert token in sms_text(db.session.scalar(select(ConsoleMessage)))
    assert token.encode() not in database_files(app)
