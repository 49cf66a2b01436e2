"""Amounts in words: the shop's quick writer gives exactly what Babel gives."""

import pytest
from babel.numbers import format_currency, list_currencies
from hypothesis import given
from hypothesis import strategies as st

from shop import money
from shop.money import LOCALE, format_money, to_decimal

EXAMPLES = ["EUR", "GBP", "USD", "CHF", "JPY", "KWD", "SEK", "CAD", "INR", "CLF"]


def babel(minor: int, currency: str) -> str:
    return format_currency(to_decimal(minor, currency), currency, locale=LOCALE)


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (25000, "EUR", "€250.00"),
        (552016, "EUR", "€5,520.16"),
        (5, "GBP", "£0.05"),
        (-123456789, "USD", "-US$1,234,567.89"),
        (1234567, "JPY", "JP¥1,234,567"),
        (1234, "KWD", "KWD1.234"),
        (0, "EUR", "€0.00"),
    ],
)
def test_amounts_are_written_as_the_shop_shows_them(minor, currency, text):
    assert format_money(minor, currency) == text == babel(minor, currency)


@given(
    minor=st.integers(min_value=-(10**15), max_value=10**15),
    currency=st.sampled_from(EXAMPLES),
)
def test_every_amount_is_written_as_babel_writes_it(minor, currency):
    assert format_money(minor, currency) == babel(minor, currency)


def test_every_currency_babel_knows_is_written_as_babel_writes_it():
    for currency in sorted(list_currencies()):
        for minor in (0, 7, -7, 1000, 123456789, -98765432100):
            assert format_money(minor, currency) == babel(minor, currency), currency


def test_a_currency_written_another_way_is_left_to_babel(monkeypatch):
    """Where the probe's digits are not found in Babel's text (another locale's separators),
    every amount is Babel's own."""
    money._layout.cache_clear()
    monkeypatch.setattr(money, "LOCALE", "de_DE")
    try:
        assert money._layout("EUR") is None
        assert format_money(552016, "EUR") == format_currency(
            to_decimal(552016, "EUR"), "EUR", locale="de_DE"
        )
    finally:
        money._layout.cache_clear()
