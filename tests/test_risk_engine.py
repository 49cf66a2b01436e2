"""The rule engine, rule by rule and at its boundaries (threshold - 1, =, + 1 minor unit)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shop.risk import Outcome, RiskInputs, RiskRules, evaluate

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
RULES = RiskRules()
# An established account on a known device and address, with nothing unusual going on.
CALM = RiskInputs(
    total_minor=5_000,
    account_created_at=NOW - timedelta(days=400),
    previous_orders=20,
    orders_24h=0,
    amount_24h_minor=0,
    device_known=True,
    address_known=True,
    phone_changed_at=None,
    orders_since_otp=10,
    amount_since_otp_minor=50_000,
)


def decide(rules: RiskRules = RULES, **changes):
    return evaluate(replace(CALM, **changes), rules, NOW)


def test_defaults_are_the_spec():
    assert RULES.otp_threshold_minor == 25_000
    assert RULES.hold_threshold_minor == 500_000
    assert (RULES.new_account_days, RULES.new_account_threshold_minor) == (7, 10_000)
    assert RULES.new_device_or_address_threshold_minor == 10_000
    assert RULES.velocity_enabled
    assert (RULES.velocity_max_orders, RULES.velocity_max_amount_minor) == (3, 100_000)
    assert (RULES.phone_change_hours, RULES.phone_change_action) == (72, "hold")
    assert RULES.exemption_enabled
    assert (RULES.exemption_under_minor, RULES.exemption_max_orders) == (3_000, 5)
    assert RULES.exemption_max_amount_minor == 10_000
    assert RULES.login_mode == "new_device"
    assert RULES.block_threshold_minor is None


def test_a_calm_order_is_allowed_with_no_reason():
    decision = decide()
    assert decision.outcome == Outcome.ALLOW and decision.reasons == ()


@pytest.mark.parametrize(
    ("total", "outcome"), [(24_999, "allow"), (25_000, "otp"), (25_001, "otp")]
)
def test_otp_threshold(total, outcome):
    decision = decide(total_minor=total)
    assert decision.outcome == outcome
    assert ("otp_threshold" in decision.codes) == (outcome == "otp")


@pytest.mark.parametrize(
    ("total", "outcome"), [(499_999, "otp"), (500_000, "hold"), (500_001, "hold")]
)
def test_hold_threshold_wins_over_otp_and_keeps_both_reasons(total, outcome):
    decision = decide(total_minor=total)
    assert decision.outcome == outcome
    assert "otp_threshold" in decision.codes
    assert ("hold_threshold" in decision.codes) == (outcome == "hold")


def test_block_threshold_when_set():
    rules = replace(RULES, block_threshold_minor=1_000_000)
    assert decide(rules, total_minor=999_999).outcome == Outcome.HOLD
    assert decide(rules, total_minor=1_000_000).outcome == Outcome.BLOCK


@pytest.mark.parametrize(("total", "fires"), [(9_999, False), (10_000, True), (10_001, True)])
def test_first_order_at_100(total, fires):
    decision = decide(total_minor=total, previous_orders=0)
    assert ("new_account" in decision.codes) == fires
    assert decision.outcome == ("otp" if fires else "allow")


@pytest.mark.parametrize(
    ("age", "fires"),
    [(timedelta(days=7) - timedelta(seconds=1), True), (timedelta(days=7), False)],
)
def test_account_younger_than_7_days(age, fires):
    decision = decide(total_minor=10_000, account_created_at=NOW - age)
    assert ("new_account" in decision.codes) == fires


@pytest.mark.parametrize(
    ("previous_orders", "age", "text"),
    [
        (
            0,
            timedelta(days=7) - timedelta(seconds=1),
            "This is your first order, on an account opened in the last 7 days.",
        ),
        (0, timedelta(days=7), "This is your first order."),
        (
            1,
            timedelta(days=7) - timedelta(seconds=1),
            "Your account was opened in the last 7 days.",
        ),
        (1, timedelta(days=7), None),
        (5, timedelta(days=1), "Your account was opened in the last 7 days."),
    ],
)
def test_the_new_account_reason_says_only_what_is_true(previous_orders, age, text):
    # A returning shopper (orders before this one) was told "a first order or a new account".
    decision = decide(
        total_minor=10_000, previous_orders=previous_orders, account_created_at=NOW - age
    )
    said = [reason.text for reason in decision.reasons if reason.code == "new_account"]
    assert said == ([text] if text else [])
    assert "first order" not in " ".join(said) or previous_orders == 0


def test_the_new_account_reason_names_the_configured_days():
    rules = replace(RULES, new_account_days=30)
    decision = decide(rules, total_minor=10_000, account_created_at=NOW - timedelta(days=20))
    assert decision.shopper_message() == "Your account was opened in the last 30 days."


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"device_known": False}, "This device is new to your account."),
        ({"address_known": False}, "This shipping address is new to your account."),
        (
            {"device_known": False, "address_known": False},
            "This device and this shipping address are new to your account.",
        ),
    ],
)
def test_new_device_or_address_at_100(changes, text):
    assert decide(total_minor=9_999, **changes).outcome == Outcome.ALLOW
    decision = decide(total_minor=10_000, **changes)
    assert decision.outcome == Outcome.OTP
    assert decision.shopper_message() == text


@pytest.mark.parametrize(("orders", "fires"), [(3, False), (4, True)])
def test_velocity_more_than_3_orders_in_24h(orders, fires):
    assert ("velocity" in decide(orders_24h=orders).codes) == fires


@pytest.mark.parametrize(("amount", "fires"), [(100_000, False), (100_001, True)])
def test_velocity_more_than_1000_in_24h(amount, fires):
    assert ("velocity" in decide(amount_24h_minor=amount).codes) == fires


def test_velocity_can_be_turned_off():
    rules = replace(RULES, velocity_enabled=False)
    assert decide(rules, orders_24h=50).outcome == Outcome.ALLOW


@pytest.mark.parametrize(("hours", "outcome"), [(71.99, "hold"), (72, "otp"), (100, "otp")])
def test_phone_change_in_72h_holds_an_order_that_needs_a_code(hours, outcome):
    changed = NOW - timedelta(hours=hours)
    decision = decide(total_minor=30_000, phone_changed_at=changed)
    assert decision.outcome == outcome
    assert ("phone_changed" in decision.codes) == (outcome == "hold")


@pytest.mark.parametrize("hours", [1, 71.99])
def test_phone_change_lets_an_order_that_needs_no_code_through(hours):
    changed = NOW - timedelta(hours=hours)
    assert decide(total_minor=1_500, phone_changed_at=changed).outcome == Outcome.ALLOW


def test_phone_change_action_otp_or_off():
    changed = NOW - timedelta(hours=1)
    assert (
        decide(replace(RULES, phone_change_action="otp"), phone_changed_at=changed).outcome == "otp"
    )
    assert (
        decide(
            replace(RULES, phone_change_action="off"), total_minor=30_000, phone_changed_at=changed
        ).outcome
        == "otp"
    )


def test_low_value_exemption_lifts_otp_under_30():
    risky = {
        "device_known": False,
        "orders_24h": 9,
        "orders_since_otp": 0,
        "amount_since_otp_minor": 0,
    }
    rules = replace(RULES, new_device_or_address_threshold_minor=0)
    exempt = decide(rules, total_minor=2_999, **risky)
    assert exempt.outcome == Outcome.ALLOW
    assert "low_value_exemption" in exempt.codes and "velocity" not in exempt.codes
    assert decide(rules, total_minor=3_000, **risky).outcome == Outcome.OTP


@pytest.mark.parametrize(
    ("orders", "amount", "exempt"),
    [(4, 0, True), (5, 0, False), (0, 9_999, True), (0, 10_000, False)],
)
def test_exemption_ends_after_5_orders_or_100_since_the_last_code(orders, amount, exempt):
    decision = decide(
        total_minor=2_000, orders_24h=9, orders_since_otp=orders, amount_since_otp_minor=amount
    )
    assert (decision.outcome == Outcome.ALLOW) == exempt


def test_an_exempt_order_is_not_held_for_a_phone_change():
    changed = NOW - timedelta(hours=1)
    decision = decide(
        total_minor=2_000,
        orders_24h=9,
        phone_changed_at=changed,
        orders_since_otp=0,
        amount_since_otp_minor=0,
    )
    assert decision.outcome == Outcome.ALLOW and "phone_changed" not in decision.codes


def test_exemption_never_lifts_a_hold():
    decision = decide(
        replace(RULES, hold_threshold_minor=1_000), total_minor=2_000, orders_since_otp=0
    )
    assert decision.outcome == Outcome.HOLD


def test_exemption_can_be_turned_off():
    rules = replace(RULES, exemption_enabled=False)
    assert decide(rules, total_minor=2_000, orders_24h=9, orders_since_otp=0).outcome == "otp"


def test_locked_step_up_holds_what_would_need_a_code():
    decision = decide(total_minor=30_000, step_up_locked=True)
    assert decision.outcome == Outcome.HOLD
    assert decision.codes == ["otp_threshold", "step_up_locked"]
    assert decide(total_minor=100, step_up_locked=True).outcome == Outcome.ALLOW


def test_combined_rules_keep_every_reason():
    decision = decide(
        total_minor=30_000,
        previous_orders=0,
        device_known=False,
        orders_24h=5,
        account_created_at=NOW - timedelta(days=1),
    )
    assert decision.outcome == Outcome.OTP
    assert set(decision.codes) == {
        "otp_threshold",
        "new_account",
        "new_device_or_address",
        "velocity",
    }


def test_thresholds_can_be_turned_off():
    rules = replace(RULES, otp_threshold_minor=None, hold_threshold_minor=None)
    assert decide(rules, total_minor=10_000_000).outcome == Outcome.ALLOW


def test_inputs_round_trip_through_json():
    inputs = replace(CALM, phone_changed_at=NOW)
    assert RiskInputs.from_json(inputs.to_json()) == inputs


def test_rules_round_trip_and_diff():
    changed = replace(RULES, otp_threshold_minor=10_000, login_mode="always")
    assert RiskRules.from_dict(changed.as_dict()) == changed
    assert changed.changes_from(RULES) == {
        "otp_threshold_minor": (25_000, 10_000),
        "login_mode": ("new_device", "always"),
    }
    assert RiskRules.from_dict({"unknown": 1}) == RULES
