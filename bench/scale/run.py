"""`make bench-scale`: build S, M and L on SQLite and PostgreSQL, measure every figure.

For each database and size: a fresh database, migrated, loaded with the demo
(`seed-demo`, which is S) and for M and L a month of a busy shop on top
(`bench.scale.dataset`); then each figure of `bench.scale.probes` is measured through the
real app, and the catalog's throughput against a bare Flask app under gunicorn and wrk as
`make bench` does (SPEC section 8). One JSON object per database is printed, figures by
size. PostgreSQL is started for the run as the test suite starts it
(tests/postgres_server.py). Data and servers live in a temporary directory, removed at the
end.
"""

import argparse
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flask_migrate
from psycopg import sql

from bench.scale.dataset import generate, leave_work_for_the_worker
from bench.scale.probes import probes
from bench.scale.sizes import SIZES, Size
from bench.scale.timing import StatementLog, measure
from bench.scale.visitors import Shop
from shop import create_app, demo
from shop.extensions import db
from shop.web import collector
from tests.postgres_server import running_server

DATABASES = ("sqlite", "postgresql")
# Enough memory for L's hot indexes; the rest as the test suite's throwaway server.
POSTGRES_SETTINGS = ("shared_buffers=256MB", "work_mem=16MB")


@dataclass
class Databases:
    """Makes empty databases by name and drops them."""

    create: Callable[[str], str]  # name -> URL
    drop: Callable[[str], None]


@contextmanager
def databases(kind: str, work: Path) -> Iterator[Databases]:
    if kind == "sqlite":

        def remove(name: str) -> None:
            for path in work.glob(f"{name}.sqlite3*"):
                path.unlink()

        yield Databases(lambda name: f"sqlite:///{work / f'{name}.sqlite3'}", remove)
        return
    with running_server(settings=POSTGRES_SETTINGS) as server:

        def create(name: str) -> str:
            with server.connect() as connection:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return server.url(name)

        def remove(name: str) -> None:
            with server.connect() as connection:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

        yield Databases(create, remove)


def build(url: str, size: Size) -> dict[str, Any]:
    """Migrate, load the demo, add the size's rows; how long it took and what was added."""
    started = time.monotonic()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "ALLOW_CONSOLE_SMS": True})
    with app.app_context():
        flask_migrate.upgrade()
        demo.seed_demo(app.config["SHOP_CURRENCY"], app.config["PASSWORD_HASH_METHOD"])
        demo_seconds = time.monotonic() - started
        rows = generate(size, now=datetime.now(UTC)) if size.orders else {}
        with db.engine.begin() as connection:
            leave_work_for_the_worker(connection, datetime.now(UTC))
        db.session.remove()
        db.engine.dispose()
    return {
        "seconds": round(time.monotonic() - started, 1),
        "demo_seconds": round(demo_seconds, 1),
        "rows_added": rows,
    }


def build_apart(url: str, size: Size) -> dict[str, Any]:
    """`build` in a process of its own, so that every size is measured in a process that has
    only served pages, as a web worker has: generating L makes tens of millions of Python
    objects, S almost none, and what the allocator keeps of them stays with the process."""
    # Leaving the pool terminates its process: stopping the bench does not wait for L.
    with multiprocessing.get_context("spawn").Pool(1) as apart:
        return apart.apply(build, (url, size))


def measuring_app(url: str, budget_seconds: float):
    options: dict[str, Any] = {}
    if url.startswith("postgresql"):
        # A statement still running after the budget is cancelled (the page then fails).
        timeout = int(budget_seconds * 1000)
        options["connect_args"] = {"options": f"-c statement_timeout={timeout}"}
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": options,
            "ALLOW_CONSOLE_SMS": True,
            # Every page reads the catalog's versions, as before the once-a-second check:
            # the first page after a change is timed at once, and the cached page's figure
            # includes that read (the throughput figure runs with the default).
            "CATALOG_RECHECK_SECONDS": 0,
        }
    )


def measure_sizes(
    kind: str, urls: dict[Size, str], args: argparse.Namespace, work: Path
) -> dict[Size, dict[str, Any]]:
    """Every figure of every size, in `args.passes` passes: within a pass each figure is
    measured on every size in turn, minutes apart at most. A figure's goal is its time at L
    over its time at S, and a shared machine's speed drifts: measured one size after the
    other, with L's build between, the drift would fall into the ratio
    (docs/scale/README.md). A figure is the median of its runs in every pass."""
    shops = {}
    for size, url in urls.items():
        app = measuring_app(url, args.budget_seconds)
        with app.app_context():
            log = StatementLog(db.engine)
        shops[size] = (app, log, Shop(app, url, os.environ["SECRET_KEY"]))
    passes: dict[Size, dict[str, list[dict[str, Any]]]] = {size: {} for size in urls}
    for number in range(1, args.passes + 1):
        each = {size: probes(shop, runs=args.runs) for size, (_, _, shop) in shops.items()}
        for position, probe in enumerate(next(iter(each.values()))):
            if args.only and probe.name not in args.only:
                continue
            for size, (_, log, _) in shops.items():
                figure = measure(
                    each[size][position],
                    log,
                    runs=args.runs,
                    budget_seconds=args.budget_seconds,
                    slow_seconds=args.slow_seconds,
                )
                passes[size].setdefault(probe.name, []).append(figure)
                print(
                    f"  {kind} {size.name} {probe.name} (pass {number}): {figure['ms']} ms",
                    file=sys.stderr,
                )
    figures = {}
    for size, (app, _, shop) in shops.items():
        shop.set_due(True)
        with app.app_context():
            db.engine.dispose()
        figures[size] = {name: merged(measured) for name, measured in passes[size].items()}
        if args.throughput and (not args.only or "catalog_throughput" in args.only):
            from bench.scale.throughput import catalog_throughput

            figures[size]["catalog_throughput"] = catalog_throughput(urls[size], work, args)
            print(f"  {kind} {size.name} catalog_throughput: done", file=sys.stderr)
    return figures


