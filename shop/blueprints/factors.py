"""The account's step-up factors on /account/security: prove it is you first, then add or
remove passkeys and the authenticator app, or make new recovery codes.

Each view parses its form, calls one use case of `shop.stepup.enrolment` and maps the outcome
to a page; recovery codes are shown once, in the answer to the POST that made them.
"""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug import Response
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from shop import otp
from shop.models import OtpPurpose
from shop.otp import Check
from shop.stepup import Answer, Factor, enrolment, passkeys, security_check
from shop.stepup.enrolment import FactorOutcome, FactorResult
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
from shop.web.forms import StrictForm
from shop.web.ratelimits import limit_code_entry
from shop.web.sessions import renew_session

bp = Blueprint("factors", __name__, url_prefix="/account/security")


class ConfirmForm(StrictForm):
    pass


class NewPasskeyForm(StrictForm):
    name = StringField(
        "Name of this passkey",
        [Length(max=enrolment.NAME_MAX)],
        description="So you can tell your passkeys apart, e.g. “Work laptop”.",
        render_kw={"autocomplete": "off"},
    )
    answer = StringField(validators=[InputRequired(), Length(max=passkeys.MAX_CREDENTIAL_JSON)])


class AppConfirmForm(StrictForm):
    code = StringField(
        "Code from your authenticator app",
        [InputRequired("Enter the code your app shows."), Length(max=16)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


def _user():
    return current_user._get_current_object()


def _outcome(result: FactorResult, *, codes_title: str = "Your recovery codes"):
    """The page after a change: the recovery codes once, or back to the security page."""
    if result.outcome == FactorOutcome.NOT_FRESH:
        flash(result.message, "info")
        return redirect(url_for("account.security"))
    if result.outcome == FactorOutcome.NOT_FOUND:
        abort(404, description=result.message)
    if result.outcome == FactorOutcome.REFUSED:
        flash(result.message, "error")
        return redirect(url_for("account.security"))
    if result.recovery_codes:
        return render_template(
            "account/recovery_codes.html",
            title=codes_title,
            message=result.message,
            codes=result.recovery_codes,
        ), 200
    flash(result.message, "success")
    return redirect(url_for("account.security"))


# Proving it is you -----------------------------------------------------------------------------


@bp.post("/confirm/start")
@login_required
def start_confirm() -> Response:
    check = security_check.start_security_check(_user(), current_client())
    if check.send is not None and check.send.refused is not None:
        flash(check.send.message, "error")
    return redirect(url_for("factors.confirm"))


def _confirm_page(form: CodeForm, error: str | None = None, failed: bool = False):
    user = _user()
    step_up = security_check.security_step_up(user)
    if step_up is None:
        flash("Start again: confirm it is you.", "info")
        return redirect(url_for("account.security"))
    return render_code_page(
        title="Confirm it is you",
        reason="Before passkeys, the authenticator app or recovery codes change, we check it "
        "is really you. It lasts 5 minutes.",
        challenge=otp.live_challenge(user, OtpPurpose.SECURITY),
        form=form,
        resend_url=url_for("factors.resend"),
        status_url=url_for("factors.confirm_status"),
        blocker=security_check.security_resend_blocker(user, current_client()),
        status=422 if failed else 200,
        error=error,
        extra=factor_forms(
            step_up,
            factor_url=url_for("factors.confirm_factor"),
            options_url=url_for("factors.confirm_passkey_options"),
        ),
    )


def _after_check(result) -> Response | None:
    if result.outcome == Check.VERIFIED:
        renew_session(_user())
        flash(
            "Thank you: for the next 5 minutes you can change how you confirm it is you.", "success"
        )
        return redirect(url_for("account.security"))
    return None


@bp.route("/confirm", methods=["GET", "POST"])
@login_required
@limit_code_entry
def confirm():
    form = CodeForm()
    if form.validate_on_submit():
        result = security_check.confirm_security_check(
            _user(), Answer(Factor.SMS, form.code.data), current_client()
        )
        return _after_check(result) or _confirm_page(form, result.message, True)
    return _confirm_page(form, failed=bool(form.errors))


@bp.post("/confirm/factor")
@login_required
@limit_code_entry
def confirm_factor():
    form = FactorForm()
    if not form.validate_on_submit():
        return _confirm_page(
            CodeForm(formdata=None), "Fill in the code, or use your passkey.", True
        )
    result = security_check.confirm_security_check(
        _user(), Answer(submitted_factor(form), form.answer.data), current_client()
    )
    return _after_check(result) or _confirm_page(CodeForm(formdata=None), result.message, True)


@bp.post("/confirm/passkey-options")
@login_required
@limit_code_entry
def confirm_passkey_options() -> Response:
    options = security_check.security_passkey_options(_user())
    return options_response(options, "There is no passkey to confirm with: use another way.", 409)


@bp.get("/confirm/status")
@login_required
def confirm_status() -> Response:
    user = _user()
    return status_response(
        otp.live_challenge(user, OtpPurpose.SECURITY),
        security_check.security_resend_blocker(user, current_client()),
    )


@bp.post("/confirm/resend")
@login_required
def resend() -> Response:
    flash_send(security_check.send_security_code(_user(), current_client(), resend=True))
    return redirect(url_for("factors.confirm"))


# Passkeys --------------------------------------------------------------------------------------


@bp.post("/passkeys/options")
@login_required
@limit_code_entry
def passkey_registration() -> Response:
    result = enrolment.passkey_registration(_user())
    return options_response(result.options, result.message, 403)


@bp.post("/passkeys")
@login_required
@limit_code_entry
def add_passkey():
    form = NewPasskeyForm()
    if not form.validate_on_submit():
        return _security_page("The passkey could not be added: its answer was missing. Try again.")
    result = enrolment.add_passkey(
        _user(), form.answer.data, form.name.data or "", current_client()
    )
    if result.outcome == FactorOutcome.REFUSED:
        return _security_page(result.message)
    return _outcome(result)


def _security_page(error: str) -> tuple[str, int]:
    """The security page again, 422, saying why the passkey was not added."""
    # Imported here: the account blueprint imports this module's forms.
    from shop.blueprints.account import ConfirmForm as SignOutForm
    from shop.blueprints.account import CurrentPasswordForm, render_security

    flash(error, "error")
    return render_security(SignOutForm(formdata=None), CurrentPasswordForm(formdata=None), 422)


@bp.post("/passkeys/<int(max=2147483647):passkey_id>/remove")
@login_required
def remove_passkey(passkey_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form was incomplete: reload the page and try again.")
    return _outcome(enrolment.remove_passkey(_user(), passkey_id, current_client()))


# The authenticator app -------------------------------------------------------------------------


@bp.post("/app/start")
@login_required
def start_app() -> Response:
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form was incomplete: reload the page and try again.")
    if not enrolment.is_fresh(_user()):
        flash(enrolment.NOT_FRESH.message, "info")
        return redirect(url_for("account.security"))
    if enrolment.app_setup(_user(), new=True) is None:
        flash("Your authenticator app is already set up.", "info")
        return redirect(url_for("account.security"))
    return redirect(url_for("factors.app"))


@bp.route("/app", methods=["GET", "POST"])
@login_required
@limit_code_entry
def app():
    user = _user()
    form = AppConfirmForm()
    if form.validate_on_submit():
        result = enrolment.confirm_app(user, form.code.data, current_client())
        if result.outcome != FactorOutcome.REFUSED:
            return _outcome(result)
        form.code.errors.append(result.message)
    # The secret is shown only within the fresh step-up that began the set-up.
    setup = enrolment.app_setup(user, new=False) if enrolment.is_fresh(user) else None
    if setup is None:
        return redirect(url_for("account.security"))
    return render_template("account/app_setup.html", form=form, setup=setup), (
        422 if form.errors else 200
    )


@bp.post("/app/remove")
@login_required
def remove_app():
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form was incomplete: reload the page and try again.")
    return _outcome(enrolment.remove_app(_user(), current_client()))


@bp.post("/recovery-codes")
@login_required
def new_recovery_codes():
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form was incomplete: reload the page and try again.")
    return _outcome(enrolment.renew_recovery_codes(_user(), current_client()))
