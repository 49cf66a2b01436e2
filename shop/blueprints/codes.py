"""Pieces shared by every page that asks for an SMS code: the forms and the page itself."""

from collections.abc import Callable
from datetime import timedelta

from flask import current_app, flash, render_template, request, session
from flask_login import login_user
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from shop import clock
from shop.accounts import mask_phone
from shop.blueprints.forms import StrictForm
from shop.extensions import db, limiter
from shop.models import OtpChallenge, SmsMessage
from shop.otp import Otp, SendRefused

DELIVERY_WORDS = {
    "queued": "waiting to be sent",
    "sending": "being sent",
    "sent": "sent to your phone's network",
    "delivered": "delivered to your phone",
    "failed": "could not be delivered: ask for a new code",
    "expired": "could not be delivered: ask for a new code",
    "rejected": "could not be delivered: ask for a new code",
    "dropped": "not sent: the code expired first",
}


class CodeForm(StrictForm):
    code = StringField(
        "Code from the SMS",
        [InputRequired("Enter the code from the SMS."), Length(max=64)],
        render_kw={
            "autocomplete": "one-time-code",
            "inputmode": "numeric",
            "autocapitalize": "off",
            "spellcheck": "false",
        },
    )


class ResendForm(StrictForm):
    pass


def _resend_wait(challenge: OtpChallenge | None, cooldown: timedelta) -> int:
    if challenge is None:
        return 0
    left = challenge.created_at + cooldown - clock.now()
    return max(0, int(left.total_seconds() + 0.999))


RESENT = "A new code is on its way. The old one no longer works."


def renew_session(user) -> None:
    """After a step-up, the same sign-in on a fresh session: nothing else carried over, and a
    new CSRF token (SPEC section 7)."""
    session.clear()
    login_user(user, fresh=True)


def send_and_commit(send: Callable[[], object], *, sent_message: str | None = RESENT) -> bool:
    """Queue a code with `send` and commit; if it was refused, roll back and say why."""
    try:
        send()
        db.session.commit()
    except SendRefused as refused:
        db.session.rollback()
        flash(refused.message, "error")
        return False
    if sent_message:
        flash(sent_message, "success")
    return True


def otp() -> Otp:
    return current_app.extensions["otp"]


def client_ip() -> str:
    return request.remote_addr or "unknown"


def render_code_page(
    *,
    title: str,
    reason: str,
    challenge: OtpChallenge | None,
    form: CodeForm,
    resend_url: str,
    status: int = 200,
    error: str | None = None,
    extra: dict | None = None,
):
    """The code entry page: why a code is asked, where it went, its delivery, attempts left."""
    sms = db.session.get(SmsMessage, challenge.sms_id) if challenge and challenge.sms_id else None
    policy = otp().policy
    context = {
        "title": title,
        "reason": reason,
        "challenge": challenge,
        "form": form,
        "resend_form": ResendForm(formdata=None),
        "resend_url": resend_url,
        "error": error,
        "masked_phone": mask_phone(challenge.phone) if challenge else None,
        "delivery": DELIVERY_WORDS.get(sms.status) if sms else None,
        "attempts_left": policy.max_attempts - challenge.failed_attempts if challenge else 0,
        "cooldown": int(policy.resend_cooldown.total_seconds()),
        "resend_wait": _resend_wait(challenge, policy.resend_cooldown),
        **(extra or {}),
    }
    return render_template("auth/code.html", **context), status


def sign_in_limit() -> str:
    return current_app.config["SIGN_IN_RATE_LIMIT"]


def code_entry_limit() -> str:
    return current_app.config["CODE_ENTRY_RATE_LIMIT"]


# Guessing passwords or codes from one address is slowed at the HTTP layer as well; the
# per-code and per-account counts in shop.otp hold whatever the address.
limit_sign_in = limiter.limit(sign_in_limit, methods=["POST"])
limit_code_entry = limiter.limit(code_entry_limit, methods=["POST"])
