"""The owner's settings: the environment gives the defaults, an owner's change is audited and
wins, and the allowed countries are read in one place by every send and every number."""

import json
from dataclasses import replace
from decimal import Decimal

import phonenumbers
import pytest
from sqlalchemy import func, select

from shop import otp, settings
from shop.accounts.client import Client
from shop.accounts.verification import RegisterOutcome, register
from shop.extensions import db
from shop.models import AuditEvent, OtpPurpose, SendRefusal, ShopSettingsVersion, User
from shop.otp import texts
from tests.factories import make_user, text_of

IRISH_MOBILE = phonenumbers.format_number(
    phonenumbers.example_number_for_type("IE", phonenumbers.PhoneNumberType.MOBILE),
    phonenumbers.PhoneNumberFormat.E164,
)
FORM = {
    "allowed_countries": "GB",
    "refusals_alert_per_hour": "100",
    "spend_alert_per_hour": "5.00",
    "held_order_days": "7",
}


def versions() -> int:
    return db.session.scalar(select(func.count(ShopSettingsVersion.id)))


def test_the_environment_gives_the_defaults(app):
    app.config.update(SMS_ALERT_REFUSALS_PER_HOUR=40, HELD_ORDER_CANCEL_DAYS=3)
    current = settings.current()
    assert current == settings.defaults()
    assert current.allowed_countries == ("GB",)
    assert (current.refusals_alert_per_hour, current.held_order_days) == (40, 3)
    assert current.spend_alert_per_hour == Decimal("5.00")


def test_an_owner_change_is_audited_and_pins_only_what_changed(client, owner, app):
    response = client.post_form("/admin/settings", {**FORM, "allowed_countries": "gb, ie"})
    assert response.status_code == 302
    page = text_of(client.get("/admin/settings"))
    assert (
        "Settings saved. Changed: Countries whose numbers may register and receive SMS: "
        "GB → GB, IE." in page
    )
    assert settings.allowed_countries() == ("GB", "IE")
    [row] = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "settings_changed"))
    assert row.actor_id == owner.id
    assert json.loads(row.detail) == {
        "changes": {"allowed_countries": {"old": ["GB"], "new": ["GB", "IE"]}}
    }
    # What the owner did not change still follows the environment.
    app.config["SMS_ALERT_REFUSALS_PER_HOUR"] = 25
    assert settings.current().refusals_alert_per_hour == 25
    assert settings.current().allowed_countries == ("GB", "IE")


def test_saving_unchanged_settings_saves_nothing(client, owner):
    client.post_form("/admin/settings", FORM)
    assert versions() == 0
    assert "Nothing to save" in text_of(client.get("/admin/settings"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("allowed_countries", "GB, XX", "Not a country code: XX"),
        ("allowed_countries", " , ", "Name at least one country"),
        ("refusals_alert_per_hour", "0", "from 1 to 1000000"),
        ("refusals_alert_per_hour", "ten", "Enter a whole number from 1 to 1000000."),
        ("refusals_alert_per_hour", "-1", "Enter a whole number from 1 to 1000000."),
        ("refusals_alert_per_hour", "2.5", "Enter a whole number from 1 to 1000000."),
        ("spend_alert_per_hour", "0", "Enter an amount above 0"),
        ("spend_alert_per_hour", "1e3", "Enter an amount above 0"),
        ("held_order_days", "91", "from 1 to 90"),
    ],
)
def test_bad_settings_are_422_and_change_nothing(client, owner, field, value, message):
    response = client.post_form("/admin/settings", {**FORM, field: value})
    assert response.status_code == 422
    assert message in text_of(response)
    assert "Enter a whole number. " not in text_of(response)  # one message, not two
    assert versions() == 0


def test_an_owner_cannot_leave_out_their_own_numbers_country(client, owner):
    """Leaving GB out would stop the owner's own sign-in codes: refused, nothing saved."""
    assert owner.phone.startswith("+44")
    response = client.post_form("/admin/settings", {**FORM, "allowed_countries": "FR"})
    assert response.status_code == 422
    assert "Your own number is in GB" in text_of(response)
    assert versions() == 0 and settings.allowed_countries() == ("GB",)
    response = client.post_form("/admin/settings", {**FORM, "allowed_countries": "FR, GB"})
    assert response.status_code == 302
    assert settings.allowed_countries() == ("FR", "GB")


def test_shoppers_cannot_change_settings(client):
    client.sign_in_as(make_user())
    response = client.post_form("/admin/settings", {**FORM, "allowed_countries": "NG"})
    assert response.status_code == 403
    assert versions() == 0


def test_every_code_send_reads_the_owners_countries(app, owner):
    shopper = make_user()
    settings.save(replace(settings.current(), allowed_countries=("IE",)), actor=owner, ip=None)
    db.session.commit()
    refused = otp.service().send(
        shopper, OtpPurpose.LOGIN, "b", client_ip="203.0.113.2", text=texts.login_code()
    )
    assert refused.outcome == "refused"
    assert db.session.scalar(select(SendRefusal.reason)) == "country_not_allowed"


def test_registration_reads_the_owners_countries_and_records_refusals(app, owner):
    client = Client("198.51.100.77")
    refused = register("ie@example.com", IRISH_MOBILE, "long enough password", client)
    assert refused.outcome == RegisterOutcome.INVALID_PHONE
    [refusal] = db.session.scalars(select(SendRefusal))
    assert (refusal.reason, refusal.country, refusal.purpose) == (
        "country_not_allowed",
        "IE",
        "phone",
    )
    assert (refusal.phone, refusal.client_ip, refusal.user_id) == (IRISH_MOBILE, client.ip, None)
    bad = register("typo@example.com", "12", "long enough password", client)
    assert bad.outcome == RegisterOutcome.INVALID_PHONE
    assert db.session.scalar(select(func.count(SendRefusal.id))) == 2

    settings.save(replace(settings.current(), allowed_countries=("GB", "IE")), actor=owner, ip=None)
    db.session.commit()
    with app.test_request_context():
        done = register("ie@example.com", IRISH_MOBILE, "long enough password", client)
    assert done.outcome == RegisterOutcome.ACCEPTED
    assert db.session.scalar(select(User).where(User.email == "ie@example.com")) is not None


def test_an_owner_opts_in_to_held_order_sms(client, owner):
    page = text_of(client.get("/admin/settings"))
    assert "Send me an SMS whenever an order is held for review" in page
    response = client.post_form("/admin/settings/alerts", {"alert_order_held": "y"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, owner.id).alert_order_held is True
    row = db.session.scalar(select(AuditEvent).where(AuditEvent.event == "alerts_changed"))
    assert json.loads(row.detail) == {"new": {"order_held": True}, "old": {"order_held": False}}
    client.post_form("/admin/settings/alerts", {})
    db.session.expire_all()
    assert db.session.get(User, owner.id).alert_order_held is False
