"""The JSON API's step-up factors: an order's challenge answered with a passkey (options and
assertion on the challenge resource), an app code or a recovery code (`factor` of verify);
bad answers are a 4xx problem, counted, never a 500."""

import json

import pytest
from sqlalchemy import func, select

from shop.extensions import db
from shop.models import OtpChallenge
from tests.factories import (
    PASSWORD,
    failures,
    fill_cart,
    last_code_sent_to,
    make_product,
    make_user,
    set_rules,
)
from tests.test_api import bearer, checkout, is_problem, sign_in
from tests.test_stepup_passkeys import enrol
from tests.test_stepup_totp import set_up_app


def start(client, user, frozen_clock, key="api-factor-order-001"):
    headers = sign_in(client, user, frozen_clock)
    fill_cart(user, (make_product(price_minor=32_900), 1))
    started = checkout(client, headers, key=key)
    assert started.status_code == 202, started.json
    return headers, started.json


def passkey_options(client, headers, challenge_id) -> dict:
    answered = client.post(f"/api/v1/challenges/{challenge_id}/passkey/options", headers=headers)
    assert answered.status_code == 200, answered.json
    return answered.json["publicKey"]


def test_a_passkey_confirms_a_329_order_through_the_challenge(client, frozen_clock):
    user = make_user()
    soft = enrol(user)
    headers, order = start(client, user, frozen_clock)
    challenge = order["challenge"]
    # No SMS went out: the challenge is the order's step-up, passkey first, SMS on request.
    assert challenge["factors"] == ["passkey", "sms", "recovery"]
    assert challenge["send_at"] is None and challenge["delivery"] is None
    assert db.session.scalar(select(func.count(OtpChallenge.id))) == 1  # the sign-in's only
    fetched = client.get(f"/api/v1/challenges/{challenge['id']}", headers=headers)
    assert fetched.status_code == 200 and fetched.json["live"]

    options = passkey_options(client, headers, challenge["id"])
    assert options["userVerification"] == "required" and options["rpId"] == "localhost"
    done = client.post(
        f"/api/v1/challenges/{challenge['id']}/passkey",
        json={"credential": soft.assert_(options)},
        headers=headers,
    )

    assert done.status_code == 200, done.json
    assert done.json["order"]["status"] == "placed"
    again = client.post(
        f"/api/v1/challenges/{challenge['id']}/passkey",
        json={"credential": soft.assert_(options)},
        headers=headers,
    )
    assert again.status_code in (409, 410)


def test_sms_is_still_there_on_request(client, frozen_clock):
    user = make_user()
    enrol(user)
    headers, order = start(client, user, frozen_clock)
    sent = client.post(f"/api/v1/challenges/{order['challenge']['id']}/resend", headers=headers)
    assert sent.status_code == 201, sent.json
    assert sent.json["factors"] == ["passkey", "sms", "recovery"]
    assert sent.json["send_at"] is not None


def test_an_app_code_is_a_factor_of_verify_and_never_works_twice(client, frozen_clock):
    user = make_user()
    authenticator, _ = set_up_app(user, frozen_clock)
    headers, order = start(client, user, frozen_clock)
    challenge = order["challenge"]
    assert challenge["factors"] == ["totp", "sms", "recovery"]
    code = authenticator.at(frozen_clock.now)

    done = client.post(
        f"/api/v1/challenges/{challenge['id']}/verify",
        json={"code": code, "factor": "totp"},
        headers=headers,
    )
    assert done.status_code == 200, done.json
    assert done.json["order"]["status"] == "placed"

    fill_cart(user, (make_product(price_minor=32_900), 1))
    second = checkout(client, headers, key="api-factor-order-002").json["challenge"]
    replayed = client.post(
        f"/api/v1/challenges/{second['id']}/verify",
        json={"code": code, "factor": "totp"},
        headers=headers,
    )
    body = is_problem(replayed, 422, "wrong_code")
    assert "already used" in body["detail"] and body["tries_left"] == 4
    assert failures(user) == 1


