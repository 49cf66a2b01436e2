"""The backtest per rule: how often each rule fires, on how much value, how many of those
orders are held, and which past orders change outcome (linked to their page)."""

import re
from html import unescape

from shop import risk
from shop.risk import RiskRules
from tests.test_admin_risk import form_data, known_orders  # noqa: F401 (fixtures)


def rule_row(page: str, code: str) -> list[str]:
    row = re.search(rf'<tr data-rule="{code}">(.*?)</tr>', page, re.S).group(1)
    return re.findall(r'data-figure="[\w-]+">([^<]+)<', row)


def test_each_rule_over_the_replayed_orders(app, known_orders, frozen_clock):  # noqa: F811
    proposed = RiskRules(otp_threshold_minor=10_000)
    report = risk.backtest(proposed, RiskRules(), now=frozen_clock.now)
    otp, hold = report.current_rules["otp_threshold"], report.current_rules["hold_threshold"]
    assert (otp.fired, otp.value_minor, otp.held) == (2, 630_000, 1)
    assert (hold.fired, hold.value_minor, hold.held) == (1, 600_000, 1)
    otp = report.proposed_rules["otp_threshold"]
    assert (otp.fired, otp.value_minor, otp.held) == (3, 645_000, 1)
    assert report.proposed_rules["velocity"].fired == 0
    [changed] = report.changed_orders
    assert (changed.total_minor, changed.before, changed.after) == (15_000, "allow", "otp")


def test_the_page_lists_each_rule_and_links_the_orders_that_change(
    client,
    owner,
    known_orders,  # noqa: F811
):
    response = client.post_form("/admin/risk/backtest", form_data(otp_threshold_minor="100.00"))
    page = unescape(response.get_data(as_text=True))
    assert rule_row(page, "otp_threshold") == ["2", "€6,300.00", "1", "3", "€6,450.00", "1"]
    assert rule_row(page, "hold_threshold") == ["1", "€6,000.00", "1", "1", "€6,000.00", "1"]
    assert "Code at or above an amount" in page
    changed = re.search(r'<table class="backtest-changed".*?</table>', page, re.S).group(0)
    [ref] = re.findall(r'href="/admin/orders/(SH-\w+)"', changed)
    assert "€150.00" in changed and "Placed (allow)" in changed
    assert "Asked to confirm: passkey or code (otp)" in changed
    assert client.get(f"/admin/orders/{ref}").status_code == 200


def test_no_change_lists_no_orders(client, owner, known_orders):  # noqa: F811
    page = client.post_form("/admin/risk/backtest", form_data()).get_data(as_text=True)
    assert "backtest-changed" not in page
