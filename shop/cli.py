"""Command-line tasks: `flask --app wsgi seed-demo` and `flask --app wsgi create-owner`."""

import click
from email_validator import EmailNotValidError, validate_email
from flask import Flask, current_app

from shop import accounts, clock, demo
from shop.extensions import db
from shop.models import Role


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
        e164 = accounts.normalise_phone(phone, current_app.config["SMS_ALLOWED_COUNTRIES"])
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


def register(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(create_owner_command)
