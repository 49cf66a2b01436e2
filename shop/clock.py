"""The one clock of the shop: every "now" comes from here so that tests can freeze time."""

from datetime import UTC, datetime


def now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)
