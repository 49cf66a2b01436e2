"""The app under measurement (`make bench-scale`): its visitors, and the changes and
worker rounds the figures are made of.

Pages go through the app's WSGI stack with Flask's test client (sessions, CSRF, templates,
everything but the socket), as the demo shopper, the demo owner or a returning visitor who
sends the cookie of an earlier visit. Delivery-worker rounds call `DeliveryWorker` and
`expire_pending` as `flask sms worker` does, and the idle worker's CPU is read from /proc
while a real `flask sms worker` process polls the database.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text, update

from shop import audit, clock
from shop import cart as carts
from shop.accounts.client import Client
from shop.accounts.sessions import open_session
from shop.demo import DEMO_OWNER, DEMO_SHOPPER
from shop.extensions import db
from shop.models import Product, SmsMessage, SmsStatus, User
from shop.orders import expire_pending
from shop.retention import DEFAULT_BATCHES, Batches
from shop.sms import claims
from shop.sms.delivery import DeliveryWorker
from shop.sms.retention import prune_sms
from shop.sms.senders import ConsoleSender

ROOT = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
IDEMPOTENCY_KEY = re.compile(r'name="idempotency_key"[^>]*value="([^"]+)"')
ADDRESS = {
    "full_name": "Scale Bench",
    "address_line1": "1 Test Street",
    "city": "London",
    "postal_code": "SW1A 1AA",
    "country": "GB",
}
IDLE_CPU_SECONDS = 20
# Rows per transaction, as `flask sms prune` and `flask audit prune` delete them.
PRUNE_BATCH = DEFAULT_BATCHES.size


class _FormFields(HTMLParser):
    """The fields of the page's POST form to `action`, as a browser would send them."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.fields: dict[str, str] = {}
        self._in_form = self._done = False
        self._select: str | None = None
        self._first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form" and not self._done and values.get("action") == self.action:
            self._in_form = True
        if not self._in_form:
            return
        name = values.get("name")
        if tag == "input" and name:
            kind = values.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in values:
                    self.fields[name] = values.get("value", "y")
            elif kind not in ("submit", "button"):
                self.fields[name] = values.get("value", "")
        elif tag == "select" and name:
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            value = values.get("value", "")
            if self._first_option is None:
                self._first_option = value
                self.fields[self._select] = value
            if "selected" in values:
                self.fields[self._select] = value

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def form_fields(page: str, action: str) -> dict[str, str]:
    parser = _FormFields(action)
    parser.feed(page)
    return parser.fields


def signed_in(app: Flask, user: User) -> FlaskClient:
    """A client whose session is signed in as `user` (no password hash, no code)."""
    client = app.test_client()
    session_id = open_session(user, Client("127.0.0.1", user_agent="bench-scale"))
    with client.session_transaction() as session:
        session["_user_id"] = session_id
        session["_fresh"] = True
    return client


def visit(client: FlaskClient, url: str, **kwargs) -> dict[str, Any]:
    response = client.open(url, **kwargs)
    return {"status": response.status_code, "bytes": len(response.get_data())}


