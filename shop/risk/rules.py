"""The owner's risk rules: every threshold and switch of SPEC section 4, with its default."""

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

LoginMode = Literal["never", "new_device", "always"]
PhoneChangeAction = Literal["hold", "otp", "off"]
# What may answer a rule's step-up: any enrolled factor, or a passkey only (phishing-resistant:
# an order it fires on without a passkey on the account is held for review instead).
FactorRequirement = Literal["any", "passkey"]
HoldAction = Literal["hold", "passkey"]


@dataclass(frozen=True)
class RiskRules:
    """Amounts are minor units of the shop's currency; None turns a threshold off."""

    otp_threshold_minor: int | None = 25_000
    hold_threshold_minor: int | None = 500_000
    block_threshold_minor: int | None = None
    new_account_days: int = 7
    new_account_threshold_minor: int | None = 10_000
    new_device_or_address_threshold_minor: int | None = 10_000
    velocity_enabled: bool = True
    velocity_max_orders: int = 3
    velocity_max_amount_minor: int = 100_000
    phone_change_hours: int = 72
    phone_change_action: PhoneChangeAction = "hold"
    exemption_enabled: bool = True
    exemption_under_minor: int = 3_000
    exemption_max_orders: int = 5
    exemption_max_amount_minor: int = 10_000
    login_mode: LoginMode = "new_device"
    # Above the hold threshold: hold for review, or ask for a passkey (hold only without one).
    hold_threshold_action: HoldAction = "hold"
    otp_threshold_factor: FactorRequirement = "any"
    new_account_factor: FactorRequirement = "any"
    new_device_or_address_factor: FactorRequirement = "any"
    velocity_factor: FactorRequirement = "any"
    phone_changed_factor: FactorRequirement = "any"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RiskRules":
        """Rules from stored values; unknown keys are ignored, missing ones take defaults."""
        known = {field.name for field in fields(cls)}
        return replace(cls(), **{key: value for key, value in values.items() if key in known})

    def changes_from(self, old: "RiskRules") -> dict[str, tuple[Any, Any]]:
        """{rule: (old, new)} for every rule that differs."""
        before, after = old.as_dict(), self.as_dict()
        return {key: (before[key], after[key]) for key in after if before[key] != after[key]}
