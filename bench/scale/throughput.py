"""The catalog's throughput against a bare Flask app on a scale data set (SPEC section 8).

The same measurement as `make bench` (bench/run.py): both apps under the same gunicorn
settings, loaded in turns by the same wrk command, a returning visitor's cookie sent to both.
"""

import argparse
import os
from pathlib import Path
from typing import Any

from bench.run import Processes, start_shop_and_hello, throughput


def catalog_throughput(database_url: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONDONTWRITEBYTECODE": "1"}
    processes = Processes(work)
    try:
        shop_url, hello_url, _ = start_shop_and_hello(processes, env, shop_timeout=60)
        figures = throughput(f"{shop_url}/", f"{hello_url}/", args)
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
