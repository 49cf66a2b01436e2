"""The owner's shop settings: where SMS may go, when SMS abuse raises an alarm, and how long
an order may wait for review.

The environment gives the defaults (`shop.config`: `SMS_ALLOWED_COUNTRIES`,
`SMS_ALERT_REFUSALS_PER_HOUR`, `SMS_ALERT_SPEND_PER_HOUR`, `HELD_ORDER_CANCEL_DAYS`). A
setting an owner saves is stored as a new version, audited old → new, and wins over the
environment from then on; the settings never changed keep following the environment.
"""

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from shop import audit
from shop.accounts.phone import phone_country
from shop.extensions import db
from shop.models import ShopSettingsVersion, User

# Each setting and the configuration key that gives its default.
DEFAULT_FROM = {
    "allowed_countries": "SMS_ALLOWED_COUNTRIES",
    "refusals_alert_per_hour": "SMS_ALERT_REFUSALS_PER_HOUR",
    "spend_alert_per_hour": "SMS_ALERT_SPEND_PER_HOUR",
    "held_order_days": "HELD_ORDER_CANCEL_DAYS",
}


@dataclass(frozen=True)
class ShopSettings:
    allowed_countries: tuple[str, ...]  # ISO 3166 codes that may register and receive SMS
    refusals_alert_per_hour: int  # more refused code sends than this in an hour: alarm
    spend_alert_per_hour: Decimal  # more provider spend than this in an hour: alarm
    held_order_days: int  # a held order older than this is cancelled

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> "ShopSettings":
        return cls(
            allowed_countries=tuple(str(code).upper() for code in values["allowed_countries"]),
            refusals_alert_per_hour=int(values["refusals_alert_per_hour"]),
            spend_alert_per_hour=Decimal(str(values["spend_alert_per_hour"])),
            held_order_days=int(values["held_order_days"]),
        )

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["allowed_countries"] = list(self.allowed_countries)
        values["spend_alert_per_hour"] = str(self.spend_alert_per_hour)
        return values

    def changes_from(self, old: "ShopSettings") -> dict[str, tuple[Any, Any]]:
        before, after = old.as_json(), self.as_json()
        return {key: (before[key], after[key]) for key in after if before[key] != after[key]}


def defaults() -> ShopSettings:
    config = current_app.config
    return ShopSettings.from_values({name: config[key] for name, key in DEFAULT_FROM.items()})


def _owner_values() -> dict[str, Any]:
    """The settings owners have saved, by name (the newest version holds all of them)."""
    row = db.session.scalar(
        select(ShopSettingsVersion.settings).order_by(ShopSettingsVersion.id.desc()).limit(1)
    )
    if row is None:
        return {}
    known = {field.name for field in fields(ShopSettings)}
    return {key: value for key, value in json.loads(row).items() if key in known}


def current() -> ShopSettings:
    """The settings in force: the owners' where they set one, else the environment's."""
    return ShopSettings.from_values({**defaults().as_json(), **_owner_values()})


def allowed_countries() -> tuple[str, ...]:
    """The countries whose numbers may register and receive SMS: the one place to ask."""
    return current().allowed_countries


def region_left_out(phone: str | None, countries: Sequence[str]) -> str | None:
    """The country of `phone` when `countries` leaves it out (codes to that number would
    stop), else None: what keeps an owner from cutting off their own sign-in codes."""
    region = phone_country(phone) if phone else None
    return region if region and region not in countries else None


def save(new: ShopSettings, *, actor: User, ip: str | None) -> dict[str, tuple[Any, Any]]:
    """Make `new` the settings in force and audit each change (not committed); return them.

    Only the settings that change are pinned: the others keep following the environment
    unless an owner pinned them before.
    """
    old = current()
    changes = new.changes_from(old)
    if changes:
        pinned = {**_owner_values(), **{key: new.as_json()[key] for key in changes}}
        db.session.add(ShopSettingsVersion(settings=json.dumps(pinned), created_by_id=actor.id))
        audit.record(
            audit.Event.SETTINGS_CHANGED,
            actor_id=actor.id,
            ip=ip,
            changes={
                key: {"old": before, "new": after} for key, (before, after) in changes.items()
            },
        )
    return changes
