"""Command-line tasks: `seed-demo`, `create-owner`, the SMS worker, pruning old SMS and audit
events, and the development server (each `flask --app wsgi <command>`)."""

import signal
import threading
from datetime import timedelta

import click
from email_validator import EmailNotValidError, validate_email
from flask import Flask, current_app
from flask.cli import AppGroup
from werkzeug.serving import run_simple

from shop import accounts, audit, clock, demo, settings, tallies
from shop.extensions import db
from shop.models import Role
from shop.orders import expire_pending
from shop.orders.review import cancel_held_too_long
from shop.retention import DEFAULT_BATCHES, Batches
from shop.sms import retention as sms_retention
from shop.sms.backends import make_sender
from shop.sms.delivery import DeliveryWorker, Every, start_in_thread
from shop.sms.watch import watch_sms_abuse


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Load the demo catalog and accounts (safe to run again) and print the logins."""
    logins = demo.seed_demo(
        current_app.config["SHOP_CURRENCY"], current_app.config["PASSWORD_HASH_METHOD"]
    )
    click.echo(f"Demo data ready: {len(demo.PRODUCTS)} products. Sign in with:")
    for login in logins:
        click.echo(f"  {login.role:8} {login.email}  password: {login.password}  ({login.phone})")


@click.command("create-owner")
@click.argument("email")
@click.argument("phone")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_owner_command(email: str, phone: str, password: str) -> None:
    """Create a shop owner account whose phone counts as verified."""
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise click.BadParameter(str(error), param_hint="EMAIL") from None
    if not 8 <= len(password) <= 128:
        raise click.BadParameter("use 8 to 128 characters", param_hint="--password")
    try:
        e164 = accounts.normalise_phone(phone, settings.allowed_countries())
        user = accounts.register_user(
            email,
            e164,
            password,
            hash_method=current_app.config["PASSWORD_HASH_METHOD"],
            role=Role.OWNER,
        )
    except accounts.InvalidPhone as error:
        raise click.BadParameter(str(error), param_hint="PHONE") from None
    except accounts.EmailTaken:
        raise click.BadParameter("an account with this e-mail exists", param_hint="EMAIL") from None
    user.phone_verified_at = clock.now()
    db.session.commit()
    click.echo(f"Owner {user.email} created ({user.phone}).")


sms_cli = AppGroup("sms", help="SMS delivery.")


# Besides sending, the background process expires orders whose code lapsed (each round),
# cancels orders held for review too long, raises the SMS-abuse alarm, and folds the
# figures' tallies.
HOUSEKEEPING = (
    expire_pending,
    Every(60, cancel_held_too_long),
    Every(10, watch_sms_abuse),
    Every(60, tallies.compact_all),
)


def _worker(batch: int) -> DeliveryWorker:
    config = current_app.config
    lease = timedelta(seconds=max(60, 3 * int(config["VONAGE_TIMEOUT"])))
    return DeliveryWorker(
        make_sender(config), batch_size=batch, lease=lease, housekeeping=HOUSEKEEPING
    )


def _close(worker: DeliveryWorker) -> None:
    close = getattr(worker.sender, "close", None)
    if close is not None:
        close()


@sms_cli.command("worker")
@click.option("--once", is_flag=True, help="Handle what is due now, then exit.")
@click.option("--batch", default=10, show_default=True, help="Messages claimed per round.")
def sms_worker_command(once: bool, batch: int) -> None:
    """Send queued SMS until stopped (SIGINT or SIGTERM); run as many as you like."""
    worker = _worker(batch)
    try:
        if once:
            while worker.run_once():
                pass
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        backend = current_app.config["SMS_BACKEND"]
        click.echo(f"{worker.name}: delivering with the {backend} backend")
        worker.run(stop)
    finally:
        _close(worker)


# A century: further back than any date the database can subtract from today.
MAX_RETENTION_DAYS = 36_500


def _retention_days(days: int | None, setting: str, minimum: int) -> int:
    days = current_app.config[setting] if days is None else days
    if not minimum <= days <= MAX_RETENTION_DAYS:
        raise click.BadParameter(
            f"keep between {minimum} and {MAX_RETENTION_DAYS:,} days "
            f"({setting} is {current_app.config[setting]})",
            param_hint="--days",
        )
    return days


_batch_option = click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=DEFAULT_BATCHES.size,
    show_default=True,
    help="Rows deleted per transaction; the web's writes get in between two.",
)


@sms_cli.command("prune")
@click.option("--days", type=int, help="Days of SMS to keep (default: SMS_RETENTION_DAYS).")
@_batch_option
def sms_prune_command(days: int | None, batch: int) -> None:
    """Delete sent and failed SMS, and refused sends, older than the retention."""
    days = _retention_days(days, "SMS_RETENTION_DAYS", sms_retention.MIN_DAYS)
    pruned = sms_retention.prune_sms(clock.now() - timedelta(days=days), Batches(size=batch))
    click.echo(
        f"Deleted {pruned.messages} SMS and {pruned.refusals} refused sends older than {days} days."
    )


audit_cli = AppGroup("audit", help="The audit trail.")


@audit_cli.command("prune")
@click.option("--days", type=int, help="Days of events to keep (default: AUDIT_RETENTION_DAYS).")
@_batch_option
def audit_prune_command(days: int | None, batch: int) -> None:
    """Delete audit events older than the retention (rule changes are always kept)."""
    days = _retention_days(days, "AUDIT_RETENTION_DAYS", 1)
    deleted = audit.prune(clock.now() - timedelta(days=days), Batches(size=batch))
    click.echo(f"Deleted {deleted} audit events older than {days} days.")


@click.command("dev-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def dev_server_command(host: str, port: int) -> None:
    """The development server with an SMS delivery loop in the same process (`make run`)."""
    app = current_app._get_current_object()
    base = f"http://{host}:{port}"
    click.echo(f"Shop:        {base}/")
    if app.config["SMS_BACKEND"] == "console":
        click.echo(f"Demo phone:  {base}/dev/phone   (every SMS: codes and alerts; none is sent)")
    click.echo("Stop with Ctrl-C.")
    stop = start_in_thread(app, lambda: make_sender(app.config), HOUSEKEEPING)
    try:
        # Not app.run(): Flask ignores it inside a `flask` command.
        run_simple(host, port, app, threaded=True, use_debugger=app.debug, use_reloader=False)
    finally:
        stop.set()


def register(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(create_owner_command)
    app.cli.add_command(sms_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(dev_server_command)
