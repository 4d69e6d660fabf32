"""The Alembic migrations build exactly the tables the models describe, on every backend,
and running them again changes nothing."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app.store.db import Database
from app.store.migrate import current_revision, head_revision, upgrade
from app.store.models import Base


def test_migrations_match_the_models(database: Database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_is_idempotent_and_reaches_head(database: Database):
    upgrade(database)
    assert current_revision(database) == head_revision(database) == "0010"
