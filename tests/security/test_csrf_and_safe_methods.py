"""CSRF on every state-changing route, and no state change on any GET, by walking the URL
map as an owner, a shopper and a stranger (SPEC sections 3 and 7)."""

import pytest

from tests.security.world import CHANGING, is_api, methods_of, routes, snapshot, url_of


def changing_routes(app):
    for rule in routes(app):
        for method in methods_of(rule):
            if method in CHANGING:
                yield rule, method


def form_for(rule) -> dict:
    """Plausible fields, so that only the missing or foreign token is wrong."""
    return {
        "email": "shopper@example.com",
        "password": "correct horse battery",
        "code": "123456",
        "product_id": "1",
        "quantity": "1",
    }


@pytest.mark.parametrize("token", ["missing", "foreign", "garbage"])
def test_every_html_post_refuses_a_missing_or_foreign_csrf_token(app, client, world, token):
    stranger = app.test_client()
    foreign = stranger.csrf_token()  # valid, but for another browser's session
    values = world.path_values()
    owner = app.test_client()
    owner.sign_in_as(world.owner)
    client.sign_in_as(world.shopper)
    before = snapshot()
    checked = []
    for rule, method in changing_routes(app):
        if is_api(rule) or rule.endpoint.startswith("webhooks."):
            continue
        browser = owner if rule.endpoint.startswith("admin.") else client
        data = form_for(rule)
        if token == "foreign":
            data["csrf_token"] = foreign
        elif token == "garbage":
            data["csrf_token"] = "IjAxMjM0NTY3ODki.aaaa.bbbb"
        response = browser.open(url_of(rule, values), method=method, data=data)
        assert response.status_code == 400, (method, rule.rule, response.status_code)
        assert "did not come from this site" in response.get_data(as_text=True), rule.rule
        checked.append(rule.endpoint)
    assert snapshot() == before
    assert {"auth.login", "auth.logout", "cart.add", "checkout.checkout", "account.not_me"} <= set(
        checked
    )


def test_an_api_call_on_the_session_cookie_needs_the_csrf_header(app, client, world):
    values = world.path_values()
    client.sign_in_as(world.shopper)
    before = snapshot()
    for rule, method in changing_routes(app):
        if not is_api(rule):
            continue
        response = client.open(url_of(rule, values), method=method, json={})
        assert response.status_code == 403, (method, rule.rule, response.status_code)
        assert response.json["type"] == "urn:shop:problem:csrf"
        foreign = client.open(
            url_of(rule, values),
            method=method,
            json={},
            headers={"X-CSRFToken": app.test_client().csrf_token()},
        )
        assert foreign.status_code == 403, (method, rule.rule)
    assert snapshot() == before


def test_webhooks_take_a_signature_instead_of_a_csrf_token(client, app):
    app.config["VONAGE_SIGNATURE_SECRET"] = "a-secret"
    before = snapshot()
    for path in ("/webhooks/vonage/delivery-receipt", "/webhooks/vonage/inbound"):
        assert client.post(path, data={"msisdn": "447700900123", "text": "STOP"}).status_code == 401
    assert snapshot() == before


@pytest.mark.parametrize("who", ["stranger", "shopper", "owner"])
def test_no_get_or_head_changes_anything(app, client, world, frozen_clock, who):
    values = world.path_values()
    if who != "stranger":
        client.sign_in_as(getattr(world, who))
    frozen_clock.advance(minutes=10)  # the pending order's code has lapsed: still no change
    before = snapshot()
    visited = 0
    for rule in routes(app):
        if "GET" not in methods_of(rule):
            continue
        headers = {"Authorization": f"Bearer {world.api_secret}"} if is_api(rule) else {}
        for method in ("GET", "HEAD"):
            response = client.open(url_of(rule, values), method=method, headers=headers)
            response.close()
            assert response.status_code < 500, rule.rule
            visited += 1
    assert visited > 40
    assert snapshot() == before
