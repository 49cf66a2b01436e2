"""The owner and factors: each rule may ask for "any factor" or a "passkey only" (edited at
/admin/risk), the dashboard counts step-ups by factor with conversion per factor, and the
backtest counts friction per factor."""

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from shop import cart as carts
from shop import risk, tallies
from shop.extensions import db
from shop.models import AuditEvent, Factor, OtpChallenge
from shop.orders.checkout import issue_order_code, order_step_up
from shop.orders.confirmation import ConfirmOutcome, confirm_order
from shop.orders.resend import ResendOutcome, resend_order_code
from shop.risk import Outcome, RiskInputs, RiskRules
from shop.stepup.figures import factor_figures
from tests.factories import last_code_sent_to, make_user, set_rules, text_of
from tests.test_admin_risk import figures_of, form_data, past_order
from tests.test_stepup_passkeys import CLIENT, checkout, enrol, options_for
from tests.test_stepup_totp import set_up_app

INPUTS = {
    "total_minor": 32_900,
    "account_created_at": None,
    "previous_orders": 5,
    "orders_24h": 0,
    "amount_24h_minor": 0,
    "device_known": True,
    "address_known": True,
    "phone_changed_at": None,
    "orders_since_otp": 10,
    "amount_since_otp_minor": 100_000,
}


def decide(frozen_clock, rules: RiskRules, **inputs):
    values = INPUTS | {"account_created_at": frozen_clock.now - timedelta(days=365)} | inputs
    return risk.evaluate(RiskInputs(**values), rules, frozen_clock.now)


@pytest.mark.parametrize(
    ("has_passkey", "outcome", "passkey_only", "held_for_passkey"),
    [(True, Outcome.OTP, True, False), (False, Outcome.HOLD, False, True)],
)
def test_a_passkey_only_rule_asks_a_passkey_or_holds_without_one(
    app, frozen_clock, has_passkey, outcome, passkey_only, held_for_passkey
):
    rules = RiskRules(otp_threshold_factor="passkey")
    decision = decide(frozen_clock, rules, has_passkey=has_passkey)
    assert decision.outcome == outcome
    assert decision.passkey_only is passkey_only
    assert decision.held_for_passkey is held_for_passkey
    # "Any factor" (the default) asks for a step-up whatever the account has.
    assert decide(frozen_clock, RiskRules(), has_passkey=has_passkey).outcome == Outcome.OTP


def test_above_the_hold_threshold_a_passkey_may_stand_in_for_the_review(app, frozen_clock):
    rules = RiskRules(hold_threshold_action="passkey")
    big = {"total_minor": 600_000}
    assert decide(frozen_clock, rules, has_passkey=True, **big).passkey_only
    assert decide(frozen_clock, rules, has_passkey=False, **big).outcome == Outcome.HOLD
    assert decide(frozen_clock, RiskRules(), has_passkey=True, **big).outcome == Outcome.HOLD


def test_the_rule_editor_shows_and_saves_the_factor_of_each_rule(client, owner):
    page = client.get("/admin/risk").get_data(as_text=True)
    for name in (
        "otp_threshold_factor",
        "new_account_factor",
        "new_device_or_address_factor",
        "velocity_factor",
        "phone_changed_factor",
        "hold_threshold_action",
    ):
        assert f'name="{name}"' in page, name
    assert "Passkey only (hold when the account has none)" in page

    saved = client.post_form(
        "/admin/risk",
        form_data(otp_threshold_factor="passkey", hold_threshold_action="passkey"),
    )

    assert saved.status_code == 302
    rules = risk.current_rules()
    assert rules.otp_threshold_factor == "passkey" and rules.hold_threshold_action == "passkey"
    assert rules.velocity_factor == "any"
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.event == "rules_changed"))
    assert "otp_threshold_factor" in audit.detail


def test_the_rule_editor_refuses_an_unknown_factor(client, owner):
    refused = client.post_form("/admin/risk", form_data(velocity_factor="fingerprint"))
    assert refused.status_code == 422
    assert risk.current_rules() == RiskRules()


def friction_of(page: str) -> dict[str, list[str]]:
    rows = re.findall(r'<tr data-friction="(\w+)">(.*?)</tr>', page, re.S)
    return {kind: re.findall(r'data-figure="[\w-]+">([^<]+)<', row) for kind, row in rows}


def test_the_backtest_counts_friction_per_factor(client, owner, frozen_clock):
    now = frozen_clock.now
    shopper = make_user()
    past_order(shopper, 32_900, timedelta(days=1), now=now, has_passkey=True)
    past_order(shopper, 30_000, timedelta(days=2), now=now, has_passkey=False)
    past_order(shopper, 5_000, timedelta(days=3), now=now, has_passkey=False)  # no step-up

    page = text_of(
        client.post_form("/admin/risk/backtest", form_data(otp_threshold_factor="passkey"))
    )

    assert friction_of(page) == {
        # Current rules: a passkey offered first to the account that has one, a code else.
        # Proposed: a passkey only; the account without one is held.
        "passkey": ["1", "€329.00", "1", "€329.00"],
        "code": ["1", "€300.00", "0", "€0.00"],
        "held_for_passkey": ["0", "€0.00", "1", "€300.00"],
    }
    assert figures_of(page)["hold"] == ["0", "€0.00", "1", "€300.00"]


