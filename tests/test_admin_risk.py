"""The owner's rule editor at /admin/risk and the what-if backtest at /admin/risk/backtest."""

import json
import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
from sqlalchemy import func, select

from shop import risk
from shop.extensions import db
from shop.models import AuditEvent, DecisionInputs, Order, OrderStatus, RiskRuleSet
from shop.risk import RiskInputs, RiskRules
from shop.risk.replay import record_inputs
from tests.factories import ADDRESS, fill_cart, make_product, make_user, text_of

_refs = count(1)
DEFAULTS = RiskRules()


def amount(minor: int | None) -> str:
    return "" if minor is None else str(Decimal(minor).scaleb(-2))


def form_data(rules: RiskRules = DEFAULTS, **overrides: str) -> dict[str, str]:
    """The rule editor's fields as a browser would post them for `rules`."""
    data = {}
    for key, value in rules.as_dict().items():
        if isinstance(value, bool):
            if value:
                data[key] = "y"
        elif key.endswith("_minor"):
            data[key] = amount(value)
        else:
            data[key] = str(value)
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def rule_sets() -> int:
    return db.session.scalar(select(func.count(RiskRuleSet.id)))


def rule_audits() -> list[AuditEvent]:
    db.session.expire_all()
    return db.session.scalars(
        select(AuditEvent).where(AuditEvent.event == "rules_changed").order_by(AuditEvent.id)
    ).all()


# The editor --------------------------------------------------------------------------------


def test_the_editor_shows_every_rule_at_its_current_value(client, owner):
    page = client.get("/admin/risk").get_data(as_text=True)
    for key in RiskRules().as_dict():
        assert f'name="{key}"' in page
    assert re.search(r'name="otp_threshold_minor"[^>]*value="250.00"', page)
    assert re.search(r'name="hold_threshold_minor"[^>]*value="5000.00"', page)
    assert re.search(r'name="block_threshold_minor"[^>]*value=""', page)
    assert re.search(
        r'checked[^>]*name="velocity_enabled"|name="velocity_enabled"[^>]*checked', page
    )
    assert re.search(r'<option selected value="new_device">', page)
    assert "The rules have not been changed yet" in page


def test_the_buttons_add_no_field(client, owner):
    page = client.get("/admin/risk").get_data(as_text=True)
    buttons = re.findall(r"<button[^>]*>", page)
    form_buttons = [button for button in buttons if "link-button" not in button]
    assert len(form_buttons) == 2
    assert all("name=" not in button for button in form_buttons)
    assert 'formaction="/admin/risk/backtest"' in form_buttons[0]
    assert "Try against the last 30 days" in page and ">Save</button>" in page


def test_saving_stores_the_rules_and_audits_old_and_new(client, owner):
    data = form_data(
        otp_threshold_minor="100.00",
        block_threshold_minor="9,000.50",
        login_mode="always",
    )
    del data["velocity_enabled"]
    response = client.post_form("/admin/risk", data, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/risk"

    assert risk.current_rules() == replace(
        RiskRules(),
        otp_threshold_minor=10_000,
        block_threshold_minor=900_050,
        login_mode="always",
        velocity_enabled=False,
    )
    [event] = rule_audits()
    assert event.actor_id == owner.id and event.ip == "203.0.113.9"
    assert json.loads(event.detail) == {
        "changes": {
            "otp_threshold_minor": {"old": 25_000, "new": 10_000},
            "block_threshold_minor": {"old": None, "new": 900_050},
            "velocity_enabled": {"old": True, "new": False},
            "login_mode": {"old": "new_device", "new": "always"},
        }
    }

    page = text_of(client.get("/admin/risk"))
    assert "Rules saved. Changed:" in page
    assert "Ask for a code when the order total is at least: €250.00 → €100.00" in page
    assert "Block when the order total is at least: off → €9,000.50" in page
    assert "Code when the account orders a lot in 24 hours: on → off" in page
    assert "Ask for a code at sign-in: On a new device → Always" in page
    history = page[page.index("Changes to the rules") :]
    assert owner.email in history and "203.0.113.9" in history
    assert "€250.00 → €100.00" in history
    assert re.search(r'name="otp_threshold_minor"[^>]*value="100.00"', page)


def test_saving_unchanged_rules_changes_nothing(client, owner):
    response = client.post_form("/admin/risk", form_data())
    assert response.status_code == 302
    assert rule_sets() == 0 and rule_audits() == []
    assert "the rules are unchanged" in text_of(client.get("/admin/risk"))


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("otp_threshold_minor", "abc", "Enter an amount such as 250.00"),
        ("otp_threshold_minor", "1e5", "Enter an amount such as 250.00"),
        ("otp_threshold_minor", "NaN", "Enter an amount such as 250.00"),
        ("otp_threshold_minor", "€250", "Enter an amount such as 250.00"),
        ("otp_threshold_minor", "250,00", "Enter an amount such as 250.00"),
        ("otp_threshold_minor", "٢٥٠", "Enter an amount such as 250.00"),
        ("otp_threshold_minor", "-5.00", "cannot be negative"),
        ("otp_threshold_minor", "250.001", "at most 2 decimals"),
        ("hold_threshold_minor", "10000000.01", "at most €10,000,000.00"),
        ("exemption_under_minor", "", "Enter an amount."),
        ("velocity_max_amount_minor", "  ", "Enter an amount."),
        ("new_account_days", "0", "from 1 to 365"),
        ("new_account_days", "366", "from 1 to 365"),
        ("new_account_days", "7.5", "Enter a whole number"),
        ("velocity_max_orders", "", "from 1 to 100"),
        ("phone_change_hours", "721", "from 1 to 720"),
        ("phone_change_action", "ignore", "Not a valid choice"),
        ("login_mode", "sometimes", "Not a valid choice"),
    ],
)
def test_bad_values_are_shown_next_to_their_field(client, owner, field, typed, message):
    response = client.post_form("/admin/risk", form_data(**{field: typed}))
    assert response.status_code == 422
    page = text_of(response)
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    assert error and message in error.group(1)
    assert 'role="alert"' in page
    assert rule_sets() == 0 and rule_audits() == []


