"""`make screenshots`: every key page in Chromium at desktop and phone widths, as PNG files.

Usage: python -m tests.screenshots [OUTPUT_DIR]   (default docs/screenshots)

It runs the shop as the browser tests do (a migrated SQLite copy with the demo data, a live
server with its delivery loop) and walks `tests.key_pages.KEY_PAGES`.
"""

import sys
import tempfile
from pathlib import Path

import flask_migrate

from shop import create_app
from shop.extensions import db
from tests.browser import PHONE_WIDTH, close_page
from tests.conftest import config_for
from tests.key_pages import KEY_PAGES, tour

WIDTHS = {"desktop": 1280, "phone": PHONE_WIDTH}


def migrated_template(folder: Path) -> Path:
    path = folder / "template.sqlite3"
    app = create_app(config_for(path))
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    return path


def main(output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        with tour(folder, migrated_template(folder)) as walk:
            for key_page in KEY_PAGES:
                page = walk.open(key_page)
                for label, width in WIDTHS.items():
                    page.set_viewport_size({"width": width, "height": 900})
                    page.wait_for_timeout(100)
                    path = output / f"{key_page.name}-{label}.png"
                    page.screenshot(path=path)
                    print(path)
                close_page(page)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
