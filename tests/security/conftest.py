"""Fixtures of the security suite: apps built with settings of the test's choosing."""

import shutil
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from shop import create_app
from shop.extensions import db
from tests.conftest import ShopClient, config_for
from tests.security.world import World, build_world


@pytest.fixture
def build_app(tmp_path, migrated_template) -> Iterator[Callable[..., Flask]]:
    """`build_app(**settings)`: a new app on a migrated SQLite copy, like the `app` fixture
    but with the given settings (no application context is pushed)."""
    made: list[Flask] = []

    def build(**settings) -> Flask:
        path = tmp_path / f"shop-{len(made)}.sqlite3"
        shutil.copy(migrated_template, path)
        app = create_app(config_for(path) | settings)
        app.test_client_class = ShopClient
        made.append(app)
        return app

    yield build
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def world(app) -> World:
    return build_world()
