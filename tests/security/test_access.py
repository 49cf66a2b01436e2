"""IDOR: one shopper reaching for another's order, code page, resend, "not me" link, API
token or challenge, or a shopper for the owner's pages; each is refused exactly like
something that does not exist, and nothing changes (SPEC section 7)."""

from sqlalchemy import func, select

from shop.extensions import db
from shop.models import SmsMessage
from tests.security.world import methods_of, routes, snapshot, url_of


def sms_count() -> int:
    return db.session.scalar(select(func.count(SmsMessage.id)))


def test_another_shoppers_orders_code_page_and_resend_are_not_found(client, world):
    client.sign_in_as(world.other)
    before, sent = snapshot(), sms_count()
    for path in (
        f"/orders/{world.placed.ref}",
        f"/orders/{world.pending.ref}",
        f"/checkout/verify/{world.pending.ref}",
    ):
        assert client.get(path).status_code == 404, path
    assert (
        client.post_form(f"/checkout/verify/{world.pending.ref}", {"code": "123456"}).status_code
        == 404
    )
    assert client.post_form(f"/checkout/verify/{world.pending.ref}/resend").status_code == 404
    assert (
        client.post_form(f"/account/security/tokens/{world.api_token.id}/revoke").status_code == 404
    )
    assert snapshot() == before and sms_count() == sent
    assert world.pending.ref not in client.get("/orders").get_data(as_text=True)


def test_a_forged_or_tampered_not_me_link_does_nothing(client, world):
    before = snapshot()
    token = world.not_me_token
    for forged in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "x" * 60):
        assert client.get(f"/account/not-me/{forged}").status_code == 404
        assert client.post_form(f"/account/not-me/{forged}").status_code == 404
    assert snapshot() == before


def test_a_shopper_gets_403_on_every_admin_route_and_changes_nothing(app, client, world):
    client.sign_in_as(world.shopper)
    values = world.path_values()
    before = snapshot()
    tried = 0
    for rule in routes(app):
        if not rule.endpoint.startswith("admin."):
            continue
        for method in methods_of(rule):
            data = {"csrf_token": client.csrf_token()} if method != "GET" else None
            response = client.open(url_of(rule, values), method=method, data=data)
            assert response.status_code == 403, (method, rule.rule)
            tried += 1
    assert tried >= 6
    assert snapshot() == before


def test_a_stranger_is_sent_to_sign_in_from_every_admin_route(app, client, world):
    values = world.path_values()
    for rule in routes(app):
        if rule.endpoint.startswith("admin.") and "GET" in methods_of(rule):
            response = client.get(url_of(rule, values))
            assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_the_api_hides_another_shoppers_orders_and_challenges(client, world):
    from shop.accounts.client import Client
    from shop.accounts.tokens import issue_token

    headers = {"Authorization": f"Bearer {issue_token(world.other, 'x', Client('127.0.0.1'))}"}
    before, sent = snapshot(), sms_count()
    challenge = world.challenge.public_id
    answers = [
        client.get(f"/api/v1/orders/{world.pending.ref}", headers=headers),
        client.get(f"/api/v1/orders/{world.placed.ref}", headers=headers),
        client.get(f"/api/v1/challenges/{challenge}", headers=headers),
        client.post(
            f"/api/v1/challenges/{challenge}/verify", json={"code": "123456"}, headers=headers
        ),
        client.post(f"/api/v1/challenges/{challenge}/resend", headers=headers),
    ]
    assert [answer.status_code for answer in answers] == [404] * 5
    assert {answer.json["type"] for answer in answers} <= {
        "about:blank",
        "urn:shop:problem:not_found",
    }
    listed = client.get("/api/v1/orders", headers=headers).json
    assert world.placed.ref not in str(listed)
    assert snapshot() == before and sms_count() == sent


def test_a_revoked_or_made_up_bearer_token_opens_nothing(client, world):
    for token in ("shop_" + "A" * 43, world.api_secret[:-1] + "x", ""):
        response = client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
