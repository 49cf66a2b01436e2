"""Step-up factors in a real Chromium. The DevTools virtual authenticator (ctap2, internal,
resident key, user verification) enrols a passkey on /account/security and confirms a 329.00
order with it; an assertion made before the cart changed confirms nothing; a copy of the
credential whose counter fell behind is refused. An authenticator app (the key read off the
set-up page, codes from `pyotp`) confirms an order, a recovery code works once, and "not me"
from the enrolment alert removes the factors added since.

The relying party id is a domain, never an IP address: the shop, served on 127.0.0.1 with
PUBLIC_BASE_URL there, names its passkeys for localhost (as `make run` does), so the
browser goes to localhost.
"""

import re
import time

import pyotp
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from shop.demo import DEMO_SHOPPER
from shop.extensions import db
from shop.models import AuthenticatorApp, Passkey, RecoveryCode
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


def add_virtual_authenticator(page: Page):
    """A CDP session with a virtual authenticator on it; returns (session, authenticator id)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})
    return cdp, added["authenticatorId"]


def confirm_it_is_me(page: Page) -> None:
    page.goto("/account/security")
    page.get_by_role("button", name="Confirm it is you").click()
    expect(page).to_have_url(re.compile(r"/account/security/confirm$"))
    # The demo shopper has only SMS so far: the code goes out at once.
    page.get_by_label("Code from the SMS").fill(code_from_phone(page, DEMO_SHOPPER.phone))
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.locator(".flashes")).to_contain_text("for the next 5 minutes")


def enrol_passkey(page: Page, name: str) -> list[str]:
    """Add a passkey on /account/security; the ten recovery codes shown once."""
    confirm_it_is_me(page)
    page.get_by_label("Name of this passkey").fill(name)
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.locator("[data-recovery-codes] li")
    expect(codes).to_have_count(10)
    shown = [codes.nth(index).inner_text().strip() for index in range(10)]
    page.get_by_role("link", name="I have saved them").click()
    expect(page.locator(f"[data-passkey='{name}']")).to_contain_text("not used yet")
    return shown


def test_a_passkey_made_in_chromium_confirms_a_329_order_and_a_changed_cart_kills_it(
    tmp_path, migrated_template
):
    with (
        live_server(make_live_app(tmp_path, migrated_template)) as url,
        chromium() as browser,
    ):
        page = new_page(browser, url.replace("127.0.0.1", "localhost"))
        add_virtual_authenticator(page)
        sign_in(page, DEMO_SHOPPER.email, DEMO_SHOPPER.password, DEMO_SHOPPER.phone)

        # Enrol: a fresh step-up first, then the passkey, then ten recovery codes shown once.
        enrol_passkey(page, "Test laptop")

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


def test_a_copy_of_the_passkey_whose_counter_fell_behind_is_refused(tmp_path, migrated_template):
    with (
        live_server(make_live_app(tmp_path, migrated_template)) as url,
        chromium() as browser,
    ):
        page = new_page(browser, url.replace("127.0.0.1", "localhost"))
        cdp, original = add_virtual_authenticator(page)
        sign_in(page, DEMO_SHOPPER.email, DEMO_SHOPPER.password, DEMO_SHOPPER.phone)
        enrol_passkey(page, "Test laptop")
        # The copy is taken now (private key and counter), as malware or a backup would.
        [copy] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": original})["credentials"]

        buy(page, "Office chair")
        page.get_by_role("button", name="Use my passkey").click()
        expect(page.locator(".flashes")).to_contain_text("is confirmed and placed")

        # The real authenticator goes; the copy, its counter behind, signs the next order.
        cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": original})
        clone = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})
        cdp.send(
            "WebAuthn.addCredential",
            {"authenticatorId": clone["authenticatorId"], "credential": copy},
        )
        buy(page, "Office chair")
        ref = page.url.rsplit("/", 1)[-1]
        page.get_by_role("button", name="Use my passkey").click()

        expect(page.get_by_role("main")).to_contain_text("counter went backwards")
        expect(page.get_by_role("main")).to_contain_text("4 attempts left")
        expect(page).to_have_url(re.compile(rf"/checkout/verify/{ref}(/factor)?$"))


def test_an_app_code_and_a_recovery_code_confirm_orders_and_not_me_removes_them(
    tmp_path, migrated_template
):
    app = make_live_app(tmp_path, migrated_template)
    with live_server(app) as url, chromium() as browser:
        page = new_page(browser, url)
        sign_in(page, DEMO_SHOPPER.email, DEMO_SHOPPER.password, DEMO_SHOPPER.phone)

        # Set up the app from the key on the page (a phone would scan the QR code).
        confirm_it_is_me(page)
        page.get_by_role("button", name="Set up an authenticator app").click()
        expect(page.locator(".qr-code svg")).to_be_visible()
        authenticator = pyotp.TOTP(page.locator("[data-secret]").inner_text().strip())
        page.get_by_label("Code from your authenticator app").fill(authenticator.now())
        page.get_by_role("button", name="Finish setting up").click()
        expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
        recovery = page.locator("[data-recovery-codes] li").first.inner_text().strip()
        page.get_by_role("link", name="I have saved them").click()

        # A 329.00 order: the app is offered before SMS, and no SMS is sent. The set-up used
        # this step's code: the next step's is within the window and has not been used.
        buy(page, "Office chair")
        expect(page.get_by_role("heading", name="With your authenticator app")).to_be_visible()
        page.get_by_label("Code from your authenticator app").fill(
            authenticator.at(time.time() + 30)
        )
        page.get_by_role("button", name="Confirm with the app code").click()
        expect(page.locator(".flashes")).to_contain_text("is confirmed and placed")

        # A recovery code confirms the next one, once.
        for attempt in range(2):
            buy(page, "Office chair")
            page.get_by_text("Use a recovery code").click()
            page.get_by_label("Recovery code").fill(recovery)
            page.get_by_role("button", name="Confirm with a recovery code").click()
            if attempt == 0:
                expect(page.locator(".flashes")).to_contain_text("is confirmed and placed")
            else:
                expect(page.get_by_role("main")).to_contain_text("already used")

        # The alerts, with their "not me" link; following it removes the app and its codes.
        page.wait_for_timeout(500)
        messages = phone_messages(page)
        assert "An authenticator app was added to your account" in messages
        assert "a recovery code was used to confirm it is you; 9 left" in messages
        link = re.search(r"Not you\? (\S+/account/not-me/\S+)", messages)
        assert link, messages
        tab = page.context.new_page()
        tab.goto(link.group(1))
        tab.get_by_role("button", name="Lock my account").click()
        expect(tab.get_by_role("main")).to_contain_text("signed out everywhere")
        close_page(tab)
        with app.app_context():
            assert db.session.scalar(select(func.count(AuthenticatorApp.id))) == 0
            assert db.session.scalar(select(func.count(RecoveryCode.id))) == 0
            assert db.session.scalar(select(func.count(Passkey.id))) == 0
            db.session.remove()
