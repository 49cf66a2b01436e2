"""The demo phone at /dev/phone: only with the console backend, newest first, bodies escaped."""

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from shop import create_app
from shop.blueprints.dev import linkify
from shop.extensions import db
from shop.models import ConsoleMessage, SmsKind, SmsMessage, SmsStatus
from tests.conftest import ShopClient, config_for

START = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def build_app(tmp_path, migrated_template, backend: str):
    path = tmp_path / f"{backend}.sqlite3"
    shutil.copy(migrated_template, path)
    app = create_app(config_for(path) | {"SMS_BACKEND": backend})
    app.test_client_class = ShopClient
    return app


@pytest.fixture
def app(tmp_path, migrated_template):
    """Console backend whatever the environment says."""
    app = build_app(tmp_path, migrated_template, "console")
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def received(to_number: str, body: str, minutes: int) -> ConsoleMessage:
    sms = SmsMessage(
        to_number=to_number, kind=SmsKind.ALERT_NEW_DEVICE, body=body, status=SmsStatus.SENT
    )
    db.session.add(sms)
    db.session.flush()
    message = ConsoleMessage(
        sms_id=sms.id,
        to_number=to_number,
        body=body,
        received_at=START + timedelta(minutes=minutes),
    )
    db.session.add(message)
    db.session.commit()
    return message


def test_messages_newest_first_with_a_refresh_control_and_no_self_reload(client):
    received("+447700900123", "First message", minutes=1)
    received("+447700900124", "Third message", minutes=3)
    received("+447700900123", "Second message", minutes=2)
    response = client.get("/dev/phone")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.index("Third") < page.index("Second") < page.index("First")
    # No reload every 3 s (it moved focus and re-read the page to screen readers): a Refresh
    # link, and a script that adds new messages to a polite live region, with a pause button.
    assert 'http-equiv="refresh"' not in page and "<style" not in page
    assert 'href="/dev/phone" data-refresh>Refresh</a>' in page
    assert 'role="status" data-phone-status' in page and "dev-phone.js" in page
    assert 'aria-pressed="false" data-pause hidden>Pause live updates' in page
    assert "only with the console SMS backend" in page
    assert "+447700900124" in page and "12:03:00" in page


@pytest.mark.parametrize("to", ["%2B447700900123", "+447700900123", "447700900123"])
def test_filter_by_phone(client, to):
    received("+447700900123", "For one two three", minutes=1)
    received("+447700900124", "For one two four", minutes=2)
    page = client.get(f"/dev/phone?to={to}").get_data(as_text=True)
    assert "For one two three" in page
    assert "For one two four" not in page


def test_a_filter_that_is_not_a_number_is_400(client):
    assert client.get("/dev/phone?to=someone").status_code == 400


def test_bodies_are_escaped(client):
    received("+447700900123", '<script>alert("hi")</script> & <b>bold</b>', minutes=1)
    page = client.get("/dev/phone").get_data(as_text=True)
    assert "<script>alert" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page


def test_the_not_me_link_is_clickable(client):
    url = "http://127.0.0.1:5000/account/not-me/eyJ1IjoxfQ.Zx9-Ab_c"
    received("+447700900123", f"Shop: new sign-in on your account. Not you? {url}.", minutes=1)
    page = client.get("/dev/phone").get_data(as_text=True)
    assert f'<a href="{url}" rel="noreferrer">{url}</a>.' in page


def test_linkify_escapes_and_refuses_other_schemes():
    assert linkify("<i>x</i>") == "&lt;i&gt;x&lt;/i&gt;"
    assert linkify("javascript:alert(1) data:text/html,x") == "javascript:alert(1) data:text/html,x"
    assert linkify('see https://example.com/a?b=1&c=2"><script>, ok') == (
        'see <a href="https://example.com/a?b=1&amp;c=2" rel="noreferrer">'
        "https://example.com/a?b=1&amp;c=2</a>&#34;&gt;&lt;script&gt;, ok"
    )
    assert linkify("(http://example.com/x)") == (
        '(<a href="http://example.com/x" rel="noreferrer">http://example.com/x</a>)'
    )


def test_there_is_no_phone_page_with_a_real_provider(tmp_path, migrated_template):
    app = build_app(tmp_path, migrated_template, "vonage")
    with app.app_context():
        try:
            response = app.test_client().get("/dev/phone")
        finally:
            db.session.remove()
            db.engine.dispose()
    assert response.status_code == 404
    assert "dev.phone" not in app.view_functions
