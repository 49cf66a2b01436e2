"""The account holder's pages: alert preferences, phone change, sessions, and "not me"."""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug import Response
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from shop.accounts import lockdown, preferences, tokens, verification
from shop.accounts.lockdown import NotMeOutcome
from shop.accounts.verification import ChangeOutcome
from shop.web.client import current_client
from shop.web.forms import StrictForm
from shop.web.ratelimits import limit_code_entry
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
def security() -> Response | str:
    form = ConfirmForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        lockdown.sign_out_everywhere(user, current_client())
        start_session(user)
        flash("Every other session and remembered device is signed out.", "success")
        return redirect(url_for("account.security"))
    return render_template(
        "account/security.html", form=form, **preferences.security_overview(current_user)
    )


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
@limit_code_entry
def not_me(token: str) -> Response | tuple[str, int]:
    form = ConfirmForm()
    if form.validate_on_submit():
        result = lockdown.not_me(token, current_client())
    else:
        result = lockdown.NotMeResult(lockdown.check_not_me(token))
    if result.outcome == NotMeOutcome.INVALID:
        abort(404, description="This link is not valid or has expired (links last 24 hours).")
    if result.outcome == NotMeOutcome.USED:
        return render_template("account/not_me.html", state="used"), 410
    if result.outcome == NotMeOutcome.READY:
        return render_template("account/not_me.html", state="confirm", form=form), 200
    return render_template("account/not_me.html", state="done", cancelled=result.cancelled), 200
