"""Security headers on every response (defect 4), by walking the URL map: a strict CSP with
no inline script or style and no framing, nosniff, no-store on everything but the public
catalog, no Referer from a page whose URL carries a token, HSTS outside debug mode."""

import re
from pathlib import Path

import pytest

from shop.web.headers import PUBLIC_ENDPOINTS
from tests.conftest import CSRF_FIELD
from tests.security.world import is_api, methods_of, routes, url_of

TEMPLATES = Path(__file__).resolve().parents[2] / "shop" / "templates"


def get_every_page(app, client, world):
    """(rule, response) for every GET route, as the user who may see it."""
    values = world.path_values()
    for rule in routes(app):
        if "GET" not in methods_of(rule):
            continue
        client.sign_in_as(world.owner if rule.endpoint.startswith("admin.") else world.shopper)
        headers = {"Authorization": f"Bearer {world.api_secret}"} if is_api(rule) else {}
        response = client.get(url_of(rule, values), headers=headers)
        yield rule, response
        response.close()


def test_every_get_route_answers_with_the_security_headers(app, client, world):
    seen = []
    for rule, response in get_every_page(app, client, world):
        seen.append(rule.endpoint)
        # A code page's status with no code waiting (no sign-in pending here) is a 404.
        allowed = (200, 302, 404) if rule.endpoint.endswith("_status") else (200, 302)
        assert response.status_code in allowed, (rule.rule, response.status_code)
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
        if rule.endpoint in PUBLIC_ENDPOINTS:
            assert "no-store" not in headers.get("Cache-Control", ""), rule.rule
        else:
            assert headers["Cache-Control"] == "no-store", rule.rule
        expected = "no-referrer" if rule.endpoint == "account.not_me" else "same-origin"
        assert headers["Referrer-Policy"] == expected, rule.rule
    assert {"checkout.verify", "account.security", "account.not_me", "admin.dashboard"} <= set(seen)


def test_code_account_and_order_pages_are_never_stored(app, client, world):
    private = [
        "/auth/login",
        "/auth/register",
        f"/checkout/verify/{world.pending.ref}",
        "/account/security",
        "/account/phone",
        f"/orders/{world.placed.ref}",
        f"/account/not-me/{world.not_me_token}",
    ]
    client.sign_in_as(world.shopper)
    for path in private:
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_errors_carry_the_headers_too(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_no_hsts_in_debug_mode(build_app):
    app = build_app(DEBUG=True)
    with app.app_context():
        response = app.test_client().get("/auth/login")
    assert "Strict-Transport-Security" not in response.headers
    assert "Content-Security-Policy" in response.headers


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: p.name)
def test_no_template_has_inline_script_style_or_handlers(template):
    text = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)", text), template
    assert "<style" not in text
    assert not re.search(r"\sstyle=", text)
    assert not re.search(r"\son[a-z]+=", text)
    assert "javascript:" not in text


def test_the_not_me_form_works_over_https_without_a_referer_but_not_without_its_token(
    client, world
):
    path = f"/account/not-me/{world.not_me_token}"
    https = {"base_url": "https://shop.example"}
    page = client.get(path, **https)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    token = CSRF_FIELD.search(page.get_data(as_text=True)).group(1)
    assert client.post(path, data={}, **https).status_code == 400
    assert client.post(path, data={"csrf_token": "forged"}, **https).status_code == 400
    done = client.post(path, data={"csrf_token": token}, **https)  # no Referer: no-referrer
    assert done.status_code == 200
    assert "signed out" in done.get_data(as_text=True).lower()
    # Elsewhere over https the Referer check stays.
    login = client.get("/auth/login", **https).get_data(as_text=True)
    token = CSRF_FIELD.search(login).group(1)
    refused = client.post("/auth/login", data={"csrf_token": token, "email": "x"}, **https)
    assert refused.status_code == 400
