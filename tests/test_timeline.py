"""Order timelines: every lifecycle event carries the order, written with what it records.

The SMS lines come from the real path: the delivery process hands the code to the real
Vonage SDK (against the local TLS stand-in), and a signed delivery receipt arrives at the
webhook. The shopper's order page shows the same lines without the owner's note or name.
"""

import json

import pytest
from flask import current_app
from sqlalchemy import event, select
from vonage_http_client.auth import Auth

from shop import alerts, clock
from shop.accounts.client import Client
from shop.accounts.lockdown import not_me
from shop.extensions import db
from shop.models import Factor, OrderEvent, OrderEventKind, Role, SmsKind, SmsMessage
from shop.orders import ShippingAddress, expire_pending, timeline
from shop.orders.checkout import start_checkout
from shop.orders.confirmation import ConfirmOutcome, confirm_order, order_passkey_options
from shop.orders.review import approve
from shop.sms.delivery import DeliveryWorker
from shop.sms.senders import ConsoleSender
from shop.sms.vonage import VonageSender
from tests.factories import (
    fill_cart,
    last_code_sent_to,
    make_held_order,
    make_product,
    make_user,
    set_rules,
    wrong,
)
from tests.fake_vonage import (  # noqa: F401 (fixtures)
    fake_vonage_fixture,
    httpserver_ssl_context,
    vonage_ca,
    vonage_ca_bundle,
)
from tests.test_stepup_passkeys import CLIENT as PASSKEY_CLIENT
from tests.test_stepup_passkeys import checkout as checkout_with_factors
from tests.test_stepup_passkeys import enrol
from tests.test_stepup_totp import set_up_app

CLIENT = Client("203.0.113.5", "device-1")
ADDRESS = ShippingAddress("Ada Lovelace", "12 St James's Square", "London", "SW1Y 4JH", "GB")
SECRET = "timeline-signature-secret"


def kinds(order) -> list[str]:
    db.session.expire_all()
    return [entry.kind for entry in timeline.for_owner(order)]


def checkout_needing_a_code(shopper, key="timeline-key-0000000"):
    fill_cart(shopper, (make_product(price_minor=30_000, stock=5), 1))
    return start_checkout(shopper, ADDRESS, key, CLIENT).order


def signed_receipt(message: SmsMessage, status: str, error: str = "0") -> dict:
    params = {
        "api-key": "key",
        "timestamp": str(int(clock.now().timestamp())),
        "msisdn": message.to_number.removeprefix("+"),
        "messageId": message.provider_message_id,
        "status": status,
        "err-code": error,
        "client-ref": f"sms-{message.id}",
    }
    signer = Auth(api_key="key", signature_secret=SECRET, signature_method="sha256")
    return params | {"sig": signer.sign_params(dict(params))}


def test_a_code_order_from_checkout_to_delivery_receipt_to_confirmation(app, client, fake_vonage):
    app.config["VONAGE_SIGNATURE_SECRET"] = SECRET
    shopper = make_user()
    order = checkout_needing_a_code(shopper)
    code = last_code_sent_to(shopper.phone)

    sender = VonageSender.from_config({**current_app.config, **fake_vonage.config})
    try:
        assert DeliveryWorker(sender).run_once() == 1
    finally:
        sender.close()
    code_sms = db.session.scalar(select(SmsMessage).where(SmsMessage.kind == SmsKind.OTP_ORDER))
    assert (
        client.post(
            "/webhooks/vonage/delivery-receipt", data=signed_receipt(code_sms, "delivered")
        ).status_code
        == 200
    )
    # A repeated receipt changes nothing, on the timeline either.
    client.post("/webhooks/vonage/delivery-receipt", data=signed_receipt(code_sms, "delivered"))
    assert confirm_order(shopper, order.ref, wrong(code), CLIENT).tries_left == 4
    assert confirm_order(shopper, order.ref, code, CLIENT).outcome == "placed"

    assert kinds(order) == [
        "submitted",
        "decision",
        "sms_queued",
        "sms_sent",
        "sms_delivered",
        "wrong_code",
        "confirmed",
        "sms_queued",
    ]
    words = [entry.text for entry in timeline.for_shopper(order)]
    assert words == [
        "Checked out: €300.00 for 1 item.",
        "Risk check at checkout: to be confirmed by SMS code or any other way the account has "
        "set up. This order is above the amount we ask you to confirm. This is your first "
        "order, on an account opened in the last 7 days. This device and this shipping address "
        "are new to your account.",
        "The code was queued for sending by SMS.",
        "The code was handed to the SMS provider.",
        "The code was delivered to the phone.",
        "A wrong code was entered: 4 tries left.",
        "Confirmed with the code sent by SMS: the order is placed.",
        "The order alert was queued for sending by SMS.",
    ]


