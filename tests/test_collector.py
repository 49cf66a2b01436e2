"""The garbage collector's setting for serving pages, applied by the entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

from shop.web.collector import YOUNG_THRESHOLD
from tests import ROOT

THRESHOLD = "import gc, json; print(json.dumps(gc.get_threshold()))"


def thresholds(code: str, tmp_path: Path) -> list[int]:
    environment = {
        **os.environ,
        "SECRET_KEY": "x" * 32,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "ALLOW_CONSOLE_SMS": "1",
    }
    environment.pop("FLASK_DEBUG", None)
    done = subprocess.run(  # noqa: S603 (this interpreter, our own code)
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_entry_point_collects_the_young_less_often_and_keeps_the_rest(tmp_path):
    python = thresholds(THRESHOLD, tmp_path)
    # Not a developer's `.env`: wsgi.py reads one, and this test sets what it needs.
    no_dotenv = "import dotenv; dotenv.load_dotenv = lambda *args, **kwargs: False"
    served = thresholds(f"{no_dotenv}; import wsgi; {THRESHOLD}", tmp_path)
    assert python[0] < YOUNG_THRESHOLD
    assert served == [YOUNG_THRESHOLD, *python[1:]]
