"""A real browser against a real server: the shop on a live port, driven by Debian's Chromium.

Nothing here downloads a browser: Playwright is pointed at `/usr/bin/chromium` from the Debian
package (`.ci/run` installs it), and a missing binary fails the test rather than skipping it.
"""

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import make_server

from shop import create_app
from shop.cli import HOUSEKEEPING
from shop.demo import seed_demo
from shop.extensions import db
from shop.sms.delivery import start_in_thread
from shop.sms.senders import ConsoleSender
from tests.conftest import config_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
# The demo accounts are seeded but never signed in with here: a cheap hash keeps setup quick.
# The shopper this test registers goes through the app's real (slow) scrypt setting.
DEMO_HASH_METHOD = "pbkdf2:sha256:1000"


def live_config(database_path: Path) -> dict:
    return {
        **config_for(database_path),
        # This test server speaks plain http on 127.0.0.1, where a browser drops `Secure`
        # cookies. Production keeps the Secure default from `shop.config.Config`.
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
    }


def make_live_app(tmp_path: Path, migrated_template: Path, **overrides) -> Flask:
    """The shop on a migrated SQLite copy, with the demo catalog and accounts loaded."""
    path = tmp_path / "shop.sqlite3"
    shutil.copy(migrated_template, path)
    app = create_app({**live_config(path), **overrides})
    with app.app_context():
        seed_demo(app.config["SHOP_CURRENCY"], DEMO_HASH_METHOD)
        db.session.remove()
    return app


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 in a daemon thread, with an SMS delivery loop
    beside it as `make run` has; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # Links in SMS ("not me") point at this server, as `make run`'s point at port 5000.
    app.config["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="live-shop", daemon=True)
    thread.start()
    stop_delivery = start_in_thread(app, ConsoleSender, HOUSEKEEPING)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        stop_delivery.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium under Playwright; fails (never skips) when it is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the browser test needs Debian's Chromium. "
            "Install it with `apt-get install -y --no-install-recommends chromium` "
            "(never `playwright install`).",
            pytrace=False,
        )
    no_proxy = "127.0.0.1,localhost"
    env = {**os.environ, "NO_PROXY": no_proxy, "no_proxy": no_proxy}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=env
        )
        try:
            yield browser
        finally:
            browser.close()


def close_page(page: Page) -> None:
    """Close a tab once its document has loaded.

    Chromium can acknowledge a close that races a navigation commit without closing the
    tab, and `page.close()` then waits forever (microsoft/playwright#42366, crbug 536385539);
    a CI run lost 15 minutes to it on a tab closed right after a form post. So: let the
    navigation finish, then ask for the close without waiting on the tab's own unload (our
    pages have no beforeunload handler; the context's close disposes of whatever is left).
    """
    page.wait_for_load_state("load")
    page.close(run_before_unload=True)


def code_from_phone(page: Page, phone: str) -> str:
    """Read the newest code sent to `phone` on the demo phone, in a tab of its own, as a
    person would; waits for the delivery loop to put it there (a code asked for within 30 s
    of the last one to the number goes out when that cool-down ends).

    `page` is the page the code is for (or the one loading it): once its code field is there,
    the phone is read only after that page says its own message went out. Until then the
    newest code on the phone is an older one (the registration or sign-in code just before),
    and a loaded machine delivers the new one a moment later. The password-reset page shows
    no delivery status (it would tell whether the account exists).
    """
    page.get_by_label("Code from the SMS").first.wait_for()
    status = page.locator("[data-delivery]")
    if status.count():
        expect(status.first).to_contain_text(
            re.compile("phone's network|delivered to your phone"), timeout=45_000
        )
    tab = page.context.new_page()
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            tab.goto(f"/dev/phone?to={quote(phone)}")
            newest = tab.locator(".inbox .sms-body").first
            if newest.count():
                match = re.search(r"(\d{6}) is your code", newest.inner_text())
                if match:
                    return match.group(1)
            tab.wait_for_timeout(200)
        raise AssertionError(f"no code reached {phone} on /dev/phone")
    finally:
        close_page(tab)


# What a person needs of every page: it fits a phone, it passes axe, it reads well --------------

PHONE_WIDTH = 375
SERIOUS = ("serious", "critical")


def horizontal_overflow(page: Page) -> int:
    """Pixels the page is wider than the viewport: anything over 0 means sideways scrolling."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each.

    axe-core comes inside the `axe-playwright-python` wheel (installed by `make install`):
    nothing is fetched while the tests run.
    """
    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation["impact"] in SERIOUS
    ]


# WCAG's contrast of the text of every disabled button (axe leaves disabled controls out).
DISABLED_CONTRAST = """() => {
  const rgb = (value) => value.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const luminance = ([r, g, b]) => {
    const [R, G, B] = [r, g, b].map((c) => {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  return [...document.querySelectorAll("button:disabled, input:disabled")]
    .filter((element) => element.offsetParent !== null)
    .map((element) => {
      const style = getComputedStyle(element);
      const a = luminance(rgb(style.color));
      const b = luminance(rgb(style.backgroundColor));
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      return [element.textContent.trim() || element.name, Math.round(ratio * 100) / 100];
    });
}"""


def disabled_contrast(page: Page) -> list[tuple[str, float]]:
    """(label, contrast ratio) of each visible disabled control."""
    return [tuple(pair) for pair in page.evaluate(DISABLED_CONTRAST)]
