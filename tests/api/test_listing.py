"""``GET /api/v1/transcriptions`` (Flask's test client on the real app, real Redis and
SQLite/PostgreSQL): keyset pagination that returns every transcription exactly once while new
ones arrive, the filters, the bounds, and accounts kept apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.store.db import Database
from app.store.models import Transcription, new_id

LIST = "/api/v1/transcriptions"
URL = "http://127.0.0.1:9/audio.mp3"
#: A fixed moment the directly inserted rows are placed around.
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def create(client, auth: dict[str, str]) -> str:
    response = client.post(LIST, json={"source": "external_url", "url": URL}, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def insert(database: Database, key_id: str, created_at: datetime, status: str = "queued",
           account_id: str = "acct_default") -> str:
    """A transcription row with a chosen created_at and status (no job behind it)."""
    transcription_id = new_id("tr")
    with database.session() as session:
        session.add(Transcription(
            id=transcription_id, account_id=account_id, api_key_id=key_id, surface="v1",
            status=status, source="external_url", url=URL, pipeline_code="tiny",
            created_at=created_at))
    return transcription_id


def page(client, auth: dict[str, str], **query: Any) -> dict[str, Any]:
    response = client.get(LIST, query_string=query, headers=auth)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["object"] == "list"
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["data"]]


def test_pages_return_every_transcription_once_while_new_ones_arrive(client, auth):
    original = [create(client, auth) for _ in range(25)]
    newest_first = original[::-1]
    seen: list[str] = []
    arrived: list[str] = []
    cursor = None
    for _ in range(10):
        body = page(client, auth, limit=7, **({"starting_after": cursor} if cursor else {}))
        seen += ids(body)
        assert len(body["data"]) <= 7
        if not body["has_more"]:
            assert body["next_starting_after"] is None
            break
        assert body["next_starting_after"] == body["data"][-1]["id"]
        cursor = body["next_starting_after"]
        arrived += [create(client, auth), create(client, auth)]  # between pages
    assert seen == newest_first  # each exactly once, in order, and nothing that arrived
    assert not set(arrived) & set(seen)

    assert len(arrived) == 6  # three pages were followed by arrivals
    everything = page(client, auth, limit=100)
    assert ids(everything) == arrived[::-1] + newest_first  # they lead a fresh first page


def test_items_are_whole_v1_transcriptions(client, auth):
    transcription_id = create(client, auth)
    (item,) = page(client, auth)["data"]
    single = client.get(f"{LIST}/{transcription_id}", headers=auth).get_json()
    assert item == single
    assert item["object"] == "transcription" and item["status"] == "queued"
    (lean,) = page(client, auth, include_result="false")["data"]
    assert "result" not in lean and lean["id"] == transcription_id


def test_equal_creation_times_are_ordered_by_id(client, auth, database, key):
    """created_at ties (one clock tick) still have one order, and pages neither skip nor
    repeat across them."""
    tied = sorted((insert(database, key[1], T0) for _ in range(5)), reverse=True)
    older = insert(database, key[1], T0 - timedelta(seconds=1))
    first = page(client, auth, limit=2)
    second = page(client, auth, limit=2, starting_after=first["next_starting_after"])
    third = page(client, auth, limit=2, starting_after=second["next_starting_after"])
    assert ids(first) + ids(second) + ids(third) == [*tied, older]
    assert third["has_more"] is False


def test_status_filter_takes_one_or_several(client, auth, database, key):
    made = {status: insert(database, key[1], T0 + timedelta(minutes=n), status)
            for n, status in enumerate(["queued", "processing", "completed", "failed",
                                        "cancelled"])}
    assert ids(page(client, auth, status="failed")) == [made["failed"]]
    assert ids(page(client, auth, status="completed,cancelled")) == [
        made["cancelled"], made["completed"]]
    repeated = client.get(f"{LIST}?status=queued&status=processing", headers=auth)
    assert ids(repeated.get_json()) == [made["processing"], made["queued"]]
    assert len(page(client, auth)["data"]) == 5


def test_date_filters_are_inclusive_after_and_exclusive_before(client, auth, database, key):
    at = {hour: insert(database, key[1], T0 + timedelta(hours=hour)) for hour in range(4)}
    moment = (T0 + timedelta(hours=1)).isoformat()  # 2026-03-01T13:00:00+00:00
    assert ids(page(client, auth, created_after=moment)) == [at[3], at[2], at[1]]
    assert ids(page(client, auth, created_before=moment)) == [at[0]]
    both = page(client, auth, created_after="2026-03-01T13:00:00Z",
                created_before="2026-03-01T15:00:00Z")
    assert ids(both) == [at[2], at[1]]
    # Another offset names the same instant; no offset is UTC; a date is its midnight UTC.
    assert ids(page(client, auth, created_after="2026-03-01T15:00:00+02:00")) == ids(
        page(client, auth, created_after="2026-03-01T13:00:00"))
    assert len(page(client, auth, created_after="2026-03-01")["data"]) == 4
    assert page(client, auth, created_after="2026-03-02")["data"] == []
    # An unencoded '+' reaches the server as a space; it is read as the offset it was.
    unencoded = client.get(f"{LIST}?created_after=2026-03-01T15:00:00+02:00", headers=auth)
    assert ids(unencoded.get_json()) == [at[3], at[2], at[1]]


def test_filters_and_cursor_combine(client, auth, database, key):
    failed = [insert(database, key[1], T0 + timedelta(minutes=n), "failed") for n in range(5)]
    for n in range(5):
        insert(database, key[1], T0 + timedelta(minutes=n, seconds=30), "completed")
    first = page(client, auth, status="failed", limit=3)
    rest = page(client, auth, status="failed", limit=3,
                starting_after=first["next_starting_after"])
    assert ids(first) + ids(rest) == failed[::-1]
    assert rest["has_more"] is False and rest["next_starting_after"] is None


def test_another_accounts_transcriptions_never_appear(client, auth, other, database, key):
    mine = [create(client, auth) for _ in range(3)]
    other_auth, other_key = other
    theirs = [create(client, other_auth) for _ in range(2)]
    theirs.append(insert(database, other_key, T0, account_id="acct_other"))
    assert set(ids(page(client, auth, limit=100))) == set(mine)
    assert set(ids(page(client, other_auth, limit=100))) == set(theirs)
    for status in ("queued", "queued,completed"):
        assert not set(ids(page(client, auth, status=status))) & set(theirs)

    refused = client.get(LIST, query_string={"starting_after": theirs[0]}, headers=auth)
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "validation_error" and "starting_after" in error["fields"]
    assert "next_starting_after" in error["message"]


@pytest.mark.parametrize(("query", "field"), [
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"starting_after": "tr_nope"}, "starting_after"),
    ({"status": "done"}, "status"),
    ({"status": "queued,done"}, "status"),
    ({"created_after": "yesterday"}, "created_after"),
    ({"created_before": "2026-13-01"}, "created_before"),
    ({"created_after": "2026-03-02", "created_before": "2026-03-01"}, "created_after"),
    ({"include_result": "maybe"}, "include_result"),
    ({"statuses": "failed"}, "statuses"),  # a misspelt filter is refused, not ignored
])
def test_invalid_parameters_are_422s_naming_them(client, auth, query, field):
    response = client.get(LIST, query_string=query, headers=auth)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error
    assert all(error["fields"][field])


def test_limit_bounds_and_default(client, auth, database, key):
    for n in range(101):
        insert(database, key[1], T0 + timedelta(seconds=n))
    assert len(page(client, auth)["data"]) == 20
    assert len(page(client, auth, limit=1)["data"]) == 1
    full = page(client, auth, limit=100)
    assert len(full["data"]) == 100 and full["has_more"] is True
    last = page(client, auth, limit=100, starting_after=full["next_starting_after"])
    assert len(last["data"]) == 1 and last["has_more"] is False


def test_listing_needs_a_key(client):
    assert client.get(LIST).status_code == 401


def test_openapi_documents_the_listing(client):
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"][LIST]["get"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert names == {"limit", "starting_after", "status", "created_after", "created_before",
                     "include_result"}
    listing = spec["components"]["schemas"]["TranscriptionList"]["properties"]
    assert {"object", "data", "has_more", "next_starting_after"} <= set(listing)