def line(order, kind: str) -> str:
    """The shopper's line of the one event of `kind`."""
    db.session.expire_all()
    [entry] = [entry for entry in timeline.for_shopper(order) if entry.kind == kind]
    return entry.text


ANY_FACTOR = (
    "Risk check at checkout: to be confirmed by SMS code or any other way the account has set up."
)


@pytest.mark.parametrize(
    ("rule_factor", "asked"),
    [
        ("any", ANY_FACTOR),
        ("passkey", "Risk check at checkout: to be confirmed with a passkey only."),
    ],
    ids=["any-factor", "passkey-only"],
)
def test_a_passkey_confirmed_order_says_what_the_rules_asked_and_what_answered(
    app, rule_factor, asked
):
    set_rules(otp_threshold_factor=rule_factor)
    shopper = make_user()
    passkey = enrol(shopper)
    order, _ = checkout_with_factors(shopper)
    assertion = json.dumps(passkey.assert_(order_passkey_options(shopper, order.ref).options))
    result = confirm_order(shopper, order.ref, assertion, PASSKEY_CLIENT, factor=Factor.PASSKEY)
    assert result.outcome == ConfirmOutcome.PLACED, result.message

    assert line(order, "decision").startswith(asked + " ")
    assert line(order, "confirmed") == "Confirmed with a passkey: the order is placed."


def test_an_app_confirmed_order_names_the_app(app, frozen_clock):
    shopper = make_user()
    authenticator, _ = set_up_app(shopper, frozen_clock)
    order, _ = checkout_with_factors(shopper)
    code = authenticator.at(frozen_clock.now)
    result = confirm_order(shopper, order.ref, code, PASSKEY_CLIENT, factor=Factor.TOTP)
    assert result.outcome == ConfirmOutcome.PLACED, result.message

    assert line(order, "decision").startswith(ANY_FACTOR + " ")
    assert line(order, "confirmed") == (
        "Confirmed with a code from the authenticator app: the order is placed."
    )


def test_events_recorded_before_factors_claim_none(app):
    """A decision without a factor on its reasons, a confirmation without its factor: written
    before step-up factors, they say what is known and claim no factor."""
    order = checkout_needing_a_code(make_user())
    reasons = [{"code": "otp_threshold", "outcome": "otp", "text": "Above the amount."}]
    timeline.record(
        order, OrderEventKind.DECISION, outcome="otp", stage="confirmation", reasons=reasons
    )
    timeline.record(order, OrderEventKind.CONFIRMED)
    db.session.commit()
    assert [entry.text for entry in timeline.for_shopper(order)][-2:] == [
        "Risk check at confirmation: to be confirmed. Above the amount.",
        "Confirmed: the order is placed.",
    ]


def deliver_with(fake_vonage) -> None:
    sender = VonageSender.from_config({**current_app.config, **fake_vonage.config})
    try:
        DeliveryWorker(sender).run_once()
    finally:
        sender.close()


def test_a_failed_receipt_is_on_the_timeline_with_its_error_for_the_owner(app, client, fake_vonage):
    app.config["VONAGE_SIGNATURE_SECRET"] = SECRET
    order = checkout_needing_a_code(make_user())
    deliver_with(fake_vonage)
    code_sms = db.session.scalar(select(SmsMessage).where(SmsMessage.order_id == order.id))
    receipt = signed_receipt(code_sms, "failed", "6")
    assert client.post("/webhooks/vonage/delivery-receipt", data=receipt).status_code == 200
    assert timeline.for_owner(order)[-1].text == "The code was not delivered (failed, error 6)."
    assert timeline.for_shopper(order)[-1].text == "The code was not delivered (failed)."


def test_a_provider_refusal_is_on_the_timeline(app, fake_vonage):
    order = checkout_needing_a_code(make_user())
    fake_vonage.reject(6, "Anti-spam rejection")  # permanent: no retry
    deliver_with(fake_vonage)
    [entry] = [e for e in timeline.for_owner(order) if e.kind == "sms_failed"]
    assert entry.text.startswith("The code was not delivered (failed: ")
    assert "Anti-spam rejection" in entry.text


def test_a_code_that_expires_before_it_can_be_sent_is_dropped_on_the_timeline(app, frozen_clock):
    order = checkout_needing_a_code(make_user())
    frozen_clock.advance(minutes=6)
    DeliveryWorker(ConsoleSender()).run_once()  # the sweep drops it
    assert kinds(order)[-1] == "sms_dropped"
    assert timeline.for_shopper(order)[-1].text == (
        "The code was not sent: the code expired first."
    )
    expire_pending()
    assert kinds(order)[-2:] == ["expired", "released"]
    assert timeline.for_shopper(order)[-1].text == "1 item went back into stock."