def test_a_recovery_code_works_once(client, frozen_clock):
    user = make_user()
    _, codes = set_up_app(user, frozen_clock)
    headers, order = start(client, user, frozen_clock)
    verify = f"/api/v1/challenges/{order['challenge']['id']}/verify"
    done = client.post(verify, json={"code": codes[0], "factor": "recovery"}, headers=headers)
    assert done.status_code == 200, done.json

    fill_cart(user, (make_product(price_minor=32_900), 1))
    second = checkout(client, headers, key="api-factor-order-002").json["challenge"]
    again = client.post(
        f"/api/v1/challenges/{second['id']}/verify",
        json={"code": codes[0], "factor": "recovery"},
        headers=headers,
    )
    assert "already used" in is_problem(again, 422, "wrong_code")["detail"]


def test_a_factor_the_account_lacks_is_409_not_counted(client, frozen_clock):
    user = make_user()
    enrol(user)
    headers, order = start(client, user, frozen_clock)
    answered = client.post(
        f"/api/v1/challenges/{order['challenge']['id']}/verify",
        json={"code": "123456", "factor": "totp"},
        headers=headers,
    )
    is_problem(answered, 409, "not_allowed")
    assert failures(user) == 0


def _malformed(soft, options, **_):
    return {**soft.assert_(options), "response": "not an object"}


def _wrong_origin(soft, options, **_):
    return soft.assert_(options, origin="https://evil.example")


def _wrong_rp_id(soft, options, **_):
    return soft.assert_(options, rp_id="evil.example")


def _other_order(soft, options, other_options, **_):
    return soft.assert_(other_options)


@pytest.mark.parametrize(
    ("forge", "words"),
    [
        (_malformed, "could not be read"),
        (_wrong_origin, "another website"),
        (_wrong_rp_id, "another site"),
        (_other_order, "another request"),
    ],
)
def test_bad_assertions_are_422_counted_never_500(client, frozen_clock, forge, words):
    user = make_user()
    soft = enrol(user)
    headers, order = start(client, user, frozen_clock)
    challenge_id = order["challenge"]["id"]
    options = passkey_options(client, headers, challenge_id)
    # A challenge of another account's order, signed by this passkey, proves nothing here.
    other = make_user(email="other@example.com", phone="+447700900999")
    other_soft = enrol(other)
    fill_cart(other, (make_product(price_minor=32_900), 1))
    other_headers = sign_in(client, other, frozen_clock)
    other_order = checkout(client, other_headers, key="api-factor-other-01").json
    other_options = passkey_options(client, other_headers, other_order["challenge"]["id"])
    assert other_soft is not soft

    answered = client.post(
        f"/api/v1/challenges/{challenge_id}/passkey",
        json={"credential": forge(soft, options, other_options=other_options)},
        headers=headers,
    )

    body = is_problem(answered, 422, "wrong_code")
    assert words in body["detail"] and body["tries_left"] == 4
    assert failures(user) == 1


@pytest.mark.parametrize(
    "body",
    [{}, {"credential": "{}"}, {"credential": []}, {"credential": {}, "extra": 1}, "[]"],
)
def test_a_body_that_is_no_credential_is_422(client, frozen_clock, body):
    user = make_user()
    enrol(user)
    headers, order = start(client, user, frozen_clock)
    answered = client.post(
        f"/api/v1/challenges/{order['challenge']['id']}/passkey",
        data=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )
    assert 400 <= answered.status_code < 500 and answered.status_code != 404


def test_another_accounts_challenge_is_404(client, frozen_clock):
    user = make_user()
    enrol(user)
    _, order = start(client, user, frozen_clock)
    other = make_user(email="other@example.com", phone="+447700900999")
    other_headers = sign_in(client, other, frozen_clock)
    for path in ("passkey/options", "passkey"):
        answered = client.post(
            f"/api/v1/challenges/{order['challenge']['id']}/{path}",
            json={"credential": {"id": "x"}},
            headers=other_headers,
        )
        is_problem(answered, 404, "not_found")


