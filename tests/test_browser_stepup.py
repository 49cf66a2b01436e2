"""The step-up flow in a real browser, as on `make run`: codes and alerts read on /dev/phone."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from shop.demo import DEMO_OWNER, DEMO_SHOPPER
from tests.browser import chromium, close_page, code_from_phone, live_server, make_live_app


@pytest.fixture
def page(tmp_path, migrated_template) -> Iterator[Page]:
    with live_server(make_live_app(tmp_path, migrated_template)) as url, chromium() as browser:
        yield new_page(browser, url)


def new_page(browser: Browser, url: str) -> Page:
    context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    return context.new_page()


def buy(page: Page, product: str) -> None:
    page.goto("/")
    page.get_by_label(f"Quantity of {product}", exact=True).fill("1")
    page.get_by_role("button", name=f"Add to cart: {product}").click()
    page.get_by_role("link", name="Check out").click()
    page.get_by_label("Full name", exact=True).fill("Sam Shopper")
    page.get_by_label("Address", exact=True).fill("3 Market Street")
    page.get_by_label("Town or city", exact=True).fill("York")
    page.get_by_label("Postcode", exact=True).fill("YO1 7HH")
    page.get_by_role("button", name="Place order").click()


def phone_messages(page: Page) -> str:
    tab = page.context.new_page()
    tab.goto(f"/dev/phone?to={DEMO_SHOPPER.phone.replace('+', '%2B')}")
    text = tab.locator(".inbox").inner_text()
    close_page(tab)
    return text


def test_demo_shopper_signs_in_with_a_code_buys_small_without_and_large_with(page: Page):
    page.goto("/auth/login")
    page.get_by_label("E-mail", exact=True).fill(DEMO_SHOPPER.email)
    page.get_by_label("Password", exact=True).fill(DEMO_SHOPPER.password)
    page.get_by_role("button", name="Sign in").click()

    # A browser the account has not used: the second step, with the code from the SMS.
    expect(page).to_have_url(re.compile(r"/auth/login/verify$"))
    code_input = page.get_by_label("Code from the SMS")
    expect(code_input).to_have_attribute("autocomplete", "one-time-code")
    expect(code_input).to_have_attribute("inputmode", "numeric")
    code_input.fill(code_from_phone(page, DEMO_SHOPPER.phone))
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".flashes")).to_contain_text("You are signed in.")

    # A low-value item: placed at once.
    buy(page, "Enamel pin")
    expect(page).to_have_url(re.compile(r"/orders/SH-[A-Z0-9]{8}$"))
    expect(page.get_by_role("main")).to_contain_text("Status: placed")

    # A 329.00 item: over the 250.00 threshold, so a code confirms it.
    buy(page, "Office chair")
    expect(page).to_have_url(re.compile(r"/checkout/verify/SH-[A-Z0-9]{8}$"))
    ref = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_role("main")).to_contain_text("above the amount we ask you to confirm")
    expect(page.get_by_role("main")).to_contain_text("€329.00")
    code = code_from_phone(page, DEMO_SHOPPER.phone)
    page.get_by_label("Code from the SMS").fill(code)
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(rf"/orders/{ref}$"))
    expect(page.locator(".flashes")).to_contain_text(f"Order {ref} is confirmed and placed.")

    # The demo phone shows the sign-in alert and the order alerts.
    page.wait_for_timeout(500)
    messages = phone_messages(page)
    assert "new sign-in on" in messages
    assert f"order {ref} for €329.00 was placed" in messages
    assert f"to confirm order {ref} for €329.00" in messages


def sign_in(page: Page, email: str, password: str, phone: str) -> None:
    page.goto("/auth/login")
    page.get_by_label("E-mail", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/auth/login/verify$"))
    page.get_by_label("Code from the SMS").fill(code_from_phone(page, phone))
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".flashes")).to_contain_text("You are signed in.")


def test_owner_lowers_the_threshold_after_a_backtest_and_the_next_order_follows(
    tmp_path, migrated_template
):
    with (
        live_server(make_live_app(tmp_path, migrated_template)) as url,
        chromium() as browser,
    ):
        owner = new_page(browser, url)
        sign_in(owner, DEMO_OWNER.email, DEMO_OWNER.password, DEMO_OWNER.phone)
        owner.get_by_role("link", name="Admin").click()
        expect(owner.get_by_role("main")).to_contain_text("Challenge rate")
        owner.goto("/admin/risk")
        threshold = owner.get_by_label("Ask for a code when the order total is at least")
        expect(threshold).to_have_value("250.00")
        threshold.fill("50.00")

        # The backtest first: what the last 30 days of orders would have got.
        owner.get_by_role("button", name="Try against the last 30 days").click()
        expect(owner).to_have_url(re.compile(r"/admin/risk/backtest$"))
        results = owner.get_by_role("table", name=re.compile(r"orders in the last 30 days"))
        expect(results).to_be_visible()
        proposed_otp = results.locator('[data-outcome="otp"] [data-figure="proposed-orders"]')
        current_otp = results.locator('[data-outcome="otp"] [data-figure="current-orders"]')
        assert int(proposed_otp.inner_text()) > int(current_otp.inner_text())
        owner.get_by_role("button", name="Save these rules").click()
        expect(owner.locator(".flashes")).to_contain_text("€250.00 → €50.00")

        # The shopper's next 65.00 order now needs a code (it did not at 250.00).
        shopper = new_page(browser, url)
        sign_in(shopper, DEMO_SHOPPER.email, DEMO_SHOPPER.password, DEMO_SHOPPER.phone)
        buy(shopper, "Cotton hoodie")
        expect(shopper).to_have_url(re.compile(r"/checkout/verify/SH-[A-Z0-9]{8}$"))
        expect(shopper.get_by_role("main")).to_contain_text("above the amount we ask you")
