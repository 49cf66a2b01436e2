"""The catalog's throughput against a bare Flask app on a scale data set (SPEC section 8).

The same measurement as `make bench` (bench/run.py): both apps under the same gunicorn
settings, loaded in turns by the same wrk command, a returning visitor's cookie sent to both.
"""

import argparse
import os
from pathlib import Path
from typing import Any

from bench.run import BIN, GUNICORN, Processes, free_port, throughput, wait_until_up


def catalog_throughput(database_url: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONDONTWRITEBYTECODE": "1"}
    processes = Processes(work)
    try:
        shop_port, hello_port = free_port(), free_port()
        gunicorn = str(BIN / "gunicorn")
        shop = processes.start(
            "shop", [gunicorn, "--bind", f"127.0.0.1:{shop_port}", *GUNICORN, "wsgi:app"], env
        )
        hello = processes.start(
            "hello",
            [gunicorn, "--bind", f"127.0.0.1:{hello_port}", *GUNICORN, "bench.hello:app"],
            env,
        )
        shop_url, hello_url = f"http://127.0.0.1:{shop_port}/", f"http://127.0.0.1:{hello_port}/"
        wait_until_up(shop_url, shop, timeout=60)
        wait_until_up(hello_url, hello)
        figures = throughput(shop_url, hello_url, args)
    finally:
        processes.stop_all()
    return {
        "ratio": figures["catalog_ratio"],
        "first_visit_ratio": figures["catalog_first_visit_ratio"],
        "catalog_rps": figures["catalog_rps"],
        "hello_rps": figures["hello_rps"],
        "rounds": [round(r["ratio"], 3) for r in figures["throughput_rounds"]],
        "non_2xx": sum(r["non_2xx"] for r in figures["throughput_rounds"]),
    }
