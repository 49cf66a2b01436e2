"""Country codes and names (ISO 3166-1 alpha-2), from Babel's CLDR data."""

from functools import cache

from babel import Locale


@cache
def _names() -> dict[str, str]:
    territories = Locale("en").territories
    return {code: name for code, name in territories.items() if len(code) == 2 and code.isalpha()}


def country_choices() -> list[tuple[str, str]]:
    """(code, name) pairs sorted by name, for a select box."""
    return sorted(_names().items(), key=lambda choice: choice[1])


def country_name(code: str) -> str:
    return _names().get(code, code)
