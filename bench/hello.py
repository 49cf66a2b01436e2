"""The bare Flask app that `make bench` compares the catalog with: one route, one string."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"
