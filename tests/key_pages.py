"""The shop's key pages, reached in a real browser as their people reach them.

A `Tour` signs a visitor, the demo shopper and the demo owner in (each in a browser context of
its own), puts the shop in the states the pages need (a cart, an order waiting for its code,
a password change waiting for its code, a "not me" link), then opens any key page on demand.
The accessibility tests and `make screenshots` both walk `KEY_PAGES`.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect

from shop import alerts
from shop.accounts import find_user_by_email
from shop.demo import DEMO_OWNER, DEMO_SHOPPER
from shop.extensions import db
from tests.browser import chromium, close_page, code_from_phone, live_server, make_live_app

DESKTOP = {"width": 1280, "height": 900}


@dataclass(frozen=True)
class KeyPage:
    name: str  # also the screenshot's file name
    who: str  # "visitor", "shopper" or "owner"
    path: str  # may name the tour's state: {order_ref}, {not_me}, {product}


KEY_PAGES = [
    KeyPage("catalog", "visitor", "/"),
    KeyPage("product", "visitor", "/products/{product}"),
    KeyPage("cart", "visitor", "/cart"),
    KeyPage("sign-in", "visitor", "/auth/login"),
    KeyPage("sign-in-code", "visitor", "/auth/login/verify"),
    KeyPage("register", "visitor", "/auth/register"),
    KeyPage("password-reset", "visitor", "/auth/reset"),
    KeyPage("password-reset-code", "visitor", "/auth/reset/verify"),
    KeyPage("not-me", "visitor", "{not_me}"),
    KeyPage("not-found", "visitor", "/products/999999"),
    KeyPage("demo-phone", "visitor", "/dev/phone"),
    KeyPage("checkout", "shopper", "/checkout"),
    KeyPage("order-code", "shopper", "/checkout/verify/{order_ref}"),
    KeyPage("orders", "shopper", "/orders"),
    KeyPage("order", "shopper", "/orders/{placed_ref}"),
    KeyPage("account-alerts", "shopper", "/account/alerts"),
    KeyPage("account-phone", "shopper", "/account/phone"),
    KeyPage("account-security", "shopper", "/account/security"),
    KeyPage("password-change-code", "shopper", "/account/security/password/verify"),
    KeyPage("admin-dashboard", "owner", "/admin"),
    KeyPage("admin-risk", "owner", "/admin/risk"),
    KeyPage("admin-orders", "owner", "/admin/orders"),
    KeyPage("admin-sms", "owner", "/admin/sms"),
    KeyPage("admin-audit", "owner", "/admin/audit"),
    KeyPage("admin-backtest", "owner", "/admin/risk"),  # then "Try against the last 30 days"
]


def new_context(browser: Browser, base_url: str) -> BrowserContext:
    context = browser.new_context(base_url=base_url, viewport=DESKTOP)
    context.set_default_timeout(20_000)
    return context


def add_to_cart(page: Page, product: str) -> None:
    page.goto("/")
    page.get_by_label(f"Quantity of {product}", exact=True).fill("1")
    page.get_by_role(
        "button", name=re.compile(rf"^Add to cart\s*:\s*{re.escape(product)}$")
    ).click()
    expect(page.locator(".flashes")).to_contain_text(f"× {product} to your cart")


def fill_address(page: Page) -> None:
    page.get_by_label("Full name", exact=True).fill("Sam Shopper")
    page.get_by_label("Address", exact=True).fill("3 Market Street")
    page.get_by_label("Town or city", exact=True).fill("York")
    page.get_by_label("Postcode", exact=True).fill("YO1 7HH")


def sign_in(page: Page, email: str, password: str, phone: str) -> None:
    page.goto("/auth/login")
    page.get_by_label("E-mail", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    if "/auth/login/verify" in page.url:
        page.get_by_label("Code from the SMS").fill(code_from_phone(page, phone))
        page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".flashes")).to_contain_text("You are signed in.")


class Tour:
    """A live shop in the states its key pages need, and a signed-in context per person."""

    def __init__(self, app: Flask, browser: Browser, base_url: str) -> None:
        self.app = app
        self.browser = browser
        self.base_url = base_url
        self.state: dict[str, str] = {}
        self.contexts = {
            who: new_context(browser, base_url) for who in ("visitor", "shopper", "owner")
        }
        self._prepare()

    def _prepare(self) -> None:
        shopper = self.contexts["shopper"].new_page()
        sign_in(shopper, DEMO_SHOPPER.email, DEMO_SHOPPER.password, DEMO_SHOPPER.phone)
        owner = self.contexts["owner"].new_page()
        sign_in(owner, DEMO_OWNER.email, DEMO_OWNER.password, DEMO_OWNER.phone)
        close_page(owner)

        # A placed order, then an order waiting for its code, then a full cart.
        add_to_cart(shopper, "Enamel pin")
        shopper.goto("/checkout")
        fill_address(shopper)
        shopper.get_by_role("button", name="Place order").click()
        self.state["placed_ref"] = shopper.url.rsplit("/", 1)[-1]
        add_to_cart(shopper, "Office chair")
        shopper.goto("/checkout")
        fill_address(shopper)
        shopper.get_by_role("button", name="Place order").click()
        expect(shopper).to_have_url(re.compile(r"/checkout/verify/SH-"))
        self.state["order_ref"] = shopper.url.rsplit("/", 1)[-1]
        add_to_cart(shopper, "Ceramic mug")
        # A password change waiting for its code.
        shopper.goto("/account/security")
        shopper.get_by_label("Current password").fill(DEMO_SHOPPER.password)
        shopper.get_by_role("button", name="Change password").click()
        expect(shopper).to_have_url(re.compile(r"/account/security/password/verify$"))
        close_page(shopper)

        # The visitor: a cart, a sign-in waiting for its code, a reset waiting for its code.
        visitor = self.contexts["visitor"].new_page()
        add_to_cart(visitor, "Sticker sheet")
        visitor.goto("/auth/login")
        visitor.get_by_label("E-mail", exact=True).fill(DEMO_OWNER.email)
        visitor.get_by_label("Password", exact=True).fill(DEMO_OWNER.password)
        visitor.get_by_role("button", name="Sign in").click()
        expect(visitor).to_have_url(re.compile(r"/auth/login/verify$"))
        visitor.goto("/auth/reset")
        visitor.get_by_label("E-mail", exact=True).fill(DEMO_OWNER.email)
        visitor.get_by_role("button", name="Send me a code").click()
        expect(visitor).to_have_url(re.compile(r"/auth/reset/verify$"))
        close_page(visitor)

        with self.app.app_context():
            user = find_user_by_email(DEMO_SHOPPER.email)
            url = alerts.not_me_url(user)
            db.session.commit()
            self.state["not_me"] = urlsplit(url).path
            self.state["product"] = "1"
            db.session.remove()

    def open(self, key_page: KeyPage) -> Page:
        page = self.contexts[key_page.who].new_page()
        page.goto(key_page.path.format(**self.state))
        if key_page.name == "admin-backtest":
            page.get_by_role("button", name="Try against the last 30 days").click()
            expect(page).to_have_url(re.compile(r"/admin/risk/backtest$"))
        page.wait_for_load_state("networkidle")
        return page

    def close(self) -> None:
        for context in self.contexts.values():
            context.close()


@contextmanager
def tour(tmp_path: Path, migrated_template: Path) -> Iterator[Tour]:
    app = make_live_app(tmp_path, migrated_template)
    with live_server(app) as base_url, chromium() as browser:
        walk = Tour(app, browser, base_url)
        try:
            yield walk
        finally:
            walk.close()
