"""Named locks held until the transaction ends: what makes a guarantee that counts rows
(a cap, a lockout, a velocity rule) hold under concurrent requests.

Taking a lock upserts its `send_locks` row. On PostgreSQL the upsert locks that row until
commit, so a second request for the same name waits there and then counts what the first
committed; on SQLite the upsert is the transaction's first write, so it takes the database's
write lock (reads before it are not in a transaction). A use case takes the account's lock
as its first step, `fresh`: what its view loaded before is read again after it.

The names, in the one order any transaction takes them (so that two never wait on each other
in a cycle):

- `account:<user id>`: everything that decides on an account's step-up state. A checkout (its
  velocity and exemption counts), a confirm or a resend of an order's code, an answer to a
  code or a step-up (the 10-a-day lockout and its single alert), a new step-up (one live per
  purpose), a new code (the tries it carries), a "not me", an owner asking for a held order's
  code. Taken before any row of the account's orders or the products they hold.
- then rows: orders before their products, products in id order (a sweep or a review moves
  one order a transaction; a "not me" locks all its orders' rows, then all their products).
- `ip:<address>`, `phone:<number>`: a code's send limits (`shop.otp.limits`), taken with the
  account's when a code is issued, after any order or product row of the same transaction.
"""

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shop import clock
from shop.extensions import db
from shop.models import SendLock

# Where the session notes the keys its transaction holds: (that transaction, the keys).
HELD = "shop.locks.held"


def account(user_id: int) -> str:
    return f"account:{user_id}"


def hold(*keys: str) -> None:
    """Lock `keys` until the transaction ends, in the order above (sorted: "account" <
    "ip" < "phone"). A key the transaction holds already costs nothing: a checkout's steps
    each ask for the account's lock, and it is taken once."""
    transaction = db.session().get_transaction()
    taken_in, held = db.session.info.get(HELD, (None, frozenset()))
    if transaction is None or taken_in is not transaction:
        held = frozenset()
    wanted = sorted(set(keys) - held)
    if not wanted:
        return
    now = clock.now()
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    insert = postgresql_insert if postgresql else sqlite_insert
    for key in wanted:
        statement = insert(SendLock).values(key=key, touched_at=now)
        db.session.execute(
            statement.on_conflict_do_update(
                index_elements=[SendLock.key], set_={"touched_at": statement.excluded.touched_at}
            )
        )
    # The transaction the upserts ran in (begun by the first, if none was): a commit or a
    # rollback starts another, which holds nothing.
    db.session.info[HELD] = (db.session().get_transaction(), held | set(wanted))


def hold_account(user_id: int, *, fresh: bool = False) -> None:
    """Lock the account's step-up state until the transaction ends. `fresh`: a use case's
    first step, whose view may have loaded the account or its order already: what was
    loaded is read again, as the request before left it (the session keeps an object's
    loaded values otherwise, whatever a query returns)."""
    if fresh:
        db.session.flush()
    hold(account(user_id))
    if fresh:
        db.session.expire_all()
