"""Money is an integer count of minor units plus an ISO 4217 code; this turns it into text."""

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision

LOCALE = "en_GB"


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-get_currency_precision(currency))


def format_money(minor: int, currency: str) -> str:
    """`format_money(25000, "EUR")` gives "€250.00"."""
    return format_currency(to_decimal(minor, currency), currency, locale=LOCALE)
