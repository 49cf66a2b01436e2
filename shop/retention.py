"""Deleting old rows a short batch at a time, so that pruning never locks the web out.

Each batch is a transaction of its own, of at most `size` rows picked through the index on
their time. Between two batches the pruner waits at least as long as the batch took (and at
least `pause`): on SQLite, where every writer queues for the one write lock, the web's
writes get in between batches, and a pruner can never hold the lock more than half the
time. On PostgreSQL the rows deleted are old and finished, so no request waits on them.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Select

from shop.extensions import db


@dataclass(frozen=True)
class Batches:
    size: int = 100  # at a million orders a month, a batch holds SQLite's write lock ~50 ms
    pause: float = 0.1  # seconds between two batches, at least


DEFAULT_BATCHES = Batches()


def delete_in_batches(
    pick: Select, delete_batch: Callable[[list[int]], object], batches: Batches
) -> int:
    """Delete, `batches.size` at a time, the rows whose ids `pick` selects (oldest first);
    `delete_batch(ids)` deletes them and whatever must go with them. Returns how many."""
    deleted = 0
    while True:
        started = time.monotonic()
        ids = list(db.session.scalars(pick.limit(batches.size)))
        if ids:
            delete_batch(ids)
        db.session.commit()
        deleted += len(ids)
        if len(ids) < batches.size:
            return deleted
        time.sleep(max(batches.pause, time.monotonic() - started))
