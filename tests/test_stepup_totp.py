"""Authenticator apps and recovery codes as step-up, with the shop's clock frozen: the step
boundaries, a used step never accepted again, the same tries and lockout as SMS codes."""

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from shop.accounts import sessions
from shop.extensions import db
from shop.models import AuthenticatorApp, Factor, OtpChallenge, RecoveryCode, SmsMessage
from shop.orders.confirmation import ConfirmOutcome, confirm_order
from shop.stepup import enrolment, totp
from shop.stepup.enrolment import FactorOutcome
from tests.factories import last_sms_to, make_user, sms_text
from tests.test_stepup_passkeys import CLIENT, checkout


def set_up_app(user, frozen_clock) -> tuple[pyotp.TOTP, list[str]]:
    sessions.open_session(user, CLIENT, stepped_up=True)
    setup = enrolment.app_setup(user, new=True)
    app = pyotp.TOTP(setup.secret)
    assert setup.uri.startswith("otpauth://totp/Shop:") and "<svg" in setup.qr_svg
    result = enrolment.confirm_app(user, app.at(frozen_clock.now), CLIENT)
    assert result.outcome == FactorOutcome.DONE
    # The first code used the current step: the next test code must come from a later one.
    frozen_clock.advance(seconds=totp.STEP_SECONDS)
    return app, result.recovery_codes


def confirm(user, order, code, factor=Factor.TOTP):
    return confirm_order(user, order.ref, code, CLIENT, factor=factor)


def test_the_secret_is_sealed_at_rest_and_confirmed_by_a_first_code(app, frozen_clock):
    user = make_user()
    sessions.open_session(user, CLIENT, stepped_up=True)
    setup = enrolment.app_setup(user, new=True)
    row = db.session.scalar(select(AuthenticatorApp))
    assert setup.secret not in row.sealed_secret and row.sealed_secret.startswith("sealed:v1:")
    wrong = enrolment.confirm_app(user, "000000", CLIENT)
    assert wrong.outcome == FactorOutcome.REFUSED and row.confirmed_at is None
    done = enrolment.confirm_app(user, pyotp.TOTP(setup.secret).at(frozen_clock.now), CLIENT)
    assert done.outcome == FactorOutcome.DONE and len(done.recovery_codes) == 10
    assert "An authenticator app was added to your account" in sms_text(last_sms_to(user.phone))


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-60, False), (-30, True), (0, True), (30, True), (60, False)],
)
def test_a_code_one_step_either_side_is_accepted_and_no_further(
    app, frozen_clock, offset, accepted
):
    user = make_user()
    authenticator, _ = set_up_app(user, frozen_clock)
    # Exactly at the start of a step: the boundary.
    frozen_clock.now = frozen_clock.now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    order, _ = checkout(user)
    code = authenticator.at(frozen_clock.now + timedelta(seconds=offset))
    result = confirm(user, order, code)
    assert (result.outcome == ConfirmOutcome.PLACED) is accepted, result.message
    if not accepted:
        assert result.outcome == ConfirmOutcome.WRONG_CODE and result.tries_left == 4


def test_the_last_second_of_a_step_and_the_first_of_the_next(app, frozen_clock):
    user = make_user()
    authenticator, _ = set_up_app(user, frozen_clock)
    start = frozen_clock.now.replace(second=0, microsecond=0) + timedelta(minutes=2)
    frozen_clock.now = start - timedelta(seconds=1)  # step n-1's last second
    order, _ = checkout(user)
    two_back = authenticator.at(start - timedelta(seconds=61))  # step n-3
    assert confirm(user, order, two_back).outcome == ConfirmOutcome.WRONG_CODE
    frozen_clock.now = start  # step n's first second: n-2 is now two steps back
    n_minus_2 = authenticator.at(start - timedelta(seconds=31))
    assert confirm(user, order, n_minus_2).outcome == ConfirmOutcome.WRONG_CODE
    # n-1 is one step back, still accepted
    assert confirm(user, order, authenticator.at(start - timedelta(seconds=1))).outcome == (
        ConfirmOutcome.PLACED
    )


