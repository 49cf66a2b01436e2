"""The OTP numbers of SPEC section 5, from configuration: tests check the configured values."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

DEFAULTS: dict[str, int] = {
    "OTP_DIGITS": 6,
    "OTP_VALIDITY_SECONDS": 300,
    "OTP_MAX_ATTEMPTS": 5,
    "OTP_MAX_ACCOUNT_FAILURES": 10,
    "OTP_RESEND_COOLDOWN_SECONDS": 30,
    "OTP_SENDS_PER_NUMBER_10_MIN": 3,
    "OTP_SENDS_PER_NUMBER_DAY": 10,
    "OTP_SENDS_PER_IP_HOUR": 10,
}


@dataclass(frozen=True)
class OtpPolicy:
    digits: int = 6
    validity: timedelta = timedelta(minutes=5)
    max_attempts: int = 5
    max_account_failures: int = 10
    account_window: timedelta = timedelta(hours=24)
    resend_cooldown: timedelta = timedelta(seconds=30)
    sends_per_number_10_min: int = 3
    sends_per_number_day: int = 10
    sends_per_ip_hour: int = 10

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "OtpPolicy":
        value = {key: int(config.get(key, default)) for key, default in DEFAULTS.items()}
        if value["OTP_DIGITS"] not in (6, 8):
            raise ValueError("OTP_DIGITS must be 6 or 8")
        return cls(
            digits=value["OTP_DIGITS"],
            validity=timedelta(seconds=value["OTP_VALIDITY_SECONDS"]),
            max_attempts=value["OTP_MAX_ATTEMPTS"],
            max_account_failures=value["OTP_MAX_ACCOUNT_FAILURES"],
            resend_cooldown=timedelta(seconds=value["OTP_RESEND_COOLDOWN_SECONDS"]),
            sends_per_number_10_min=value["OTP_SENDS_PER_NUMBER_10_MIN"],
            sends_per_number_day=value["OTP_SENDS_PER_NUMBER_DAY"],
            sends_per_ip_hour=value["OTP_SENDS_PER_IP_HOUR"],
        )
