"""The owner's risk rule form: every rule of `RiskRules`, amounts typed in the shop's currency.

Amounts are read with `decimal.Decimal` and stored as integer minor units, never as floats.
"""

import re
from dataclasses import fields
from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_precision
from wtforms import BooleanField, Field, SelectChoice, SelectField
from wtforms.validators import InputRequired, NumberRange
from wtforms.widgets import TextInput

from shop.money import format_money, to_decimal
from shop.risk import RiskRules
from shop.web.forms import StrictForm, WholeNumberField

MAX_AMOUNT = Decimal("10000000")
# Digits with an optional decimal part; thousands may be grouped with commas ("5,000.00").
AMOUNT = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,12})(?:\.[0-9]{1,12})?")

RULE_LABELS = {
    "otp_threshold_minor": "Ask for a code when the order total is at least",
    "hold_threshold_minor": "Hold for review when the order total is at least",
    "block_threshold_minor": "Block when the order total is at least",
    "new_account_days": "An account is new for (days)",
    "new_account_threshold_minor": (
        "Code for a first order or a new account when the total is at least"
    ),
    "new_device_or_address_threshold_minor": (
        "Code when the device or shipping address is new and the total is at least"
    ),
    "velocity_enabled": "Code when the account orders a lot in 24 hours",
    "velocity_max_orders": "More orders in 24 hours than",
    "velocity_max_amount_minor": "Or more in 24 hours than",
    "phone_change_hours": "A phone change counts as recent for (hours)",
    "phone_change_action": "When the phone number changed recently",
    "exemption_enabled": "Low-value exemption: small orders need no code",
    "exemption_under_minor": "Small means under",
    "exemption_max_orders": "Until this many orders since the last code",
    "exemption_max_amount_minor": "Or this much in total since the last code",
    "login_mode": "Ask for a code at sign-in",
    "hold_threshold_action": "At or above the hold threshold",
    "otp_threshold_factor": "Order total: who may confirm",
    "new_account_factor": "New accounts and first orders: who may confirm",
    "new_device_or_address_factor": "New device or address: who may confirm",
    "velocity_factor": "Many orders in 24 hours: who may confirm",
    "phone_changed_factor": "Phone number changed (when it asks for a code): who may confirm",
}
PHONE_CHANGE_CHOICES = [
    SelectChoice("hold", "Hold the order for review"),
    SelectChoice("otp", "Ask for a code"),
    SelectChoice("off", "Nothing special"),
]
LOGIN_CHOICES = [
    SelectChoice("never", "Never"),
    SelectChoice("new_device", "On a new device"),
    SelectChoice("always", "Always"),
]
HOLD_CHOICES = [
    SelectChoice("hold", "Hold for review"),
    SelectChoice("passkey", "Ask for a passkey (hold only when the account has none)"),
]
# What may answer a rule's step-up (`shop.risk.rules.FactorRequirement`).
FACTOR_CHOICES = [
    SelectChoice("any", "Any factor: passkey, authenticator app or SMS"),
    SelectChoice("passkey", "Passkey only (hold when the account has none)"),
]
FACTOR_RULES = (
    "otp_threshold_factor",
    "new_account_factor",
    "new_device_or_address_factor",
    "velocity_factor",
    "phone_changed_factor",
)
CHOICES_OF = {
    "phone_change_action": PHONE_CHANGE_CHOICES,
    "login_mode": LOGIN_CHOICES,
    "hold_threshold_action": HOLD_CHOICES,
    **dict.fromkeys(FACTOR_RULES, FACTOR_CHOICES),
}


def rule_text(key: str, value: Any, currency: str) -> str:
    """A rule's value in words: amounts as money, switches and empty thresholds as on/off."""
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "on" if value else "off"
    if key.endswith("_minor") and isinstance(value, int):
        return format_money(value, currency)
    if key in CHOICES_OF:
        labels = {choice.value: choice.label for choice in CHOICES_OF[key]}
        return labels.get(value, str(value))
    return str(value)


class MoneyField(Field):
    """An amount such as "250.00" in the shop's currency; `data` is a Decimal or None.

    The currency's decimals and the upper bound are checked by the form, which knows the
    currency.
    """

    widget = TextInput()

    def __init__(self, label: str, *, optional: bool = False, **kwargs) -> None:
        render_kw = {"inputmode": "decimal", "autocomplete": "off", "spellcheck": "false"}
        super().__init__(label, render_kw=render_kw, **kwargs)
        self.optional = optional

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else str(self.data)

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist:
            raise ValueError("This field is missing from the form: reload the page.")
        text = valuelist[0].strip()
        self.data = None
        if not text:
            if self.optional:
                return
            raise ValueError("Enter an amount.")
        if text.startswith("-"):
            raise ValueError("The amount cannot be negative.")
        if not AMOUNT.fullmatch(text):
            raise ValueError("Enter an amount such as 250.00, without the currency sign.")
        self.data = Decimal(text.replace(",", ""))


def money_field(key: str, *, optional: bool = False, hint: str | None = None) -> MoneyField:
    return MoneyField(RULE_LABELS[key], optional=optional, description=hint or "")


