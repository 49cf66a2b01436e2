"""Signing in, second step: the step-up of a sign-in whose password was right, answered by
any factor the account has (a passkey, the authenticator app, a recovery code, or the SMS
code, sent at once only when nothing stronger is enrolled). Routes of the `auth` blueprint.

Each view calls one use case of `shop.accounts.signin` or `signin_stepup` and maps the outcome
to a page.
"""

from flask import abort, flash, redirect, session, url_for
from werkzeug import Response

from shop.accounts import signin, signin_stepup
from shop.accounts.signin_stepup import CodeOutcome, LoginAttempt
from shop.blueprints.auth import PENDING_LOGIN, bp, pending_login, safe_next
from shop.models import Factor
from shop.web.client import current_client
from shop.web.code_page import (
    CodeForm,
    FactorForm,
    factor_forms,
    flash_send,
    options_response,
    render_code_page,
    status_response,
    submitted_factor,
)
from shop.web.ratelimits import limit_code_entry
from shop.web.sessions import anonymous_cart, start_session


@bp.route("/login/verify", methods=["GET", "POST"])
@limit_code_entry
def login_verify() -> Response | tuple[str, int]:
    found = pending_login()
    if found is None:
        flash("Sign in first.", "info")
        return redirect(url_for("auth.login"))
    attempt, pending = found
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        answered = _answer(attempt, pending, form.code.data, Factor.SMS)
        if not isinstance(answered, str):
            return answered
        error = answered
    return _login_code_page(attempt, form, error, bool(form.errors or error))


@bp.post("/login/verify/factor")
@limit_code_entry
def login_factor() -> Response | tuple[str, int]:
    """A passkey's assertion, an app code or a recovery code instead of the SMS code."""
    found = pending_login()
    if found is None:
        flash("Sign in first.", "info")
        return redirect(url_for("auth.login"))
    attempt, pending = found
    form = FactorForm()
    if form.validate_on_submit():
        error = _answer(attempt, pending, form.answer.data, submitted_factor(form))
        if not isinstance(error, str):
            return error
    else:
        error = " ".join(message for errors in form.errors.values() for message in errors)
    return _login_code_page(attempt, CodeForm(formdata=None), error, True)


@bp.post("/login/verify/passkey-options")
@limit_code_entry
def login_passkey_options() -> Response:
    """The sign-in's passkey challenge, for passkey.js (JSON)."""
    found = pending_login()
    options = signin_stepup.login_passkey_options(found[0]) if found is not None else None
    return options_response(options, "There is no passkey to sign in with: use another way.", 409)


def _answer(attempt: LoginAttempt, pending: dict, answer: str, factor: Factor) -> Response | str:
    """Sign in with `answer`: the next page, or the error to show on the code page."""
    result = signin.sign_in_with_code(
        attempt,
        answer,
        current_client(set_device_cookie=True),
        anonymous_cart=anonymous_cart(),
        factor=factor,
    )
    if result.outcome == CodeOutcome.SIGNED_IN:
        start_session(result.user, remember=pending.get("remember") is True)
        flash("You are signed in.", "success")
        return redirect(safe_next(pending.get("next")) or url_for("catalog.index"))
    if result.outcome == CodeOutcome.NO_ACCOUNT:
        session.pop(PENDING_LOGIN, None)
        return redirect(url_for("auth.login"))
    return result.message


def _login_code_page(attempt: LoginAttempt, form: CodeForm, error: str | None, failed: bool):
    """The sign-in's step-up page: the account's factors, strongest first, then SMS."""
    return render_code_page(
        title="Confirm it is you to sign in",
        reason="We ask for this when you sign in from a new device, or after a security alert.",
        challenge=signin_stepup.login_challenge(attempt),
        form=form,
        resend_url=url_for("auth.resend_login_code"),
        status_url=url_for("auth.login_verify_status"),
        blocker=signin_stepup.login_resend_blocker(attempt, current_client()),
        status=422 if failed else 200,
        error=error,
        extra=factor_forms(
            signin_stepup.login_step_up(attempt),
            factor_url=url_for("auth.login_factor"),
            options_url=url_for("auth.login_passkey_options"),
        ),
    )


@bp.get("/login/verify/status")
def login_verify_status() -> Response:
    found = pending_login()
    if found is None:
        abort(404, description="No sign-in is waiting for a code.")
    attempt = found[0]
    return status_response(
        signin_stepup.login_challenge(attempt),
        signin_stepup.login_resend_blocker(attempt, current_client()),
    )


@bp.post("/login/verify/resend")
def resend_login_code() -> Response:
    found = pending_login()
    send = signin_stepup.resend_login_code(found[0], current_client()) if found else None
    if send is None:
        return redirect(url_for("auth.login"))
    flash_send(send)
    return redirect(url_for("auth.login_verify"))
