"""The ``voxhook`` command: run the service or its parts, migrate, manage keys, accounts and
money.

``serve`` runs everything on one machine; ``api``, ``worker`` and ``webhook-worker`` run the parts
separately for a bigger deployment. The worker commands import the ``worker`` package lazily,
so nothing of it is loaded by the API's processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from app.config import ConfigError, Settings
from app.ops.api_process import gunicorn_command
from app.ops.environment import ENVIRONMENT

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _database(settings: Settings):
    from app.store.db import Database

    return Database.from_settings(settings)


@click.group(epilog="Settings come from environment variables: `voxhook config` lists them.")
def main() -> None:
    """Voxhook: self-hosted speech-to-text for automation."""


@main.command()
def config() -> None:
    """List the environment variables Voxhook reads, with what each means (also in the
    README's Configuration table)."""
    width = max(len(name) for name in ENVIRONMENT)
    for name, meaning in ENVIRONMENT.items():
        click.echo(f"{name:<{width}}  {meaning}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Everything on one machine: embedded Redis, SQLite, the API, one worker and the
    webhook worker."""
    from app.ops.serve import serve as run_all

    sys.exit(run_all(_settings(), host, port))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
def api(host: str, port: int) -> None:
    """The HTTP API under gunicorn (applies database migrations first)."""
    from app.observability.logs import configure_logging
    from app.store.migrate import upgrade

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    upgrade(_database(settings))
    os.execvp(sys.executable, gunicorn_command(settings, host, port))


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty (for scripts).")
def worker(burst: bool) -> None:
    """An RQ worker that loads every pipeline's model once and keeps it warm."""
    from worker.main import run_worker  # the only place `app` reaches into `worker`

    sys.exit(run_worker(_settings(), burst=burst))


@main.command("webhook-worker")
def webhook_worker() -> None:
    """Send webhook deliveries (light: no model, no GPU), retrying on the configured schedule."""
    from worker.webhooks.dispatcher import run_dispatcher

    sys.exit(run_dispatcher(_settings()))


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (safe to run again)."""
    from app.store.migrate import upgrade

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
    from app.billing.keys import UnknownKeyOrAccount, create_key
    from app.store.migrate import upgrade

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
    from app.billing.keys import list_keys

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
    from app.billing.keys import UnknownKeyOrAccount, revoke_key

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
    from app.media.storage import storage_from_settings
    from app.media.sweep import sweep_media

    settings = _settings()
    report = sweep_media(settings, _database(settings), storage_from_settings(settings))
    click.echo(f"Deleted {report.total} media file(s): {report.retained} past retention, "
               f"{report.orphaned} orphaned, {report.unused_uploads} unused uploads.")


# --------------------------------------------------------------------------- money


def _migrated_database():
    """The database, its schema brought up to date (money commands may be the first run)."""
    from app.store.migrate import upgrade

    database = _database(_settings())
    upgrade(database)
    return database


@contextlib.contextmanager
def _wallet_session() -> Iterator[Session]:
    """A session of the migrated database for a money command, committed on success; a
    wallet error becomes the command's error message (exit 1), not a traceback."""
    from app.billing.wallet import WalletError

    try:
        with _migrated_database().session() as session:
            yield session
    except WalletError as exc:
        raise click.ClickException(str(exc)) from exc


def _usd(value: str | None, option: str, allow_negative: bool = False) -> int | None:
    """A ``--usd``-style option as exact micro-dollars, or a usage error naming it."""
    from app.billing.wallet import InvalidAmount, parse_usd

    if value is None:
        return None
    try:
        return parse_usd(value, what="the amount", allow_negative=allow_negative)
    except InvalidAmount as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


def _balance_lines(balances) -> list[str]:  # type: ignore[no-untyped-def]
    from app.billing.wallet import format_usd

    return [
        f"period          {balances.period}",
        f"monthly credit  {format_usd(balances.monthly_credit)} USD",
        f"credit left     {format_usd(balances.credit_remaining)} USD "
        f"({format_usd(balances.held_credit)} held)",
        f"top-up          {format_usd(balances.topup)} USD "
        f"({format_usd(balances.held_topup)} held)",
        f"available       {format_usd(balances.available)} USD",
    ]


@main.group()
def accounts() -> None:
    """Accounts (each has keys and a wallet)."""


@accounts.command("create")
@click.option("--name", required=True, help="Who the account is for.")
@click.option("--id", "account_id", help="Its id (letters, digits, _ and -); default acct_….")
@click.option("--monthly-credit-usd", default="0", show_default=True,
              help="Credit granted every calendar month (UTC), e.g. 10.00; this month's at once.")
def accounts_create(name: str, account_id: str | None, monthly_credit_usd: str) -> None:
    """Create an account and print its id alone on standard output."""
    from app.billing.accounts import create_account
    from app.billing.wallet import format_usd

    monthly = _usd(monthly_credit_usd, "--monthly-credit-usd") or 0
    with _wallet_session() as session:
        account = create_account(session, name, account_id, monthly)
        created_id = account.id
    click.echo(f"Created account {created_id} ({name.strip()}), monthly credit "
               f"{format_usd(monthly)} USD.", err=True)
    click.echo(created_id)


@accounts.command("list")
def accounts_list() -> None:
    """Every account with its wallet (USD)."""
    from app.billing.accounts import list_accounts
    from app.billing.wallet import balances, format_usd

    with _migrated_database().session() as session:
        click.echo("id\tname\tcreated_at\tmonthly_credit\tcredit_left\ttopup\theld\tavailable")
        for account in list_accounts(session):
            wallet = balances(session, account.id)
            click.echo("\t".join([
                account.id, account.name, account.created_at.isoformat(timespec="seconds"),
                *(format_usd(amount) for amount in (
                    wallet.monthly_credit, wallet.credit_remaining, wallet.topup, wallet.held,
                    wallet.available))]))


@main.group()
def wallet() -> None:
    """Money: top-ups, monthly credit, balances, and the ledger audit."""


@wallet.command("topup")
@click.argument("account_id")
@click.option("--usd", required=True, help="Amount in USD, at least 5.00, e.g. 25.00.")
@click.option("--note", help="Why, for the ledger (e.g. an invoice number).")
def wallet_topup(account_id: str, usd: str, note: str | None) -> None:
    """Add money to an account's top-up balance."""
    from app.billing.wallet import format_usd, topup

    amount = _usd(usd, "--usd")
    assert amount is not None
    with _wallet_session() as session:
        after = topup(session, account_id, amount, note=note)
    click.echo(f"Added {format_usd(amount)} USD to {account_id}; available now "
               f"{format_usd(after.available)} USD.")


@wallet.command("show")
@click.argument("account_id")
@click.option("--entries", "limit", default=10, show_default=True,
              help="How many of the latest ledger entries to list.")
def wallet_show(account_id: str, limit: int) -> None:
    """An account's balances and its latest ledger entries."""
    from app.billing.wallet import balances, entries, format_usd

    with _wallet_session() as session:
        now = balances(session, account_id)
        latest = entries(session, account_id, limit)
    click.echo(f"account         {account_id}")
    for line in _balance_lines(now):
        click.echo(line)
    if latest:
        click.echo("\nid\tcreated_at\tkind\tpocket\tusd\ttranscription\tnote")
    for entry in latest:
        click.echo("\t".join([str(entry.id), entry.created_at.isoformat(timespec="seconds"),
                              entry.kind, entry.pocket, format_usd(entry.amount_micro_usd),
                              entry.transcription_id or "-", entry.note or ""]))


@wallet.command("set-monthly-credit")
@click.argument("account_id")
@click.option("--usd", required=True, help="Credit per calendar month (UTC), e.g. 10.00.")
def wallet_set_monthly_credit(account_id: str, usd: str) -> None:
    """Change the monthly credit; this month counts as granted the new amount (what was
    spent so far counts against it), later months are granted it."""
    from app.billing.wallet import format_usd, set_monthly_credit

    amount = _usd(usd, "--usd")
    assert amount is not None
    with _wallet_session() as session:
        after = set_monthly_credit(session, account_id, amount)
    click.echo(f"Monthly credit of {account_id} is now {format_usd(amount)} USD; credit left "
               f"this month {format_usd(after.credit_remaining)} USD.")


@wallet.command("adjust")
@click.argument("account_id")
@click.option("--pocket", type=click.Choice(["credit", "topup"]), required=True,
              help="Which balance to correct.")
@click.option("--usd", required=True, help="Signed amount, e.g. 2.50 or -1.25.")
@click.option("--note", required=True, help="Why (kept in the ledger).")
def wallet_adjust(account_id: str, pocket: str, usd: str, note: str) -> None:
    """Correct a balance by a signed amount (never below what is held, so never below 0)."""
    from app.billing.wallet import adjust, format_usd

    amount = _usd(usd, "--usd", allow_negative=True)
    assert amount is not None
    with _wallet_session() as session:
        after = adjust(session, account_id, pocket, amount, note=note)
    click.echo(f"Adjusted the {pocket} balance of {account_id} by {format_usd(amount)} USD; "
               f"available now {format_usd(after.available)} USD.")


@wallet.command("refund")
@click.argument("transcription_id")
@click.option("--note", help="Why (kept in the ledger).")
def wallet_refund(transcription_id: str, note: str | None) -> None:
    """Give a charged transcription's cost back to its account."""
    from app.billing.wallet import format_usd, refund

    with _wallet_session() as session:
        amount = refund(session, transcription_id, note=note)
    if not amount:
        raise click.ClickException(f"{transcription_id} has no charge to refund (it was not "
                                   "charged, or is refunded already)")
    click.echo(f"Refunded {format_usd(amount)} USD for {transcription_id}.")


@wallet.command("audit")
def wallet_audit() -> None:
    """Check that every balance follows from the ledger; exits 1 when something does not."""
    from app.billing.wallet import audit

    report = audit(_migrated_database())
    for problem in report.problems:
        click.echo(f"PROBLEM: {problem}")
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


# --------------------------------------------------------------------------- webhooks


@main.group()
def webhooks() -> None:
    """Webhooks: each account's signing secret."""


@webhooks.command("secret")
@click.argument("account_id")
@click.option("--rotate", is_flag=True, help="Replace the secret; the previous one keeps "
              "signing (as a second signature) for a day, so receivers can switch.")
def webhooks_secret(account_id: str, rotate: bool) -> None:
    """Print an account's webhook signing secret (whsec_…) alone on standard output, making
    it on first use; receivers verify deliveries with it."""
    from app.errors import NotFound
    from app.store.models import utcnow
    from app.webhooks.service import rotate_secret, signing_secret

    settings = _settings()
    try:
        with _migrated_database().session() as session:
            if rotate:
                found = rotate_secret(session, account_id, utcnow(),
                                      settings.webhooks.secret_overlap_s)
            else:
                found = signing_secret(session, account_id, utcnow())
    except NotFound as exc:
        raise click.ClickException(f"{exc.message} (`voxhook accounts list` lists them)"
                                   ) from exc
    if rotate:
        click.echo(f"Rotated the webhook signing secret of {account_id}.", err=True)
    if found.previous_valid_until is not None:
        click.echo("The previous secret also signs deliveries until "
                   f"{found.previous_valid_until.isoformat(timespec='seconds')}.", err=True)
    click.echo(found.secret)
