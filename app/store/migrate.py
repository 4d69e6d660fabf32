"""Apply the Alembic migrations in ``app/migrations`` to the configured database.

``voxhook db upgrade`` calls :func:`upgrade`; so do ``voxhook api`` and ``voxhook serve``
before they start serving, which makes a fresh installation usable with one command.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.store.db import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
log = logging.getLogger(__name__)


def alembic_config(database: Database) -> Config:
    """An Alembic configuration pointing at our migrations and at ``database``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = database.engine
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (idempotent: nothing happens when it is there)."""
    command.upgrade(alembic_config(database), revision)
    log.info("database schema is at %s", current_revision(database))


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(database: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database)).get_current_head()
