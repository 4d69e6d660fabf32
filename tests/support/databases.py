"""Throwaway PostgreSQL databases for tests and benchmarks: one fresh database per use."""

from __future__ import annotations

import secrets

from sqlalchemy import create_engine, text


def create_postgres_database(admin_url: str, prefix: str = "voxhook_test") -> str:
    """Create an empty database on the server of ``admin_url``; returns its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    _run(admin_url, f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(admin_url: str, url: str) -> None:
    """Drop the database ``url`` names, closing its connections (nothing if not PostgreSQL)."""
    if url.startswith("postgresql"):
        _run(admin_url, f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _run(admin_url: str, statement: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()
