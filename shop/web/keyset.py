"""Newest-first pages of a long table by keyset: a page starts after the row the previous
page ended on (`?before=<id>`), or ends before the row the next one started on
(`?after=<id>`), so page 1,000 costs what page 1 costs; and a count that stops at
`COUNT_CAP` ("1,000+"), so that a filter matching most of a million rows does not count
them all on every page (SPEC section 8).

Rows are ordered by (time, id), newest first: the ids break ties between rows of the same
moment, and an index on (filter columns..., time, id) serves every page.
"""

import re
from dataclasses import dataclass
from typing import Any

from flask import abort, request
from sqlalchemy import Select, func, select, tuple_

from shop.extensions import db
from shop.web.input_guard import MAX_ID

COUNT_CAP = 1_000
ROW_ID = re.compile(r"[1-9][0-9]{0,9}")


@dataclass(frozen=True)
class KeysetPage:
    items: list[Any]
    older: int | None  # the id to ask `before=` for the next, older page; None at the end
    newer: int | None  # the id to ask `after=` for the previous, newer page; None at the start
    count: int  # rows matching, up to COUNT_CAP + 1
    from_cursor: bool = False  # reached by `before`/`after` rather than as the newest page
    cap: int = COUNT_CAP

    @property
    def count_text(self) -> str:
        return f"{self.cap:,}+" if self.count > self.cap else f"{self.count:,}"


def cursor_arg(name: str, what: str = "a row number from a page's link") -> int | None:
    """The row id the query string's `name` holds (None when empty), or a 400 saying it must
    be `what`: 1 to MAX_ID (PostgreSQL's ids are 4-byte integers, and a larger one fails in
    the driver)."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not ROW_ID.fullmatch(raw) or int(raw) > MAX_ID:
        abort(400, description=f"“{name}” must be {what}.")
    return int(raw)


def newest_first(query: Select, model: Any, time_column: Any, per_page: int) -> KeysetPage:
    """One page of `query` from the request's `before`/`after` cursor; an unknown cursor
    row is a 404. `query` is filtered on `model`'s columns and unordered; it selects either
    `model` (the page holds instances) or columns including `model.id` (plain rows, which a
    long list reads at a fraction of the ORM's cost)."""
    before, after = cursor_arg("before"), cursor_arg("after")
    if before is not None and after is not None:
        abort(400, description="Give “before” or “after”, not both.")
    key = tuple_(time_column, model.id)
    anchor_id = before if before is not None else after
    page_query = query
    if anchor_id is not None:
        anchor = db.session.execute(
            select(time_column, model.id).where(model.id == anchor_id)
        ).one_or_none()
        if anchor is None:
            abort(404, description="That page is gone: start again from the newest.")
        bound = tuple_(*anchor)
        page_query = query.where(key < bound) if before is not None else query.where(key > bound)
    if after is None:
        ordered = page_query.order_by(time_column.desc(), model.id.desc())
    else:
        ordered = page_query.order_by(time_column, model.id)
    result = db.session.execute(ordered.limit(per_page + 1))
    rows = list(result.scalars() if _selects_entity(query) else result)
    more = len(rows) > per_page
    rows = rows[:per_page]
    if after is not None:
        rows.reverse()
    # Going back ("after"), there are older rows by construction; going on, there are newer.
    older = rows[-1].id if rows and (more or after is not None) else None
    newer = rows[0].id if rows and ((after is not None and more) or before is not None) else None
    # Counted on the filter alone: a join that only brings each row's one partner's columns
    # (an order's shopper) changes no count, and need not run a thousand times.
    counted = select(model.id).where(*_criteria(query)).limit(COUNT_CAP + 1).subquery()
    count = db.session.scalar(select(func.count()).select_from(counted))
    return KeysetPage(rows, older, newer, count, from_cursor=anchor_id is not None)


def _selects_entity(query: Select) -> bool:
    """`select(Model)` (the page holds model instances) rather than columns (plain rows)."""
    described = query.column_descriptions
    return len(described) == 1 and isinstance(described[0]["expr"], type)


def _criteria(query: Select) -> tuple:
    return () if query.whereclause is None else (query.whereclause,)
