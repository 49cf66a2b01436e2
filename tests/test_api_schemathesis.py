"""Schemathesis runs the API's own OpenAPI document against a live server, with every check.

Two runs on one server: first the stateful phase alone, on a fresh shop (checkout → its
challenge → verify or resend, following the document's links), then the examples,
coverage and fuzzing phases. Either run finding anything fails the test, with its report.

The server is the real app on a port of 127.0.0.1 with the demo data, one API token of the
demo shopper (sent with every request) and a cart that needs a code. Its limits are raised
for the run (thousands of requests from one address in a minute) and every product has
plenty of stock; both limits are tested at their configured values elsewhere. The
operation that revokes the token in use is left out: it would sign the rest of the run out
(tests/test_api.py tests it).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select, update

from shop import cart as carts
from shop.accounts.client import Client
from shop.accounts.tokens import issue_token
from shop.demo import DEMO_SHOPPER
from shop.extensions import db
from shop.models import Product, User
from tests.browser import live_server, make_live_app

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
GENEROUS = {
    "API_RATE_LIMIT": "100000 per minute",
    "SIGN_IN_RATE_LIMIT": "100000 per minute",
    "CODE_ENTRY_RATE_LIMIT": "100000 per minute",
    "OTP_SENDS_PER_NUMBER_10_MIN": 100_000,
    "OTP_SENDS_PER_NUMBER_DAY": 100_000,
    "OTP_NUMBERS_PER_IP_HOUR": 100_000,
    "OTP_SENDS_PER_IP_HOUR": 100_000,
}


def prepare(app) -> str:
    """A token of the demo shopper, whose cart holds an order that needs a code."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == DEMO_SHOPPER.email))
        db.session.execute(update(Product).values(stock=100_000))
        chair = db.session.scalar(select(Product.id).where(Product.name == "Office chair"))
        carts.save_user_cart(user, {chair: 1})
        db.session.commit()
        token = issue_token(user, "schemathesis", Client("127.0.0.1"))
        db.session.remove()
    return token


def run(base_url: str, token: str, tmp_path: Path, *, phases: str) -> str:
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--phases",
        phases,
        "--exclude-operation-id",
        "revokeCurrentToken",
        "--max-examples",
        "50",
        "--seed",
        "7",
        "--generation-database",
        "none",
        "--no-color",
    ]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    finished = subprocess.run(  # noqa: S603 (our own command line)
        command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env, check=False
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output
    assert "❌" not in output and "Failures:" not in output, output
    return output


def test_schemathesis_finds_nothing(tmp_path, migrated_template):
    app = make_live_app(tmp_path, migrated_template, **GENEROUS)
    token = prepare(app)
    with live_server(app) as base_url:
        stateful = run(base_url, token, tmp_path, phases="stateful")
        covered = re.search(r"API Links:\s+(\d+) covered", stateful)
        assert covered and int(covered.group(1)) >= 5, stateful
        run(base_url, token, tmp_path, phases="examples,coverage,fuzzing")
