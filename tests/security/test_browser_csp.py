"""The Content-Security-Policy in a real browser (Debian's Chromium): every page of the shop,
the owner's dashboard with its charts and the API's Swagger UI included, renders without a
single CSP violation, and no other site can frame the shop."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from shop.demo import DEMO_OWNER
from tests.browser import chromium, code_from_phone, live_server, make_live_app

PAGES = [
    "/",
    "/products/1",
    "/cart",
    "/auth/register",
    "/orders",
    "/account/alerts",
    "/account/phone",
    "/account/security",
    "/admin",
    "/admin/risk",
    "/admin/orders",
    "/admin/sms",
    "/admin/audit",
    "/api/v1/docs",
    "/dev/phone",
]


@pytest.fixture
def site(tmp_path, migrated_template) -> Iterator[tuple[str, Page, list[str]]]:
    with live_server(make_live_app(tmp_path, migrated_template)) as url, chromium() as browser:
        context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        problems: list[str] = []

        def console(message) -> None:
            # Any console error counts, the browser's own request for an icon included.
            if message.type == "error":
                problems.append(f"{page.url}: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
        yield url, page, problems
        context.close()


def sign_in_as_owner(page: Page) -> None:
    page.goto("/auth/login")
    page.get_by_label("E-mail", exact=True).fill(DEMO_OWNER.email)
    page.get_by_label("Password", exact=True).fill(DEMO_OWNER.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/auth/login/verify$"))
    page.get_by_label("Code from the SMS").fill(code_from_phone(page, DEMO_OWNER.phone))
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".flashes")).to_contain_text("You are signed in.")


def test_every_page_renders_without_a_csp_violation(site):
    _, page, problems = site
    sign_in_as_owner(page)
    for path in PAGES:
        page.goto(path)
        page.wait_for_load_state("networkidle")
    # The Swagger UI really ran under the policy (its script is ours, served from here).
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .information-container")).to_be_visible()
    # The dashboard's charts keep their size from the stylesheet, not from style attributes.
    page.goto("/admin")
    width = page.locator("svg.day-chart").first.evaluate("e => getComputedStyle(e).maxWidth")
    assert width == "720px"
    csp = [problem for problem in problems if "Content Security Policy" in problem]
    assert csp == [], "\n".join(csp)
    assert problems == [], "\n".join(problems)


def test_no_other_site_can_frame_the_shop(site):
    url, page, problems = site
    page.set_content(f'<iframe id="shop" src="{url}/auth/login"></iframe>')
    page.wait_for_timeout(1_000)
    frame = page.frame_locator("#shop")
    expect(frame.get_by_label("Password", exact=True)).to_have_count(0)
    assert any("frame-ancestors" in problem or "Refused to" in problem for problem in problems) or (
        page.frames[-1].url in ("", "about:blank", "chrome-error://chromewebdata/")
    )
