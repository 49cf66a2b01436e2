"""The `Client` of the current request: its address, device cookie and User-Agent."""

from flask import request

from shop.accounts.client import Client
from shop.web.device_cookie import current_device_id, ensure_device_id


def client_ip() -> str:
    """The client's address: `remote_addr`, which ProxyFix rewrites behind trusted proxies."""
    return request.remote_addr or "unknown"


def current_client(*, set_device_cookie: bool = False) -> Client:
    """The client of this request; with `set_device_cookie`, a browser without a device
    cookie gets one on the response (at sign-in)."""
    device_id = ensure_device_id() if set_device_cookie else current_device_id()
    return Client(ip=client_ip(), device_id=device_id, user_agent=request.user_agent.string)
