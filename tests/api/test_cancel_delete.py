"""Cancelling and deleting transcriptions: ``POST /api/v1/transcriptions/{id}/cancel`` and
``DELETE /api/v1/transcriptions/{id}``.

Most tests use Flask's test client on the real app with real Redis and SQLite/PostgreSQL
(jobs just wait in the queue); the cancellation of a running job runs against the whole
stack (gunicorn, a worker transcribing a 10-minute file).
"""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select

from app.config import MediaLimits, Settings
from app.store.db import Database
from app.store.models import IdempotencyRecord, Transcription, Upload, utcnow
from tests.support.media_server import MediaServer
from tests.support.paths import FIXTURES
from tests.support.stack import Client

FIXTURES = FIXTURES
AUDIO = (FIXTURES / "jfk.flac").read_bytes()
V1 = "/api/v1/transcriptions"
QUICKSTART = "/transcribe"
URL = "http://127.0.0.1:9/audio.mp3"


@pytest.fixture
def queue(settings: Settings) -> Queue:
    return Queue(settings.queue_name, connection=Redis.from_url(settings.redis_url))


def create(client, auth: dict[str, str], **headers: str) -> dict[str, Any]:
    response = client.post(V1, json={"source": "external_url", "url": URL},
                           headers={**auth, **headers})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def upload_in_one_request(client, auth: dict[str, str]) -> dict[str, Any]:
    """A transcription of a small file sent with the request (multipart)."""
    response = client.post(V1, data={"file": (io.BytesIO(AUDIO), "jfk.flac", "audio/flac")},
                           content_type="multipart/form-data", headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def set_status(database: Database, transcription_id: str, status: str, **values: Any) -> None:
    """Play the worker's part: end a transcription as it would."""
    with database.session() as session:
        row = session.get(Transcription, transcription_id)
        row.status = status
        row.completed_at = utcnow()
        for name, value in values.items():
            setattr(row, name, value)


def stored_uploads(settings: Settings) -> list[Path]:
    root = settings.data_dir / "media" / "store" / "uploads"
    return sorted(root.iterdir()) if root.exists() else []


def cancel(client, auth: dict[str, str], transcription_id: str):
    return client.post(f"{V1}/{transcription_id}/cancel", headers=auth)


# --------------------------------------------------------------------------- cancel


def test_cancel_a_queued_transcription(client, auth, queue, database):
    created = create(client, auth)
    assert created["id"] in queue.job_ids

    response = cancel(client, auth, created["id"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["id"] == created["id"] and body["status"] == "cancelled"
    assert body["error"]["code"] == "cancelled"
    assert "cancelled" in body["error"]["message"]
    assert body["cost_usd"] is None and body["result"] is None
    assert body["completed_at"] is not None
    assert client.get(f"{V1}/{created['id']}", headers=auth).get_json() == body

    # Taken off the queue: no worker will ever start it.
    assert created["id"] not in queue.job_ids
    with pytest.raises(NoSuchJobError):
        Job.fetch(created["id"], connection=queue.connection)

    # The Quickstart contract knows no 'cancelled': there it failed, saying why.
    quickstart = client.get(f"{QUICKSTART}/{created['id']}", headers=auth).get_json()
    assert quickstart["status"] == "failed" and quickstart["error_code"] == "cancelled"
    assert "cancelled" in quickstart["error"] and quickstart["cost_cents"] is None


def test_cancelling_twice_answers_the_same(client, auth):
    created = create(client, auth)
    first = cancel(client, auth, created["id"])
    second = cancel(client, auth, created["id"])
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json()


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_a_finished_transcription_cannot_be_cancelled(client, auth, database, status):
    created = create(client, auth)
    set_status(database, created["id"], status)
    response = cancel(client, auth, created["id"])
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "transcription_not_cancellable"
    assert error["status"] == status and status in error["message"]
    assert client.get(f"{V1}/{created['id']}", headers=auth).get_json()["status"] == status


def test_cancel_a_processing_transcription_marks_it_for_its_worker(client, auth, database):
    """The worker's part (it stops at its next progress report) is tested end to end below;
    here: the row is cancelled at once, and what the worker had recorded of the cost goes."""
    created = create(client, auth)
    set_status(database, created["id"], "processing", completed_at=None, progress=0.4,
               audio_duration_seconds=30.0, cost_micro_usd=14250)
    body = cancel(client, auth, created["id"]).get_json()
    assert body["status"] == "cancelled" and body["cost_usd"] is None


def test_cancel_another_accounts_or_an_unknown_transcription_is_404(client, auth,
                                                                    other_auth):
    created = create(client, auth)
    for headers, transcription_id in ((other_auth, created["id"]), (auth, "tr_nope")):
        response = cancel(client, headers, transcription_id)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
    assert client.get(f"{V1}/{created['id']}", headers=auth).get_json()["status"] == "queued"


def test_cancelling_a_queued_upload_deletes_its_file(client, auth, settings, database):
    created = upload_in_one_request(client, auth)
    assert len(stored_uploads(settings)) == 1
    assert cancel(client, auth, created["id"]).status_code == 200
    assert stored_uploads(settings) == []
    with database.session() as session:
        assert session.get(Upload, created["upload_id"]).status == "deleted"


def test_with_retention_a_cancelled_upload_is_kept_for_the_sweep(client, auth, settings,
                                                                 database, app):
    """VOXHOOK_MEDIA_RETENTION_HOURS applies to a cancelled job's media like to any job's."""
    from app import create_app
    from app.media.sweep import sweep_media

    kept = create_app(settings.with_overrides(
        media_limits=MediaLimits(sweep_interval_s=0, retention_s=3600))).test_client()
    created = upload_in_one_request(kept, auth)
    assert cancel(kept, auth, created["id"]).status_code == 200
    (stored,) = stored_uploads(settings)
    with database.session() as session:
        row = session.get(Transcription, created["id"])
        assert row.media_key == f"uploads/{stored.name}"
        assert row.media_delete_after is not None
        later = row.media_delete_after
    sweep_media(settings, database, app.extensions["voxhook"].storage, now=later)
    assert stored_uploads(settings) == []


def test_a_cancelled_transcription_has_nothing_to_export(client, auth):
    created = create(client, auth)
    cancel(client, auth, created["id"])
    for path in (f"{V1}/{created['id']}/export", f"{QUICKSTART}/{created['id']}/export"):
        response = client.get(path, query_string={"format": "txt"}, headers=auth)
        assert response.status_code == 409
        error = response.get_json()["error"]
        assert error["code"] == "transcription_failed" and "cancelled" in error["message"]


# --------------------------------------------------------------------------- delete


def test_delete_removes_the_transcript_and_the_uploaded_file(client, auth, settings, queue,
                                                             database):
    """The transcript, URL and file go; the row stays only as a record of what was spent
    (deleted_at set), which no surface shows any more."""
    created = upload_in_one_request(client, auth)
    (stored,) = stored_uploads(settings)
    assert stored.read_bytes() == AUDIO

    response = client.delete(f"{V1}/{created['id']}", headers=auth)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"id": created["id"], "object": "transcription",
                                   "deleted": True}
    assert stored_uploads(settings) == []
    with database.session() as session:
        row = session.get(Transcription, created["id"])
        assert row.deleted_at is not None and row.result is None and row.url is None
        assert session.get(Upload, created["upload_id"]).status == "deleted"
    assert created["id"] not in queue.job_ids  # it was queued: cancelled first

    for path in (f"{V1}/{created['id']}", f"{QUICKSTART}/{created['id']}"):
        gone = client.get(path, headers=auth)
        assert gone.status_code == 404 and gone.get_json()["error"]["code"] == "not_found"
    assert client.delete(f"{V1}/{created['id']}", headers=auth).status_code == 404
    assert client.get(V1, headers=auth).get_json()["data"] == []
    upload = client.get(f"/api/v1/uploads/{created['upload_id']}", headers=auth).get_json()
    assert upload["status"] == "deleted"


def test_delete_a_completed_transcription_and_its_kept_media(client, auth, database, app,
                                                             tmp_path):
    created = create(client, auth)
    storage = app.extensions["voxhook"].storage
    kept = tmp_path / "source.wav"
    kept.write_bytes(b"RIFF kept media")
    storage.save_file(f"fetched/{created['id']}", kept)
    set_status(database, created["id"], "completed", result={"full_transcript": "hi"},
               cost_micro_usd=5225, media_key=f"fetched/{created['id']}",
               media_delete_after=utcnow())
    assert client.delete(f"{V1}/{created['id']}", headers=auth).status_code == 200
    assert not storage.exists(f"fetched/{created['id']}")
    assert client.get(f"{V1}/{created['id']}", headers=auth).status_code == 404


def test_delete_another_accounts_or_an_unknown_transcription_is_404(client, auth,
                                                                    other_auth):
    created = create(client, auth)
    for headers, transcription_id in ((other_auth, created["id"]), (auth, "tr_nope")):
        response = client.delete(f"{V1}/{transcription_id}", headers=headers)
        assert response.status_code == 404
    assert client.get(f"{V1}/{created['id']}", headers=auth).status_code == 200


def test_delete_frees_the_idempotency_key(client, auth, database):
    key = f"idem-{secrets.token_hex(6)}"
    created = create(client, auth, **{"Idempotency-Key": key})
    assert create(client, auth, **{"Idempotency-Key": key}) == created  # a replay

    assert client.delete(f"{V1}/{created['id']}", headers=auth).status_code == 200
    with database.session() as session:
        assert session.scalars(select(IdempotencyRecord)
                               .where(IdempotencyRecord.key == key)).all() == []
    again = create(client, auth, **{"Idempotency-Key": key})
    assert again["id"] != created["id"]  # a new transcription, not a replay of a gone one


def test_openapi_documents_cancel_and_delete(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"200", "404", "409"} <= set(paths[f"{V1}/{{transcription_id}}/cancel"]["post"]
                                        ["responses"])
    assert {"200", "404"} <= set(paths[f"{V1}/{{transcription_id}}"]["delete"]["responses"])


# --------------------------------------------------------------------------- end to end


def poll(client: Client, path: str, until, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(path).json()
        if until(body):
            return body
        time.sleep(0.05)
    raise TimeoutError(f"{path}: still {body.get('status')} after {timeout_s} s: {body}")


@pytest.fixture(scope="module")
def very_long_media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    """A 40-minute WAV (some 30 s of work for the tiny model), served on loopback: long
    enough that a worker which did not stop would keep the next job waiting."""
    from tests.conftest import write_repeated_wav

    folder = tmp_path_factory.mktemp("very-long")
    write_repeated_wav(FIXTURES / "sample.wav", folder / "forty-minutes.wav", times=80)
    with MediaServer(folder) as server:
        yield server


def test_cancel_a_running_job_stops_its_worker(stack_client: Client, very_long_media,
                                                media_server, stack):
    """Cancelled once its worker is transcribing, a long job stays cancelled at no cost, and
    the worker stops within seconds: its work folder is gone long before the job would have
    finished, and the next job runs (a worker may run several jobs at once, so the next job
    starting alone no longer shows that the cancelled one stopped)."""
    created = stack_client.post(V1, json={"source": "external_url", "url":
                                          very_long_media.url("forty-minutes.wav")}).json()
    path = f"{V1}/{created['id']}"
    running = poll(stack_client, path, lambda body: body["status"] == "processing"
                   and body["progress"] > 0, timeout_s=120)
    assert running["cost_usd"] is not None  # the worker knew the duration, and the cost
    assert running["progress"] < 0.5

    cancelled = stack_client.post(f"{path}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    cancelled_at = time.monotonic()

    following = stack_client.post(V1, json={"source": "external_url",
                                            "url": media_server.url("jfk.flac")}).json()
    poll(stack_client, f"{V1}/{following['id']}",
         lambda body: body["status"] != "queued", timeout_s=10)
    assert time.monotonic() - cancelled_at < 10

    final = stack_client.get(path).json()
    assert final["status"] == "cancelled" and final["error"]["code"] == "cancelled"
    assert final["cost_usd"] is None and final["result"] is None
    assert final["progress"] < 1.0
    quickstart = stack_client.get(f"{QUICKSTART}/{created['id']}").json()
    assert quickstart["status"] == "failed" and quickstart["cost_cents"] is None
    done = poll(stack_client, f"{V1}/{following['id']}",
                lambda body: body["status"] in ("completed", "failed"), timeout_s=120)
    assert done["status"] == "completed", done
    assert stack_client.get(path).json() == final  # the worker never wrote over it
    work_folder = stack.data_dir / "media" / "work" / created["id"]
    while work_folder.exists() and time.monotonic() - cancelled_at < 10:
        time.sleep(0.1)
    assert not work_folder.exists(), "the cancelled job's worker did not stop within 10 s"