@pytest.mark.parametrize(
    ("typed", "minor"),
    [("100", 10_000), (" 99.5 ", 9_950), ("1,000.25", 100_025), ("10000000.00", 1_000_000_000)],
)
def test_amounts_are_read_as_decimals(client, owner, typed, minor):
    data = form_data(block_threshold_minor=typed, hold_threshold_minor="", otp_threshold_minor="")
    assert client.post_form("/admin/risk", data).status_code == 302
    assert risk.current_rules().block_threshold_minor == minor


def test_an_empty_optional_amount_turns_its_rule_off(client, owner):
    data = form_data(otp_threshold_minor="", new_device_or_address_threshold_minor="")
    assert client.post_form("/admin/risk", data).status_code == 302
    rules = risk.current_rules()
    assert rules.otp_threshold_minor is None
    assert rules.new_device_or_address_threshold_minor is None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"hold_threshold_minor": "250.00"}, "hold_threshold_minor", "above the code threshold"),
        ({"hold_threshold_minor": "100.00"}, "hold_threshold_minor", "above the code threshold"),
        ({"block_threshold_minor": "5000.00"}, "block_threshold_minor", "above the hold threshold"),
        (
            {"hold_threshold_minor": "", "block_threshold_minor": "200.00"},
            "block_threshold_minor",
            "above the code threshold (€250.00)",
        ),
    ],
)
def test_thresholds_must_rise_from_code_to_hold_to_block(client, owner, changes, field, message):
    response = client.post_form("/admin/risk", form_data(**changes))
    assert response.status_code == 422
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', text_of(response))
    assert error and message in error.group(1)
    assert rule_sets() == 0


def test_thresholds_may_be_turned_off_in_any_combination(client, owner):
    data = form_data(otp_threshold_minor="", hold_threshold_minor="50.00")
    assert client.post_form("/admin/risk", data).status_code == 302
    data = form_data(
        otp_threshold_minor="300.00", hold_threshold_minor="", block_threshold_minor=""
    )
    assert client.post_form("/admin/risk", data).status_code == 302


@pytest.mark.parametrize("url", ["/admin/risk", "/admin/risk/backtest"])
def test_tampered_forms_are_refused(client, owner, url):
    assert client.post_form(url, form_data(price="1")).status_code == 400
    assert client.post_form(url, form_data(save="Save")).status_code == 400
    doubled = client.post(
        url,
        data={
            **form_data(),
            "csrf_token": client.csrf_token(),
            "otp_threshold_minor": ["250.00", "1.00"],
        },
    )
    assert doubled.status_code == 400
    missing = form_data()
    del missing["otp_threshold_minor"]
    assert client.post_form(url, missing).status_code == 422
    assert client.post(url, data=form_data()).status_code == 400  # no CSRF token
    assert rule_sets() == 0


def test_a_saved_rule_decides_the_next_checkout(client, app, owner):
    relaxed = form_data(new_account_threshold_minor="", new_device_or_address_threshold_minor="")
    assert client.post_form("/admin/risk", relaxed).status_code == 302
    shopper = make_user()
    shop_client = app.test_client()
    shop_client.sign_in_as(shopper)
    product = make_product(price_minor=15_000)

    fill_cart(shopper, (product, 1))
    key = "first-order-key-0001"
    placed = shop_client.post_form("/checkout", {**ADDRESS, "idempotency_key": key})
    first = db.session.scalar(select(Order).where(Order.idempotency_key == key))
    assert placed.headers["Location"] == f"/orders/{first.ref}"
    assert first.status == OrderStatus.PLACED

    lowered = {**relaxed, "otp_threshold_minor": "100.00"}
    assert client.post_form("/admin/risk", lowered).status_code == 302

    fill_cart(shopper, (product, 1))
    key = "second-order-key-02"
    response = shop_client.post_form("/checkout", {**ADDRESS, "idempotency_key": key})
    second = db.session.scalar(select(Order).where(Order.idempotency_key == key))
    assert response.headers["Location"] == f"/checkout/verify/{second.ref}"
    assert second.status == OrderStatus.PENDING_VERIFICATION
    assert [reason["code"] for reason in second.reasons] == ["otp_threshold"]