def test_an_expired_challenge_is_refused(client, frozen_clock):
    user = make_user()
    soft = enrol(user)
    headers, order = start(client, user, frozen_clock)
    challenge_id = order["challenge"]["id"]
    options = passkey_options(client, headers, challenge_id)
    frozen_clock.advance(minutes=6)

    answered = client.post(
        f"/api/v1/challenges/{challenge_id}/passkey",
        json={"credential": soft.assert_(options)},
        headers=headers,
    )

    assert answered.status_code in (409, 410), answered.json
    again = client.post(f"/api/v1/challenges/{challenge_id}/passkey/options", headers=headers)
    assert again.status_code == 409


def test_a_resend_for_an_order_only_a_passkey_confirms_is_a_409_and_sends_nothing(
    client, frozen_clock
):
    user = make_user()
    enrol(user)
    set_rules(otp_threshold_factor="passkey")
    headers, order = start(client, user, frozen_clock)
    assert order["challenge"]["factors"] == ["passkey"]
    codes = db.session.scalar(select(func.count(OtpChallenge.id)))
    resent = client.post(f"/api/v1/challenges/{order['challenge']['id']}/resend", headers=headers)
    problem = is_problem(resent, 409, "not_allowed")
    assert "passkey" in problem["detail"]
    assert db.session.scalar(select(func.count(OtpChallenge.id))) == codes


def test_the_document_names_the_passkey_operations(client):
    document = client.get("/api/v1/openapi.json").json
    paths = document["paths"]
    assert "post" in paths["/api/v1/challenges/{challenge_id}/passkey/options"]
    assert "post" in paths["/api/v1/challenges/{challenge_id}/passkey"]


# An API client's sign-in: the SMS code, or an app or recovery code instead --------------------


def request_token(client, user) -> dict:
    started = client.post(
        "/api/v1/tokens", json={"email": user.email, "password": PASSWORD, "name": "tests"}
    )
    assert started.status_code == 202, started.json
    return started.json["challenge"]


def token_with(client, challenge, code, factor):
    return client.post(
        f"/api/v1/challenges/{challenge['id']}/verify", json={"code": code, "factor": factor}
    )


def test_an_api_sign_in_takes_an_app_code_once(client, frozen_clock):
    user = make_user()
    authenticator, _ = set_up_app(user, frozen_clock)
    challenge = request_token(client, user)
    assert challenge["purpose"] == "login" and challenge["factors"] == ["totp", "sms", "recovery"]
    code = authenticator.at(frozen_clock.now)

    done = token_with(client, challenge, code, "totp")

    assert done.status_code == 201, done.json
    orders = client.get("/api/v1/orders", headers=bearer(done.json["token"]["token"]))
    assert orders.status_code == 200
    # The same step again, on a new sign-in: refused and counted.
    frozen_clock.advance(seconds=30)  # past the number's cool-down
    replayed = token_with(client, request_token(client, user), code, "totp")
    assert "already used" in is_problem(replayed, 422, "wrong_code")["detail"]
    assert failures(user) == 1


def test_an_api_sign_in_takes_a_recovery_code_once(client, frozen_clock):
    user = make_user()
    _, codes = set_up_app(user, frozen_clock)
    done = token_with(client, request_token(client, user), codes[0], "recovery")
    assert done.status_code == 201, done.json
    frozen_clock.advance(seconds=30)
    again = token_with(client, request_token(client, user), codes[0], "recovery")
    assert "already used" in is_problem(again, 422, "wrong_code")["detail"]


def test_an_api_sign_in_offers_no_passkey_and_refuses_a_factor_the_account_lacks(
    client, frozen_clock
):
    user = make_user()
    enrol(user)
    challenge = request_token(client, user)
    assert challenge["factors"] == ["sms", "recovery"]  # a passkey needs the site's ceremony
    is_problem(token_with(client, challenge, "123456", "totp"), 409, "not_allowed")
    plain = make_user(email="plain@example.com", phone="+447700900998")
    frozen_clock.advance(seconds=30)
    plain_challenge = request_token(client, plain)
    assert plain_challenge["factors"] == ["sms"]
    is_problem(token_with(client, plain_challenge, "123456", "recovery"), 409, "not_allowed")
    assert failures(user) == 0 and failures(plain) == 0
    # The SMS code still signs in.
    done = token_with(client, plain_challenge, last_code_sent_to(plain.phone), "sms")
    assert done.status_code == 201, done.json
