"""The webhook outbox (app/webhooks/events.py) on SQLite and PostgreSQL: which deliveries a
transcription's end records, and their bodies, compared with what the real API's GET answers.

Transcriptions are created through the API (Flask's test client on the real app), then made
final the way the worker does: in one transaction with the outbox call.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.store.models import Transcription, WebhookDelivery, utcnow
from app.webhooks.events import record_transcription_event

QUICKSTART, V1 = "/transcribe", "/api/v1/transcriptions"
MEDIA = "http://127.0.0.1:9/audio.mp3"
#: Every way a query string can be mangled: encoded slash, repeats, empty, '+', '~'.
TRICKY_QUERY = "?sig=a%2Fb&x=1&x=2&empty=&plus=a+b&%7E=~"
HOOK = "http://127.0.0.1:9/hook"
#: A result with non-ASCII text, which is sent as UTF-8, not escaped.
RESULT: dict[str, Any] = {
    "full_transcript": "Grüße aus Köln — ça va?",
    "language": "de",
    "duration_seconds": 2.5,
    "speakers": [],
    "utterances": [{
        "start": 0.0, "end": 2.5, "text": "Grüße aus Köln — ça va?", "speaker": None,
        "confidence": 0.9,
        "words": [{"word": "Grüße", "start": 0.0, "end": 0.5, "confidence": 0.95,
                   "speaker": None}],
    }],
}


def create(client, auth: dict[str, str], surface: str, **fields: Any) -> str:
    body = {"url": MEDIA, **fields}
    if surface == V1:
        body["source"] = "external_url"
    response = client.post(surface, json=body, headers=auth)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()["id"]


def subscribe(client, auth: dict[str, str], url: str, events: list[str] | None = None) -> str:
    body: dict[str, Any] = {"url": url}
    if events is not None:
        body["events"] = events
    response = client.post("/api/v1/webhook_endpoints", json=body, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def finish(database, transcription_id: str, status: str,
           now: datetime | None = None) -> list[WebhookDelivery]:
    """End the transcription as the worker does, recording its event in the same commit."""
    now = now or utcnow()
    with database.session() as session:
        row = session.get(Transcription, transcription_id)
        row.status = status
        row.completed_at = now
        if status == "completed":
            row.result, row.progress = RESULT, 1.0
            row.audio_duration_seconds, row.cost_micro_usd = 2.5, 139
        elif status == "failed":
            row.error_code, row.error_message = "not_audio", "The file is not audio."
        else:
            row.error_code, row.error_message = "cancelled", "Cancelled."
        return record_transcription_event(session, row, now)


def get_json(client, auth: dict[str, str], path: str) -> dict[str, Any]:
    response = client.get(path, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("status", ["completed", "failed"])
@pytest.mark.parametrize("surface", [QUICKSTART, V1])
def test_the_webhook_url_gets_exactly_the_get_body_of_its_surface(client, auth, database,
                                                                 surface, status):
    transcription_id = create(client, auth, surface, webhook_url=HOOK)
    now = utcnow()
    (delivery,) = finish(database, transcription_id, status, now)

    assert json.loads(delivery.body) == get_json(client, auth, f"{surface}/{transcription_id}")
    assert delivery.url == HOOK and delivery.endpoint_id is None
    assert delivery.event == f"transcription.{status}"
    assert delivery.id.startswith("msg_") and delivery.status == "pending"
    assert delivery.attempts == 0 and delivery.next_attempt_at == now
    # Decided once, compact, UTF-8 (not \u-escaped): the bytes every attempt sends.
    assert delivery.body == json.dumps(json.loads(delivery.body), ensure_ascii=False,
                                       separators=(",", ":"))
    if status == "completed":
        assert "Grüße aus Köln" in delivery.body
    with database.session() as session:
        stored = session.get(WebhookDelivery, delivery.id)
        assert stored.body == delivery.body and stored.account_id == "acct_default"
        assert stored.transcription_id == transcription_id


@pytest.mark.parametrize("surface", [QUICKSTART, V1])
def test_the_webhook_url_keeps_its_query_string_byte_for_byte(client, auth, database,
                                                              surface):
    url = HOOK + TRICKY_QUERY
    transcription_id = create(client, auth, surface, webhook_url=url)
    (delivery,) = finish(database, transcription_id, "completed")
    assert delivery.url == url
    with database.session() as session:
        assert session.get(WebhookDelivery, delivery.id).url == url
        assert session.get(Transcription, transcription_id).webhook_url == url


def test_subscriptions_get_the_envelope_of_the_events_they_asked_for(client, auth, other_auth,
                                                                    database):
    both = subscribe(client, auth, "http://127.0.0.1:9/both" + TRICKY_QUERY)
    completed_only = subscribe(client, auth, "http://127.0.0.1:9/completed",
                               ["transcription.completed"])
    failed_only = subscribe(client, auth, "http://127.0.0.1:9/failed",
                            ["transcription.failed"])
    deleted = subscribe(client, auth, "http://127.0.0.1:9/deleted")
    assert client.delete(f"/api/v1/webhook_endpoints/{deleted}", headers=auth
                         ).status_code == 200
    subscribe(client, other_auth, "http://127.0.0.1:9/theirs")  # another account's

    # A Quickstart transcription: subscriptions get the v1 body all the same.
    done = create(client, auth, QUICKSTART, webhook_url=HOOK)
    now = utcnow()
    deliveries = finish(database, done, "completed", now)
    assert [(d.endpoint_id, d.url) for d in deliveries] == [
        (None, HOOK), (both, "http://127.0.0.1:9/both" + TRICKY_QUERY),
        (completed_only, "http://127.0.0.1:9/completed")]
    envelopes = [json.loads(d.body) for d in deliveries[1:]]
    assert envelopes[0] == envelopes[1]
    assert set(envelopes[0]) == {"type", "timestamp", "data"}
    assert envelopes[0]["type"] == "transcription.completed"
    assert datetime.fromisoformat(envelopes[0]["timestamp"]) == now
    assert envelopes[0]["data"] == get_json(client, auth, f"{V1}/{done}")
    assert json.loads(deliveries[0].body) == get_json(client, auth, f"{QUICKSTART}/{done}")
    assert len({d.id for d in deliveries}) == 3  # one webhook-id per message

    failed = create(client, auth, V1)  # no webhook_url: subscriptions only
    deliveries = finish(database, failed, "failed")
    assert [d.endpoint_id for d in deliveries] == [both, failed_only]
    envelope = json.loads(deliveries[0].body)
    assert envelope["type"] == "transcription.failed"
    assert envelope["data"] == get_json(client, auth, f"{V1}/{failed}")
    assert envelope["data"]["error"] == {"code": "not_audio",
                                         "message": "The file is not audio."}


def test_a_cancelled_transcription_sends_nothing(client, auth, database):
    subscribe(client, auth, "http://127.0.0.1:9/all")
    transcription_id = create(client, auth, V1, webhook_url=HOOK)
    assert finish(database, transcription_id, "cancelled") == []
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_nothing_is_recorded_without_a_webhook_url_or_a_subscription(client, auth, other_auth,
                                                                    database):
    subscribe(client, other_auth, "http://127.0.0.1:9/theirs")
    assert finish(database, create(client, auth, V1), "completed") == []


def test_an_event_is_recorded_once(client, auth, database):
    transcription_id = create(client, auth, V1, webhook_url=HOOK)
    assert len(finish(database, transcription_id, "completed")) == 1
    with database.session() as session:
        row = session.get(Transcription, transcription_id)
        assert record_transcription_event(session, row, utcnow()) == []
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


def test_a_rolled_back_result_leaves_no_delivery(client, auth, database):
    """The outbox shares the result's transaction: no result, no announcement."""
    transcription_id = create(client, auth, V1, webhook_url=HOOK)
    with pytest.raises(RuntimeError), database.session() as session:
        row = session.get(Transcription, transcription_id)
        row.status, row.result, row.completed_at = "completed", RESULT, utcnow()
        assert record_transcription_event(session, row, utcnow())
        raise RuntimeError("the worker failed before its commit")
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        assert session.get(Transcription, transcription_id).status == "queued"


def test_the_first_attempt_is_due_at_the_event(client, auth, database):
    later = utcnow() + timedelta(minutes=5)
    (delivery,) = finish(database, create(client, auth, V1, webhook_url=HOOK), "completed",
                         later)
    with database.session() as session:
        stored = session.get(WebhookDelivery, delivery.id)
        due = stored.next_attempt_at
        assert (due if due.tzinfo else due.replace(tzinfo=later.tzinfo)) == later
        assert stored.leased_until is None and stored.delivered_at is None
