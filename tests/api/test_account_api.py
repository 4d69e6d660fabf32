"""The account's own API (Flask's test client on the real app, SQLite and PostgreSQL):
``GET /api/v1/me``, the keys (list, create, revoke) and ``GET /api/v1/usage``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, select

from app import create_app
from app.billing import wallet
from app.store.db import Database
from app.store.models import LedgerEntry, LedgerKind, Transcription, new_id, utcnow

URL = "http://127.0.0.1:9/audio.mp3"
PIPELINES = "/api/v1/pipelines"


def new_key(client, auth: dict[str, str], name: str = "zapier") -> dict[str, Any]:
    response = client.post("/api/v1/keys", json={"name": name}, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@contextmanager
def statements(app) -> Iterator[list[str]]:
    """The SQL statements the app runs inside the block."""
    seen: list[str] = []
    engine = app.extensions["voxhook"].db.engine

    def record(_conn, _cursor, statement, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


# --------------------------------------------------------------------------- me


def test_me_says_who_the_key_is_and_the_balances(client, auth, key, database):
    with database.session() as session:
        wallet.set_monthly_credit(session, "acct_default", 2_000_000)
        wallet.topup(session, "acct_default", 5_000_000)
    response = client.get("/api/v1/me", headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert body == {
        "object": "me",
        "account": {"id": "acct_default", "name": body["account"]["name"]},
        "key": {"id": key[1], "name": "tests", "prefix": key[0][:12]},
        "billing": "off",
        "balances": {"monthly_credit_usd": "2.000000", "credit_remaining_usd": "2.000000",
                     "topup_usd": "5.000000", "held_usd": "0.000000",
                     "available_usd": "7.000000", "period": utcnow().strftime("%Y-%m")},
    }
    assert key[0] not in response.get_data(as_text=True)


def test_me_is_cheap(client, app, auth):
    client.get("/api/v1/me", headers=auth)  # the wallet's month is rolled on first use
    with statements(app) as seen:
        assert client.get("/api/v1/me", headers=auth).status_code == 200
    # The key's lookup (auth), the key with its account, the wallet: reads only.
    assert len(seen) <= 3, seen
    assert all(statement.lstrip().upper().startswith("SELECT") for statement in seen), seen


def test_me_says_when_billing_is_on(settings, database, auth):
    billing = create_app(settings.with_overrides(billing_enforced=True)).test_client()
    assert billing.get("/api/v1/me", headers=auth).get_json()["billing"] == "on"


@pytest.mark.parametrize("header", [None, "Bearer sk_live_" + "x" * 40])
def test_me_needs_a_valid_key(client, header):
    response = client.get("/api/v1/me", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


# --------------------------------------------------------------------------- keys


def test_keys_are_listed_without_secrets(client, auth, key, other):
    listed = client.get("/api/v1/keys", headers=auth)
    assert listed.status_code == 200
    (item,) = listed.get_json()["data"]
    assert item == {"id": key[1], "object": "api_key", "name": "tests", "prefix": key[0][:12],
                    "created_at": item["created_at"], "revoked_at": None, "active": True,
                    "current": True}
    assert key[0] not in listed.get_data(as_text=True)
    assert other[1] not in listed.get_data(as_text=True)  # another account's keys


def test_a_created_key_is_shown_once_and_works_at_once(client, auth, key):
    created = new_key(client, auth, "  n8n production  ")
    secret = created["secret"]
    assert secret.startswith("sk_live_") and created["prefix"] == secret[:12]
    assert created["name"] == "n8n production" and created["active"] is True
    for header in (f"Bearer {secret}", secret):  # both surfaces' styles
        assert client.get(PIPELINES, headers={"Authorization": header}).status_code == 200
        assert client.get("/transcribe/tr_x", headers={"Authorization": header}
                          ).status_code == 404
    me = client.get("/api/v1/me", headers={"Authorization": secret}).get_json()
    assert me["key"]["id"] == created["id"]

    listed = client.get("/api/v1/keys", headers=auth).get_json()["data"]
    assert [item["id"] for item in listed] == [key[1], created["id"]]
    assert [item["current"] for item in listed] == [True, False]
    assert all("secret" not in item for item in listed)
    assert secret not in client.get("/api/v1/keys", headers=auth).get_data(as_text=True)


def test_a_revoked_key_is_refused_at_once_and_the_other_works(client, auth, key):
    created = new_key(client, auth)
    revoked = client.post(f"/api/v1/keys/{created['id']}/revoke", headers=auth)
    assert revoked.status_code == 200, revoked.get_json()
    body = revoked.get_json()
    assert body["id"] == created["id"] and body["active"] is False
    assert body["revoked_at"] is not None

    for path in (PIPELINES, "/transcribe/tr_x", "/api/v1/transcriptions", "/api/v1/me"):
        for header in (f"Bearer {created['secret']}", created["secret"]):
            response = client.get(path, headers={"Authorization": header})
            assert response.status_code == 401, path
    assert client.get(PIPELINES, headers=auth).status_code == 200
    created_with_first = client.post("/api/v1/transcriptions", headers=auth, json={
        "source": "external_url", "url": URL})
    assert created_with_first.status_code == 201

    again = client.post(f"/api/v1/keys/{created['id']}/revoke", headers=auth)
    assert again.status_code == 200 and again.get_json() == body  # the first time stays
    listed = {item["id"]: item for item in client.get("/api/v1/keys",
                                                        headers=auth).get_json()["data"]}
    assert listed[created["id"]]["revoked_at"] == body["revoked_at"]


def test_a_key_may_revoke_itself(client, auth, key):
    spare = new_key(client, auth)
    response = client.post(f"/api/v1/keys/{key[1]}/revoke", headers=auth)
    assert response.status_code == 200
    assert client.get("/api/v1/keys", headers=auth).status_code == 401
    spare_auth = {"Authorization": f"Bearer {spare['secret']}"}
    assert client.get("/api/v1/keys", headers=spare_auth).status_code == 200


def test_another_accounts_key_cannot_be_revoked(client, auth, other):
    other_auth, other_key = other
    for key_id in (other_key, "key_nope"):
        response = client.post(f"/api/v1/keys/{key_id}/revoke", headers=auth)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
    assert client.get(PIPELINES, headers=other_auth).status_code == 200


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": 7},
                                  {"name": "x" * 201}, {"name": "ok", "scopes": ["all"]}])
def test_a_key_needs_a_sensible_name(client, auth, body):
    response = client.post("/api/v1/keys", json=body, headers=auth)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    named = "scopes" if "scopes" in body else "name"
    assert named in error["fields"] and all(error["fields"][named])


def test_keys_need_a_key(client):
    assert client.get("/api/v1/keys").status_code == 401
    assert client.post("/api/v1/keys", json={"name": "x"}).status_code == 401


# --------------------------------------------------------------------------- usage


DAY1, DAY2, DAY3 = date(2026, 2, 10), date(2026, 2, 11), date(2026, 2, 12)


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0,
       microsecond: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second, microsecond), tzinfo=UTC)


def insert(database: Database, key_id: str, completed_at: datetime, cost: int | None,
           seconds: float | None, status: str = "completed",
           account_id: str = "acct_default") -> str:
    """A transcription as the worker leaves it, with a chosen completion time and cost."""
    transcription_id = new_id("tr")
    with database.session() as session:
        session.add(Transcription(
            id=transcription_id, account_id=account_id, api_key_id=key_id, surface="v1",
            status=status, source="external_url", url=URL, pipeline_code="tiny",
            created_at=completed_at - timedelta(minutes=1), completed_at=completed_at,
            cost_micro_usd=cost, audio_duration_seconds=seconds))
    return transcription_id


def usd(micro: int) -> str:
    return str((Decimal(micro) / 1_000_000).quantize(Decimal("0.000001")))


@pytest.fixture
def spent(client, auth, key, other, database) -> dict[str, Any]:
    """Completed transcriptions of two keys over three days, and what must not count."""
    second = new_key(client, auth, "second")
    first_id, second_id = key[1], second["id"]
    counted = [
        insert(database, first_id, at(DAY1, 0, 0, 0), 5225, 11.0),
        insert(database, first_id, at(DAY1, 23, 59, 59, 999999), 14250, 30.0),
        insert(database, second_id, at(DAY1, 9), 333, 1.234),
        insert(database, second_id, at(DAY2, 9), 0, 0.4),
        insert(database, first_id, at(DAY3, 18), 1, 0.001),
    ]
    insert(database, first_id, at(DAY2), None, 12.0, status="failed")
    insert(database, first_id, at(DAY2), 999, 12.0, status="cancelled")
    insert(database, first_id, at(DAY1) - timedelta(days=1), 7777, 5.0)   # before start
    insert(database, first_id, at(DAY3 + timedelta(days=1), 0), 8888, 5.0)  # after end
    insert(database, other[1], at(DAY2), 4242, 7.0, account_id="acct_other")
    return {"first": first_id, "second": second_id, "counted": counted,
            "query": {"start": DAY1.isoformat(), "end": DAY3.isoformat()}}


def test_usage_per_key_and_day_adds_up(client, auth, spent):
    response = client.get("/api/v1/usage", query_string=spent["query"], headers=auth)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["object"], body["start"], body["end"]) == ("usage", "2026-02-10",
                                                            "2026-02-12")
    by_key = {entry["key"]["id"]: entry for entry in body["keys"]}
    assert list(by_key) == [spent["first"], spent["second"]]
    first, second = by_key[spent["first"]], by_key[spent["second"]]
    assert first["days"] == [
        {"date": "2026-02-10", "spend_usd": "0.019475", "audio_seconds": 41.0,
         "transcriptions": 2},
        {"date": "2026-02-12", "spend_usd": "0.000001", "audio_seconds": 0.001,
         "transcriptions": 1}]
    assert first["total"] == {"spend_usd": "0.019476", "audio_seconds": 41.001,
                              "transcriptions": 3}
    assert second["total"] == {"spend_usd": "0.000333", "audio_seconds": 1.634,
                               "transcriptions": 2}
    assert body["total"] == {"spend_usd": "0.019809", "audio_seconds": 42.635,
                             "transcriptions": 5}
    assert [day["date"] for day in body["days"]] == ["2026-02-10", "2026-02-11",
                                                     "2026-02-12"]

    # Exactly: the keys' totals add up to the account's, and so do the days'.
    keys_sum = sum(Decimal(entry["total"]["spend_usd"]) for entry in body["keys"])
    days_sum = sum(Decimal(day["spend_usd"]) for day in body["days"])
    assert keys_sum == days_sum == Decimal(body["total"]["spend_usd"])
    for entry in body["keys"]:
        assert sum(Decimal(day["spend_usd"]) for day in entry["days"]) == Decimal(
            entry["total"]["spend_usd"])
        assert sum(day["transcriptions"] for day in entry["days"]) == entry["total"][
            "transcriptions"]


def test_usage_equals_the_ledgers_charges_per_key(client, auth, spent, database):
    """With billing on, the worker reserves and charges each completed job: the ledger's
    charges per key are the same amounts as the usage per key."""
    with database.session() as session:
        wallet.topup(session, "acct_default", 5_000_000)
    for transcription_id in spent["counted"]:
        with database.session() as session:
            row = session.get(Transcription, transcription_id)
            wallet.reserve(session, row.account_id, row.api_key_id, row.id,
                           row.cost_micro_usd)
            wallet.charge(session, row.id)
    with database.session() as session:
        charges = session.scalars(select(LedgerEntry).where(
            LedgerEntry.kind == LedgerKind.CHARGE)).all()
    ledger: dict[str, int] = defaultdict(int)
    for entry in charges:
        ledger[entry.api_key_id] -= entry.amount_micro_usd
    body = client.get("/api/v1/usage", query_string=spent["query"], headers=auth).get_json()
    assert {entry["key"]["id"]: entry["total"]["spend_usd"] for entry in body["keys"]} == {
        key_id: usd(amount) for key_id, amount in ledger.items()}


def test_a_revoked_keys_usage_stays(client, auth, spent):
    client.post(f"/api/v1/keys/{spent['second']}/revoke", headers=auth)
    body = client.get("/api/v1/usage", query_string=spent["query"], headers=auth).get_json()
    (second,) = [entry for entry in body["keys"] if entry["key"]["id"] == spent["second"]]
    assert second["key"]["revoked_at"] is not None
    assert second["total"]["spend_usd"] == "0.000333"


def test_another_account_sees_only_its_own_usage(client, spent, other):
    body = client.get("/api/v1/usage", query_string=spent["query"],
                      headers=other[0]).get_json()
    assert [entry["key"]["id"] for entry in body["keys"]] == [other[1]]
    assert body["total"]["spend_usd"] == "0.004242"


def test_usage_defaults_to_the_last_30_days(client, auth, key, database):
    today = utcnow().date()
    insert(database, key[1], utcnow() - timedelta(seconds=5), 100, 1.0)
    insert(database, key[1], at(today - timedelta(days=29), 0), 20, 1.0)
    insert(database, key[1], at(today - timedelta(days=30), 23, 59, 59), 3, 1.0)
    body = client.get("/api/v1/usage", headers=auth).get_json()
    assert (body["start"], body["end"]) == ((today - timedelta(days=29)).isoformat(),
                                            today.isoformat())
    assert body["total"] == {"spend_usd": "0.000120", "audio_seconds": 2.0,
                             "transcriptions": 2}
    only_end = client.get("/api/v1/usage", query_string={"end": "2026-02-28"},
                          headers=auth).get_json()
    assert (only_end["start"], only_end["end"]) == ("2026-01-30", "2026-02-28")


def test_usage_without_any_is_zero(client, auth):
    body = client.get("/api/v1/usage", headers=auth).get_json()
    assert body["total"] == {"spend_usd": "0.000000", "audio_seconds": 0.0,
                             "transcriptions": 0}
    assert body["keys"] == [] and body["days"] == []


@pytest.mark.parametrize(("query", "fields"), [
    ({"start": "2026-02-12", "end": "2026-02-10"}, {"start", "end"}),
    ({"start": "2025-01-01", "end": "2026-01-02"}, {"start", "end"}),  # 367 days
    ({"start": "2000-01-01"}, {"start", "end"}),                        # far back, no end
    ({"start": "2026-02-30"}, {"start"}),
    ({"end": "yesterday"}, {"end"}),
    ({"from": "2026-02-01"}, {"from"}),
])
def test_usage_ranges_are_checked(client, auth, query, fields):
    response = client.get("/api/v1/usage", query_string=query, headers=auth)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and set(error["fields"]) == fields


def test_a_year_is_allowed(client, auth):
    response = client.get("/api/v1/usage", query_string={"start": "2025-01-01",
                                                          "end": "2026-01-01"}, headers=auth)
    assert response.status_code == 200  # 366 days


def test_openapi_documents_the_account_api(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/keys"])
    assert "post" in paths["/api/v1/keys/{key_id}/revoke"]
    assert "get" in paths["/api/v1/me"] and "get" in paths["/api/v1/usage"]
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert "secret" in schemas["ApiKeyCreated"]["properties"]
    assert "secret" not in schemas["ApiKeyListed"]["properties"]


def test_deleting_a_transcription_keeps_its_spend_in_usage(client, auth, database):
    """What a transcription cost stays in usage after the client deletes it: the money was
    spent, and spend per key must keep adding up to what the account was charged."""
    created = client.post("/transcribe", json={"url": "http://127.0.0.1:9/a.mp3"},
                          headers=auth).get_json()
    with database.session() as session:
        row = session.get(Transcription, created["id"])
        row.status, row.completed_at = "completed", utcnow()
        row.cost_micro_usd, row.audio_duration_seconds = 6667, 120.0
    before = client.get("/api/v1/usage", headers=auth).get_json()
    assert client.delete(f"/api/v1/transcriptions/{created['id']}",
                         headers=auth).status_code == 200
    assert client.get("/api/v1/usage", headers=auth).get_json() == before
    assert before["total"]["spend_usd"] == "0.006667"
