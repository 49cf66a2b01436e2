"""Phone numbers: normalised to E.164 with `phonenumbers` and limited to the allowed countries."""

import re
from collections.abc import Sequence

import phonenumbers

from shop.countries import country_name

# Ofcom keeps 07700 900000-900999 for drama: no real phone has them, so the demo accounts use
# them. libphonenumber calls them invalid; we accept them as the GB mobiles they look like.
FICTIONAL_GB_MOBILE = re.compile(r"\+447700900\d{3}")
MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


class InvalidPhone(ValueError):
    """The number cannot receive our SMS; the message is safe to show to the user.

    `country_not_allowed` tells a refusal by country (the mark of SMS pumping) from a number
    that is simply wrong.
    """

    def __init__(self, message: str, *, country_not_allowed: bool = False) -> None:
        super().__init__(message)
        self.country_not_allowed = country_not_allowed


def normalise_phone(raw: str, allowed_countries: tuple[str, ...]) -> str:
    """Return `raw` in E.164, or raise InvalidPhone saying why not."""
    default_region = allowed_countries[0] if allowed_countries else None
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(
            "Enter a mobile number, with its country code if outside the UK."
        ) from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if FICTIONAL_GB_MOBILE.fullmatch(e164):
        region = "GB"
    elif not phonenumbers.is_valid_number(number):
        raise InvalidPhone("That is not a valid phone number.")
    elif phonenumbers.number_type(number) not in MOBILE_TYPES:
        raise InvalidPhone("Enter a mobile number: codes are sent by SMS.")
    else:
        region = phonenumbers.region_code_for_number(number)
    if region not in allowed_countries:
        raise InvalidPhone(
            f"We can only send SMS to numbers in: {countries_named(allowed_countries)}.",
            country_not_allowed=True,
        )
    return e164


def countries_named(codes: Sequence[str]) -> str:
    """The countries by name, each with its ISO code as the owner's settings list it:
    "United Kingdom (GB), Ireland (IE)"."""
    return ", ".join(f"{country_name(code)} ({code})" for code in codes)


def phone_country(raw: str) -> str | None:
    """The ISO country of a number, or None when it cannot be read."""
    if FICTIONAL_GB_MOBILE.fullmatch(raw):
        return "GB"
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(raw, None))
    except phonenumbers.NumberParseException:
        return None
    return region if region and len(region) == 2 and region.isalpha() else None


def mask_phone(e164: str) -> str:
    """Keep the country calling code and the last three digits: "+44 ••••••• 123",
    "+353 •••••• 567" (a number as typed, not E.164, keeps its first three characters)."""
    code = _calling_code(e164)
    rest = e164[len(code) :]
    return f"{code} {'•' * max(len(rest) - 3, 0)} {rest[-3:]}"


def _calling_code(number: str) -> str:
    """The calling code a number starts with, "+44" of "+447700900123" (calling codes are
    prefix-free: the first known prefix is the one)."""
    known = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
    if number.startswith("+"):
        for length in (1, 2, 3):
            digits = number[1 : 1 + length]
            if digits.isascii() and digits.isdigit() and int(digits) in known:
                return number[: 1 + length]
    return number[:3]
