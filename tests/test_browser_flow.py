"""End to end in a real browser: register, fill the cart, check out, see the order, sign back in.

Accessible locators only (labels, roles, names), so the test also proves that every control the
shopper uses has a label a screen reader can announce.
"""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import chromium, code_from_phone, live_server, make_live_app

EMAIL = "grace@example.com"
PHONE = "07700 900555"
PASSWORD = "a long phrase nobody guesses"
# Fixed names on purpose, for a person to open after a run; nothing ever reads them back.


@pytest.fixture
def live_app(tmp_path, migrated_template):
    return make_live_app(tmp_path, migrated_template)


@pytest.fixture
def base_url(live_app) -> Iterator[str]:
    with live_server(live_app) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def flash(page: Page, text: str) -> None:
    expect(page.locator(".flashes")).to_contain_text(text)


def add_to_cart(page: Page, product: str, quantity: int = 1) -> None:
    page.get_by_label(f"Quantity of {product}", exact=True).fill(str(quantity))
    # Chromium names it "Add to cart : <product>": the visually hidden span is block-level.
    name = re.compile(rf"^Add to cart\s*:\s*{re.escape(product)}$")
    page.get_by_role("button", name=name).click()
    expect(page).to_have_url(re.compile(r"/cart$"))
    flash(page, f"Added {quantity} × {product} to your cart.")


def test_new_shopper_registers_orders_and_signs_back_in(page: Page, live_app, tmp_path) -> None:
    nav = page.get_by_role("navigation", name="Main")

    # Register: the same answer whether the e-mail was free or not, so sign in next.
    page.goto("/auth/register")
    page.get_by_label("E-mail", exact=True).fill(EMAIL)
    page.get_by_label("Mobile number", exact=True).fill(PHONE)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/auth/login$"))
    flash(page, "Next, sign in with this e-mail and password: we then send a code")
    page.get_by_label("E-mail", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/auth/verify-phone$"))
    flash(page, "You are signed in. Confirm your number with the code we sent.")
    expect(nav.get_by_role("button", name="Sign out")).to_be_visible()

    # Confirm the phone with the code from the SMS.
    code = code_from_phone(page, "+447700900555")
    page.get_by_label("Code from the SMS").fill(code)
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/$"))
    flash(page, "Your phone number is confirmed.")

    # The catalog: the 24 demo products, each with its own add-to-cart button.
    products = page.get_by_role("main").get_by_role("heading", level=2)
    expect(products).to_have_count(24)
    expect(page.get_by_role("button", name=re.compile(r"^Add to cart\s*:"))).to_have_count(24)
    page.screenshot(path=tmp_path / "catalog.png", full_page=True)

    # Two products from the grid, then a quantity changed on the cart page.
    add_to_cart(page, "Enamel pin")
    nav.get_by_role("link", name="Catalog").click()
    add_to_cart(page, "Ceramic mug")
    page.get_by_label("Quantity of Enamel pin", exact=True).fill("3")
    page.get_by_role("button", name="Update Enamel pin", exact=True).click()
    flash(page, "Your cart now has 3 × Enamel pin.")
    cart = page.get_by_role("table", name="Items in your cart")
    expect(cart.get_by_role("row", name=re.compile(r"^Enamel pin"))).to_contain_text("€14.97")
    expect(cart.get_by_role("row", name=re.compile(r"^Total"))).to_contain_text("€32.97")

    # Checkout: the shipping form, by its labels.
    page.get_by_role("link", name="Check out").click()
    expect(page).to_have_url(re.compile(r"/checkout$"))
    expect(page.get_by_role("region", name="Your order")).to_contain_text("€32.97")
    page.get_by_label("Full name", exact=True).fill("Grace Hopper")
    page.get_by_label("Address", exact=True).fill("1 Harbour Street")
    page.get_by_label("Town or city", exact=True).fill("Leeds")
    page.get_by_label("Postcode", exact=True).fill("ls1 4ab")
    country = page.get_by_label("Country", exact=True)
    country.select_option("GB")
    expect(country).to_have_value("GB")
    page.get_by_role("button", name="Place order").click()

    # The confirmation page.
    heading = page.get_by_role("heading", level=1, name=re.compile(r"^Order SH-"))
    expect(heading).to_be_visible()
    ref = heading.inner_text().removeprefix("Order ").strip()
    assert re.fullmatch(r"SH-[A-Z0-9]{8}", ref), ref
    expect(page).to_have_url(re.compile(rf"/orders/{ref}$"))
    flash(page, f"Thank you! Order {ref} is placed.")
    expect(page.get_by_role("main")).to_contain_text("Status: placed")
    items = page.get_by_role("table", name=f"Items in order {ref}")
    expect(items.get_by_role("row", name=re.compile(r"^Enamel pin"))).to_contain_text("€14.97")
    expect(items.get_by_role("row", name=re.compile(r"^Ceramic mug"))).to_contain_text("€18.00")
    expect(items.get_by_role("row", name=re.compile(r"^Total"))).to_contain_text("€32.97")
    expect(page.get_by_role("main")).to_contain_text("LS1 4AB")
    page.screenshot(path=tmp_path / "order.png", full_page=True)

    # The history lists it.
    nav.get_by_role("link", name="Orders").click()
    row = page.get_by_role("row", name=re.compile(rf"^{ref}"))
    expect(row).to_contain_text("placed")
    expect(row).to_contain_text("€32.97")

    # Sign out from the nav, then back in with the same credentials.
    nav.get_by_role("button", name="Sign out").click()
    flash(page, "You are signed out.")
    expect(nav.get_by_role("link", name="Sign in")).to_be_visible()
    nav.get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/auth/login$"))
    page.get_by_label("E-mail", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    flash(page, "You are signed in.")
    expect(nav.get_by_role("button", name="Sign out")).to_be_visible()
    nav.get_by_role("link", name="Orders").click()
    expect(page.get_by_role("link", name=ref)).to_be_visible()