def test_the_dashboard_counts_step_ups_by_factor_with_conversion(client, owner, frozen_clock):
    # A passkey holder confirms with the passkey; another falls back to SMS; an app user
    # confirms with the app; an SMS-only shopper gives up.
    with_passkey = make_user("passkey@example.com", phone="+447700900201")
    soft = enrol(with_passkey)
    order, _ = checkout(with_passkey, key="factor-order-000001")
    placed = confirm_order(
        with_passkey,
        order.ref,
        json.dumps(soft.assert_(options_for(with_passkey, order))),
        CLIENT,
        factor=Factor.PASSKEY,
    )
    assert placed.outcome == ConfirmOutcome.PLACED

    fallback = make_user("fallback@example.com", phone="+447700900202")
    enrol(fallback)
    order, _ = checkout(fallback, key="factor-order-000002")
    resend_order_code(fallback, order.ref, CLIENT)
    code = last_code_sent_to(fallback.phone)
    assert confirm_order(fallback, order.ref, code, CLIENT).outcome == ConfirmOutcome.PLACED

    app_user = make_user("app@example.com", phone="+447700900203")
    authenticator, _ = set_up_app(app_user, frozen_clock)
    order, _ = checkout(app_user, key="factor-order-000003")
    code = authenticator.at(frozen_clock.now)
    placed = confirm_order(app_user, order.ref, code, CLIENT, factor=Factor.TOTP)
    assert placed.outcome == ConfirmOutcome.PLACED, placed.message

    sms_only = make_user("sms@example.com", phone="+447700900204")
    checkout(sms_only, key="factor-order-000004")

    week = factor_figures(frozen_clock.now - timedelta(days=7))
    figures = {row.factor: row for row in week}
    assert (figures["passkey"].offered_first, figures["passkey"].confirmed) == (2, 2)
    assert figures["passkey"].fell_back_to_sms == 1 and figures["passkey"].answered_with == 1
    assert (figures["totp"].offered_first, figures["totp"].answered_with) == (1, 1)
    assert (figures["sms"].offered_first, figures["sms"].confirmed) == (1, 0)
    assert figures["sms"].answered_with == 1
    assert figures["sms"].conversion.value == 0

    page = client.get("/admin").get_data(as_text=True)
    rows = dict(re.findall(r'<tr data-factor="(\w+)">(.*?)</tr>', page, re.S))
    assert re.findall(r'data-figure="\w+">([^<]+)<', rows["passkey"]) == [
        "2",
        "2",
        "100.0%",
        "1",
        "1",
    ]
    assert 'data-figure="conversion">0.0%<' in rows["sms"]

    # Folded into one row per hour and values, the tallies give the same figures; a week
    # later, none of these step-ups is in the window.
    tallies.compact_all()
    assert factor_figures(frozen_clock.now - timedelta(days=7)) == week
    frozen_clock.advance(days=7, minutes=1)
    assert all(
        row.offered_first == row.answered_with == 0
        for row in factor_figures(frozen_clock.now - timedelta(days=7))
    )


def test_a_passkey_only_order_takes_no_sms_code_after_a_later_checkout_ends_its_step_up(app):
    # One step-up is live per account, so the next checkout's ends this order's: what may
    # confirm the order is read from the order itself, and the SMS path stays shut.
    user = make_user()
    enrol(user)
    set_rules(otp_threshold_factor="passkey")
    first, first_product = checkout(user, key="passkey-only-00001")
    assert order_step_up(user, first).factor_list == [Factor.PASSKEY]
    second, _ = checkout(user, key="passkey-only-00002")  # its cart: both products
    assert second.status == "pending_verification" and order_step_up(user, first) is None
    carts.save_user_cart(user, {first_product.id: 1})  # the cart as the first order had it
    db.session.commit()

    resent = resend_order_code(user, first.ref, CLIENT)
    assert resent.outcome == ResendOutcome.NOT_ALLOWED
    assert resent.message == "This order can only be confirmed with a passkey."
    assert db.session.scalar(select(OtpChallenge).where(OtpChallenge.order_id == first.id)) is None

    # Even with a code for the order (as one sent before this check would be), an SMS code
    # does not confirm it.
    issue_order_code(first, user, CLIENT, resend=False)
    db.session.commit()
    refused = confirm_order(user, first.ref, last_code_sent_to(user.phone), CLIENT)
    assert refused.outcome == ConfirmOutcome.NOT_ALLOWED
    assert refused.message == "This order can only be confirmed with a passkey."
    db.session.refresh(first)
    assert first.status == "pending_verification"
