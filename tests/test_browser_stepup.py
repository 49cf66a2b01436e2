"""The step-up flow in a real browser, as on `make run`: codes and alerts read on /dev/phone."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from shop.demo import DEMO_SHOPPER
from tests.browser import chromium, code_from_phone, live_server, make_live_app


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
    tab.close()
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
    expect(page.get_by_role("main")).to_contain_text("above the amount we confirm by SMS")
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
