"""The migrations build exactly the models' schema: no drift between them."""

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from shop import create_app
from shop.extensions import db
from tests.conftest import config_for


def test_upgrade_on_an_empty_database_gives_the_models_schema(tmp_path):
    app = create_app(config_for(tmp_path / "empty.sqlite3"))
    with app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
            tables = set(inspect(connection).get_table_names())
        db.engine.dispose()
    assert differences == []
    assert set(db.metadata.tables) <= tables


def test_downgrade_to_base_and_upgrade_again(tmp_path):
    app = create_app(config_for(tmp_path / "roundtrip.sqlite3"))
    with app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == {"alembic_version"}
        flask_migrate.upgrade()
        db.engine.dispose()