def test_a_used_step_is_never_accepted_again(app, frozen_clock):
    user = make_user()
    authenticator, _ = set_up_app(user, frozen_clock)
    first, _ = checkout(user, key="totp-order-00001")
    code = authenticator.at(frozen_clock.now)
    assert confirm(user, first, code).outcome == ConfirmOutcome.PLACED
    second, _ = checkout(user, key="totp-order-00002")
    replayed = confirm(user, second, code)
    assert replayed.outcome == ConfirmOutcome.WRONG_CODE
    assert "already used" in replayed.message
    # Nor the step before, still inside the window: steps only move forwards.
    earlier = confirm(user, second, authenticator.at(frozen_clock.now - timedelta(seconds=30)))
    assert earlier.outcome == ConfirmOutcome.WRONG_CODE
    frozen_clock.advance(seconds=30)
    assert confirm(user, second, authenticator.at(frozen_clock.now)).outcome == (
        ConfirmOutcome.PLACED
    )


def test_five_wrong_app_codes_cancel_the_order_and_ten_lock_the_account(app, frozen_clock):
    user = make_user()
    set_up_app(user, frozen_clock)
    first, _ = checkout(user, key="totp-order-00001")
    results = [confirm(user, first, "000000") for _ in range(5)]
    assert [result.tries_left for result in results[:4]] == [4, 3, 2, 1]
    assert results[-1].outcome == ConfirmOutcome.TOO_MANY_TRIES and first.status == "cancelled"
    second, _ = checkout(user, key="totp-order-00002")
    for _ in range(4):
        confirm(user, second, "000000")
    locked = confirm(user, second, "000000")
    assert locked.outcome == ConfirmOutcome.LOCKED and second.status == "held"
    texts = [sms_text(m) for m in db.session.scalars(select(SmsMessage)).all()]
    assert any("too many wrong codes were entered" in text for text in texts)


def test_a_recovery_code_works_once_and_is_alerted(app, frozen_clock):
    user = make_user()
    _, codes = set_up_app(user, frozen_clock)
    assert db.session.scalar(select(RecoveryCode.code_hmac)) not in {
        c.replace("-", "") for c in codes
    }
    first, _ = checkout(user, key="recovery-order-01")
    typed = codes[3].lower().replace("-", " ")  # as a person might type it
    assert confirm(user, first, typed, Factor.RECOVERY).outcome == ConfirmOutcome.PLACED
    texts = [sms_text(m) for m in db.session.scalars(select(SmsMessage)).all()]
    alert = next(text for text in texts if "recovery code was used" in text)
    assert "a recovery code was used to confirm it is you; 9 left." in alert and "Not you?" in alert
    second, _ = checkout(user, key="recovery-order-02")
    again = confirm(user, second, codes[3], Factor.RECOVERY)
    assert again.outcome == ConfirmOutcome.WRONG_CODE and "already used" in again.message
    assert confirm(user, second, codes[4], Factor.RECOVERY).outcome == ConfirmOutcome.PLACED


def test_an_app_user_is_sent_no_sms_and_an_app_code_cannot_answer_a_passkey_only_order(
    app, frozen_clock
):
    from tests.factories import set_rules
    from tests.test_stepup_passkeys import enrol

    user = make_user()
    authenticator, _ = set_up_app(user, frozen_clock)
    order, _ = checkout(user, key="totp-order-00001")
    assert db.session.scalar(select(OtpChallenge).where(OtpChallenge.order_id == order.id)) is None

    set_rules(hold_threshold_action="passkey")
    enrol(user)
    big, _ = checkout(user, price_minor=600_000, key="totp-order-00002")
    refused = confirm(user, big, authenticator.at(frozen_clock.now))
    assert refused.outcome == ConfirmOutcome.NOT_ALLOWED
    assert refused.message == "This order can only be confirmed with a passkey."
    assert big.status == "pending_verification"


def test_the_security_page_tells_no_codes_yet_from_all_used(client, frozen_clock):
    user = make_user()
    client.sign_in_as(user)

    def said() -> str:
        page = client.get("/account/security").get_data(as_text=True)
        return page.split("data-recovery-left>", 1)[1].split("</p>", 1)[0]

    assert said().startswith("You get 10 recovery codes with your first passkey")
    set_up_app(user, frozen_clock)
    assert said().startswith("10 of 10 recovery codes left.")
    db.session.execute(
        update(RecoveryCode).where(RecoveryCode.user_id == user.id).values(used_at=frozen_clock.now)
    )
    db.session.commit()
    assert said().startswith("None of your recovery codes is left")
