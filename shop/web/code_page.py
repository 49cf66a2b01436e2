"""The page that asks for a code from an SMS: its forms, and what it says about the code.

Used for sign-in, phone and order codes alike; it shows what `Otp.status` says of the live
code (where it went, its delivery, its countdowns), never the code.
"""

from flask import flash, render_template
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from shop import otp
from shop.models import OtpChallenge
from shop.otp import CodeSend, Sent
from shop.web.forms import StrictForm

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


def flash_send(send: CodeSend) -> None:
    """Say what became of a request for a new code."""
    flash(send.message, "error" if send.outcome == Sent.REFUSED else "success")


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
    """The code entry page: why a code is asked, where it went, its delivery, tries left."""
    service = otp.service()
    code = service.status(challenge) if challenge is not None else None
    context = {
        "title": title,
        "reason": reason,
        "code": code,
        "form": form,
        "resend_form": ResendForm(formdata=None),
        "resend_url": resend_url,
        "error": error,
        "delivery": DELIVERY_WORDS.get(code.delivery) if code and code.delivery else None,
        "validity_minutes": int(service.policy.validity.total_seconds() // 60),
        "cooldown": int(service.policy.resend_cooldown.total_seconds()),
        **(extra or {}),
    }
    return render_template("auth/code.html", **context), status
