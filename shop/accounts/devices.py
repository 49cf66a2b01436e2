"""Devices an account has signed in from, for new-device alerts and risk rules."""

from functools import lru_cache

from sqlalchemy import select
from ua_parser import parse

from shop import clock
from shop.extensions import db
from shop.models import KnownDevice, User


@lru_cache(maxsize=1024)
def browser_label(user_agent: str) -> str:
    """ "Chrome on Linux", from a User-Agent header (ua-parser); never the raw header."""
    result = parse(user_agent[:512]) if user_agent else None
    browser = result.user_agent.family if result and result.user_agent else "an unknown browser"
    system = result.os.family if result and result.os else None
    return f"{browser} on {system}"[:80] if system and system != "Other" else browser[:80]


def remember_device(user: User, device_id: str, browser: str) -> bool:
    """Record a sign-in from `device_id`; True if the account had other devices but not this one."""
    now = clock.now()
    device = db.session.scalar(
        select(KnownDevice).where(
            KnownDevice.user_id == user.id, KnownDevice.device_id == device_id
        )
    )
    if device is not None:
        device.last_seen_at = now
        device.browser = browser
        return False
    had_devices = db.session.scalar(
        select(KnownDevice.id).where(KnownDevice.user_id == user.id).limit(1)
    )
    db.session.add(KnownDevice(user_id=user.id, device_id=device_id, browser=browser))
    return had_devices is not None


def is_known(user: User, device_id: str | None) -> bool:
    if not device_id:
        return False
    return (
        db.session.scalar(
            select(KnownDevice.id).where(
                KnownDevice.user_id == user.id, KnownDevice.device_id == device_id
            )
        )
        is not None
    )
