"""Accounts without HTTP: phone numbers, password hashing, authentication."""

import pytest

from shop import accounts
from shop.accounts import phone as phones
from shop.models import Role
from tests.factories import PASSWORD, make_user

GB = ("GB",)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("07700 900123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("+44 (0)7700-900-123", "+447700900123"),
        ("07400 123456", "+447400123456"),
    ],
)
def test_uk_mobiles_are_normalised_to_e164(raw, e164):
    assert accounts.normalise_phone(raw, GB) == e164


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not a number", "Enter a mobile number"),
        ("07700", "not a valid phone number"),
        ("020 7946 0000", "Enter a mobile number: codes are sent by SMS"),
        ("+33 6 12 34 56 78", r"only send SMS to numbers in: United Kingdom \(GB\)"),
        ("+1 202 555 0100", r"only send SMS to numbers in: United Kingdom \(GB\)"),
    ],
)
def test_numbers_we_cannot_text_are_refused_with_a_reason(raw, message):
    with pytest.raises(accounts.InvalidPhone, match=message):
        accounts.normalise_phone(raw, GB)


def test_allowed_countries_come_from_configuration():
    assert accounts.normalise_phone("+33 6 12 34 56 78", ("GB", "FR")) == "+33612345678"


def test_masked_phone_shows_only_the_last_three_digits():
    assert phones.mask_phone("+447700900123") == "+44 ••••••• 123"
    # The whole calling code, however long: an Irish number does not read as "+35".
    assert phones.mask_phone("+353851234567") == "+353 •••••• 567"
    assert phones.mask_phone("+12025550123") == "+1 ••••••• 123"
    assert phones.mask_phone("0851234567") == "085 •••• 567"  # as typed, refused


def test_passwords_are_hashed_with_scrypt_at_the_configured_cost(app):
    method = app.config["PASSWORD_HASH_METHOD"]
    assert method == "scrypt:131072:8:1"
    user = accounts.register_user("New@Example.com ", "+447700900321", PASSWORD, hash_method=method)
    assert user.email == "new@example.com"
    assert user.password_hash.startswith("scrypt:131072:8:1$")
    assert PASSWORD not in user.password_hash
    assert user.role == Role.SHOPPER


def test_registering_a_taken_email_raises(app):
    make_user("taken@example.com")
    with pytest.raises(accounts.EmailTaken):
        accounts.register_user("TAKEN@example.com", "+447700900321", PASSWORD, hash_method="x")


def test_authenticate(app):
    method = app.config["PASSWORD_HASH_METHOD"]
    user = make_user("ada@example.com")
    assert accounts.authenticate(" ADA@example.com", PASSWORD, hash_method=method) == user
    assert accounts.authenticate("ada@example.com", "wrong password", hash_method=method) is None
    assert accounts.authenticate("nobody@example.com", PASSWORD, hash_method=method) is None


def test_unknown_email_still_costs_one_hash_check_of_the_same_method(app, monkeypatch):
    checked = []
    original = accounts.check_password_hash
    monkeypatch.setattr(
        accounts,
        "check_password_hash",
        lambda pwhash, password: checked.append(pwhash.split("$")[0]) or original(pwhash, password),
    )
    method = app.config["PASSWORD_HASH_METHOD"]
    make_user("ada@example.com")
    accounts.authenticate("nobody@example.com", PASSWORD, hash_method=method)
    accounts.authenticate("ada@example.com", "wrong password", hash_method=method)
    assert checked == [method, method]
