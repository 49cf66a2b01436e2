"""`make run`'s server: one command serves the shop and delivers SMS to /dev/phone."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

from shop import create_app
from shop.extensions import db
from shop.models import SmsKind
from shop.sms import queue_sms
from tests import ROOT
from tests.conftest import config_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
        return response.read().decode()


def test_dev_server_delivers_sms_with_no_second_command(tmp_path, migrated_template):
    path = tmp_path / "dev.sqlite3"
    shutil.copy(migrated_template, path)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{path}",
        "SECRET_KEY": "dev-server-test",
        "SMS_BACKEND": "console",
        "FLASK_DEBUG": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    terminal = tmp_path / "terminal.txt"
    with terminal.open("w") as output:
        server = subprocess.Popen(  # noqa: S603 (our own interpreter and app)
            [sys.executable, "-m", "flask", "--app", "wsgi", "dev-server", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                fetch(f"{base}/dev/phone")
                break
            except OSError:
                assert time.monotonic() < deadline, "the dev server did not start"
                time.sleep(0.2)
        # The terminal of `make run` names the demo phone, where codes and alerts arrive.
        assert f"Demo phone:  http://127.0.0.1:{port}/dev/phone" in terminal.read_text()

        app = create_app(config_for(path))
        with app.app_context():
            queue_sms("+447700900123", "Shop: hello from the outbox.", SmsKind.ALERT_ORDER_PLACED)
            db.session.commit()
            db.engine.dispose()

        deadline = time.monotonic() + 15
        while "hello from the outbox" not in fetch(f"{base}/dev/phone"):
            assert time.monotonic() < deadline, "the SMS never reached /dev/phone"
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=10)
