"""A simulated SMS-pumping run: hundreds of sign-ups from many client addresses, each with a
number in one of many countries, through the real forms (HTTP, CSRF, the registration and
sign-in use cases, the OTP send limits and their refusal records). Registering sends nothing;
the first sign-in sends the code that confirms the number, so the bot signs in too.

Pumpers sign up with numbers they are paid for, often abroad and in ranges; most countries
are not allowed here, and the allowed numbers soon hit the per-address and per-number caps.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import cycle

import phonenumbers
from flask import Flask

from tests.conftest import CSRF_FIELD

# Countries a pumping run likes; none is allowed by the default settings (GB only).
ABROAD = ("FR", "DE", "NG", "PK", "ID", "VN", "UZ", "EG", "BD", "KE")
PASSWORD = "pumped-password-123"


def _mobiles(region: str) -> list[str]:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    return [f"{e164[:-2]}{ending:02d}" for ending in range(20)]


@dataclass
class PumpingRun:
    attempts: int = 0
    addresses: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)


def pump(
    app: Flask,
    attempts: int = 300,
    *,
    on_attempt: Callable[[int], None] | None = None,
) -> PumpingRun:
    """`attempts` sign-ups, each a fresh browser session that then signs in. Two in three go
    abroad, from 60 addresses; one in three to 15 fictional GB mobiles, from 8 addresses (where
    the per-address and per-number caps bite); one in ten is not a phone number at all.

    The bot is spread over many addresses in real life; here its requests come in a burst, so
    the per-address HTTP limit on sign-in forms is raised for the run: what is tested is what
    reaches the SMS send path."""
    app.config["SIGN_IN_RATE_LIMIT"] = "100000 per minute"
    abroad = cycle([number for region in ABROAD for number in _mobiles(region)])
    gb = cycle(f"+447700900{ending:03d}" for ending in range(300, 315))
    run = PumpingRun()
    for attempt in range(attempts):
        if attempt % 10 == 9:
            number, address = f"+999{attempt:06d}", f"198.18.0.{attempt % 60 + 1}"
        elif attempt % 3 == 0:
            number, address = next(gb), f"198.18.1.{attempt % 8 + 1}"
        else:
            number, address = next(abroad), f"198.18.0.{attempt % 60 + 1}"
        client = app.test_client()
        environ = {"REMOTE_ADDR": address}
        page = client.get("/auth/register", environ_base=environ).get_data(as_text=True)
        token = CSRF_FIELD.search(page).group(1)
        response = client.post(
            "/auth/register",
            data={
                "csrf_token": token,
                "email": f"pump{attempt}@example.net",
                "phone": number,
                "password": PASSWORD,
            },
            environ_base=environ,
        )
        page = client.get("/auth/login", environ_base=environ).get_data(as_text=True)
        client.post(
            "/auth/login",
            data={
                "csrf_token": CSRF_FIELD.search(page).group(1),
                "email": f"pump{attempt}@example.net",
                "password": PASSWORD,
            },
            environ_base=environ,
        )
        run.attempts += 1
        run.addresses.add(address)
        run.numbers.add(number)
        run.statuses[response.status_code] = run.statuses.get(response.status_code, 0) + 1
        if on_attempt is not None:
            on_attempt(attempt)
    return run
