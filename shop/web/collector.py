"""Python's cyclic garbage collector, set for a process that serves pages.

CPython runs a collection of its youngest objects every 700 net new container objects (lists,
dicts, ORM instances, rows...). An owner's page of 25 rows makes tens of thousands of them, so
the collector ran some fifty times a page, each time walking the young objects still alive: on
the owner's pages of a shop with 100,000 orders, 5 to 12 % of their time (measured in
process). With `YOUNG_THRESHOLD`, a few times a page. Nothing freed by its reference count
waits for it (most objects of a request); garbage in cycles waits longer, and the older
generations are looked at less often. The web workers' memory after `make bench`'s load did
not move.

Set once per process, by the entry point (`wsgi.py`: gunicorn's workers, the delivery process,
the flask CLI); a fork inherits it.
"""

import gc

YOUNG_THRESHOLD = 10_000


def tune() -> None:
    """Collect the youngest generation every `YOUNG_THRESHOLD` new objects; the older
    generations keep Python's own ratios."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
