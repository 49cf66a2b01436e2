"""The OTP numbers of SPEC section 5, read from configuration (defaults in `shop.config`)."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shop.config import OTP_DEFAULTS


@dataclass(frozen=True)
class OtpPolicy:
    digits: int
    validity: timedelta
    max_attempts: int
    max_account_failures: int
    resend_cooldown: timedelta
    sends_per_number_10_min: int
    sends_per_number_day: int
    numbers_per_ip_hour: int
    sends_per_ip_hour: int
    account_window: timedelta = timedelta(hours=24)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "OtpPolicy":
        value = {key: int(config.get(key, default)) for key, default in OTP_DEFAULTS.items()}
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
            numbers_per_ip_hour=value["OTP_NUMBERS_PER_IP_HOUR"],
            sends_per_ip_hour=value["OTP_SENDS_PER_IP_HOUR"],
        )

    @classmethod
    def defaults(cls) -> "OtpPolicy":
        return cls.from_config({})
