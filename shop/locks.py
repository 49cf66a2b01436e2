"""Named locks held until the transaction ends: what makes a guarantee that counts rows
(a cap, a lockout, a velocity rule) hold under concurrent requests.

Taking a lock upserts its `send_locks` row. On PostgreSQL the upsert locks that row until
commit, so a second request for the same name waits there and then counts what the first
committed; on SQLite the upsert is the transaction's first write, so it takes the database's
write lock before anything is read.

The names, in the one order any transaction takes them (so that two never wait on each other
in a cycle):

- `account:<user id>`: everything that decides on an account's step-up state. A checkout (its
  velocity and exemption counts), an answer to a code or a step-up (the 10-a-day lockout and
  its single alert), a new step-up (one live per purpose), a new code (the tries it carries).
  Taken before any row of the account's orders or the products they hold.
- `ip:<address>`, `phone:<number>`: a code's send limits (`shop.otp.limits`), after the
  account's.
"""

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shop import clock
from shop.extensions import db
from shop.models import SendLock


def account(user_id: int) -> str:
    return f"account:{user_id}"


def hold(*keys: str) -> None:
    """Lock `keys` until the transaction ends, in the order above (sorted: "account" <
    "ip" < "phone"). Taking a lock the transaction holds already is harmless."""
    now = clock.now()
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    insert = postgresql_insert if postgresql else sqlite_insert
    for key in sorted(set(keys)):
        statement = insert(SendLock).values(key=key, touched_at=now)
        db.session.execute(
            statement.on_conflict_do_update(
                index_elements=[SendLock.key], set_={"touched_at": statement.excluded.touched_at}
            )
        )


def hold_account(user_id: int) -> None:
    """Lock the account's step-up state until the transaction ends."""
    hold(account(user_id))
