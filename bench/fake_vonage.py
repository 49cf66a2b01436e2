"""A stand-in for Vonage's SMS API for `make bench`: https on 127.0.0.1, answers after a delay.

The real SDK only speaks https, so the server has a certificate from a throwaway `trustme`
CA and the shop's processes trust that CA through REQUESTS_CA_BUNDLE: verification stays on.
Every request is accepted (status "0") after `delay` seconds, and its arrival time and text
are recorded so that the bench can tell how long each SMS waited after its order.
"""

import itertools
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import trustme

SMS_PATH = "/sms/json"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client gone mid-answer (the bench stopping its SMS worker) is no news


class FakeVonage:
    """Start with `start()`, point the shop at `host`, read `received`, then `stop()`."""

    def __init__(self, ca_path: Path) -> None:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(ca_path))
        self.ca_path = ca_path
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.delay = 0.0
        # (time.time() on arrival, the request's form), in arrival order.
        self.received: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def snapshot(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return list(self.received)

    def _record(self, form: dict[str, str]) -> str:
        with self._lock:
            self.received.append((time.time(), form))
            return f"0A{next(self._ids):014X}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                if self.path.split("?")[0] != SMS_PATH:
                    self._send(404, {"error": "not found"})
                    return
                message_id = fake._record(form)
                fake._stopping.wait(fake.delay)
                part = {
                    "to": form.get("to", ""),
                    "message-id": message_id,
                    "status": "0",
                    "remaining-balance": "10.00000000",
                    "message-price": "0.03330000",
                    "network": "23410",
                }
                if "client-ref" in form:
                    part["client-ref"] = form["client-ref"]
                self._send(200, {"message-count": "1", "messages": [part]})

            def _send(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        return Handler
