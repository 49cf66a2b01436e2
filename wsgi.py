"""Entry point for gunicorn (`gunicorn wsgi:app`) and the flask CLI (`flask --app wsgi ...`).

A `.env` file in the working directory is read into the environment first (variables already
set win), so that `Config` sees it.
"""

from dotenv import load_dotenv

load_dotenv()

from shop import create_app  # noqa: E402 (after the environment is complete)

app = create_app()