class Shop:
    """The app under measurement, its visitors, and a way to change data between runs."""

    def __init__(self, app: Flask, database_url: str, secret_key: str) -> None:
        self.app = app
        self.database_url = database_url
        self.secret_key = secret_key
        with app.app_context():
            owner = db.session.scalar(select(User).where(User.email == DEMO_OWNER.email))
            shopper = db.session.scalar(select(User).where(User.email == DEMO_SHOPPER.email))
            self.first_product = db.session.scalar(select(func.min(Product.id)))
            # The cheapest product: an order of one is under every risk threshold.
            self.pin = db.session.scalar(
                select(Product.id).order_by(Product.price_minor, Product.id).limit(1)
            )
            self.owner, self.shopper = signed_in(app, owner), signed_in(app, shopper)
            # Due messages as the data set left them: restored after each worker figure.
            self.due = list(
                db.session.scalars(
                    select(SmsMessage.id).where(
                        SmsMessage.status == SmsStatus.QUEUED,
                        SmsMessage.next_attempt_at <= clock.now(),
                    )
                )
            )
            db.session.remove()
        self.visitor = app.test_client()
        self.visitor.get("/")  # the first visit: a session cookie with a CSRF token
        self._flip = 0
        self._buyers: Iterator[int] = iter(())

    def change(self, sql: str, **values) -> None:
        """Commit a change to the first product from outside the app's requests (the app
        under measurement reads the catalog's versions on every request: the next page is
        the first to see the change)."""
        with self.app.app_context():
            db.session.execute(text(sql), {"id": self.first_product, **values})
            db.session.commit()
            db.session.remove()

    def stock_change(self) -> None:
        self._flip ^= 1
        delta = 1 if self._flip else -1
        self.change("UPDATE products SET stock = stock + :delta WHERE id = :id", delta=delta)

    def product_change(self) -> None:
        self._flip ^= 1
        self.change(
            "UPDATE products SET description = rtrim(description) || :suffix WHERE id = :id",
            suffix=" " if self._flip else "",
        )

    # Worker -----------------------------------------------------------------------------------

    def set_due(self, due: bool) -> None:
        """The data set's due messages back to due, or out of the way (in flight)."""
        if due:
            values = {
                "status": SmsStatus.QUEUED,
                "claimed_by": None,
                "lease_expires_at": None,
                "next_attempt_at": SmsMessage.created_at,
            }
        else:
            values = {
                "status": SmsStatus.SENDING,
                "claimed_by": "bench-elsewhere",
                "lease_expires_at": clock.now() + timedelta(days=1),
            }
        with self.app.app_context():
            db.session.execute(update(SmsMessage).where(SmsMessage.id.in_(self.due)).values(values))
            db.session.commit()
            db.session.remove()

    def in_app(self, work) -> dict[str, Any]:
        with self.app.app_context():
            try:
                return work()
            finally:
                db.session.remove()

    def worker(self) -> DeliveryWorker:
        return DeliveryWorker(ConsoleSender(), name="bench", housekeeping=(expire_pending,))

    def claim(self) -> dict[str, Any]:
        return self.in_app(lambda: {"claimed": len(self.worker().claim())})

    def expire_round(self) -> dict[str, Any]:
        return self.in_app(lambda: {"expired": expire_pending()})

    def sweep_round(self) -> dict[str, Any]:
        return self.in_app(lambda: (claims.sweep(), {})[1])

    def idle_round(self) -> dict[str, Any]:
        return self.in_app(lambda: {"handled": self.worker().run_once()})

    def database_processes(self) -> list[int]:
        """The PostgreSQL server's processes (its queries run there, not in the worker);
        none for SQLite, which runs in the worker's own process."""
        with self.app.app_context():
            if db.engine.dialect.name != "postgresql":
                return []
            data = db.session.execute(text("SHOW data_directory")).scalar()
            db.session.remove()
        postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def idle_worker_cpu(self) -> dict[str, Any]:
        """CPU of a real `flask sms worker` (console backend) polling with nothing due, and
        of the database server meanwhile (PostgreSQL)."""
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": self.secret_key,
            "SMS_BACKEND": "console",
            "ALLOW_CONSOLE_SMS": "1",
        }
        worker = subprocess.Popen(  # noqa: S603 (our own command)
            [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "sms", "worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            time.sleep(5)  # imports and the first rounds
            server = self.database_processes()
            before, started = _cpu_seconds(worker.pid), time.monotonic()
            server_before = {pid: _cpu_seconds(pid) for pid in server}
            time.sleep(IDLE_CPU_SECONDS)
            used = _cpu_seconds(worker.pid) - before
            server_used = sum(_cpu_seconds(pid) - start for pid, start in server_before.items())
            elapsed = time.monotonic() - started
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        figure = {"cpu_percent_of_a_core": round(100 * used / elapsed, 1)}
        if server:
            figure["database_cpu_percent_of_a_core"] = round(100 * server_used / elapsed, 1)
        return figure

    # Checkout ---------------------------------------------------------------------------------

    def new_buyers(self, count: int) -> None:
        """Fresh shoppers, each with a verified phone and nothing ordered yet."""
        with self.app.app_context():
            start = db.session.scalar(select(func.max(User.id))) + 1
            users = [
                User(
                    email=f"scale-buyer-{start + n}@example.com",
                    phone=f"+447700900{(start + n) % 1000:03d}",
                    password_hash="!",  # noqa: S106 (matches no password)
                    phone_verified_at=clock.now(),
                )
                for n in range(count)
            ]
            db.session.add_all(users)
            db.session.execute(
                text("UPDATE products SET stock = stock + :n WHERE id = :id"),
                {"n": count, "id": self.pin},
            )
            db.session.commit()
            self._buyers = iter([user.id for user in users])
            db.session.remove()

    def prepare_checkout(self) -> None:
        with self.app.app_context():
            user = db.session.get(User, next(self._buyers))
            carts.save_user_cart(user, {self.pin: 1})
            db.session.commit()
            self._buyer = signed_in(self.app, user)
            db.session.remove()
        page = self._buyer.get("/checkout").get_data(as_text=True)
        self._checkout_form = {
            **ADDRESS,
            "csrf_token": CSRF.search(page).group(1),
            "idempotency_key": IDEMPOTENCY_KEY.search(page).group(1),
        }

    def checkout(self) -> dict[str, Any]:
        response = self._buyer.post("/checkout", data=self._checkout_form)
        placed = "/orders/" in response.headers.get("Location", "")
        return {"status": response.status_code, "placed": placed}

    # Retention --------------------------------------------------------------------------------

    def prepare_prune(self, model, column) -> None:
        """A cut-off that makes the next `PRUNE_BATCH` oldest rows past retention."""
        with self.app.app_context():
            self._cutoff = db.session.scalar(
                select(column).order_by(column).offset(PRUNE_BATCH).limit(1)
            ) or clock.now() + timedelta(days=1)  # fewer rows than a batch: all of them
            db.session.remove()

    def prune_sms(self) -> dict[str, Any]:
        batches = Batches(size=PRUNE_BATCH, pause=0)
        return self.in_app(lambda: {"deleted": prune_sms(self._cutoff, batches).messages})

    def prune_audit(self) -> dict[str, Any]:
        batches = Batches(size=PRUNE_BATCH, pause=0)
        return self.in_app(lambda: {"deleted": audit.prune(self._cutoff, batches)})

    # Owner ------------------------------------------------------------------------------------

    def prepare_backtest(self) -> None:
        page = self.owner.get("/admin/risk").get_data(as_text=True)
        self._rules_form = form_fields(page, action="/admin/risk")

    def backtest(self) -> dict[str, Any]:
        return visit(self.owner, "/admin/risk/backtest", method="POST", data=self._rules_form)


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # the process ended: its time is lost, it was not the worker's poll
        return 0.0
    # utime and stime (fields 14 and 15 of stat, here 12 and 13 after the name)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
