"""The owner closes the loop in a real browser, as on `make run`: the review queue, one held
order approved and another cancelled (the shoppers' phones show the messages), then a
pumping run through the registration form that shows in the SMS console and raises the
alarm (banner, and the SMS on the owner's phone).

Screenshots of the owner's pages go to $SHOP_SCREENSHOTS if set, else to the test's temporary
folder; their paths are printed (`pytest -s`).
"""

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Locator, Page, expect

from shop.demo import DEMO_OWNER
from shop.extensions import db
from tests.browser import chromium, close_page, live_server, make_live_app
from tests.factories import make_held_order, make_user
from tests.pumping import pump
from tests.test_browser_stepup import new_page, sign_in

SHOPPERS = {"approved": "+447700900601", "cancelled": "+447700900602"}
CHEAP_HASH = "pbkdf2:sha256:1000"  # 300 sign-ups in the pumping run; not what is tested


@pytest.fixture
def screenshots(tmp_path) -> Iterator[Path]:
    folder = Path(os.environ.get("SHOP_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    for shot in sorted(folder.glob("*.png")):
        print(f"screenshot: {shot}")


def shoot(page: Page, folder: Path, name: str) -> None:
    """The top of the page, up to 2,000 pixels (the SMS log below runs long)."""
    height = min(2000, page.evaluate("document.documentElement.scrollHeight"))
    clip = {"x": 0, "y": 0, "width": 1280, "height": height}
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True, clip=clip)


def phone_shows(page: Page, number: str, text: str, timeout: float = 30) -> str:
    """Wait until the demo phone of `number` shows `text` (the delivery loop sends it)."""
    tab = page.context.new_page()
    try:
        deadline = time.monotonic() + timeout
        while True:
            tab.goto(f"/dev/phone?to={quote(number)}")
            inbox = tab.locator(".inbox").inner_text() if tab.locator(".inbox").count() else ""
            if text in inbox or time.monotonic() > deadline:
                assert text in inbox, f"{number} did not get “{text}”:\n{inbox}"
                return inbox
            tab.wait_for_timeout(300)
    finally:
        close_page(tab)


def queue_pages(page: Page) -> Iterator[list[str]]:
    """The references of each page of the review queue, from the dashboard's oldest held
    orders on (the demo's own come first), the browser on that page meanwhile."""
    page.goto("/admin")
    while True:
        yield page.locator("#review article.held-order").evaluate_all(
            "cards => cards.map(card => card.dataset.ref)"
        )
        following = page.get_by_role("link", name="Next held orders")
        if not following.count():
            return
        href = following.get_attribute("href")
        following.click()
        page.wait_for_url(lambda url, href=href: url.endswith(href))


def queue_card(page: Page, ref: str) -> Locator:
    """The review queue's card of `ref`, on the page of the queue that shows it."""
    for refs in queue_pages(page):
        if ref in refs:
            return page.locator("#review").locator(f'article[data-ref="{ref}"]')
    raise AssertionError(f"{ref} is not in the review queue")


def test_the_owner_reviews_held_orders_and_sees_a_pumping_run(
    tmp_path, migrated_template, screenshots
):
    app = make_live_app(tmp_path, migrated_template, PASSWORD_HASH_METHOD=CHEAP_HASH)
    with app.app_context():
        held = {
            outcome: make_held_order(make_user(f"{outcome}@example.com", phone=phone)).ref
            for outcome, phone in SHOPPERS.items()
        }
        db.session.remove()

    with live_server(app) as url, chromium() as browser:
        owner = new_page(browser, url)
        sign_in(owner, DEMO_OWNER.email, DEMO_OWNER.password, DEMO_OWNER.phone)

        # The queue, first thing on /admin, with the count in the navigation.
        owner.goto("/admin")
        nav = owner.get_by_role("navigation", name="Admin")
        waiting = nav.get_by_role("link", name=re.compile(r"Review queue: \d+ held"))
        expect(waiting).to_be_visible()
        held_before = int(re.search(r"\d+", waiting.inner_text()).group())
        shoot(owner, screenshots, "01-review-queue")
        for ref in held.values():
            expect(queue_card(owner, ref)).to_contain_text(
                "Large orders are reviewed by the shop first."
            )

        # Approve one...
        card = queue_card(owner, held["approved"])
        card.get_by_label(f"Note for approving {held['approved']}").fill(
            "Regular customer, confirmed by phone."
        )
        card.get_by_role("button", name="Approve").click()
        expect(owner.locator(".flashes")).to_contain_text(
            f"Order {held['approved']} is approved and placed."
        )
        # ...and cancel the other.
        card = queue_card(owner, held["cancelled"])
        card.get_by_label(f"Note for cancelling {held['cancelled']}").fill("Card holder denies it.")
        card.get_by_role("button", name="Cancel the order").click()
        expect(owner.locator(".flashes")).to_contain_text(
            f"Order {held['cancelled']} is cancelled."
        )
        expect(
            nav.get_by_role("link", name=f"Review queue: {held_before - 2} held")
        ).to_be_visible()
        shoot(owner, screenshots, "02-queue-after-decisions")
        still_queued = [ref for refs in queue_pages(owner) for ref in refs]
        assert held["approved"] not in still_queued and held["cancelled"] not in still_queued
        assert len(still_queued) == held_before - 2

        # The shoppers' phones.
        phone_shows(owner, SHOPPERS["approved"], f"order {held['approved']} for €")
        approved = phone_shows(owner, SHOPPERS["approved"], "was approved after review")
        assert "Not you?" in approved
        phone_shows(owner, SHOPPERS["cancelled"], "was cancelled by the shop. Nothing was charged.")

        # The order's timeline, with who decided and the note.
        owner.goto(f"/admin/orders/{held['cancelled']}")
        timeline = owner.locator("ol.timeline")
        expect(timeline).to_contain_text(f"Cancelled by {DEMO_OWNER.email}.")
        expect(timeline).to_contain_text("Card holder denies it.")
        expect(timeline).to_contain_text("1 item went back into stock.")
        expect(timeline).to_contain_text("The cancellation message was handed to the SMS provider.")
        shoot(owner, screenshots, "03-cancelled-order-timeline")

        # A pumping run: 300 sign-ups over many numbers, addresses and countries.
        run = pump(app, 300)
        assert run.attempts == 300 and len(run.addresses) >= 50 and len(run.numbers) > 100

        owner.goto("/admin/sms")
        countries = owner.get_by_role("table", name=re.compile("By destination country"))
        expect(countries.locator('tr[data-country="FR"] [data-abuse="conversion"]')).to_have_text(
            "—"
        )
        # The owner's own sign-in code is the only GB code entered: conversion near zero.
        gb = countries.locator('tr[data-country="GB"] [data-abuse="conversion"]').inner_text()
        assert float(gb.rstrip("%")) < 5, gb
        # The delivery process checks the last hour every few seconds and raises the alarm.
        deadline = time.monotonic() + 40
        while not owner.locator(".alarm").count() and time.monotonic() < deadline:
            owner.wait_for_timeout(1000)
            owner.reload()
        expect(owner.locator(".alarm").first).to_contain_text("code sends were refused")
        shoot(owner, screenshots, "04-sms-console-after-pumping")
        alarm = phone_shows(owner, DEMO_OWNER.phone, "SMS abuse alert")
        assert "code sends were refused in the last hour" in alarm

        owner.goto("/admin/settings")
        shoot(owner, screenshots, "05-settings")
