"""Every key page in Chromium: it fits a 375 px phone without sideways scrolling, axe-core finds
no serious or critical violation (at desktop and phone widths), and disabled controls read."""

from collections.abc import Iterator

import pytest

from shop.demo import DEMO_OWNER
from tests.browser import (
    PHONE_WIDTH,
    close_page,
    disabled_contrast,
    horizontal_overflow,
    serious_violations,
)
from tests.key_pages import KEY_PAGES, Tour, new_context, tour


@pytest.fixture(scope="module")
def walk(tmp_path_factory, migrated_template) -> Iterator[Tour]:
    with tour(tmp_path_factory.mktemp("key-pages"), migrated_template) as walking:
        yield walking


def test_every_key_page_fits_a_375_px_phone(walk: Tour) -> None:
    overflowing = {}
    for key_page in KEY_PAGES:
        page = walk.open(key_page)
        page.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
        page.wait_for_timeout(50)
        if (extra := horizontal_overflow(page)) > 0:
            overflowing[key_page.name] = f"{extra} px too wide"
        close_page(page)
    assert overflowing == {}


def test_every_key_page_passes_axe_at_desktop_and_phone_widths(walk: Tour) -> None:
    found = {}
    for key_page in KEY_PAGES:
        page = walk.open(key_page)
        for width in (1280, PHONE_WIDTH):
            page.set_viewport_size({"width": width, "height": 800})
            if violations := serious_violations(page):
                found[f"{key_page.name} at {width} px"] = violations
        close_page(page)
    assert found == {}


def test_disabled_controls_are_readable(walk: Tour) -> None:
    # A sign-in code page right after sending: "Send a new code" waits out the cool-down.
    # It used to be blue on grey, about 1:1.
    context = new_context(walk.browser, walk.base_url)
    page = context.new_page()
    page.goto("/auth/login")
    page.get_by_label("E-mail", exact=True).fill(DEMO_OWNER.email)
    page.get_by_label("Password", exact=True).fill(DEMO_OWNER.password)
    page.get_by_role("button", name="Sign in").click()
    seen = disabled_contrast(page)
    context.close()
    assert [label for label, _ in seen] == ["Send a new code"]
    assert all(ratio >= 4.5 for _, ratio in seen), seen
