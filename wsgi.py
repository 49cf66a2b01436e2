"""Entry point for gunicorn (`gunicorn wsgi:app`) and the flask CLI (`flask --app wsgi ...`).

A `.env` file in the working directory is read into the environment first (variables already
set win), so that `Config` sees it. The garbage collector is set for serving pages
(`shop.web.collector`).
"""

from dotenv import load_dotenv

load_dotenv()

from shop import create_app  # noqa: E402 (after the environment is complete)
from shop.web import collector  # noqa: E402

collector.tune()
app = create_app()
