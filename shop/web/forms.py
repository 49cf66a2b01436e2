"""Form pieces shared by the blueprints: strict forms and whole-number fields."""

import re

from flask import abort, request
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import NumberRange, StopValidation

from shop.cart import MAX_QUANTITY

ASCII_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
# The methods whose requests Flask-WTF reads as a submitted form.
SUBMIT_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class StrictForm(FlaskForm):
    """A form that refuses fields it does not declare, and fields sent more than once.

    Prices, totals and the like never come from the browser: a request that sends them, or
    sends a field twice hoping one copy wins, was tampered with and gets a 400.

    The fields are read from the form body alone. Flask-WTF would also read a JSON body or
    file parts, whose values are not text (a number, a list, an upload): no page sends
    those, and a field's parsing of them would fail as a 500.
    """

    def __init__(self, *args, **kwargs) -> None:
        if not args and "formdata" not in kwargs and request.method in SUBMIT_METHODS:
            kwargs["formdata"] = request.form
        super().__init__(*args, **kwargs)

    def validate_on_submit(self, extra_validators=None) -> bool:
        if self.is_submitted():
            expected = {field.name for field in self}
            for name in request.form:
                if name not in expected:
                    abort(400, description=f"Unexpected field “{name[:40]}” in the form.")
                if len(request.form.getlist(name)) > 1:
                    abort(400, description=f"The field “{name[:40]}” was sent more than once.")
        return super().validate_on_submit(extra_validators)


class WholeNumberField(IntegerField):
    """ASCII digits only: `int()` alone would also take "٣", " 1_0" and "+5"."""

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist:
            return
        text = valuelist[0].strip()
        if not ASCII_WHOLE_NUMBER.fullmatch(text):
            self.data = None
            raise ValueError(self.gettext("Enter a whole number."))
        self.data = int(text)

    def pre_validate(self, form: FlaskForm) -> None:
        """Text that is not a whole number gets one message: the field's range when it has
        one ("Enter a whole number from 1 to 99."), not "Enter a whole number." and then the
        range, which reads as a contradiction for "-1"."""
        if self.process_errors:
            ranged = [
                validator.message
                for validator in self.validators
                if isinstance(validator, NumberRange) and validator.message
            ]
            self.errors = ranged[:1] or list(self.process_errors)
            raise StopValidation()


def quantity_field(minimum: int = 1) -> WholeNumberField:
    message = f"Enter a whole number from {minimum} to {MAX_QUANTITY}."
    return WholeNumberField(
        "Quantity", validators=[NumberRange(minimum, MAX_QUANTITY, message)], default=1
    )


def error_messages(form: FlaskForm) -> list[str]:
    """Every validation error of `form`, each prefixed with its field's label."""
    return [
        f"{form[name].label.text}: {message}"
        for name, messages in form.errors.items()
        for message in messages
    ]
