"""Accounts on the web: register and confirm the phone, sign in (with a code when needed), out.

Each view parses its form, calls one use case of `shop.accounts` and maps the outcome to a
page; the session (pending sign-in, renewal) is the only state kept here.
"""

from urllib.parse import unquote, urlsplit

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask import render_template as render
from flask_login import current_user, login_required
from werkzeug import Response
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import Email, InputRequired, Length

from shop import settings
from shop.accounts import passwords, signin, verification
from shop.accounts.phone import countries_named
from shop.accounts.signin import PasswordOutcome
from shop.accounts.signin_stepup import LoginAttempt
from shop.accounts.verification import ConfirmPhoneOutcome, RegisterOutcome
from shop.otp import CodeSend, Sent
from shop.web.client import current_client
from shop.web.code_page import (
    CodeForm,
    flash_send,
    render_code_page,
    status_response,
)
from shop.web.forms import StrictForm
from shop.web.ratelimits import limit_code_entry, limit_sign_in
from shop.web.sessions import anonymous_cart, end_session, renew_session, start_session

bp = Blueprint("auth", __name__, url_prefix="/auth")

PASSWORD_LENGTH = Length(8, 128, "Use 8 to 128 characters.")
PENDING_LOGIN = "pending_login"
PENDING_RESET = "pending_reset"


class RegisterForm(StrictForm):
    email = EmailField(
        "E-mail", [InputRequired(), Length(max=254), Email(check_deliverability=False)]
    )
    phone = StringField("Mobile number", [InputRequired(), Length(max=32)])
    password = PasswordField("Password", [InputRequired(), PASSWORD_LENGTH])


