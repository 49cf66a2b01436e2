"""Passkeys in a real Chromium: the DevTools virtual authenticator (ctap2, internal, resident
key, user verification) enrols a passkey on /account/security and confirms a 329.00 order
with it; an assertion made before the cart changed confirms nothing."""

import re

from playwright.sync_api import Page, expect

from shop.demo import DEMO_SHOPPER
from tests.browser import chromium, close_page, code_from_phone, live_server, make_live_app
from tests.test_browser_stepup import buy, new_page, phone_messages, sign_in

VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
}
# Keeps the form's submit until the test lets it go: the assertion is made, then held.
HOLD_SUBMIT = """() => {
  const submit = HTMLFormElement.prototype.submit;
  HTMLFormElement.prototype.submit = function () { window.heldForm = this; };
  window.releaseForm = () => submit.call(window.heldForm);
}"""


def add_virtual_authenticator(page: Page) -> str:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    return cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})[
        "authenticatorId"
    ]


def confirm_it_is_me(page: Page) -> None:
    page.goto("/account/security")
    page.get_by_role("button", name="Confirm it is you").click()
    expect(page).to_have_url(re.compile(r"/account/security/confirm$"))
    # The demo shopper has only SMS so far: the code goes out at once.
    page.get_by_label("Code from the SMS").fill(code_from_phone(page, DEMO_SHOPPER.phone))
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.locator(".flashes")).to_contain_text("for the next 5 minutes")


def test_a_passkey_made_in_chromium_confirms_a_329_order_and_a_changed_cart_kills_it(
    tmp_path, migrated_template
):
    with (
        live_server(make_live_app(tmp_path, migrated_template)) as url,
        chromium() as browser,
    ):
        # A relying party id is a domain, never an IP address: the shop, served on
        # 127.0.0.1 with PUBLIC_BASE_URL there, names its passkeys for localhost (as `make run`).
        page = new_page(browser, url.replace("127.0.0.1", "localhost"))
        add_virtual_authenticator(page)
        sign_in(page, DEMO_SHOPPER.email, DEMO_SHOPPER.password, DEMO_SHOPPER.phone)

        # Enrol: a fresh step-up first, then the passkey, then ten recovery codes shown once.
        confirm_it_is_me(page)
        page.get_by_label("Name of this passkey").fill("Test laptop")
        page.get_by_role("button", name="Add a passkey").click()
        expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
        expect(page.locator("[data-recovery-codes] li")).to_have_count(10)
        page.get_by_role("link", name="I have saved them").click()
        expect(page.locator("[data-passkey='Test laptop']")).to_contain_text("not used yet")

        # A 329.00 order: the passkey is offered first, and no SMS is sent.
        buy(page, "Office chair")
        expect(page).to_have_url(re.compile(r"/checkout/verify/SH-[A-Z0-9]{8}$"))
        ref = page.url.rsplit("/", 1)[-1]
        expect(page.get_by_role("heading", name="With a passkey")).to_be_visible()
        expect(page.get_by_role("button", name="Send me a code by SMS")).to_be_visible()
        page.get_by_role("button", name="Use my passkey").click()
        expect(page).to_have_url(re.compile(rf"/orders/{ref}$"))
        expect(page.locator(".flashes")).to_contain_text(f"Order {ref} is confirmed and placed.")
        expect(page.get_by_role("main")).to_contain_text("Confirmed with a passkey")

        # The same again, but the cart changes between the signature and its submission.
        buy(page, "Office chair")
        expect(page).to_have_url(re.compile(r"/checkout/verify/SH-[A-Z0-9]{8}$"))
        page.evaluate(HOLD_SUBMIT)
        page.get_by_role("button", name="Use my passkey").click()
        page.wait_for_function("() => window.heldForm !== undefined")
        other = page.context.new_page()
        other.goto("/")
        other.get_by_label("Quantity of Enamel pin", exact=True).fill("1")
        other.get_by_role("button", name="Add to cart: Enamel pin").click()
        close_page(other)
        page.evaluate("() => window.releaseForm()")
        expect(page.get_by_role("main")).to_contain_text("Your cart changed")

        page.wait_for_timeout(500)
        messages = phone_messages(page)
        assert "A passkey (Test laptop) was added to your account" in messages
        assert "is your code to confirm order" not in messages.split("was added")[0]
