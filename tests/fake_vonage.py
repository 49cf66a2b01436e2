"""A local stand-in for Vonage's SMS API, over real TLS, for tests that drive the real SDK.

The real SDK only speaks https, so the stand-in is `pytest-httpserver` on 127.0.0.1 with a
certificate from a `trustme` CA, and `REQUESTS_CA_BUNDLE` points at that CA: verification
stays on. Use it from a test module (or a conftest) by importing the fixtures:

    from tests.fake_vonage import (  # noqa: F401 (fixtures)
        fake_vonage_fixture,
        httpserver_ssl_context,
        vonage_ca,
        vonage_ca_bundle,
    )

then queue what the next requests get, and look at what arrived:

    def test_x(fake_vonage):
        fake_vonage.reject(1, "Throughput Rate Exceeded")
        fake_vonage.http_error(503)
        sender = VonageSender.from_config(fake_vonage.config)   # or create_app(fake_vonage.config)
        ...
        assert fake_vonage.requests[0]["text"] == "..."

Queued responses are used once each, in order; once the queue is empty, every request is
accepted. `httpserver_ssl_context` overrides pytest-httpserver's session fixture: the stand-in
shares pytest-httpserver's session server on 127.0.0.1 (`httpserver_ipv4`).
"""

import base64
import functools
import itertools
import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from pytest_httpserver import HTTPServer
from vonage_http_client.auth import Auth
from werkzeug import Request, Response

SMS_PATH = "/sms/json"
SIGNATURE_SECRET = "test-signature-secret"

Responder = Callable[[Request], Response]


@functools.cache
def _test_ca() -> trustme.CA:
    """One CA for the whole test run. Each module that imports these fixtures gets fixtures
    of its own (a "session" fixture is per definition), but pytest-httpserver's server, and
    so its certificate, is made once: every module's CA bundle must trust that certificate."""
    return trustme.CA()


@pytest.fixture(scope="session")
def vonage_ca() -> trustme.CA:
    """The test CA that signs the stand-in's certificate."""
    return _test_ca()


