"""The shipping form of a checkout, with the key that makes its submit idempotent."""

import secrets

from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Regexp, ValidationError

from shop import orders
from shop.countries import InvalidPostcode, check_postcode, country_choices
from shop.web.forms import StrictForm

POSTCODE_HINT = "Leave it empty only if addresses in your country have none."


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(24)


def _stripped(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _text(label: str, maximum: int, missing: str) -> StringField:
    # Stripped first, so that a name of spaces is a missing name.
    return StringField(label, [DataRequired(missing), Length(max=maximum)], filters=[_stripped])


class CheckoutForm(StrictForm):
    full_name = _text("Full name", 120, "Enter the name to deliver to.")
    address_line1 = _text("Address", 200, "Enter the street address.")
    city = _text("Town or city", 100, "Enter the town or city.")
    postal_code = StringField(
        "Postcode", [Length(max=40)], filters=[_stripped], description=POSTCODE_HINT
    )
    country = SelectField("Country", [InputRequired()], choices=country_choices, default="GB")
    idempotency_key = HiddenField(
        validators=[
            InputRequired("The form came back incomplete: check it and place the order again."),
            Regexp(
                r"^[A-Za-z0-9_-]{16,64}$",
                message="The form came back altered: check it and place the order again.",
            ),
        ]
    )

    def validate_postal_code(self, field: StringField) -> None:
        try:
            field.data = check_postcode(self.country.data or "", field.data or "")
        except InvalidPostcode as error:
            raise ValidationError(str(error)) from None

    def shipping_address(self) -> orders.ShippingAddress:
        return orders.ShippingAddress(
            full_name=self.full_name.data,
            address_line1=self.address_line1.data,
            city=self.city.data,
            postal_code=self.postal_code.data,
            country=self.country.data,
        )
