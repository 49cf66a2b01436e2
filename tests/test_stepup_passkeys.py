"""Passkeys as step-up, at the use cases: a software authenticator (tests/authenticator.py)
answers the shop's real WebAuthn options, and the `webauthn` package checks it."""

import json

import pytest
from sqlalchemy import select

from shop import audit
from shop.accounts import sessions
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import AuditEvent, Factor, OtpChallenge, Passkey
from shop.orders import ShippingAddress
from shop.orders.checkout import CheckoutOutcome, order_binding, order_step_up, start_checkout
from shop.orders.confirmation import ConfirmOutcome, confirm_order, order_passkey_options
from shop.stepup import enrolment, passkeys
from shop.stepup.enrolment import FactorOutcome
from tests.authenticator import SoftPasskey, b64url
from tests.factories import (
    ADDRESS,
    failures,
    fill_cart,
    last_sms_to,
    make_product,
    make_user,
    sms_text,
)

CLIENT = Client("198.51.100.20", "device-1", "Mozilla/5.0 Chrome/130")
# PUBLIC_BASE_URL of the test configuration is http://127.0.0.1:5000: a relying party id
# cannot be an IP address, so passkeys are made for localhost on the same port.
ORIGIN = "http://localhost:5000"


def enrol(user, soft: SoftPasskey | None = None, name: str = "Laptop") -> SoftPasskey:
    """A passkey added the way /account/security adds one: a fresh step-up, then the
    registration ceremony."""
    sessions.open_session(user, CLIENT, stepped_up=True)
    soft = soft or SoftPasskey(origin=ORIGIN)
    options = enrolment.passkey_registration(user).options
    added = enrolment.add_passkey(user, soft.register(options), name, CLIENT)
    assert added.outcome == FactorOutcome.DONE, added.message
    return soft


def checkout(user, price_minor=32_900, key="passkey-order-0001"):
    product = make_product(price_minor=price_minor)
    fill_cart(user, (product, 1))
    result = start_checkout(user, ShippingAddress(**ADDRESS), key, CLIENT)
    assert result.outcome == CheckoutOutcome.CODE_SENT
    return result.order, product


def options_for(user, order) -> dict:
    return order_passkey_options(user, order.ref).options


def test_a_passkey_confirms_a_329_order_and_no_sms_is_sent(app):
    user = make_user()
    soft = enrol(user)
    order, _ = checkout(user)
    # A stronger factor is there: nothing is texted unless the shopper asks.
    assert db.session.scalar(select(OtpChallenge).where(OtpChallenge.order_id == order.id)) is None
    assert order_step_up(user, order).factor_list == [
        Factor.PASSKEY,
        Factor.SMS,
        Factor.RECOVERY,
    ]

    result = confirm_order(
        user,
        order.ref,
        json.dumps(soft.assert_(options_for(user, order))),
        CLIENT,
        factor=Factor.PASSKEY,
    )

    assert result.outcome == ConfirmOutcome.PLACED, result.message
    assert order.status == "placed" and order.step_up_factor == "passkey"
    passkey = db.session.scalar(select(Passkey).where(Passkey.user_id == user.id))
    assert passkey.sign_count == 1 and passkey.last_used_at is not None


def test_the_challenge_is_the_order_binding_and_a_nonce_used_once(app):
    user = make_user()
    soft = enrol(user)
    order, _ = checkout(user)
    options = options_for(user, order)
    step_up = order_step_up(user, order)
    assert options["challenge"] == b64url(
        passkeys.challenge_for(order_binding(order), step_up.webauthn_nonce)
    )
    assert options["userVerification"] == "required"
    assertion = soft.assert_(options)
    # A second request replaces the nonce: the first assertion answers nothing any more.
    options_for(user, order)
    stale = confirm_order(user, order.ref, assertion, CLIENT, factor=Factor.PASSKEY)
    assert stale.outcome == ConfirmOutcome.WRONG_CODE
    assert "another request" in stale.message and stale.tries_left == 4
    assert failures(user) == 1


def test_a_changed_cart_makes_the_same_assertion_fail_and_cancels_the_order(app):
    user = make_user()
    soft = enrol(user)
    order, product = checkout(user)
    assertion = soft.assert_(options_for(user, order))
    fill_cart(user, (product, 2))  # after the passkey signed the order

    result = confirm_order(user, order.ref, assertion, CLIENT, factor=Factor.PASSKEY)

    assert result.outcome == ConfirmOutcome.CART_CHANGED
    assert order.status == "cancelled"


def test_a_cloned_credential_with_a_stale_counter_is_refused_and_audited(app):
    user = make_user()
    soft = enrol(user)
    copy = soft.clone()
    order, _ = checkout(user)
    assert (
        confirm_order(
            user, order.ref, soft.assert_(options_for(user, order)), CLIENT, factor=Factor.PASSKEY
        ).outcome
        == ConfirmOutcome.PLACED
    )
    second, _ = checkout(user, key="passkey-order-0002")

    result = confirm_order(
        user, second.ref, copy.assert_(options_for(user, second)), CLIENT, factor=Factor.PASSKEY
    )

    assert result.outcome == ConfirmOutcome.WRONG_CODE
    assert "copied passkey" in result.message
    assert second.status == "pending_verification"
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.event == audit.Event.PASSKEY_CLONED)
    )
    assert json.loads(event.detail)["stored_count"] == 1
    assert failures(user) == 1


def _malformed(soft, options):
    return "{not json"


def _nested(soft, options):
    return "[" * 3000  # short enough to be read, too deep for Python's JSON decoder


def _wrong_origin(soft, options):
    return soft.assert_(options, origin="https://evil.example")


