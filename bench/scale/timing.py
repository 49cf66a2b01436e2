"""How one figure is measured: runs, their median, the statements they ran and the plans of
the slowest, and the memory they took.

Statements are counted where the driver sees them (SQLite's trace callback, a counting
psycopg cursor), so that reads which bypass SQLAlchemy count too; SQLAlchemy's cursor events
time each statement it runs, and the slowest ones of the median run are explained with the
same parameters (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL) after the runs.
"""

import re
import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, event

SLOWEST = 3
SQL_SHOWN = 700
# Transaction control is not a statement of the page; the driver issues it differently on
# each database.
_CONTROL = re.compile(r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|--)", re.IGNORECASE)


@dataclass
class Statement:
    ms: float
    sql: str
    parameters: Any


@dataclass
class Run:
    ms: float
    statements: int
    timed: list[Statement]
    outcome: dict[str, Any] = field(default_factory=dict)  # status, bytes, ...


class StatementLog:
    """Counts and times the statements of the app's engine while `active`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.active = False
        self.count = 0
        self.timed: list[Statement] = []
        self._started: list[float] = []
        self.deadline: float | None = None
        event.listen(engine, "connect", self._hook)
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def start(self, deadline: float | None) -> None:
        self.count, self.timed, self._started = 0, [], []
        self.deadline = deadline
        self.active = True

    def stop(self) -> None:
        self.active = False
        self.deadline = None

    def _seen(self, sql: str) -> None:
        if self.active and not _CONTROL.match(sql):
            self.count += 1

    def _hook(self, dbapi_connection, _record) -> None:
        log = self
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.set_trace_callback(self._seen)
            # A statement past the run's deadline is interrupted (the page then fails).
            dbapi_connection.set_progress_handler(self._past_deadline, 100_000)
        elif isinstance(dbapi_connection, psycopg.Connection):

            class CountingCursor(psycopg.Cursor):
                def execute(self, query, params=None, **kwargs):
                    log._seen(str(query))
                    return super().execute(query, params, **kwargs)

            dbapi_connection.cursor_factory = CountingCursor

    def _past_deadline(self) -> int:
        return int(self.deadline is not None and time.monotonic() > self.deadline)

    def _before(self, *_args) -> None:
        self._started.append(time.perf_counter())

    def _after(self, _connection, _cursor, statement, parameters, _context, _many) -> None:
        started = self._started.pop() if self._started else time.perf_counter()
        if self.active:
            ms = (time.perf_counter() - started) * 1000
            self.timed.append(Statement(ms, statement, parameters))


def _is_read(sql: str) -> bool:
    return sql.lstrip().split(None, 1)[0].upper() in ("SELECT", "WITH")


def full_ms(log: "StatementLog", statement: Statement, budget_seconds: float) -> float:
    """A read's time with all its rows fetched, run again on its own: the cursor events
    time only until the first row, and a page may fetch the rest while it renders."""
    if not _is_read(statement.sql):
        return statement.ms
    log.deadline = time.monotonic() + budget_seconds
    try:
        with log.engine.connect() as connection:
            started = time.perf_counter()
            connection.exec_driver_sql(statement.sql, statement.parameters).all()
            ms = (time.perf_counter() - started) * 1000
            connection.rollback()
    except Exception:  # interrupted past the budget: keep the time the cursor events saw
        return statement.ms
    finally:
        log.deadline = None
    return ms


def plan(engine: Engine, statement: Statement) -> list[str]:
    """The database's plan for `statement` with its parameters (not run)."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement.sql}", statement.parameters
            ).all()
            depth = {0: -1}
            lines = []
            for node, parent, _unused, detail in rows:
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
        else:
            rows = connection.exec_driver_sql(f"EXPLAIN {statement.sql}", statement.parameters)
            lines = [row[0] for row in rows]
        connection.rollback()
    return lines or ["(nothing to plan: no table is read)"]


def _memory_kb(field_name: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field_name}:\s+(\d+) kB", status).group(1))


def _reset_peak_memory() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        return False
    return True


@dataclass
class Probe:
    """One figure: `run()` is timed; `prepare()` puts the data in the state the figure is
    about, before each run, untimed."""

    name: str
    what: str
    run: Callable[[], dict[str, Any]]
    prepare: Callable[[], None] = lambda: None
    explain: bool = True
    runs: int | None = None  # if set: this many runs and no warm-up (a long, steady figure)


def measure(
    probe: Probe,
    log: StatementLog,
    *,
    runs: int,
    budget_seconds: float,
    slow_seconds: float,
) -> dict[str, Any]:
    """One warm-up run, then `runs` timed runs; a figure slower than `slow_seconds` keeps
    its warm-up run as its only run, and a statement still going after `budget_seconds` is
    interrupted (SQLite; PostgreSQL has a statement_timeout)."""
    rss_before = _memory_kb("VmRSS")
    peak_known = _reset_peak_memory()
    results: list[Run] = []
    warm_up = probe.runs is None
    for number in range(runs + 1 if warm_up else probe.runs):
        probe.prepare()
        log.start(time.monotonic() + budget_seconds)
        started = time.perf_counter()
        try:
            outcome = probe.run()
        finally:
            ms = (time.perf_counter() - started) * 1000
            log.stop()
        results.append(Run(ms, log.count, log.timed, outcome))
        if warm_up and number == 0 and ms > slow_seconds * 1000:
            break
    timed = (results[1:] if warm_up else results) or results
    median_run = sorted(timed, key=lambda run: run.ms)[len(timed) // 2]
    figure: dict[str, Any] = {
        "what": probe.what,
        "ms": round(statistics.median(run.ms for run in timed), 2),
        "runs_ms": [round(run.ms, 2) for run in timed],
        "statements": median_run.statements,
        # Of the median run, the time spent in the statements' execute calls: what the
        # history costs, apart from rendering the page (a full page at L, a few rows at S).
        "statements_ms": round(sum(statement.ms for statement in median_run.timed), 2),
        **median_run.outcome,
    }
    if peak_known:
        figure["peak_rss_growth_mb"] = round((_memory_kb("VmHWM") - rss_before) / 1024, 1)
    if probe.explain:
        distinct: dict[str, Statement] = {}
        for statement in sorted(median_run.timed, key=lambda s: s.ms, reverse=True):
            distinct.setdefault(statement.sql, statement)
        for statement in distinct.values():
            statement.ms = full_ms(log, statement, budget_seconds)
        figure["slowest"] = []
        for statement in sorted(distinct.values(), key=lambda s: s.ms, reverse=True)[:SLOWEST]:
            try:
                lines = plan(log.engine, statement)
            except Exception as error:  # a plan that cannot be had is no reason to stop
                lines = [f"(no plan: {type(error).__name__}: {str(error)[:200]})"]
            figure["slowest"].append(
                {
                    "ms": round(statement.ms, 3),
                    "sql": " ".join(statement.sql.split())[:SQL_SHOWN],
                    "plan": lines,
                }
            )
    return figure
