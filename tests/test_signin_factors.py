"""Sign-in step-up with any enrolled factor: a passkey or an app code signs in on the site
and no SMS is sent unless asked for; SMS stays the fallback; the API's sign-in still texts
its code. Wrong answers count like wrong codes."""

import json

from sqlalchemy import func, select

from shop.accounts import signin, signin_stepup
from shop.accounts.client import Client
from shop.accounts.signin import PasswordOutcome
from shop.accounts.signin_stepup import CodeOutcome
from shop.extensions import db
from shop.models import Factor, OtpChallenge, OtpFailure, OtpPurpose
from tests.factories import PASSWORD, last_code_sent_to, make_user
from tests.test_stepup_passkeys import enrol
from tests.test_stepup_totp import set_up_app

NEW_DEVICE = Client("198.51.100.30", "a-new-device", "Mozilla/5.0 Firefox/130")


def login_codes(user) -> int:
    return db.session.scalar(
        select(func.count(OtpChallenge.id)).where(
            OtpChallenge.user_id == user.id, OtpChallenge.purpose == OtpPurpose.LOGIN
        )
    )


def start(user, *, offer_factors=True):
    result = signin.sign_in_with_password(
        user.email, PASSWORD, NEW_DEVICE, offer_factors=offer_factors
    )
    assert result.outcome == PasswordOutcome.CODE_NEEDED
    return result


def test_a_passkey_signs_in_and_no_sms_is_sent(app):
    user = make_user()
    soft = enrol(user)
    result = start(user)
    assert result.send is None and login_codes(user) == 0
    assert signin_stepup.login_step_up(result.attempt).factor_list == [
        Factor.PASSKEY,
        Factor.SMS,
        Factor.RECOVERY,
    ]
    options = signin_stepup.login_passkey_options(result.attempt)

    signed_in = signin.sign_in_with_code(
        result.attempt, soft.assert_(options), NEW_DEVICE, factor=Factor.PASSKEY
    )

    assert signed_in.outcome == CodeOutcome.SIGNED_IN
    # Single use: the same attempt cannot be answered again.
    again = signin_stepup.check_login_code(
        result.attempt, soft.assert_(options), NEW_DEVICE, factor=Factor.PASSKEY
    )
    assert again.outcome == CodeOutcome.CODE_DEAD


def test_an_app_code_signs_in_and_a_wrong_one_counts(app, frozen_clock):
    user = make_user()
    authenticator, _ = set_up_app(user, frozen_clock)
    result = start(user)
    wrong = signin_stepup.check_login_code(result.attempt, "000000", NEW_DEVICE, factor=Factor.TOTP)
    assert wrong.outcome == CodeOutcome.WRONG_CODE and "4 attempts left" in wrong.message
    assert db.session.scalar(select(func.count(OtpFailure.id))) == 1

    right = signin_stepup.check_login_code(
        result.attempt, authenticator.at(frozen_clock.now), NEW_DEVICE, factor=Factor.TOTP
    )
    assert right.outcome == CodeOutcome.SIGNED_IN


def test_sms_is_the_fallback_on_request_and_a_lacking_factor_is_refused(app):
    user = make_user()
    enrol(user)
    result = start(user)
    lacking = signin_stepup.check_login_code(
        result.attempt, "123456", NEW_DEVICE, factor=Factor.TOTP
    )
    assert lacking.outcome == CodeOutcome.NOT_ALLOWED
    assert db.session.scalar(select(func.count(OtpFailure.id))) == 0

    send = signin_stepup.resend_login_code(result.attempt, NEW_DEVICE)
    assert send.challenge is not None and login_codes(user) == 1
    signed_in = signin_stepup.check_login_code(
        result.attempt, last_code_sent_to(user.phone), NEW_DEVICE
    )
    assert signed_in.outcome == CodeOutcome.SIGNED_IN


def test_without_other_factors_or_on_the_api_the_code_goes_out_at_once(app):
    sms_only = make_user()
    assert start(sms_only).send is not None and login_codes(sms_only) == 1
    with_passkey = make_user()
    enrol(with_passkey)
    assert start(with_passkey, offer_factors=False).send is not None


def test_the_sign_in_page_offers_the_passkey_and_signs_in_with_it(client):
    user = make_user()
    soft = enrol(user)
    posted = client.post_form("/auth/login", {"email": user.email, "password": PASSWORD})
    assert posted.status_code == 302 and posted.location.endswith("/auth/login/verify")
    page = client.get("/auth/login/verify").get_data(as_text=True)
    assert "With a passkey" in page and "Send me a code by SMS" in page
    token = client.csrf_token()
    options = client.post("/auth/login/verify/passkey-options", headers={"X-CSRFToken": token})
    assert options.status_code == 200, options.get_data(as_text=True)

    bad = client.post_form(
        "/auth/login/verify/factor", {"factor": "passkey", "answer": "{not json"}
    )
    assert bad.status_code == 422 and "could not be read" in bad.get_data(as_text=True)
    options = client.post("/auth/login/verify/passkey-options", headers={"X-CSRFToken": token})
    done = client.post_form(
        "/auth/login/verify/factor",
        {"factor": "passkey", "answer": json.dumps(soft.assert_(options.json))},
    )

    assert done.status_code == 302
    assert client.get("/account/security").status_code == 200


def test_without_a_pending_sign_in_there_are_no_options(client):
    token = client.csrf_token()
    answered = client.post("/auth/login/verify/passkey-options", headers={"X-CSRFToken": token})
    assert answered.status_code == 409