def _wrong_rp_id(soft, options):
    return soft.assert_(options, rp_id="evil.example")


def _not_verified(soft, options):
    soft.user_verified = False
    return soft.assert_(options)


def _bad_signature(soft, options):
    answer = soft.assert_(options)
    answer["response"]["signature"] = b64url(b"\x30\x06\x02\x01\x01\x02\x01\x01")
    return answer


def _garbage_fields(soft, options):
    answer = soft.assert_(options)
    answer["response"]["authenticatorData"] = "%%%"
    return answer


@pytest.mark.parametrize(
    ("forge", "words"),
    [
        (_malformed, "could not be read"),
        (_nested, "could not be read"),
        (_wrong_origin, "another website"),
        (_wrong_rp_id, "another site"),
        (_not_verified, "did not check it was you"),
        (_bad_signature, "signature is not valid"),
        (_garbage_fields, "could not be read"),
    ],
)
def test_bad_assertions_are_refused_in_words_and_counted(app, forge, words):
    user = make_user()
    soft = enrol(user)
    order, _ = checkout(user)

    result = confirm_order(
        user, order.ref, forge(soft, options_for(user, order)), CLIENT, factor=Factor.PASSKEY
    )

    assert result.outcome == ConfirmOutcome.WRONG_CODE
    assert words in result.message and "4 attempts left" in result.message
    assert failures(user) == 1 and order.status == "pending_verification"


def test_a_challenge_of_another_order_or_another_account_proves_nothing(app):
    user, other = make_user(), make_user()
    soft, others = enrol(user), enrol(other)
    first, _ = checkout(user, key="passkey-order-0001")
    theirs, _ = checkout(other, key="passkey-order-0003")
    # The other account's passkey, on its own order's challenge, sent to this order.
    foreign = others.assert_(options_for(other, theirs))
    options_for(user, first)
    result = confirm_order(user, first.ref, foreign, CLIENT, factor=Factor.PASSKEY)
    assert (
        result.outcome == ConfirmOutcome.WRONG_CODE and "not one of this account" in result.message
    )
    # This account's passkey, answering the challenge of an older order of its own.
    older_options = options_for(user, first)
    second, _ = checkout(user, key="passkey-order-0002")  # replaces the first's step-up
    options_for(user, second)
    result = confirm_order(
        user, second.ref, soft.assert_(older_options), CLIENT, factor=Factor.PASSKEY
    )
    assert result.outcome == ConfirmOutcome.WRONG_CODE and "another request" in result.message
    assert failures(user) == 2


def test_an_expired_passkey_challenge_is_refused_and_counted(app, frozen_clock):
    user = make_user()
    soft = enrol(user)
    order, _ = checkout(user)
    options = options_for(user, order)
    frozen_clock.advance(seconds=299)
    # The order and its step-up still wait (a late SMS keeps them open): only the challenge ends.
    order.expires_at = order_step_up(user, order).expires_at = frozen_clock.now.replace(year=2030)
    db.session.commit()
    frozen_clock.advance(seconds=2)  # the challenge lives 5 minutes

    result = confirm_order(user, order.ref, soft.assert_(options), CLIENT, factor=Factor.PASSKEY)

    assert result.outcome == ConfirmOutcome.WRONG_CODE
    assert "expired or was already used" in result.message and failures(user) == 1


def test_sms_stays_the_fallback_and_is_sent_only_when_asked(app):
    from shop.orders.resend import ResendOutcome, resend_order_code
    from tests.factories import last_code_sent_to

    user = make_user()
    enrol(user)
    order, _ = checkout(user)
    assert resend_order_code(user, order.ref, CLIENT).outcome == ResendOutcome.SENT
    code = last_code_sent_to(user.phone)
    result = confirm_order(user, order.ref, code, CLIENT)
    assert result.outcome == ConfirmOutcome.PLACED and order.step_up_factor == "sms"


def test_adding_a_passkey_needs_a_fresh_step_up_and_alerts_with_not_me(app, frozen_clock):
    user = make_user()
    sessions.open_session(user, CLIENT)  # signed in by password alone
    assert enrolment.passkey_registration(user).outcome == FactorOutcome.NOT_FRESH
    enrol(user, name="Work laptop")
    alert = sms_text(last_sms_to(user.phone))
    assert "A passkey (Work laptop) was added to your account" in alert
    assert "Not you? http://127.0.0.1:5000/account/not-me/" in alert
    passkey = db.session.scalar(select(Passkey).where(Passkey.user_id == user.id))
    frozen_clock.advance(seconds=301)  # the step-up is no longer fresh
    assert enrolment.remove_passkey(user, passkey.id, CLIENT).outcome == FactorOutcome.NOT_FRESH
    sessions.open_session(user, CLIENT, stepped_up=True)
    assert enrolment.remove_passkey(user, passkey.id, CLIENT).outcome == FactorOutcome.DONE
    assert "A passkey (Work laptop) was removed from your account." in sms_text(
        last_sms_to(user.phone)
    )


def test_not_me_removes_the_factors_added_in_the_last_24_hours(app, frozen_clock):
    from shop import alerts
    from shop.accounts import lockdown

    user = make_user()
    enrol(user, name="Old phone")
    frozen_clock.advance(hours=25)
    enrol(user, SoftPasskey(origin=ORIGIN), name="Thief's key")
    token = alerts.not_me_url(user).rsplit("/", 1)[-1]
    db.session.commit()

    lockdown.not_me(token, CLIENT)

    names = db.session.scalars(select(Passkey.name).where(Passkey.user_id == user.id)).all()
    assert names == ["Old phone"]