def test_a_code_queued_for_the_cooldown_says_when_it_goes(app, frozen_clock):
    shopper = make_user()
    checkout_needing_a_code(shopper, "timeline-key-first00")
    frozen_clock.advance(seconds=10)
    second = checkout_needing_a_code(shopper, "timeline-key-second0")
    [queued] = [e for e in timeline.for_shopper(second) if e.kind == "sms_queued"]
    assert queued.text == (
        "The code is queued: it goes out at 12:00:30 UTC, after the pause between two codes."
    )


def test_cancellations_say_why(app, frozen_clock):
    shopper = make_user()
    order = checkout_needing_a_code(shopper)
    code = last_code_sent_to(shopper.phone)
    for _ in range(5):
        confirm_order(shopper, order.ref, wrong(code), CLIENT)
    texts = [entry.text for entry in timeline.for_shopper(order)]
    assert texts[-3:] == [
        "A wrong code was entered: no tries left.",
        "Cancelled: too many wrong codes.",
        "1 item went back into stock.",
    ]

    changed = checkout_needing_a_code(shopper, "timeline-key-changed")
    fill_cart(shopper, (make_product(price_minor=1_000), 1))
    frozen_clock.advance(seconds=40)
    confirm_order(shopper, changed.ref, "123456", CLIENT)
    assert "Cancelled: the cart or the address changed after the code was sent." in [
        entry.text for entry in timeline.for_shopper(changed)
    ]


def test_not_me_cancels_with_its_reason(app):
    shopper = make_user()
    order = make_held_order(shopper)
    token = alerts.not_me_url(shopper).rsplit("/", 1)[-1]
    db.session.commit()
    not_me(token, CLIENT)
    texts = [entry.text for entry in timeline.for_shopper(order)]
    assert texts[-2:] == [
        "Cancelled: the account holder answered “not me”.",
        "1 item went back into stock.",
    ]


def test_held_and_blocked_at_checkout(app):
    held = make_held_order()
    assert kinds(held)[:3] == ["submitted", "decision", "held"]
    set_rules(block_threshold_minor=100_000)
    shopper = make_user()
    fill_cart(shopper, (make_product(price_minor=200_000), 1))
    blocked = start_checkout(shopper, ADDRESS, "timeline-key-blocked", CLIENT).order
    assert kinds(blocked) == ["submitted", "decision", "blocked"]


def test_the_owner_sees_notes_and_names_the_shopper_does_not(app, client):
    owner = make_user("reviewer@example.com", role=Role.OWNER)
    shopper = make_user()
    order = make_held_order(shopper)
    approve(order.ref, owner, "Phoned the customer, all good.", CLIENT)

    [owner_line] = [e for e in timeline.for_owner(order) if e.kind == "approved"]
    assert owner_line.text == "Approved by reviewer@example.com: the order is placed."
    assert owner_line.note == "Phoned the customer, all good."
    [shopper_line] = [e for e in timeline.for_shopper(order) if e.kind == "approved"]
    assert shopper_line.text == "Approved by the shop: the order is placed."
    assert shopper_line.note is None

    client.sign_in_as(shopper)
    page = client.get(f"/orders/{order.ref}").get_data(as_text=True)
    assert "What happened" in page and "Approved by the shop: the order is placed." in page
    assert "Phoned the customer" not in page and "reviewer@example.com" not in page
    # The decision's reason codes are the owner's; the shopper reads the words.
    assert "[hold_threshold]" not in page and "Large orders are reviewed by the shop" in page

    client.sign_in_as(owner)
    admin_page = client.get(f"/admin/orders/{order.ref}").get_data(as_text=True)
    assert "Phoned the customer, all good." in admin_page
    assert "reviewer@example.com" in admin_page and "[hold_threshold]" in admin_page


def test_every_event_is_in_the_transaction_of_what_it_records(app):
    """A checkout that fails for stock leaves no order and no timeline behind."""
    shopper = make_user()
    fill_cart(shopper, (make_product(price_minor=30_000, stock=0), 1))
    result = start_checkout(shopper, ADDRESS, "timeline-key-nostock", CLIENT)
    assert result.outcome == "refused"
    assert db.session.scalar(select(OrderEvent.id)) is None


def test_timelines_for_many_orders_take_two_queries(app):
    orders = [make_held_order() for _ in range(3)]
    ids = [order.id for order in orders]
    statements = []

    def count(*_):
        statements.append(1)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        lines = timeline.timelines_for_owner(ids)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) <= 2
    assert all(lines[order_id][0].kind == "submitted" for order_id in ids)
