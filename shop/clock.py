"""The one clock of the shop: every "now" comes from here so that tests can freeze time.

`moved_to(when)` sets the clock of the current context to a given time, for code that
replays the past through the real use cases (the demo's month of history).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

_moved: ContextVar[datetime | None] = ContextVar("shop_clock_moved", default=None)


def now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return _moved.get() or datetime.now(UTC)


@contextmanager
def moved_to(when: datetime) -> Iterator[None]:
    """Inside the block, `now()` in this context returns `when` (aware, UTC)."""
    if when.tzinfo is None:
        raise ValueError("moved_to needs an aware datetime")
    token = _moved.set(when.astimezone(UTC))
    try:
        yield
    finally:
        _moved.reset(token)
