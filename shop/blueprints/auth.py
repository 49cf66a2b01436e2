"""Accounts on the web: register and verify the phone, sign in (with a code when needed), out."""

import secrets
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    request,
    session,
    url_for,
)
from flask import render_template as render
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError
from werkzeug import Response
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import Email, InputRequired, Length

from shop import accounts, alerts, audit, clock, risk
from shop import cart as carts
from shop.accounts import devices
from shop.blueprints import cart as cart_views
from shop.blueprints.codes import (
    CodeForm,
    client_ip,
    limit_code_entry,
    limit_sign_in,
    otp,
    render_code_page,
    renew_session,
    send_and_commit,
)
from shop.blueprints.device_cookie import current_device_id, ensure_device_id
from shop.blueprints.forms import StrictForm
from shop.extensions import db
from shop.models import OtpPurpose, User
from shop.otp import SendRefused, binding_for
from shop.otp.texts import LOGIN_ACTION, PHONE_ACTION, code_sms

bp = Blueprint("auth", __name__, url_prefix="/auth")

PASSWORD_LENGTH = Length(8, 128, "Use 8 to 128 characters.")
PENDING_LOGIN = "pending_login"


class RegisterForm(StrictForm):
    email = EmailField(
        "E-mail", [InputRequired(), Length(max=254), Email(check_deliverability=False)]
    )
    phone = StringField("Mobile number", [InputRequired(), Length(max=32)])
    password = PasswordField("Password", [InputRequired(), PASSWORD_LENGTH])


class LoginForm(StrictForm):
    email = EmailField("E-mail", [InputRequired(), Length(max=254)])
    password = PasswordField("Password", [InputRequired(), Length(max=128)])
    remember = BooleanField("Keep me signed in on this device (30 days)")


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or not target.isprintable():
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _sms_text(action: str):
    config = current_app.config
    return code_sms(config["SHOP_NAME"], action, config["PUBLIC_BASE_URL"])


def send_phone_code(user: User, phone: str) -> None:
    """Queue a code to `phone` (the account's number, or a new one being verified)."""
    otp().issue(
        user,
        OtpPurpose.PHONE,
        binding_for("phone", user.id, phone),
        client_ip=client_ip(),
        text=_sms_text(PHONE_ACTION),
        phone=phone,
    )


def start_session(user: User, remember: bool) -> None:
    """Sign `user` in on a fresh session, keeping the cart they filled before."""
    anonymous_cart = cart_views.session_contents()
    session.clear()
    login_user(user, remember=remember)
    browser = devices.browser_label(request.user_agent.string)
    is_new = devices.remember_device(user, ensure_device_id(), browser)
    if is_new:
        alerts.new_device(user, browser=browser, ip=client_ip(), at=clock.now())
    audit.record(audit.Event.SIGN_IN, user_id=user.id, ip=client_ip(), browser=browser)
    if anonymous_cart:
        carts.save_user_cart(user, carts.merge(carts.load_user_cart(user), anonymous_cart))
    db.session.commit()


def needs_login_code(user: User) -> bool:
    """A code at sign-in: after "not me", or per the login rule (never/new_device/always)."""
    if not user.phone_verified:
        return False
    if user.login_code_required:
        return True
    mode = risk.current_rules().login_mode
    if mode == "always":
        return True
    return mode == "new_device" and not devices.is_known(user, current_device_id())


@bp.route("/register", methods=["GET", "POST"])
@limit_sign_in
def register() -> Response | tuple[str, int]:
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            phone = accounts.normalise_phone(
                form.phone.data, current_app.config["SMS_ALLOWED_COUNTRIES"]
            )
            user = accounts.register_user(
                form.email.data,
                phone,
                form.password.data,
                hash_method=current_app.config["PASSWORD_HASH_METHOD"],
            )
            db.session.flush()
        except accounts.InvalidPhone as error:
            form.phone.errors.append(str(error))
        except (accounts.EmailTaken, IntegrityError):
            db.session.rollback()
            form.email.errors.append("An account with this e-mail already exists. Sign in instead.")
        else:
            try:
                send_phone_code(user, phone)
            except SendRefused as refused:
                flash(refused.message, "error")
            start_session(user, remember=False)
            flash("Welcome! Confirm your phone number with the code we sent.", "success")
            return redirect(url_for("auth.verify_phone", next=safe_next(request.args.get("next"))))
    return render("auth/register.html", form=form), 422 if form.errors else 200


@bp.route("/verify-phone", methods=["GET", "POST"])
@login_required
@limit_code_entry
def verify_phone() -> Response | tuple[str, int]:
    challenge = otp().live_challenge(current_user, OtpPurpose.PHONE)
    if challenge is None and current_user.phone_verified:
        flash("Your phone number is confirmed.", "info")
        return redirect(url_for("catalog.index"))
    form = CodeForm()
    error = None
    if form.validate_on_submit() and challenge is not None:
        result = otp().verify(
            current_user,
            OtpPurpose.PHONE,
            binding_for("phone", current_user.id, challenge.phone),
            form.code.data,
            client_ip=client_ip(),
        )
        if result.ok:
            return _phone_verified(current_user, challenge.phone)
        db.session.commit()
        error = result.message
    status = 422 if form.errors or error else 200
    changing = challenge is not None and challenge.phone != current_user.phone
    return render_code_page(
        title="Confirm your new number" if changing else "Confirm your phone number",
        reason="Codes for larger orders go only to a confirmed number."
        if not changing
        else "A new number must be confirmed before it replaces the old one.",
        challenge=challenge,
        form=form,
        resend_url=url_for("auth.resend_phone_code"),
        status=status,
        error=error,
    )