class LoginForm(StrictForm):
    email = EmailField("E-mail", [InputRequired(), Length(max=254)])
    password = PasswordField("Password", [InputRequired(), Length(max=128)])
    remember = BooleanField("Keep me signed in on this device")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        duration = current_app.config["REMEMBER_COOKIE_DURATION"]
        days = int(getattr(duration, "total_seconds", lambda: duration)() // 86400)
        self.remember.label.text = f"Keep me signed in on this device ({days} days)"


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (no open redirects). It must stay
    one once percent-decoded too, whatever a proxy or browser on the way might decode."""
    if not target:
        return None
    for form in (target, unquote(target)):
        if not form.startswith("/") or form.startswith("//"):
            return None
        if "\\" in form or not form.isprintable():
            return None
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return None
    return target


@bp.route("/register", methods=["GET", "POST"])
@limit_sign_in
def register() -> Response | tuple[str, int]:
    form = RegisterForm()
    if form.validate_on_submit():
        # The same answer whether the e-mail was free or not (docs/security.md); the cart
        # filled so far stays in the session and joins the account at sign-in.
        result = verification.register(
            form.email.data, form.phone.data, form.password.data, current_client()
        )
        if result.outcome == RegisterOutcome.INVALID_PHONE:
            form.phone.errors.append(result.message)
        else:
            flash(result.message, "info")
            return redirect(url_for("auth.login", next=safe_next(request.args.get("next"))))
    countries = countries_named(settings.allowed_countries())
    return render("auth/register.html", form=form, countries=countries), 422 if form.errors else 200


@bp.route("/verify-phone", methods=["GET", "POST"])
@login_required
@limit_code_entry
def verify_phone() -> Response | tuple[str, int]:
    challenge = verification.phone_challenge(current_user)
    if challenge is None and current_user.phone_verified:
        flash("Your phone number is confirmed.", "info")
        return redirect(url_for("catalog.index"))
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        user = current_user._get_current_object()
        result = verification.confirm_phone(user, form.code.data, current_client())
        if result.outcome in (ConfirmPhoneOutcome.CONFIRMED, ConfirmPhoneOutcome.CHANGED):
            renew_session(user, stepped_up=False)  # a new number proves no factor
            flash(result.message, "success")
            return redirect(safe_next(request.args.get("next")) or url_for("catalog.index"))
        error = result.message
        challenge = verification.phone_challenge(current_user)
    changing = challenge is not None and challenge.phone != current_user.phone
    return render_code_page(
        title="Confirm your new number" if changing else "Confirm your phone number",
        reason="A new number must be confirmed before it replaces the old one."
        if changing
        else "Codes for larger orders go only to a confirmed number.",
        challenge=challenge,
        form=form,
        resend_url=url_for("auth.resend_phone_code"),
        status_url=url_for("auth.verify_phone_status"),
        blocker=verification.phone_resend_blocker(current_user, current_client()),
        status=422 if form.errors or error else 200,
        error=error,
    )


@bp.get("/verify-phone/status")
@login_required
def verify_phone_status() -> Response:
    return status_response(
        verification.phone_challenge(current_user),
        verification.phone_resend_blocker(current_user, current_client()),
    )


@bp.post("/verify-phone/resend")
@login_required
def resend_phone_code() -> Response:
    flash_send(verification.resend_phone_code(current_user, current_client()))
    return redirect(url_for("auth.verify_phone"))


def flash_phone_code(send: CodeSend) -> None:
    """Say what became of the code that confirms the number: never "the code we sent" when
    none was."""
    if send.refused:
        flash(
            "You are signed in, but we could not send the code that confirms your number. "
            + send.message,
            "error",
        )
    elif send.outcome == Sent.QUEUED:
        flash("You are signed in. Your code to confirm your number goes out in a moment.", "info")
    else:
        flash("You are signed in. Confirm your number with the code we sent.", "success")


@bp.route("/login", methods=["GET", "POST"])
@limit_sign_in
def login() -> Response | tuple[str, int]:
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        result = signin.sign_in_with_password(
            form.email.data,
            form.password.data,
            current_client(set_device_cookie=True),
            anonymous_cart=anonymous_cart(),
            offer_factors=True,
        )
        target = safe_next(request.args.get("next"))
        if result.outcome == PasswordOutcome.SIGNED_IN:
            start_session(result.user, remember=form.remember.data)
            if result.phone_code is not None:
                flash_phone_code(result.phone_code)
                return redirect(url_for("auth.verify_phone", next=target))
            flash("You are signed in.", "success")
            return redirect(target or url_for("catalog.index"))
        if result.outcome == PasswordOutcome.CODE_NEEDED:
            # Not signed in yet: the session keeps the attempt (and the cart filled so far).
            session[PENDING_LOGIN] = {
                "user_id": result.attempt.user_id,
                "binding": result.attempt.binding,
                "remember": bool(form.remember.data),
                "next": target,
            }
            if result.send is not None and result.send.refused:
                flash(result.send.message, "error")
            return redirect(url_for("auth.login_verify"))
        form.form_errors.append(result.message)
        status = 401
    elif form.errors:
        status = 422
    return render("auth/login.html", form=form), status


def pending_login() -> tuple[LoginAttempt, dict] | None:
    """The sign-in whose password was right and whose step-up is awaited, if any."""
    pending = session.get(PENDING_LOGIN)
    if not isinstance(pending, dict):
        return None
    user_id, binding = pending.get("user_id"), pending.get("binding")
    if not isinstance(user_id, int) or not isinstance(binding, str):
        return None
    return LoginAttempt(user_id, binding), pending


class ResetForm(StrictForm):
    email = EmailField("E-mail", [InputRequired(), Length(max=254)])


class ResetCodeForm(CodeForm):
    new_password = PasswordField("New password", [InputRequired(), PASSWORD_LENGTH])


def _pending_reset() -> passwords.ResetAttempt | None:
    pending = session.get(PENDING_RESET)
    if not isinstance(pending, dict):
        return None
    email, nonce = pending.get("email"), pending.get("nonce")
    if not isinstance(email, str) or not isinstance(nonce, str):
        return None
    return passwords.ResetAttempt(email, nonce)


@bp.route("/reset", methods=["GET", "POST"])
@limit_sign_in
def reset() -> Response | tuple[str, int]:
    """A forgotten password: the e-mail, then a code to the account's confirmed number."""
    form = ResetForm()
    if form.validate_on_submit():
        attempt = passwords.start_password_reset(form.email.data, current_client())
        session[PENDING_RESET] = {"email": attempt.email, "nonce": attempt.nonce}
        return redirect(url_for("auth.reset_verify"))
    return render("auth/reset.html", form=form), 422 if form.errors else 200


@bp.route("/reset/verify", methods=["GET", "POST"])
@limit_code_entry
def reset_verify() -> Response | tuple[str, int]:
    attempt = _pending_reset()
    if attempt is None:
        return redirect(url_for("auth.reset"))
    form = ResetCodeForm()
    error = None
    if form.validate_on_submit():
        result = passwords.reset_password(
            attempt,
            form.code.data,
            form.new_password.data,
            current_client(set_device_cookie=True),
            anonymous_cart=anonymous_cart(),
        )
        if result.outcome == passwords.ResetOutcome.RESET:
            start_session(result.user)
            flash(result.message, "success")
            return redirect(url_for("catalog.index"))
        error = result.message
    sent = passwords.RESET_SENT.format(email=attempt.email)
    page = render("auth/reset_verify.html", form=form, error=error, sent=sent)
    return page, 422 if form.errors or error else 200


@bp.post("/reset/resend")
def resend_reset_code() -> Response:
    attempt = _pending_reset()
    if attempt is None:
        return redirect(url_for("auth.reset"))
    passwords.resend_reset_code(attempt, current_client())
    flash("If a code can go to that account's number, a new one is on its way.", "info")
    return redirect(url_for("auth.reset_verify"))


@bp.post("/logout")
def logout() -> Response:
    # CSRFProtect has already checked the token: only a form of ours signs anyone out.
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        signin.sign_out(user, current_client())
        end_session(user)
    else:
        session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("catalog.index"))
