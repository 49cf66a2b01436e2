"""Configuration read from the environment, with safe defaults.

A leaf: it imports nothing of the shop, and it reads only `os.environ`. The entry points
(`wsgi.py`, the `flask` command) load a `.env` file into the environment before this runs.
"""

import os
import secrets
from pathlib import Path

# SPEC section 5, every number configurable by an environment variable of the same name.
OTP_DEFAULTS: dict[str, int] = {
    "OTP_DIGITS": 6,
    "OTP_VALIDITY_SECONDS": 300,
    "OTP_MAX_ATTEMPTS": 5,
    "OTP_MAX_ACCOUNT_FAILURES": 10,
    "OTP_RESEND_COOLDOWN_SECONDS": 30,
    "OTP_SENDS_PER_NUMBER_10_MIN": 5,
    "OTP_SENDS_PER_NUMBER_DAY": 15,
    "OTP_NUMBERS_PER_IP_HOUR": 5,
    "OTP_SENDS_PER_IP_HOUR": 30,
}

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _countries(value: str) -> tuple[str, ...]:
    return tuple(code.strip().upper() for code in value.split(",") if code.strip())


def _secret_key() -> str:
    """The environment's key, else one kept in the instance folder so restarts keep sessions."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    """Settings for one app; `create_app(config)` overrides any of them with a mapping."""

    def __init__(self) -> None:
        env = os.environ
        self.SECRET_KEY = _secret_key()
        self.SQLALCHEMY_DATABASE_URI = env.get(
            "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'shop.sqlite3'}"
        )
        self.REDIS_URL = env.get("REDIS_URL") or None
        # HTTP rate limits (Flask-Limiter): per client address, in Redis when configured.
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL or "memory://"
        self.RATELIMIT_HEADERS_ENABLED = True
        # Flask-Limiter would put its window countdown in Retry-After on every response;
        # `Retry-After` is kept for refusals (shop.web.ratelimits.retry_after_seconds).
        self.RATELIMIT_HEADER_RETRY_AFTER = "X-RateLimit-Retry-After"
        self.SIGN_IN_RATE_LIMIT = env.get("SIGN_IN_RATE_LIMIT", "10 per minute;100 per hour")
        self.CODE_ENTRY_RATE_LIMIT = env.get("CODE_ENTRY_RATE_LIMIT", "20 per minute")
        self.API_RATE_LIMIT = env.get("API_RATE_LIMIT", "300 per minute")
        self.SMS_BACKEND = env.get("SMS_BACKEND", "console")
        debug = _bool(env.get("FLASK_DEBUG"))
        # The console backend outside debug mode must be asked for; /dev/phone, which shows
        # its messages (live codes included), is served only in debug mode or when asked for.
        self.ALLOW_CONSOLE_SMS = _bool(env.get("ALLOW_CONSOLE_SMS"))
        self.DEV_PHONE = _bool(env.get("DEV_PHONE"), default=debug)
        # How many reverse proxies stand in front of the app (Werkzeug's ProxyFix): 0 trusts
        # no X-Forwarded-For, so every client address is the connection's own.
        self.TRUSTED_PROXIES = int(env.get("TRUSTED_PROXIES", "0"))
        self.VONAGE_API_KEY = env.get("VONAGE_API_KEY", "")
        self.VONAGE_API_SECRET = env.get("VONAGE_API_SECRET", "")
        self.VONAGE_SIGNATURE_SECRET = env.get("VONAGE_SIGNATURE_SECRET", "")
        self.VONAGE_FROM = env.get("VONAGE_FROM", "Shop")
        self.VONAGE_REST_HOST = env.get("VONAGE_REST_HOST", "rest.nexmo.com")
        self.VONAGE_API_HOST = env.get("VONAGE_API_HOST", "api.nexmo.com")
        self.VONAGE_TIMEOUT = int(env.get("VONAGE_TIMEOUT", "10"))
        self.SHOP_NAME = env.get("SHOP_NAME", "Shop")
        self.SHOP_CURRENCY = env.get("SHOP_CURRENCY", "EUR").upper()
        self.SMS_ALLOWED_COUNTRIES = _countries(env.get("SMS_ALLOWED_COUNTRIES", "GB"))
        # Defaults of the owner's settings (`shop.settings`): the owner may change them.
        self.SMS_ALERT_REFUSALS_PER_HOUR = int(env.get("SMS_ALERT_REFUSALS_PER_HOUR", "100"))
        self.SMS_ALERT_SPEND_PER_HOUR = env.get("SMS_ALERT_SPEND_PER_HOUR", "5.00")
        self.HELD_ORDER_CANCEL_DAYS = int(env.get("HELD_ORDER_CANCEL_DAYS", "7"))
        self.PUBLIC_BASE_URL = env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        # SPEC section 7: scrypt with N=2**17, r=8, p=1 or stronger.
        self.PASSWORD_HASH_METHOD = env.get("PASSWORD_HASH_METHOD", "scrypt:131072:8:1")
        self.SESSION_COOKIE_SECURE = _bool(env.get("SESSION_COOKIE_SECURE"), default=not debug)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_DURATION = 30 * 24 * 3600
        self.WTF_CSRF_TIME_LIMIT = 3600 * 8
        self.MAX_CONTENT_LENGTH = 64 * 1024
        self.MAX_FORM_MEMORY_SIZE = 64 * 1024
        self.SQLALCHEMY_ENGINE_OPTIONS: dict = {}
        # Authenticator-app secrets at rest (like SMS_ENCRYPTION_KEYS; else from SECRET_KEY).
        self.FACTOR_ENCRYPTION_KEYS = env.get("FACTOR_ENCRYPTION_KEYS", "")
        # The passkeys' relying party: its id (a domain, never an IP address) and the origin
        # browsers report. Empty: both from PUBLIC_BASE_URL, with `localhost` for a loopback IP.
        self.WEBAUTHN_RP_ID = env.get("WEBAUTHN_RP_ID", "")
        self.WEBAUTHN_ORIGIN = env.get("WEBAUTHN_ORIGIN", "").rstrip("/")
        # Adding or removing a factor needs a step-up of the same session this recently.
        self.STEP_UP_FRESH_SECONDS = int(env.get("STEP_UP_FRESH_SECONDS", "300"))
        # How often, at most, each web process reads the catalog's versions: a product's
        # change (stock included) shows on the catalog pages within that many seconds.
        self.CATALOG_RECHECK_SECONDS = float(env.get("CATALOG_RECHECK_SECONDS", "1"))
        # Retention (`flask sms prune`, `flask audit prune`): days of SMS (with refused
        # sends) and of audit events kept; see docs/decisions.md.
        self.SMS_RETENTION_DAYS = int(env.get("SMS_RETENTION_DAYS", "90"))
        self.AUDIT_RETENTION_DAYS = int(env.get("AUDIT_RETENTION_DAYS", "365"))
        for key, default in OTP_DEFAULTS.items():
            setattr(self, key, int(env.get(key, default)))

    def as_dict(self) -> dict:
        return {key: value for key, value in vars(self).items() if key.isupper()}
