"""The account holder's pages: alert preferences, phone change, sessions, and "not me"."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required, login_user
from sqlalchemy import select, update
from werkzeug import Response
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from shop import accounts, alerts, audit, clock, orders
from shop.blueprints.auth import send_phone_code
from shop.blueprints.codes import client_ip, limit_code_entry
from shop.blueprints.forms import StrictForm
from shop.extensions import db
from shop.models import AuditEvent, KnownDevice, NotMeLink, User
from shop.otp import SendRefused

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
        old = {
            "new_device": current_user.alert_new_device,
            "order": current_user.alert_order_placed,
        }
        current_user.alert_new_device = form.alert_new_device.data
        current_user.alert_order_placed = form.alert_order_placed.data
        new = {
            "new_device": current_user.alert_new_device,
            "order": current_user.alert_order_placed,
        }
        audit.record(
            audit.Event.ALERTS_CHANGED, user_id=current_user.id, ip=client_ip(), old=old, new=new
        )
        db.session.commit()
        flash("Your alert settings are saved.", "success")
        return redirect(url_for("account.alert_settings"))
    return render_template("account/alerts.html", form=form), 422 if form.errors else 200


@bp.route("/phone", methods=["GET", "POST"])
@login_required
def change_phone() -> Response | tuple[str, int]:
    form = PhoneForm()
    if form.validate_on_submit():
        user = accounts.authenticate(
            current_user.email,
            form.password.data,
            hash_method=current_app.config["PASSWORD_HASH_METHOD"],
        )
        try:
            phone = accounts.normalise_phone(
                form.phone.data, current_app.config["SMS_ALLOWED_COUNTRIES"]
            )
        except accounts.InvalidPhone as error:
            form.phone.errors.append(str(error))
        else:
            if user is None:
                form.password.errors.append("That is not your password.")
            elif phone == current_user.phone:
                form.phone.errors.append("That is already your number.")
            else:
                try:
                    send_phone_code(current_user, phone)
                except SendRefused as refused:
                    db.session.rollback()
                    form.phone.errors.append(refused.message)
                else:
                    db.session.commit()
                    flash("Enter the code we sent to your new number.", "info")
                    return redirect(url_for("auth.verify_phone"))
    return render_template("account/phone.html", form=form), 422 if form.errors else 200


@bp.route("/security", methods=["GET", "POST"])
@login_required
def security() -> Response | str:
    form = ConfirmForm()
    if form.validate_on_submit():
        current_user.end_all_sessions()
        audit.record(audit.Event.SIGNED_OUT_EVERYWHERE, user_id=current_user.id, ip=client_ip())
        db.session.commit()
        login_user(current_user)
        flash("Every other session and remembered device is signed out.", "success")
        return redirect(url_for("account.security"))
    devices = db.session.scalars(
        select(KnownDevice)
        .where(KnownDevice.user_id == current_user.id)
        .order_by(KnownDevice.last_seen_at.desc())
    ).all()
    events = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.user_id == current_user.id)
        .order_by(AuditEvent.id.desc())
        .limit(20)
    ).all()
    return render_template("account/security.html", form=form, devices=devices, events=events)


@bp.route("/not-me/<token>", methods=["GET", "POST"])
@limit_code_entry
def not_me(token: str) -> Response | tuple[str, int]:
    link = alerts.link_for_token(token)
    if link is None:
        abort(404, description="This link is not valid or has expired (links last 24 hours).")
    if link.used_at is not None:
        return render_template("account/not_me.html", state="used"), 410
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("account/not_me.html", state="confirm", form=form), 200
    cancelled = _lock_down(link)
    if cancelled is None:
        return render_template("account/not_me.html", state="used"), 410
    return render_template("account/not_me.html", state="done", cancelled=cancelled), 200


def _lock_down(link: NotMeLink) -> list | None:
    """Use the link once: end every session, cancel unshipped orders, ask a code next time."""
    now = clock.now()
    used = db.session.execute(
        update(NotMeLink)
        .where(NotMeLink.id == link.id, NotMeLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        db.session.rollback()
        return None
    user = db.session.get(User, link.user_id)
    user.end_all_sessions()
    user.login_code_required = True
    cancelled = orders.cancel_open_orders(user)
    audit.record(
        audit.Event.NOT_ME,
        user_id=user.id,
        ip=client_ip(),
        cancelled=[order.ref for order in cancelled],
    )
    db.session.commit()
    return cancelled
