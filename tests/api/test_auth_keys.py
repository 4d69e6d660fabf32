"""Keys: created by the CLI (printed alone, stored only as a hash), both header styles on both
surfaces, revocation at once, and accounts kept apart."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from sqlalchemy import select

from app.billing.keys import create_key, revoke_key
from app.store.models import Account, ApiKey, Transcription

URL = "http://127.0.0.1:9/audio.mp3"


def run_cli(settings, *args):
    env = {"VOXHOOK_DATA_DIR": str(settings.data_dir),
           "VOXHOOK_DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_keys_create_prints_the_key_alone_and_stores_only_its_hash(settings, database):
    result = run_cli(settings, "keys", "create", "--name", "ci")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    secret = result.stdout.strip()
    assert secret.startswith("sk_live_") and len(secret) >= 8 + 32
    assert secret not in result.stderr
    with database.session() as session:
        (key,) = session.scalars(select(ApiKey).where(ApiKey.name == "ci")).all()
        assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert key.account_id == "acct_default"
        stored = [str(v) for v in key.__dict__.values()]
    assert not any(secret in value for value in stored)

    listing = run_cli(settings, "keys", "list")
    assert key.id in listing.stdout and secret not in listing.stdout
    assert run_cli(settings, "keys", "revoke", key.id).returncode == 0
    assert "-\n" not in run_cli(settings, "keys", "list").stdout.split(key.id)[1][:200]
    missing = run_cli(settings, "keys", "revoke", "key_nope")
    assert missing.returncode != 0 and "keys list" in missing.stderr


@pytest.mark.parametrize("style", ["Bearer {}", "{}", "bearer {}"])
@pytest.mark.parametrize("path", ["/transcribe/tr_x", "/api/v1/transcriptions/tr_x",
                                  "/api/v1/pipelines"])
def test_both_header_styles_work_on_every_surface(client, api_key, style, path):
    response = client.get(path, headers={"Authorization": style.format(api_key)})
    assert response.status_code in (200, 404)  # authenticated; tr_x does not exist


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer sk_live_short", "Basic abc",
                                    "Bearer sk_live_" + "x" * 40])
@pytest.mark.parametrize("path", ["/transcribe", "/api/v1/transcriptions"])
def test_missing_malformed_or_unknown_keys_get_401(client, header, path):
    headers = {} if header is None else {"Authorization": header}
    response = client.post(path, json={"url": URL}, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_stops_at_once_and_the_other_key_works(client, database):
    with database.session() as session:
        first = create_key(session, "first").secret
        second_key = create_key(session, "second")
    second = second_key.secret
    assert client.get("/api/v1/pipelines", headers={"Authorization": second}).status_code == 200
    with database.session() as session:
        revoke_key(session, second_key.key.id)
    assert client.get("/api/v1/pipelines", headers={"Authorization": second}).status_code == 401
    assert client.get("/api/v1/pipelines", headers={"Authorization": first}).status_code == 200


def test_another_accounts_transcription_is_not_found(client, database, api_key):
    created = client.post("/transcribe", json={"url": URL},
                          headers={"Authorization": api_key}).get_json()
    with database.session() as session:
        session.add(Account(id="acct_other", name="Other"))
        session.flush()
        other = create_key(session, "other", "acct_other").secret
    for path in (f"/transcribe/{created['id']}", f"/api/v1/transcriptions/{created['id']}"):
        response = client.get(path, headers={"Authorization": other})
        assert response.status_code == 404
        assert client.get(path, headers={"Authorization": api_key}).status_code == 200
    with database.session() as session:
        row = session.get(Transcription, created["id"])
        assert row.account_id == "acct_default"


def test_a_default_account_exists_after_migration(database):
    with database.session() as session:
        assert session.get(Account, "acct_default") is not None
