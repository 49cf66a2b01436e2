"""The data sets of the scale bench: S is the demo, M and L add a busy shop's month on top."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    """Rows to add on top of the demo: about this many of each (orders drive the rest)."""

    name: str
    users: int
    orders: int
    sms: int
    audit_events: int
    products: int  # in the catalog, the demo's 24 included


S = Size("S", 0, 0, 0, 0, 0)  # the demo as `make run` loads it
M = Size("M", 10_000, 100_000, 200_000, 300_000, 2_000)
L = Size("L", 100_000, 1_000_000, 2_000_000, 3_000_000, 20_000)
SIZES = {size.name: size for size in (S, M, L)}