def whole_number(key: str, minimum: int, maximum: int) -> WholeNumberField:
    message = f"Enter a whole number from {minimum} to {maximum}."
    return WholeNumberField(
        RULE_LABELS[key], [InputRequired(message), NumberRange(minimum, maximum, message)]
    )


def factor_field(key: str) -> SelectField:
    return SelectField(RULE_LABELS[key], [InputRequired()], choices=FACTOR_CHOICES)


OFF_HINT = "Leave empty to turn this rule off."


class RiskRulesForm(StrictForm):
    """Every rule of `RiskRules`; `rules()` gives the rule set once the form is valid."""

    otp_threshold_minor = money_field("otp_threshold_minor", optional=True, hint=OFF_HINT)
    hold_threshold_minor = money_field("hold_threshold_minor", optional=True, hint=OFF_HINT)
    block_threshold_minor = money_field("block_threshold_minor", optional=True, hint=OFF_HINT)
    new_account_days = whole_number("new_account_days", 1, 365)
    new_account_threshold_minor = money_field(
        "new_account_threshold_minor", optional=True, hint=OFF_HINT
    )
    new_device_or_address_threshold_minor = money_field(
        "new_device_or_address_threshold_minor", optional=True, hint=OFF_HINT
    )
    velocity_enabled = BooleanField(RULE_LABELS["velocity_enabled"])
    velocity_max_orders = whole_number("velocity_max_orders", 1, 100)
    velocity_max_amount_minor = money_field("velocity_max_amount_minor")
    phone_change_hours = whole_number("phone_change_hours", 1, 720)
    phone_change_action = SelectField(
        RULE_LABELS["phone_change_action"], [InputRequired()], choices=PHONE_CHANGE_CHOICES
    )
    exemption_enabled = BooleanField(RULE_LABELS["exemption_enabled"])
    exemption_under_minor = money_field("exemption_under_minor")
    exemption_max_orders = whole_number("exemption_max_orders", 1, 100)
    exemption_max_amount_minor = money_field("exemption_max_amount_minor")
    login_mode = SelectField(RULE_LABELS["login_mode"], [InputRequired()], choices=LOGIN_CHOICES)
    hold_threshold_action = SelectField(
        RULE_LABELS["hold_threshold_action"], [InputRequired()], choices=HOLD_CHOICES
    )
    otp_threshold_factor = factor_field("otp_threshold_factor")
    new_account_factor = factor_field("new_account_factor")
    new_device_or_address_factor = factor_field("new_device_or_address_factor")
    velocity_factor = factor_field("velocity_factor")
    phone_changed_factor = factor_field("phone_changed_factor")

    def __init__(self, *args, currency: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.places = get_currency_precision(currency)

    @classmethod
    def for_rules(cls, rules: RiskRules, currency: str) -> "RiskRulesForm":
        """The form showing `rules`; a submitted form takes the posted values instead."""
        data = {
            key: to_decimal(value, currency)
            if key.endswith("_minor") and value is not None
            else value
            for key, value in rules.as_dict().items()
        }
        return cls(data=data, currency=currency)

    def money_fields(self) -> list[MoneyField]:
        return [field for field in self if isinstance(field, MoneyField)]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in self.money_fields():
            if field.errors or field.data is None:
                continue
            decimals = max(0, -int(field.data.as_tuple().exponent))
            if decimals > self.places:
                field.errors.append(
                    f"Use at most {self.places} decimals."
                    if self.places
                    else "Use a whole amount, without decimals."
                )
            elif field.data > MAX_AMOUNT:
                top = format_money(int(MAX_AMOUNT.scaleb(self.places)), self.currency)
                field.errors.append(f"Enter at most {top}.")
        self._check_order(self.hold_threshold_minor, self.otp_threshold_minor, "code")
        self._check_order(self.block_threshold_minor, self.hold_threshold_minor, "hold")
        if self.hold_threshold_minor.data is None:
            self._check_order(self.block_threshold_minor, self.otp_threshold_minor, "code")
        return valid and not self.errors

    def _check_order(self, higher: MoneyField, lower: MoneyField, what: str) -> None:
        """`higher` must be above `lower` when both are set and otherwise valid."""
        if higher.errors or lower.errors or higher.data is None or lower.data is None:
            return
        if higher.data <= lower.data:
            shown = format_money(self.minor_units(lower), self.currency)
            higher.errors.append(
                f"Must be above the {what} threshold ({shown}), or empty to turn it off."
            )

    def minor_units(self, field: MoneyField) -> int | None:
        return None if field.data is None else int(field.data.scaleb(self.places))

    def rules(self) -> RiskRules:
        values = {}
        for rule in fields(RiskRules):
            field = self[rule.name]
            values[rule.name] = (
                self.minor_units(field) if isinstance(field, MoneyField) else field.data
            )
        return RiskRules(**values)

    def posted_values(self) -> list[tuple[str, str]]:
        """The proposed rules as form fields, for a form that posts them again."""
        values = []
        for field in self:
            if field.name == "csrf_token":
                continue
            if isinstance(field, BooleanField):
                if field.data:
                    values.append((field.name, "y"))
            elif isinstance(field, MoneyField):
                values.append((field.name, "" if field.data is None else str(field.data)))
            else:
                values.append((field.name, str(field.data)))
        return values