def merged(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure from its passes: the median of all their runs, each pass's median, the
    most memory any pass took; statements and plans as the last pass saw them."""
    figure = dict(passes[-1])
    runs = [ms for measured in passes for ms in measured["runs_ms"]]
    figure["ms"] = round(statistics.median(runs), 2)
    figure["runs_ms"] = runs
    figure["pass_ms"] = [measured["ms"] for measured in passes]
    if "peak_rss_growth_mb" in figure:
        figure["peak_rss_growth_mb"] = max(measured["peak_rss_growth_mb"] for measured in passes)
    return figure


def run_database(kind: str, sizes: list[Size], args: argparse.Namespace, work: Path) -> dict:
    result: dict[str, Any] = {
        "database": kind,
        "sizes": {},
        "figures": {},
    }
    with databases(kind, work) as made:
        urls: dict[Size, str] = {}
        try:
            # Every size is built before any is measured, and kept until all are.
            for size in sizes:
                urls[size] = made.create(f"shop_scale_{size.name.lower()}")
                print(f"{kind} {size.name}: building", file=sys.stderr)
                result["sizes"][size.name] = build_apart(urls[size], size)
                print(f"{kind} {size.name}: {result['sizes'][size.name]}", file=sys.stderr)
            for size, figures in measure_sizes(kind, urls, args, work).items():
                for figure, value in figures.items():
                    result["figures"].setdefault(figure, {})[size.name] = value
        finally:
            for size in urls:
                made.drop(f"shop_scale_{size.name.lower()}")
    return result


def stop_on_sigterm(*_) -> None:
    raise SystemExit(143)  # so that `finally` stops the servers and removes the data


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="S,M,L", help="comma-separated, of S, M, L")
    parser.add_argument("--databases", default=",".join(DATABASES))
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure and pass")
    parser.add_argument(
        "--passes", type=int, default=3, help="passes over every size (figures alternate)"
    )
    parser.add_argument("--only", default="", help="comma-separated figure names")
    parser.add_argument("--budget-seconds", type=float, default=120.0)
    parser.add_argument(
        "--slow-seconds", type=float, default=10.0, help="a figure slower is run once"
    )
    parser.add_argument("--no-throughput", dest="throughput", action="store_false")
    parser.add_argument("--seconds", type=int, default=5, help="per wrk round")
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds per app")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-connections", type=int, default=16)
    parser.add_argument("--output", type=Path, help="also write the JSON objects here")
    args = parser.parse_args(argv)
    args.only = {name for name in args.only.split(",") if name}
    try:
        args.sizes = [SIZES[name.strip().upper()] for name in args.sizes.split(",") if name]
    except KeyError as error:
        parser.error(f"unknown size {error}; choose from {', '.join(SIZES)}")
    args.databases = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    if unknown := set(args.databases) - set(DATABASES):
        parser.error(f"unknown database {unknown}; choose from {', '.join(DATABASES)}")
    return args


def main() -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    collector.tune()  # the pages are measured in this process, set as wsgi.py sets a worker
    args = arguments()
    os.environ.update(
        {
            "SECRET_KEY": secrets.token_urlsafe(32),
            # The bench's clients speak plain http: Secure cookies would not come back.
            "SESSION_COOKIE_SECURE": "0",
            "SMS_BACKEND": "console",
            # Outside debug mode (as measured), the console backend is meant here.
            "ALLOW_CONSOLE_SMS": "1",
        }
    )
    for key in ("DATABASE_URL", "REDIS_URL", "FLASK_DEBUG"):
        os.environ.pop(key, None)
    work = Path(tempfile.mkdtemp(prefix="shop-bench-scale-"))
    machine = {
        "nproc": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results = {}
    try:
        for kind in args.databases:
            result = run_database(kind, args.sizes, args, work)
            result["machine"] = machine
            result["settings"] = {
                "runs": f"median of {args.passes} passes of {args.runs} runs, each after one "
                f"warm-up run (a pass whose warm-up took over {args.slow_seconds:g} s is that "
                "one run); within a pass each figure is measured on every size in turn",
                "budget": f"a statement running over {args.budget_seconds:g} s is cancelled",
                "clients": "Flask's test client in the bench process (no socket); the demo "
                "shopper and owner; a returning visitor sends its first visit's cookie",
                "catalog": "CATALOG_RECHECK_SECONDS=0: every page reads the catalog versions "
                "(gunicorn in the throughput figure: the default, 1 s)",
                "postgresql": f"{', '.join(POSTGRES_SETTINGS)}, ANALYZE after loading",
                "sqlite": "WAL, no ANALYZE (as the app ships)",
            }
            results[kind] = result
            print(json.dumps(result, indent=1, ensure_ascii=False))
            sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
