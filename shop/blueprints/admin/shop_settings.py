"""The owner's settings page: the shop's settings (audited, over the environment's defaults)
and the owner's own alert, an SMS for each held order."""

import re
from decimal import Decimal
from typing import Any

import phonenumbers
from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug import Response
from wtforms import BooleanField, StringField, ValidationError
from wtforms.validators import InputRequired, Length, NumberRange

from shop import settings
from shop.accounts import preferences
from shop.blueprints.admin import bp
from shop.countries import country_name
from shop.extensions import db
from shop.settings import ShopSettings
from shop.web.client import client_ip, current_client
from shop.web.forms import StrictForm, WholeNumberField, error_messages

LABELS = {
    "allowed_countries": "Countries whose numbers may register and receive SMS",
    "refusals_alert_per_hour": "Alert when more code sends than this are refused in an hour",
    "spend_alert_per_hour": "Alert when more than this is spent on SMS in an hour",
    "held_order_days": "Cancel an order held for review after this many days",
}
SPEND = re.compile(r"[0-9]{1,6}(\.[0-9]{1,4})?")


class SettingsForm(StrictForm):
    allowed_countries = StringField(LABELS["allowed_countries"], [InputRequired(), Length(max=300)])
    refusals_alert_per_hour = WholeNumberField(
        LABELS["refusals_alert_per_hour"],
        [InputRequired(), NumberRange(1, 1_000_000, "Enter a whole number from 1 to 1000000.")],
    )
    spend_alert_per_hour = StringField(LABELS["spend_alert_per_hour"], [InputRequired()])
    held_order_days = WholeNumberField(
        LABELS["held_order_days"],
        [InputRequired(), NumberRange(1, 90, "Enter a whole number of days from 1 to 90.")],
    )

    @classmethod
    def showing(cls, current: ShopSettings) -> "SettingsForm":
        return cls(
            data={
                "allowed_countries": ", ".join(current.allowed_countries),
                "refusals_alert_per_hour": current.refusals_alert_per_hour,
                "spend_alert_per_hour": str(current.spend_alert_per_hour),
                "held_order_days": current.held_order_days,
            }
        )

    def validate_allowed_countries(self, field: StringField) -> None:
        codes = country_codes(field.data)
        unknown = [code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValidationError(
                f"Not a country code: {', '.join(unknown[:5])}. Use ISO codes such as GB, IE."
            )
        if not codes:
            raise ValidationError("Name at least one country, such as GB.")
        own = settings.region_left_out(current_user.phone, codes)
        if own is not None:
            raise ValidationError(
                f"Your own number is in {own}: without {own} you could no longer get the "
                f"codes that sign you in. Keep {own} in the list."
            )

    def validate_spend_alert_per_hour(self, field: StringField) -> None:
        amount = spend_amount(field.data)
        if amount is None or amount <= 0:
            raise ValidationError("Enter an amount above 0, such as 5.00.")

    def settings(self) -> ShopSettings:
        """The settings of a validated form."""
        return ShopSettings(
            allowed_countries=tuple(country_codes(self.allowed_countries.data)),
            refusals_alert_per_hour=self.refusals_alert_per_hour.data,
            spend_alert_per_hour=spend_amount(self.spend_alert_per_hour.data),
            held_order_days=self.held_order_days.data,
        )


def country_codes(text: str | None) -> list[str]:
    """Country codes as typed ("gb, IE;fr"), upper case, each once, in the order typed."""
    codes = (code.upper() for code in re.split(r"[\s,;]+", text or "") if code)
    return list(dict.fromkeys(codes))


def spend_amount(text: str | None) -> Decimal | None:
    text = (text or "").strip()
    return Decimal(text) if SPEND.fullmatch(text) else None


class OwnerAlertsForm(StrictForm):
    alert_order_held = BooleanField("Send me an SMS whenever an order is held for review")


def render_settings(form: SettingsForm, alerts_form: OwnerAlertsForm, status: int = 200):
    return render_template(
        "admin/settings.html",
        form=form,
        alerts_form=alerts_form,
        errors=error_messages(form),
        defaults=settings.defaults(),
        country_name=country_name,
    ), status


def shown(value: Any) -> str:
    """A setting's value as the owner reads it: countries as "GB, IE", not "['GB', 'IE']"."""
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "none"
    return str(value)


@bp.route("/settings", methods=["GET", "POST"])
def shop_settings() -> Response | tuple[str, int]:
    form = SettingsForm.showing(settings.current())
    alerts_form = OwnerAlertsForm(obj=current_user)
    if not form.is_submitted():
        return render_settings(form, alerts_form)
    form = SettingsForm()
    if not form.validate_on_submit():
        return render_settings(form, alerts_form, 422)
    changes = settings.save(
        form.settings(), actor=current_user._get_current_object(), ip=client_ip()
    )
    db.session.commit()
    if changes:
        listed = "; ".join(
            f"{LABELS[key]}: {shown(old)} → {shown(new)}" for key, (old, new) in changes.items()
        )
        flash(f"Settings saved. Changed: {listed}.", "success")
    else:
        flash("Nothing to save: the settings are unchanged.", "info")
    return redirect(url_for("admin.shop_settings"))


@bp.post("/settings/alerts")
def owner_alerts() -> Response | tuple[str, int]:
    form = OwnerAlertsForm()
    if not form.validate_on_submit():
        return render_settings(SettingsForm.showing(settings.current()), form, 422)
    preferences.set_owner_alerts(
        current_user._get_current_object(),
        order_held=form.alert_order_held.data,
        client=current_client(),
    )
    flash("Your alert setting is saved.", "success")
    return redirect(url_for("admin.shop_settings"))