def _phone_verified(user: User, phone: str) -> Response:
    old_phone = user.phone
    now = clock.now()
    user.phone_verified_at = now
    if phone != old_phone:
        user.phone = phone
        user.phone_changed_at = now
        alerts.phone_changed(user, old_phone)
        audit.record(audit.Event.PHONE_CHANGED, user_id=user.id, ip=client_ip())
        # A new authenticator: every other session ends; this one starts afresh.
        user.end_all_sessions()
        db.session.commit()
        renew_session(user)
        flash("Your new number is confirmed. Other sessions were signed out.", "success")
    else:
        audit.record(audit.Event.PHONE_VERIFIED, user_id=user.id, ip=client_ip())
        db.session.commit()
        renew_session(user)
        flash("Your phone number is confirmed.", "success")
    return redirect(safe_next(request.args.get("next")) or url_for("catalog.index"))


@bp.post("/verify-phone/resend")
@login_required
def resend_phone_code() -> Response:
    live = otp().live_challenge(current_user, OtpPurpose.PHONE)
    phone = live.phone if live is not None else current_user.phone
    send_and_commit(lambda: send_phone_code(current_user, phone))
    return redirect(url_for("auth.verify_phone"))


@bp.route("/login", methods=["GET", "POST"])
@limit_sign_in
def login() -> Response | tuple[str, int]:
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        hash_method = current_app.config["PASSWORD_HASH_METHOD"]
        user = accounts.authenticate(form.email.data, form.password.data, hash_method=hash_method)
        if user is not None:
            target = safe_next(request.args.get("next"))
            if needs_login_code(user):
                return _ask_login_code(user, form.remember.data, target)
            start_session(user, remember=form.remember.data)
            flash("You are signed in.", "success")
            return redirect(target or url_for("catalog.index"))
        known = accounts.find_user_by_email(form.email.data)
        audit.record(
            audit.Event.SIGN_IN_FAILED, user_id=known.id if known else None, ip=client_ip()
        )
        db.session.commit()
        form.form_errors.append("The e-mail or password is not right.")
        status = 401
    elif form.errors:
        status = 422
    return render("auth/login.html", form=form), status


def _login_binding(pending: dict) -> str:
    return binding_for("login", pending["user_id"], pending["attempt"])


def send_login_code(user: User, pending: dict) -> None:
    """Queue a sign-in code bound to this sign-in attempt (the caller commits)."""
    otp().issue(
        user,
        OtpPurpose.LOGIN,
        _login_binding(pending),
        client_ip=client_ip(),
        text=_sms_text(LOGIN_ACTION),
    )


def _ask_login_code(user: User, remember: bool, target: str | None) -> Response:
    """Password right, second step needed: remember the attempt and send a code for it."""
    session.clear()
    pending = {
        "user_id": user.id,
        "remember": bool(remember),
        "next": target,
        "attempt": secrets.token_urlsafe(12),
    }
    session[PENDING_LOGIN] = pending
    send_and_commit(lambda: send_login_code(user, pending), sent_message=None)
    return redirect(url_for("auth.login_verify"))


def _pending_user() -> tuple[dict, User] | None:
    pending = session.get(PENDING_LOGIN)
    if not isinstance(pending, dict) or "user_id" not in pending:
        return None
    user = db.session.get(User, pending["user_id"])
    return (pending, user) if user is not None else None


@bp.route("/login/verify", methods=["GET", "POST"])
@limit_code_entry
def login_verify() -> Response | tuple[str, int]:
    found = _pending_user()
    if found is None:
        flash("Sign in first.", "info")
        return redirect(url_for("auth.login"))
    pending, user = found
    challenge = otp().live_challenge(user, OtpPurpose.LOGIN)
    form = CodeForm()
    error = None
    if form.validate_on_submit() and challenge is not None:
        result = otp().verify(
            user, OtpPurpose.LOGIN, _login_binding(pending), form.code.data, client_ip=client_ip()
        )
        if result.ok:
            user.login_code_required = False
            start_session(user, remember=pending["remember"])
            flash("You are signed in.", "success")
            return redirect(pending.get("next") or url_for("catalog.index"))
        db.session.commit()
        error = result.message
    return render_code_page(
        title="Enter your sign-in code",
        reason="We ask for a code when you sign in from a new device, or after a security alert.",
        challenge=challenge,
        form=form,
        resend_url=url_for("auth.resend_login_code"),
        status=422 if form.errors or error else 200,
        error=error,
    )


@bp.post("/login/verify/resend")
def resend_login_code() -> Response:
    found = _pending_user()
    if found is None:
        return redirect(url_for("auth.login"))
    pending, user = found
    send_and_commit(lambda: send_login_code(user, pending))
    return redirect(url_for("auth.login_verify"))


@bp.post("/logout")
def logout() -> Response:
    # CSRFProtect has already checked the token: only a form of ours signs anyone out.
    if current_user.is_authenticated:
        audit.record(audit.Event.SIGN_OUT, user_id=current_user.id, ip=client_ip())
        db.session.commit()
        logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("catalog.index"))
