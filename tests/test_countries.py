"""Countries to ship to and their postcodes, from Google's address data (offline)."""

import pytest

from shop.countries import InvalidPostcode, check_postcode, country_choices, country_name


def test_the_list_holds_countries_only():
    names = dict(country_choices())
    for code in ("GB", "FR", "US", "JP", "HK", "AX", "XK"):
        assert code in names
    # CLDR names these with two letters too, but nobody ships to them.
    for code, name in [
        ("EU", "European Union"),
        ("EZ", "Eurozone"),
        ("UN", "United Nations"),
        ("QO", "Outlying Oceania"),
        ("XA", "Pseudo-Accents"),
        ("XB", "Pseudo-Bidi"),
    ]:
        assert code not in names and name not in names.values()
    assert country_name("GB") == "United Kingdom"
    assert [name for _, name in country_choices()][:2] == ["Afghanistan", "Albania"]


@pytest.mark.parametrize(
    ("country", "typed", "written"),
    [
        ("GB", "ls1 4ab", "LS1 4AB"),
        ("GB", " sw1y   4jh ", "SW1Y 4JH"),
        ("GB", "GIR 0AA", "GIR 0AA"),
        ("US", "95014", "95014"),
        ("US", "22162-1010", "22162-1010"),
        ("DE", "10115", "10115"),
        ("NL", "1234 ab", "1234 AB"),
        ("CA", "h3z 2y7", "H3Z 2Y7"),
        ("IE", "", ""),  # Eircodes exist but an address may go without
        ("HK", "", ""),  # no postcodes at all
    ],
)
def test_a_postcode_of_the_country_is_written_as_on_mail(country, typed, written):
    assert check_postcode(country, typed) == written


@pytest.mark.parametrize(
    ("country", "typed", "message"),
    [
        ("GB", "12345", "not how postcodes are written in United Kingdom (for example EC1Y 8SY)"),
        ("GB", "", "Enter the postcode (for example EC1Y 8SY)."),
        ("GB", "   ", "Enter the postcode"),
        ("US", "1234", "not how postcodes are written in United States"),
        ("DE", "SW1Y 4JH", "not how postcodes are written in Germany"),
        ("FR", "<script>", "Use letters, digits, spaces and hyphens"),
        ("HK", "9" * 21, "at most 20"),
    ],
)
def test_a_postcode_that_is_not_the_countrys_is_refused_with_an_example(country, typed, message):
    with pytest.raises(InvalidPostcode, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_postcode(country, typed)
