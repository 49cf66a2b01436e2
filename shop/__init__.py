"""Shop: a Flask storefront with SMS one-time-password step-up for risky orders."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from shop.config import Config
from shop.web.application import ShopFlask

CONSOLE_OUTSIDE_DEBUG = (
    "SMS_BACKEND=console outside debug mode: no SMS would reach anyone, and codes would sit in "
    "the database for the demo phone. Set SMS_BACKEND=vonage for a real shop, FLASK_DEBUG=1 "
    "for development, or ALLOW_CONSOLE_SMS=1 to run the console backend anyway."
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment's `Config`, overridden by `config` if given."""
    app = ShopFlask(__name__, instance_relative_config=True)
    app.config.from_mapping(Config().as_dict())
    if config:
        app.config.from_mapping(config)
    check_sms_backend(app)
    register_proxies(app)
    register_input_guard(app)
    register_early_answers(app)
    register_extensions(app)
    register_blueprints(app)
    register_api(app)
    register_web_defences(app)
    register_template_helpers(app)
    register_commands(app)
    register_catalog_shortcut(app)
    return app


def check_sms_backend(app: Flask) -> None:
    """Refuse to start a shop that would fake its SMS unless that is meant (SPEC section 2)."""
    console = app.config["SMS_BACKEND"] == "console"
    if console and not app.debug and not app.config["ALLOW_CONSOLE_SMS"]:
        raise RuntimeError(CONSOLE_OUTSIDE_DEBUG)


def register_proxies(app: Flask) -> None:
    """Behind `TRUSTED_PROXIES` reverse proxies, the client address (the per-address limits)
    and scheme come from their X-Forwarded-For/-Proto; otherwise those headers are ignored."""
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def register_input_guard(app: Flask) -> None:
    """Bounded route converters (before any route exists) and no control characters."""
    from shop.web import input_guard

    input_guard.register_converters(app)
    input_guard.register(app)


def register_early_answers(app: Flask) -> None:
    """Before-request hooks that must run before the extensions' own: the cached catalog."""
    from shop.blueprints.catalog import answer_catalog_first

    app.before_request(answer_catalog_first)


def register_extensions(app: Flask) -> None:
    from shop import database
    from shop.accounts import sessions
    from shop.extensions import csrf, db, limiter, login_manager, migrate
    from shop.otp import Otp
    from shop.sms.sealing import BodySeal
    from shop.web.cookie_session import RememberingSessionInterface

    app.session_interface = RememberingSessionInterface()
    database.configure_engine(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    sessions.configure(login_manager)
    app.extensions["otp"] = Otp.from_config(app.config)
    app.extensions["sms_seal"] = BodySeal.from_config(app.config)
    app.extensions["factor_seal"] = BodySeal.from_config(
        app.config, setting="FACTOR_ENCRYPTION_KEYS", info=b"shop.factors.totp"
    )


def register_blueprints(app: Flask) -> None:
    from shop.blueprints import (
        account,
        admin,
        auth,
        cart,
        catalog,
        checkout,
        dev,
        errors,
        factors,
        orders,
        signin_stepup,  # noqa: F401 (adds the sign-in step-up routes to `auth`)
        webhooks,
    )

    blueprints = (catalog, cart, auth, checkout, orders, account, factors, admin, webhooks, errors)
    for module in blueprints:
        app.register_blueprint(module.bp)
    dev.register(app)  # the demo phone: console backend, in debug mode or with DEV_PHONE


def register_api(app: Flask) -> None:
    from shop.api import init_api

    init_api(app)


def register_web_defences(app: Flask) -> None:
    from shop.web import access_log, headers

    access_log.mask_access_logs()
    headers.register(app)


def register_template_helpers(app: Flask) -> None:
    from shop.accounts.phone import mask_phone
    from shop.countries import country_name
    from shop.money import format_money
    from shop.web.moments import time_tag

    app.add_template_filter(format_money, "money")
    app.add_template_filter(country_name, "country_name")
    app.add_template_filter(mask_phone, "masked_phone")
    app.add_template_filter(time_tag, "time_tag")

    @app.context_processor
    def shop_globals() -> dict[str, Any]:
        return {"shop_name": app.config["SHOP_NAME"]}


def register_catalog_shortcut(app: Flask) -> None:
    """The cached catalog page for a returning visitor, answered in front of Flask."""
    from shop.web import catalog_shortcut

    catalog_shortcut.register(app)


def register_commands(app: Flask) -> None:
    from shop import cli

    cli.register(app)
