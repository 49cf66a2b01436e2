"""Money is an integer count of minor units plus an ISO 4217 code; this turns it into text."""

from decimal import Decimal
from functools import cache

from babel.numbers import format_currency, get_currency_precision

LOCALE = "en_GB"
# An amount whose digits appear nowhere else in a currency's text: where they stand in
# Babel's rendering of it is where every amount's digits go.
PROBE_MINOR = 123_456_789


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-get_currency_precision(currency))


def format_money(minor: int, currency: str) -> str:
    """`format_money(25000, "EUR")` gives "€250.00", as Babel writes it in `LOCALE`.

    Babel's formatting costs about 50 µs; the owner's pages show a hundred amounts. So
    Babel writes one amount per currency, and the others are written the same way from
    that: the text before and after the digits, and the number of decimals."""
    layout = _layout(currency)
    if layout is None:
        return format_currency(to_decimal(minor, currency), currency, locale=LOCALE)
    before, after, decimals = layout
    sign = "-" if minor < 0 else ""
    return f"{sign}{before}{_digits(abs(minor), decimals)}{after}"


def _digits(minor: int, decimals: int) -> str:
    """`_digits(123456789, 2)` gives "1,234,567.89": grouped by thousands, exact."""
    if not decimals:
        return f"{minor:,}"
    whole, fraction = divmod(minor, 10**decimals)
    return f"{whole:,}.{fraction:0{decimals}d}"


@cache
def _layout(currency: str) -> tuple[str, str, int] | None:
    """(text before the digits, text after, decimals) of `currency` in `LOCALE`; None when
    Babel writes its digits some other way (then every amount is Babel's)."""
    decimals = get_currency_precision(currency)
    probe = format_currency(to_decimal(PROBE_MINOR, currency), currency, locale=LOCALE)
    digits = _digits(PROBE_MINOR, decimals)
    if probe.count(digits) != 1:
        return None
    before, after = probe.split(digits)
    return before, after, decimals
