"""The ``voxhook`` command: run the service or its parts, migrate, manage keys.

``serve`` runs everything on one machine; ``api`` and ``worker`` run the parts separately for a
bigger deployment. The worker command imports the speech pipeline lazily, so nothing of it is
loaded by the API's processes.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from app.config import ENVIRONMENT, ConfigError, Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _database(settings: Settings):
    from app.db import Database

    return Database.from_settings(settings)


@click.group(epilog="Environment: " + "; ".join(f"{k}: {v}" for k, v in ENVIRONMENT.items()))
def main() -> None:
    """Voxhook: self-hosted speech-to-text for automation."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Everything on one machine: embedded Redis, SQLite, the API and one worker."""
    from app.serve import serve as run_all

    sys.exit(run_all(_settings(), host, port))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
def api(host: str, port: int) -> None:
    """The HTTP API under gunicorn (applies database migrations first)."""
    from app.migrate import upgrade

    settings = _settings()
    logging.basicConfig(level=settings.log_level)
    upgrade(_database(settings))
    os.execvp(sys.executable, gunicorn_command(settings, host, port))


def gunicorn_command(settings: Settings, host: str, port: int) -> list[str]:
    """The argv that runs the API under gunicorn with the configured processes and threads."""
    return [
        sys.executable, "-m", "gunicorn", "app.wsgi:app",
        "--bind", f"{host}:{port}",
        "--workers", str(settings.api_workers),
        "--threads", str(settings.api_threads),
        "--worker-class", "gthread",
        "--timeout", "60",
        "--graceful-timeout", "20",
        "--access-logfile", "-",
        "--log-level", settings.log_level.lower(),
    ]


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty (for scripts).")
def worker(burst: bool) -> None:
    """An RQ worker that loads every pipeline's model once and keeps it warm."""
    from worker.main import run_worker  # the only place `app` reaches into `worker`

    sys.exit(run_worker(_settings(), burst=burst))


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (safe to run again)."""
    from app.migrate import upgrade

    settings = _settings()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    upgrade(_database(settings))


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--name", required=True, help="What the key is for, e.g. 'n8n production'.")
@click.option("--account", "account_id", default="acct_default", show_default=True)
def keys_create(name: str, account_id: str) -> None:
    """Create a key and print it alone on standard output (it is shown only this once)."""
    from app.keys import UnknownKeyOrAccount, create_key
    from app.migrate import upgrade

    database = _database(_settings())
    upgrade(database)
    try:
        with database.session() as session:
            created = create_key(session, name, account_id)
            key_id = created.key.id
    except UnknownKeyOrAccount as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created key {key_id} ({name}) for account {account_id}. It is shown only "
               "once; store it now:", err=True)
    click.echo(created.secret)


@keys.command("list")
def keys_list() -> None:
    """Every key: id, account, name, visible prefix, created, revoked."""
    from app.keys import list_keys

    with _database(_settings()).session() as session:
        rows = list_keys(session)
        click.echo("id\taccount\tname\tprefix\tcreated_at\trevoked_at")
        for key in rows:
            click.echo("\t".join([key.id, key.account_id, key.name, key.prefix + "…",
                                  key.created_at.isoformat(timespec="seconds"),
                                  key.revoked_at.isoformat(timespec="seconds")
                                  if key.revoked_at else "-"]))


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once; the account's other keys keep working."""
    from app.keys import UnknownKeyOrAccount, revoke_key

    try:
        with _database(_settings()).session() as session:
            revoke_key(session, key_id)
    except UnknownKeyOrAccount as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Revoked {key_id}.", err=True)


@main.group()
def media() -> None:
    """Media files (uploads, and downloads kept for the retention time)."""


@media.command("sweep")
def media_sweep() -> None:
    """Delete media whose time is up now (workers also do this every few minutes)."""
    from app.media_sweep import sweep_media
    from app.storage import storage_from_settings

    settings = _settings()
    report = sweep_media(settings, _database(settings), storage_from_settings(settings))
    click.echo(f"Deleted {report.total} media file(s): {report.retained} past retention, "
               f"{report.orphaned} orphaned, {report.unused_uploads} unused uploads.")