# The backtest ------------------------------------------------------------------------------


def past_order(user, total_minor: int, age: timedelta, *, now, **inputs) -> Order:
    """An order with recorded risk inputs, as checkout would have stored them."""
    values = {
        "total_minor": total_minor,
        "account_created_at": now - timedelta(days=365),
        "previous_orders": 5,
        "orders_24h": 0,
        "amount_24h_minor": 0,
        "device_known": True,
        "address_known": True,
        "phone_changed_at": None,
        "orders_since_otp": 10,
        "amount_since_otp_minor": 100_000,
    } | inputs
    at = now - age
    decision = risk.evaluate(RiskInputs(**values), RiskRules(), at)
    order = Order(
        ref=f"SH-TEST{next(_refs):04d}",
        user_id=user.id,
        status=OrderStatus.PLACED,
        currency="EUR",
        total_minor=total_minor,
        full_name="Ada Lovelace",
        address_line1="12 St James's Square",
        city="London",
        postal_code="SW1Y 4JH",
        country="GB",
        idempotency_key=f"backtest-order-{next(_refs)}",
        fingerprint="0" * 64,
        risk_outcome=decision.outcome,
        risk_inputs=json.dumps(RiskInputs(**values).to_json()),
        created_at=at,
    )
    db.session.add(order)
    db.session.flush()
    db.session.add(record_inputs(order, RiskInputs(**values)))
    db.session.commit()
    return order


@pytest.fixture
def known_orders(app, frozen_clock):
    now = frozen_clock.now
    user = make_user()
    past_order(user, 5_000, timedelta(days=1), now=now)  # allow, then allow
    past_order(user, 15_000, timedelta(days=2), now=now)  # allow, then otp
    past_order(user, 30_000, timedelta(days=3), now=now)  # otp, then otp
    past_order(user, 600_000, timedelta(days=29), now=now)  # hold, then hold
    past_order(user, 15_000, timedelta(days=31), now=now)  # too old
    untracked = past_order(user, 20_000, timedelta(days=4), now=now)
    untracked.risk_inputs = None  # placed before decisions were recorded
    db.session.delete(db.session.get(DecisionInputs, untracked.id))
    db.session.commit()


def figures_of(page: str) -> dict[str, list[str]]:
    rows = re.findall(r'<tr data-outcome="(\w+)">(.*?)</tr>', page, re.S)
    return {outcome: re.findall(r'data-figure="[\w-]+">([^<]+)<', row) for outcome, row in rows}


def test_backtest_compares_current_and_proposed_rules(client, owner, known_orders):
    response = client.post_form("/admin/risk/backtest", form_data(otp_threshold_minor="100.00"))
    assert response.status_code == 200
    page = text_of(response)
    assert figures_of(page) == {
        "allow": ["2", "€200.00", "1", "€50.00"],
        "otp": ["1", "€300.00", "2", "€450.00"],
        "hold": ["1", "€6,000.00", "1", "€6,000.00"],
        "block": ["0", "€0.00", "0", "€0.00"],
    }
    assert re.search(r'data-figure="changed">1<', page)
    assert "4 orders in the last 30 days" in page
    assert "€250.00 → €100.00" in page
    # Nothing saved: no new rule set, no audit row, the same current rules.
    assert rule_sets() == 0 and rule_audits() == []
    assert risk.current_rules() == RiskRules()


def test_backtest_offers_to_save_exactly_what_was_tried(client, owner, known_orders):
    proposed = form_data(otp_threshold_minor="1,000.00", exemption_enabled="")
    del proposed["exemption_enabled"]
    page = client.post_form("/admin/risk/backtest", proposed).get_data(as_text=True)
    save_form = re.search(
        r'<form method="post" action="/admin/risk" class="save-proposed">(.*?)</form>', page, re.S
    ).group(1)
    assert "Save these rules" in save_form
    posted = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', save_form))
    assert posted.pop("csrf_token")
    assert posted["otp_threshold_minor"] == "1000.00"
    assert "exemption_enabled" not in posted

    assert client.post_form("/admin/risk", posted).status_code == 302
    assert risk.current_rules() == replace(
        RiskRules(), otp_threshold_minor=100_000, exemption_enabled=False
    )


def test_backtest_validates_like_the_editor(client, owner, known_orders):
    response = client.post_form(
        "/admin/risk/backtest", form_data(otp_threshold_minor="12.345", hold_threshold_minor="1")
    )
    assert response.status_code == 422
    page = text_of(response)
    assert re.search(r'id="otp_threshold_minor-error">[^<]*at most 2 decimals', page)
    assert "Risk rules" in page
    assert rule_sets() == 0


def test_backtest_with_no_orders_says_so(client, owner, frozen_clock):
    page = text_of(client.post_form("/admin/risk/backtest", form_data()))
    assert "0 orders in the last 30 days" in page
    assert "The proposed rules are the current rules." in page
