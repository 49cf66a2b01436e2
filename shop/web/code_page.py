"""The page that asks for a code from an SMS: its forms, what it says about the code, and the
small JSON status its script polls so that delivery and countdowns update without a reload.

Used for sign-in, phone, order and password codes alike; it shows what
`shop.otp.challenges.status` says of the live code (where it went, its delivery, its
countdowns), never the code. Each blueprint serves the status of its own page's code at
`<page>/status`, reached with the page's session.
"""

from typing import Any

from flask import flash, jsonify, render_template
from werkzeug import Response
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length

from shop import otp
from shop.models import Factor, OtpChallenge, SmsStatus, StepUp
from shop.otp import ChallengeStatus, CodeSend, SendRefused, Sent, challenges
from shop.otp.outcomes import attempts_left
from shop.stepup.passkeys import MAX_CREDENTIAL_JSON
from shop.web.forms import StrictForm
from shop.words import plural

DELIVERY_WORDS = {
    SmsStatus.QUEUED: "waiting to be sent",
    SmsStatus.SENDING: "being sent",
    SmsStatus.SENT: "sent to your phone's network",
    SmsStatus.DELIVERED: "delivered to your phone",
    SmsStatus.FAILED: "could not be delivered: check the number's signal, then ask for a new code",
    SmsStatus.EXPIRED: "could not be delivered: check the number's signal, then ask for a new code",
    SmsStatus.REJECTED: "was refused by the phone network: ask for a new code, or contact us",
    SmsStatus.DROPPED: "not sent: the code expired first. Ask for a new code",
}
FAILED = {SmsStatus.FAILED, SmsStatus.EXPIRED, SmsStatus.REJECTED, SmsStatus.DROPPED}


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


def duration(seconds: int) -> str:
    """A wait as the page says it, and its script the same: 1 h 05 min, 4 min 05 s, 45 s."""
    minutes, rest = divmod(max(0, seconds), 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def delivery_text(code: ChallengeStatus | None) -> str:
    if code is None or code.delivery is None:
        return ""
    return f"Message {DELIVERY_WORDS.get(code.delivery, str(code.delivery))}."


def page_status(challenge: OtpChallenge | None, blocker: SendRefused | None) -> dict[str, Any]:
    """What the page shows of its code, as data: the server render and the script share it."""
    code = challenges.status(challenge, otp.service().policy) if challenge is not None else None
    return {
        "live": bool(code and code.live),
        "masked_phone": code.masked_phone if code else None,
        "delivery": str(code.delivery) if code and code.delivery else None,
        "delivery_text": delivery_text(code),
        "delivery_failed": bool(code and code.delivery in FAILED),
        "queued_seconds": code.queued_seconds if code else 0,
        "expires_in_seconds": code.expires_in_seconds if code and code.live else 0,
        # How long it works once on the phone: a queued code's clock starts when it goes out.
        "works_for_seconds": (code.expires_in_seconds - code.queued_seconds)
        if code and code.live
        else 0,
        "resend_in_seconds": code.resend_in_seconds if code and code.live else 0,
        "tries_left": code.tries_left if code else 0,
        "resend_blocked": blocker.message if blocker else None,
        "resend_retry_seconds": blocker.retry_after if blocker else None,
    }


def status_response(challenge: OtpChallenge | None, blocker: SendRefused | None) -> Response:
    """The JSON the page's script polls. Never cached: it is this moment's state."""
    response = jsonify(page_status(challenge, blocker))
    response.headers["Cache-Control"] = "no-store"
    return response


def render_code_page(
    *,
    title: str,
    reason: str,
    challenge: OtpChallenge | None,
    form: CodeForm,
    resend_url: str,
    status_url: str,
    blocker: SendRefused | None = None,
    status: int = 200,
    error: str | None = None,
    extra: dict | None = None,
    template: str = "auth/code.html",
):
    """The code entry page: why a code is asked, where it went, its delivery, its clock."""
    context = {
        "title": title,
        "reason": reason,
        "code": page_status(challenge, blocker),
        "form": form,
        "resend_form": ResendForm(formdata=None),
        "resend_url": resend_url,
        "status_url": status_url,
        "error": error,
        "duration": duration,
        "attempts_left": attempts_left,
        "plural": plural,
        "cooldown": int(otp.service().policy.resend_cooldown.total_seconds()),
        **(extra or {}),
    }
    return render_template(template, **context), status


# The factors beyond SMS on the same page: a passkey, an app code, a recovery code ------------

FACTOR_CHOICES = [
    SelectChoice("passkey", "Passkey"),
    SelectChoice("totp", "App code"),
    SelectChoice("recovery", "Recovery code"),
]


class FactorForm(StrictForm):
    """An answer of a factor other than SMS: the passkey's assertion (JSON, filled in by
    passkey.js), or a code typed from the app or the recovery sheet."""

    factor = SelectField(choices=FACTOR_CHOICES, validators=[InputRequired()])
    answer = StringField(
        "Code", [InputRequired("Enter the code."), Length(max=MAX_CREDENTIAL_JSON)]
    )


class AppCodeForm(FactorForm):
    answer = StringField(
        "Code from your authenticator app",
        [InputRequired("Enter the code your app shows."), Length(max=16)],
        id="app-code",
        render_kw={
            "autocomplete": "one-time-code",
            "inputmode": "numeric",
            "autocapitalize": "off",
            "spellcheck": "false",
        },
    )


class RecoveryCodeForm(FactorForm):
    answer = StringField(
        "Recovery code",
        [InputRequired("Enter one of your recovery codes."), Length(max=32)],
        id="recovery-code",
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
    )


def factor_forms(step_up: StepUp | None, *, factor_url: str, options_url: str) -> dict[str, Any]:
    """What the code page needs to offer the step-up's other factors, strongest first."""
    factors = [str(factor) for factor in step_up.factor_list] if step_up is not None else []
    return {
        "factors": factors,
        "factor_url": factor_url,
        "options_url": options_url,
        "passkey_form": FactorForm(formdata=None, factor="passkey"),
        "app_form": AppCodeForm(formdata=None, factor="totp"),
        "recovery_form": RecoveryCodeForm(formdata=None, factor="recovery"),
        "sms_allowed": step_up is None or Factor.SMS in step_up.factor_list,
    }


def submitted_factor(form: FactorForm) -> Factor:
    return Factor(form.factor.data)


def options_response(options: dict | None, message: str, status: int = 200) -> Response:
    """A passkey ceremony's options as JSON for passkey.js, or why there are none."""
    body = options if options is not None else {"message": message}
    response = jsonify(body)
    response.status_code = status if options is None else 200
    response.headers["Cache-Control"] = "no-store"
    return response
