"""Bad answers through the HTML pages: a malformed or forged attestation when adding a
passkey, a malformed or forged assertion, another order's or account's challenge, an
expired one, on the order's code page. Each is a 4xx with words a person can act on, never
a 500; a wrong answer to a step-up is counted like a wrong code."""

import json

import pytest
from sqlalchemy import func, select

from shop import clock
from shop.accounts import sessions
from shop.extensions import db
from shop.models import AuditEvent, Passkey
from tests.authenticator import SoftPasskey
from tests.factories import failures, make_user
from tests.test_stepup_passkeys import ORIGIN, checkout, enrol


def signed_in(client, user, *, stepped_up: bool = True) -> None:
    session_id = client.sign_in_as(user)
    if stepped_up:
        sessions.find_session(session_id).stepped_up_at = clock.now()
        db.session.commit()


def post_json(client, url: str):
    return client.post(url, headers={"X-CSRFToken": client.csrf_token()})


def registration_options(client) -> dict:
    answered = post_json(client, "/account/security/passkeys/options")
    assert answered.status_code == 200, answered.get_data(as_text=True)
    return answered.json


def _malformed_attestation(soft, options):
    return "{not json"


def _not_an_object(soft, options):
    return json.dumps(["a", "list"])


def _attestation_for_another_website(soft, options):
    return json.dumps(soft.register(options, origin="https://evil.example"))


def _attestation_for_another_site(soft, options):
    return json.dumps(soft.register(options, rp_id="evil.example"))


def _attestation_without_user_verification(soft, options):
    soft.user_verified = False
    return json.dumps(soft.register(options))


def _attestation_of_another_challenge(soft, options):
    return json.dumps(soft.register({**options, "challenge": "AAAAAAAAAAAAAAAAAAAAAA"}))


@pytest.mark.parametrize(
    ("forge", "words"),
    [
        (_malformed_attestation, "could not be read"),
        (_not_an_object, "could not be read"),
        (_attestation_for_another_website, "another website"),
        (_attestation_for_another_site, "another site"),
        (_attestation_without_user_verification, "did not check it was you"),
        (_attestation_of_another_challenge, "another request"),
    ],
)
def test_a_bad_attestation_is_422_in_words_audited_and_adds_nothing(client, forge, words):
    user = make_user()
    signed_in(client, user)
    options = registration_options(client)

    answered = client.post_form(
        "/account/security/passkeys",
        {"name": "Mine", "answer": forge(SoftPasskey(origin=ORIGIN), options)},
    )

    assert answered.status_code == 422
    assert words in answered.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Passkey.id))) == 0
    refused = db.session.scalar(select(AuditEvent).where(AuditEvent.event == "factor_refused"))
    assert refused is not None and refused.user_id == user.id
    # The challenge was used up: the same options answer nothing a second time.
    again = client.post_form(
        "/account/security/passkeys",
        {"name": "Mine", "answer": json.dumps(SoftPasskey(origin=ORIGIN).register(options))},
    )
    assert again.status_code == 422 and "expired or was already used" in again.get_data(
        as_text=True
    )


def test_adding_a_passkey_without_a_fresh_step_up_is_refused(client):
    signed_in(client, make_user(), stepped_up=False)
    answered = post_json(client, "/account/security/passkeys/options")
    assert answered.status_code == 403 and "confirm it is you" in answered.json["message"].lower()


def order_options(client, order) -> dict:
    answered = post_json(client, f"/checkout/verify/{order.ref}/passkey-options")
    assert answered.status_code == 200, answered.get_data(as_text=True)
    return answered.json


def _malformed(soft, options, **_):
    return "{not json"


def _wrong_origin(soft, options, **_):
    return json.dumps(soft.assert_(options, origin="https://evil.example"))


def _wrong_rp_id(soft, options, **_):
    return json.dumps(soft.assert_(options, rp_id="evil.example"))


def _another_accounts_challenge(soft, options, theirs, **_):
    return json.dumps(theirs)


def _another_orders_challenge(soft, options, older, **_):
    return json.dumps(soft.assert_(older))


def _unstorable_id(soft, options, **_):
    # JSON can carry what UTF-8 and PostgreSQL cannot: a lone surrogate, a NUL.
    return json.dumps(soft.assert_(options) | {"id": "\ud800", "rawId": "a\u0000"})


@pytest.mark.parametrize(
    ("forge", "words"),
    [
        (_malformed, "could not be read"),
        (_wrong_origin, "another website"),
        (_wrong_rp_id, "another site"),
        (_another_accounts_challenge, "not one of this account"),
        (_another_orders_challenge, "another request"),
        (_unstorable_id, "not one of this account"),
    ],
)
def test_a_bad_assertion_on_the_code_page_is_422_and_counted(client, forge, words):
    user, other = make_user(), make_user()
    soft, others = enrol(user), enrol(other)
    theirs_order, _ = checkout(other, key="bad-input-other-0001")
    signed_in(client, other)
    theirs = others.assert_(order_options(client, theirs_order))
    first, _ = checkout(user, key="bad-input-order-0001")
    signed_in(client, user)
    older = order_options(client, first)
    options = order_options(client, first)  # replaces the older challenge

    answered = client.post_form(
        f"/checkout/verify/{first.ref}/factor",
        {"factor": "passkey", "answer": forge(soft, options, theirs=theirs, older=older)},
    )

    assert answered.status_code == 422
    page = answered.get_data(as_text=True)
    assert words in page and "4 attempts left" in page
    assert failures(user) == 1
    db.session.refresh(first)
    assert first.status == "pending_verification"


def test_an_expired_step_up_on_the_code_page_is_refused(client, frozen_clock):
    user = make_user()
    soft = enrol(user)
    order, _ = checkout(user)
    signed_in(client, user)
    options = order_options(client, order)
    frozen_clock.advance(seconds=301)

    answered = client.post_form(
        f"/checkout/verify/{order.ref}/factor",
        {"factor": "passkey", "answer": json.dumps(soft.assert_(options))},
    )

    assert 400 <= answered.status_code < 500
    assert "expired" in answered.get_data(as_text=True)


def test_another_accounts_order_has_no_passkey_challenge_for_you(client):
    user, other = make_user(), make_user()
    enrol(other)
    theirs, _ = checkout(other, key="bad-input-other-0001")
    signed_in(client, user)
    assert post_json(client, f"/checkout/verify/{theirs.ref}/passkey-options").status_code == 404


@pytest.mark.parametrize(
    "data",
    [
        {"factor": "fingerprint", "answer": "123456"},
        {"factor": "passkey"},
        {"factor": "totp", "answer": "1" * 40_000},
    ],
)
def test_a_form_that_is_no_answer_is_4xx_and_not_counted(client, data):
    user = make_user()
    enrol(user)
    order, _ = checkout(user)
    signed_in(client, user)
    answered = client.post_form(f"/checkout/verify/{order.ref}/factor", data)
    assert 400 <= answered.status_code < 500
    assert failures(user) == 0
