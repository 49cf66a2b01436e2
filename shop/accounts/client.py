"""Who is asking: the client address, the browser's device id and its User-Agent.

The web layer builds one per request (`shop.web.client.current_client`); the use cases take
it as a plain value, so they run the same from a page, the JSON API, the demo or a test.
"""

from dataclasses import dataclass

from shop.accounts.devices import browser_label


@dataclass(frozen=True)
class Client:
    ip: str
    device_id: str | None = None
    user_agent: str = ""

    @property
    def browser(self) -> str:
        """ "Chrome on Linux": never the raw header."""
        return browser_label(self.user_agent)