@pytest.fixture(scope="session")
def vonage_ca_bundle(vonage_ca: trustme.CA, tmp_path_factory) -> Path:
    """The test CA's certificate as a PEM file, for REQUESTS_CA_BUNDLE."""
    path = tmp_path_factory.mktemp("vonage-ca") / "ca.pem"
    vonage_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def httpserver_ssl_context(vonage_ca: trustme.CA) -> ssl.SSLContext:
    """pytest-httpserver's server context: a certificate for 127.0.0.1 from the test CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    vonage_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def closed_port() -> int:
    """A local TCP port with nothing listening on it (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeVonage:
    """Vonage's SMS API as seen by the SDK: queue answers, then read what was received."""

    api_key = "test-key"
    api_secret = "test-secret"
    sender_id = "Shop"

    def __init__(self, httpserver: HTTPServer) -> None:
        self.httpserver = httpserver
        # What arrived, in order: the parsed form of each request, and its headers.
        self.requests: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []
        # When each request arrived (time.monotonic()), in the same order.
        self.received_at: list[float] = []
        self._outage: Responder | None = None
        self._queue: deque[Responder] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self.signature_secret: str | None = None
        httpserver.expect_request(SMS_PATH, method="POST").respond_with_handler(self._handle)

    # --- configuration --------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpserver.port}"

    @property
    def config(self) -> dict[str, Any]:
        """Settings for `create_app(...)` or `VonageSender.from_config(...)`."""
        return {
            "SMS_BACKEND": "vonage",
            "VONAGE_API_KEY": self.api_key,
            "VONAGE_API_SECRET": self.api_secret,
            "VONAGE_SIGNATURE_SECRET": self.signature_secret or "",
            "VONAGE_FROM": self.sender_id,
            "VONAGE_REST_HOST": self.host,
            "VONAGE_API_HOST": self.host,
            "VONAGE_TIMEOUT": 5,
        }

    def use_signature(self, secret: str = SIGNATURE_SECRET) -> None:
        """Make `config` carry a signature secret: the SDK then signs its requests."""
        self.signature_secret = secret

    # --- what to answer ---------------------------------------------------------------------

    def respond(self, responder: Responder) -> None:
        """Queue any werkzeug handler for the next request."""
        with self._lock:
            self._queue.append(responder)

    def respond_json(self, payload: Any, status: int = 200) -> None:
        self.respond(lambda request: _json(payload, status))

    def accept(self, *, message_id: str | None = None, price: str = "0.03330000") -> None:
        """The next request is accepted (status "0")."""
        self.respond(lambda request: self._accepted(request, message_id, price))

    def accept_parts(self, parts: int, *, price: str = "0.03330000") -> None:
        """The next request is accepted as a long message sent in `parts` parts."""

        def responder(request: Request) -> Response:
            form = request.form
            messages = [self._part(form, None, price) for _ in range(parts)]
            return _json({"message-count": str(parts), "messages": messages})

        self.respond(responder)

    def reject(self, status: int | str, error_text: str = "Rejected") -> None:
        """The next request gets a non-zero status (Vonage always sends error-text with it)."""
        self.respond_json(
            {"message-count": "1", "messages": [{"status": str(status), "error-text": error_text}]}
        )

    def partial_failure(self, status: int | str, error_text: str = "Rejected") -> None:
        """The next request is a two-part message whose second part fails with `status`."""

        def responder(request: Request) -> Response:
            ok = self._part(request.form, None, "0.03330000")
            failed = {"status": str(status), "error-text": error_text}
            return _json({"message-count": "2", "messages": [ok, failed]})

        self.respond(responder)

    def http_error(self, status: int, body: str = "") -> None:
        """The next request gets an HTTP error status."""
        self.respond(lambda request: Response(body, status=status, content_type="text/plain"))

    def slow(self, seconds: float, then: Responder | None = None) -> None:
        """The next request is answered (accepted, or by `then`) only after `seconds`."""

        def responder(request: Request) -> Response:
            self._stopping.wait(seconds)  # cut short when the test ends
            return (then or self._default)(request)

        self.respond(responder)

    def disconnect(self) -> None:
        """The next request's connection is closed without any answer (RemoteDisconnected)."""

        def responder(request: Request) -> Response:
            connection = request.environ["werkzeug.socket"]
            connection.shutdown(socket.SHUT_RDWR)
            return Response("", status=200)  # never reaches the client

        self.respond(responder)

    def down(self, responder: Responder | None = None) -> None:
        """An outage: until `up()`, every request gets `responder` (default HTTP 503), and the
        queued answers wait for the provider to come back."""
        self._outage = responder or (
            lambda request: Response("Service Unavailable", status=503, content_type="text/plain")
        )

    def up(self) -> None:
        """The outage is over: queued answers, then acceptance, again."""
        self._outage = None

    def refs(self) -> list[str]:
        """The client-ref ("sms-<id>") of each request received, in order."""
        with self._lock:
            return [form.get("client-ref", "") for form in self.requests]

    # --- checks ---------------------------------------------------------------------------

    def check_signature(self, form: dict[str, str]) -> bool:
        """Whether `form` carries a valid `sig` for the signature secret."""
        assert self.signature_secret, "call use_signature() first"
        auth = Auth(
            api_key=self.api_key,
            signature_secret=self.signature_secret,
            signature_method="sha256",
        )
        return auth.check_signature(dict(form))

    def basic_auth(self, headers: dict[str, str]) -> tuple[str, str] | None:
        """The (key, secret) of a Basic Authorization header, if any."""
        value = headers.get("Authorization", "")
        if not value.startswith("Basic "):
            return None
        key, _, secret = base64.b64decode(value.removeprefix("Basic ")).decode().partition(":")
        return key, secret

    # --- internals ------------------------------------------------------------------------

    def close(self) -> None:
        self._stopping.set()

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request.form.to_dict())
            self.headers.append(dict(request.headers))
            self.received_at.append(time.monotonic())
            if self._outage is not None:
                responder = self._outage
            else:
                responder = self._queue.popleft() if self._queue else self._default
        return responder(request)

    def _default(self, request: Request) -> Response:
        return self._accepted(request, None, "0.03330000")

    def _accepted(self, request: Request, message_id: str | None, price: str) -> Response:
        part = self._part(request.form, message_id, price)
        return _json({"message-count": "1", "messages": [part]})

    def _part(self, form, message_id: str | None, price: str) -> dict[str, str]:
        part = {
            "to": form.get("to", ""),
            "message-id": message_id or f"0A{next(self._ids):014X}",
            "status": "0",
            "remaining-balance": "10.00000000",
            "message-price": price,
            "network": "23410",
        }
        if "client-ref" in form:
            part["client-ref"] = form["client-ref"]
        return part


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


@pytest.fixture(name="fake_vonage")
def fake_vonage_fixture(
    httpserver_ipv4: HTTPServer, vonage_ca_bundle: Path, monkeypatch
) -> Iterator[FakeVonage]:
    """Vonage's SMS API on https://127.0.0.1:<port>, trusted through REQUESTS_CA_BUNDLE."""
    assert httpserver_ipv4.ssl_context is not None, (
        "pytest-httpserver's server has no TLS: import httpserver_ssl_context from "
        "tests.fake_vonage where fake_vonage is used"
    )
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(vonage_ca_bundle))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    fake = FakeVonage(httpserver_ipv4)
    yield fake
    fake.close()
    httpserver_ipv4.clear()
