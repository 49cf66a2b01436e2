"""The rendered catalog pages, kept by each web process and keyed by the catalog versions.

Rendering a page of the catalog (its products, prices and add-to-cart forms, the search box
and the page links) costs far more than the rest of the request, yet it is the same for
every visitor until a product changes. Each process keeps the pages it rendered, the most
recently used few hundred, each with the `catalog_version.version` it was rendered at:
database triggers bump that number in the same transaction as any addition, removal or edit
of a product, so one tiny query tells every process, on every machine, whether its copies
still hold. Each process reads it at most once every `CATALOG_RECHECK_SECONDS` (1 s): a
change shows within that time, and a busy process's other requests do not touch the
database at all.

Stock changes with every order, so it is kept apart. A rendered page is cut where each
product's stock goes (its stock note and its add-to-cart form, or "sold out"), and those
slots are filled from one small query for the page's products, again only when
`catalog_version.stock_version` (bumped by the triggers on any stock change) has moved since.
An order thus costs the next request of each page a look-up of two dozen rows, never a
render.

Nothing in the cached parts depends on the visitor. Each form's CSRF token belongs to the
visitor's session, so the page holds a placeholder that the view replaces at response time.
The page around the grid (the navigation, flash messages) is kept per audience, in the
states where it is the same for everyone in it: not signed in, signed in as a shopper,
signed in as the owner, with no message waiting.
"""

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Container, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_login.config import COOKIE_NAME

from shop.extensions import db

# Random per process, so that no product text can contain them.
CSRF_PLACEHOLDER = f"csrf-{secrets.token_hex(16)}"
STOCK_PLACEHOLDER = f"stock-{secrets.token_hex(16)}"
VERSIONS_QUERY = "SELECT version, stock_version FROM catalog_version WHERE id = 1"
PAGES_KEPT = 256
# The catalog's busiest page: its first, without search words, as shown to visitors who are
# not signed in (keys of `CatalogCache.page`).
FIRST_PAGE = ("", 1)
VISITORS = "visitor"
# Session keys that make the page around the grid a visitor's own: a signed-in user, a
# message waiting to be shown.
OWN_PAGE_KEYS = frozenset({"_user_id", "_flashes"})


def plain_visitor(
    config: Mapping[str, Any], session: Container[str], cookies: Container[str]
) -> bool:
    """Whether the page is the one for `VISITORS`, plainly: nothing in the session that makes
    it the visitor's own and no remember-me cookie (which may sign them in). The catalog view
    and the shortcut in front of Flask both ask this one question."""
    return OWN_PAGE_KEYS.isdisjoint(session) and (
        config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME) not in cookies
    )


@dataclass(frozen=True)
class Versions:
    catalog: int
    stock: int


def read_versions() -> Versions | None:
    """The catalog's versions now, or None if the database has no version row (straight
    from a pooled DBAPI connection: through the ORM session this one-row read took a third
    of a cached catalog request)."""
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(VERSIONS_QUERY)
        row = cursor.fetchone()
        cursor.close()
    finally:
        connection.close()  # back to the pool, which ends the read transaction
    return Versions(*row) if row else None


class Page:
    """A rendered page as UTF-8, cut wherever the visitor's CSRF token goes."""

    def __init__(self, html: str) -> None:
        self._parts = html.encode().split(CSRF_PLACEHOLDER.encode())

    def with_token(self, token: str) -> bytes:
        return token.encode().join(self._parts)


@dataclass(frozen=True)
class Listing:
    """A rendered grid without its stock: the HTML around each product's stock slot, and
    the products (id, name) whose slots they are, in order."""

    products: tuple[tuple[int, str], ...]
    parts: tuple[str, ...]  # one more than there are products

    @classmethod
    def cut(cls, products: list[tuple[int, str]], html: str) -> "Listing":
        parts = tuple(html.split(STOCK_PLACEHOLDER))
        if len(parts) != len(products) + 1:
            raise ValueError("the listing needs one stock slot per product")
        return cls(tuple(products), parts)

    def with_stock(self, slots: list[str]) -> str:
        pieces = [self.parts[0]]
        for slot, part in zip(slots, self.parts[1:], strict=True):
            pieces += [slot, part]
        return "".join(pieces)


@dataclass(frozen=True)
class _Stocked:
    stock_version: int
    grid: str
    pages: dict[Hashable, Page] = field(default_factory=dict)  # by audience


@dataclass
class _Entry:
    version: int
    listing: Listing
    stocked: _Stocked | None = None  # replaced whole, so a reader sees one consistent state


class CatalogCache:
    """The rendered pages of this process, the most recently used `size` of them."""

    def __init__(self, size: int = PAGES_KEPT) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._versions: tuple[float, Versions | None] | None = None  # (read until, versions)

    def versions(self, recheck_seconds: float) -> Versions | None:
        """The versions read at most `recheck_seconds` ago: one read a second per process
        is enough to follow changes, and spares every other request the database."""
        kept = self._kept()
        if kept is not None:
            return kept[1]
        versions = read_versions()
        self._versions = (time.monotonic() + recheck_seconds, versions)
        return versions

    def _kept(self) -> tuple[float, Versions | None] | None:
        """The last read of the versions while it holds (within its recheck time), else None."""
        kept = self._versions
        return kept if kept is not None and time.monotonic() < kept[0] else None

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: Hashable) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def _put(self, key: Hashable, entry: _Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def ready(self, key: Hashable, audience: Hashable) -> Page | None:
        """The page `key` for `audience` if it is kept and still current by the versions
        read within the recheck time, else None (nothing is read or rendered)."""
        kept = self._kept()
        versions = kept[1] if kept is not None else None
        if versions is None:
            return None
        entry = self._get(key)
        if entry is None or entry.version != versions.catalog:
            return None
        stocked = entry.stocked
        if stocked is None or stocked.stock_version != versions.stock:
            return None
        return stocked.pages.get(audience)

    def page(
        self,
        key: Hashable,
        *,
        render_listing: Callable[[], Listing],
        render_stock: Callable[[Listing], list[str]],
        render_page: Callable[[str], str],
        audience: Hashable | None,
        recheck_seconds: float = 0.0,
    ) -> Page:
        """The catalog page `key`, ready for the visitor's CSRF token.

        `render_listing()` renders the grid with a slot per product, `render_stock(listing)`
        the slots, `render_page(grid)` the page around the grid, kept only for an `audience`
        (None: this visitor's page is their own). The versions are read (at most
        `recheck_seconds` ago) before anything is rendered: a change committed in between
        makes the copy newer than its key, never older, and a later read sees the new
        version and renders again.
        """
        versions = self.versions(recheck_seconds)
        entry = self._get(key)
        if entry is None or versions is None or entry.version != versions.catalog:
            entry = _Entry(versions.catalog if versions else -1, render_listing())
            if versions is not None:  # no version row: nothing can tell when it goes stale
                self._put(key, entry)
        stocked = entry.stocked
        if stocked is None or versions is None or stocked.stock_version != versions.stock:
            listing = entry.listing
            grid = listing.with_stock(render_stock(listing))
            stocked = _Stocked(versions.stock if versions else -1, grid)
            if versions is not None:
                entry.stocked = stocked
        if audience is None or versions is None:
            return Page(render_page(stocked.grid))
        page = stocked.pages.get(audience)
        if page is None:
            page = stocked.pages[audience] = Page(render_page(stocked.grid))
        return page
