"""The shop's tests; `ROOT` is the repository's root, where `wsgi.py` is: the working
directory of the processes the tests start."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
