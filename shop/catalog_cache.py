"""The rendered catalog, kept by each web process and keyed by the catalog version.

Rendering the product grid (24 products, their prices and add-to-cart forms) costs far more
than the rest of the catalog page, yet it is the same for every visitor until a product
changes. Each process keeps the last grid it rendered with the `catalog_version` it was
rendered at; database triggers bump that number in the same transaction as any change to
`products` (a checkout's stock, a restock, an edit), so one tiny query per request tells
every process, on every machine, whether its copy still holds.

Nothing in the cached grid depends on the visitor. Each form's CSRF token belongs to the
visitor's session, so the grid holds a placeholder that the view replaces at response time.
The page around the grid (navigation with the sign-in state, flash messages) is rendered per
request, except in the one state where it is the same for everyone: a visitor who is not
signed in and has no message waiting. That page is kept beside the grid, placeholder and all.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from shop.extensions import db

# Random per process, so that no product text can contain it.
CSRF_PLACEHOLDER = f"csrf-{secrets.token_hex(16)}"
VERSION_QUERY = "SELECT version FROM catalog_version WHERE id = 1"


def current_version() -> int | None:
    """The catalog version now, or None if the database has no version row.

    Read on every catalog request, so straight from a pooled DBAPI connection: through the
    ORM session this one-row read took a third of the time of a cached catalog request.
    """
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(VERSION_QUERY)
        row = cursor.fetchone()
        cursor.close()
    finally:
        connection.close()  # back to the pool, which ends the read transaction
    return row[0] if row else None


class Page:
    """A rendered page as UTF-8, cut wherever the visitor's CSRF token goes."""

    def __init__(self, html: str) -> None:
        self._parts = html.encode().split(CSRF_PLACEHOLDER.encode())

    def with_token(self, token: str) -> bytes:
        return token.encode().join(self._parts)


@dataclass
class _Entry:
    version: int | None
    grid: str
    anonymous_page: Page | None = None


class CatalogCache:
    """The last grid this process rendered, the catalog version it was rendered at, and the
    page around it as a visitor who is not signed in sees it.

    One entry, replaced whole when the version moves. Threads of one process may render at
    the same time and the last to finish wins, which is harmless: each rendered a grid at
    least as new as the version it is stored under.
    """

    def __init__(self) -> None:
        self._entry: _Entry | None = None

    def page(
        self,
        render_grid: Callable[[], str],
        render_page: Callable[[str], str],
        *,
        same_for_everyone: bool,
    ) -> Page:
        """The catalog page, ready for the visitor's CSRF token.

        `render_grid()` renders the grid; `render_page(grid)` the page around it, kept only
        when the caller says the page is `same_for_everyone` in the visitor's state.
        The version is read before `render_grid` reads the products: a change committed in
        between makes the grid newer than its key, never older, and the next request sees
        the new version and renders again.
        """
        version = current_version()
        entry = self._entry
        if entry is None or version is None or entry.version != version:
            entry = _Entry(version, render_grid())
            if version is not None:  # no version row: nothing can tell when it goes stale
                self._entry = entry
        if not same_for_everyone:
            return Page(render_page(entry.grid))
        if entry.anonymous_page is None:
            entry.anonymous_page = Page(render_page(entry.grid))
        return entry.anonymous_page
