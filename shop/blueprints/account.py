"""The account holder's pages: alert preferences, phone change, security (sessions, password),
and "not me"."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf.csrf import validate_csrf
from werkzeug import Response
from wtforms import BooleanField, PasswordField, StringField, ValidationError
from wtforms.validators import InputRequired, Length

from shop.accounts import lockdown, passwords, preferences, tokens, verification
from shop.accounts.lockdown import NotMeOutcome
from shop.accounts.passwords import ChangeOutcome as PasswordOutcome
from shop.accounts.passwords import ChangeStart
from shop.accounts.verification import ChangeOutcome
from shop.blueprints.errors import CSRF_MESSAGE
from shop.blueprints.factors import NewPasskeyForm
from shop.extensions import csrf
from shop.stepup import enrolment
from shop.web.client import current_client
from shop.web.code_page import CodeForm, flash_send, render_code_page, status_response
from shop.web.forms import StrictForm
from shop.web.ratelimits import limit_code_entry, limit_sign_in
from shop.web.sessions import start_session

bp = Blueprint("account", __name__, url_prefix="/account")


class AlertsForm(StrictForm):
    alert_new_device = BooleanField("A sign-in from a new device")
    alert_order_placed = BooleanField("An order placed on my account")


class PhoneForm(StrictForm):
    phone = StringField("New mobile number", [InputRequired(), Length(max=32)])
    password = PasswordField("Your password", [InputRequired(), Length(max=128)])


class ConfirmForm(StrictForm):
    pass


class CurrentPasswordForm(StrictForm):
    current_password = PasswordField("Current password", [InputRequired(), Length(max=128)])


class NewPasswordCodeForm(CodeForm):
    new_password = PasswordField(
        "New password", [InputRequired(), Length(8, 128, passwords.BAD_LENGTH)]
    )


@bp.route("/alerts", methods=["GET", "POST"])
@login_required
def alert_settings() -> Response | tuple[str, int]:
    form = AlertsForm(obj=current_user)
    if form.validate_on_submit():
        preferences.set_alerts(
            current_user,
            new_device=form.alert_new_device.data,
            order_placed=form.alert_order_placed.data,
            client=current_client(),
        )
        flash("Your alert settings are saved.", "success")
        return redirect(url_for("account.alert_settings"))
    return render_template("account/alerts.html", form=form), 422 if form.errors else 200


@bp.route("/phone", methods=["GET", "POST"])
@login_required
def change_phone() -> Response | tuple[str, int]:
    form = PhoneForm()
    if form.validate_on_submit():
        result = verification.start_phone_change(
            current_user, form.password.data, form.phone.data, current_client()
        )
        if result.outcome == ChangeOutcome.WRONG_PASSWORD:
            form.password.errors.append(result.message)
        elif result.outcome != ChangeOutcome.CODE_SENT or result.send.refused:
            form.phone.errors.append(result.message)
        else:
            flash("Enter the code we sent to your new number.", "info")
            return redirect(url_for("auth.verify_phone"))
    return render_template(
        "account/phone.html", form=form, cool_off=verification.phone_change_cool_off()
    ), 422 if form.errors else 200


@bp.route("/security", methods=["GET", "POST"])
@login_required
def security() -> Response | tuple[str, int]:
    form = ConfirmForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        lockdown.sign_out_everywhere(user, current_client())
        start_session(user)
        flash("Every other session and remembered device is signed out.", "success")
        return redirect(url_for("account.security"))
    return render_security(form, CurrentPasswordForm(formdata=None))


def render_security(form: ConfirmForm, password_form: CurrentPasswordForm, status: int = 200):
    return render_template(
        "account/security.html",
        form=form,
        password_form=password_form,
        passkey_form=NewPasskeyForm(formdata=None),
        **preferences.security_overview(current_user),
        **enrolment.factors_overview(current_user._get_current_object()),
    ), status


@bp.post("/security/password")
@login_required
@limit_sign_in
def start_password_change() -> Response | tuple[str, int]:
    """The current password first; then a code to the account's number (next page)."""
    form = CurrentPasswordForm()
    if form.validate_on_submit():
        result = passwords.start_password_change(
            current_user, form.current_password.data, current_client()
        )
        if result.outcome == ChangeStart.WRONG_PASSWORD or result.send.refused:
            form.current_password.errors.append(result.message)
        else:
            return redirect(url_for("account.change_password"))
    return render_security(ConfirmForm(formdata=None), form, 422)


@bp.route("/security/password/verify", methods=["GET", "POST"])
@login_required
@limit_code_entry
def change_password() -> Response | tuple[str, int]:
    form = NewPasswordCodeForm()
    error = None
    if form.validate_on_submit():
        user = current_user._get_current_object()
        result = passwords.change_password(
            user, form.code.data, form.new_password.data, current_client()
        )
        if result.outcome == PasswordOutcome.CHANGED:
            start_session(user)
            flash(result.message, "success")
            return redirect(url_for("account.security"))
        error = result.message
    challenge = passwords.password_challenge(current_user)
    if challenge is None and not form.is_submitted():
        flash("Start with your current password.", "info")
        return redirect(url_for("account.security"))
    return render_code_page(
        title="Change your password",
        reason="A code by SMS confirms it is you before the password changes.",
        challenge=challenge,
        form=form,
        resend_url=url_for("account.resend_password_code"),
        status_url=url_for("account.change_password_status"),
        blocker=passwords.password_resend_blocker(current_user, current_client()),
        status=422 if form.errors or error else 200,
        error=error,
        template="account/password_code.html",
    )


@bp.get("/security/password/status")
@login_required
def change_password_status() -> Response:
    return status_response(
        passwords.password_challenge(current_user),
        passwords.password_resend_blocker(current_user, current_client()),
    )


@bp.post("/security/password/resend")
@login_required
def resend_password_code() -> Response:
    flash_send(passwords.resend_password_code(current_user, current_client()))
    return redirect(url_for("account.change_password"))


@bp.post("/security/tokens/<int(max=2147483647):token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Response:
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400, description="The form was incomplete: reload the page and try again.")
    if not tokens.revoke_token(current_user, token_id, current_client()):
        abort(404, description="There is no such API token on your account.")
    flash("The API token is revoked.", "success")
    return redirect(url_for("account.security"))


@bp.route("/not-me/<token>", methods=["GET", "POST"])
@csrf.exempt  # from the Referer check only: the form's own CSRF token is checked below
@limit_code_entry
def not_me(token: str) -> Response | tuple[str, int]:
    # The page is served with Referrer-Policy: no-referrer so that its URL, the token, never
    # leaves in a Referer; its form then posts without one, which CSRFProtect would refuse
    # over https. The CSRF token bound to the session still has to match.
    form = ConfirmForm()
    if form.is_submitted():
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            abort(400, description=CSRF_MESSAGE)
        if not form.validate_on_submit():
            abort(400, description="The form was incomplete: reload the page and try again.")
        result = lockdown.not_me(token, current_client())
    else:
        result = lockdown.inspect_not_me(token)
    if result.outcome == NotMeOutcome.INVALID:
        abort(404, description="This link is not valid or has expired (links last 24 hours).")
    if result.outcome == NotMeOutcome.USED:
        return render_template("account/not_me.html", state="used"), 410
    state = "confirm" if result.outcome == NotMeOutcome.READY else "done"
    return render_template("account/not_me.html", state=state, form=form, result=result), 200
