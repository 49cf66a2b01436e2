"""A webhook signature sent in the query string (defect 10), or a "not me" link's token,
never reaches an access log.

Both servers the shop runs under are started for real: Werkzeug's (`make run`, the browser
tests) and gunicorn (production), each with its access log on.
"""

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from werkzeug.serving import make_server

from tests import ROOT
from tests.test_dev_server import free_port

SIGNATURE = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
QUERY = f"?timestamp=1790000000&sig={SIGNATURE}&msisdn=447700900123"
# Shaped as the signed token of a "not me" link (forged: the page says the link is not valid).
TOKEN = "eyJsaW5rIjo0Mn0.ZxKd9A.q1w2e3r4t5y6u7i8o9p0-AsDfGhJkL_zxcv"


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def post(url: str) -> int:
    request = urllib.request.Request(url, data=b"", method="POST")  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_development_server_logs_no_signature(build_app, caplog):
    app = build_app(VONAGE_SIGNATURE_SECRET="test-signature-secret")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO):
            status = post(f"http://127.0.0.1:{server.server_port}/webhooks/vonage/inbound{QUERY}")
            get(f"http://127.0.0.1:{server.server_port}/account/not-me/{TOKEN}")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 401  # a made-up signature
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/webhooks/vonage/inbound?timestamp=1790000000&sig=[redacted]&msisdn=" in logged
    assert SIGNATURE not in logged
    assert "GET /account/not-me/[redacted] HTTP/1.1" in logged and TOKEN not in logged


def test_gunicorn_logs_no_signature(tmp_path, migrated_template):
    database = tmp_path / "gunicorn.sqlite3"
    shutil.copy(migrated_template, database)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": "gunicorn-test",
        "SMS_BACKEND": "vonage",
        "VONAGE_SIGNATURE_SECRET": "test-signature-secret",
        "FLASK_DEBUG": "0",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    log_path = tmp_path / "access.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--access-logfile",
        str(log_path),
        "wsgi:app",
    ]
    server = subprocess.Popen(  # noqa: S603 (our own interpreter and app)
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status = post(f"http://127.0.0.1:{port}/webhooks/vonage/inbound{QUERY}")
                get(f"http://127.0.0.1:{port}/account/not-me/{TOKEN}")
                break
            except OSError:
                assert server.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        deadline = time.monotonic() + 10
        while "not-me" not in (log_path.read_text() if log_path.exists() else ""):
            assert time.monotonic() < deadline, "no access log line"
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(10)
    logged = log_path.read_text()
    assert status == 401
    assert "sig=[redacted]" in logged
    assert SIGNATURE not in logged
    assert "/account/not-me/[redacted]" in logged and TOKEN not in logged
