"""A transcription whose worker dies mid-job is retried once, then failed: never stuck.

RQ reports a dead worker's job through the failure callback only once the job's timeout has
run out; the callback defers to ``app.transcriptions.recovery``, which decides from the worker's
stamp in
the database (see tests/test_recovery.py for the passes themselves)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis
from rq.exceptions import AbandonedJobError, NoSuchJobError
from rq.job import Job

from app.store.models import Transcription, utcnow
from app.transcriptions.pipelines import load_catalog
from worker.jobs import WorkerContext, install_context, on_job_failure
from worker.media.store import MediaStore
from worker.speech.model_cache import ModelCache


@pytest.fixture(autouse=True)
def worker_context(settings, database):
    """What `voxhook worker` installs before taking jobs (no model is loaded here)."""
    catalog = load_catalog(settings)
    install_context(WorkerContext(settings=settings, db=database, catalog=catalog,
                                  models=ModelCache(catalog),
                                  media=MediaStore.from_settings(settings),
                                  worker_name="test"))
    yield
    install_context(None)


def processing(database, transcription_id: str, worker: str, stamped_s_ago: float) -> None:
    """Make the row look taken by ``worker``, which last stamped it that long ago."""
    with database.session() as session:
        row = session.get(Transcription, transcription_id)
        row.status, row.worker_name = "processing", worker
        row.started_at = row.heartbeat_at = utcnow() - timedelta(seconds=stamped_s_ago)


def test_lost_job_is_retried_once_then_failed(client, api_key, settings, database):
    created = client.post("/transcribe", json={"url": "http://127.0.0.1:9/a.mp3"},
                          headers={"Authorization": api_key}).get_json()
    redis = Redis.from_url(settings.redis_url)
    job = Job.fetch(created["id"], connection=redis)
    assert job.failure_callback is on_job_failure  # resolved from the dotted path
    assert not job.retries_left  # RQ does not retry it: the database counts the losses

    processing(database, created["id"], "dead-worker", stamped_s_ago=3600)
    on_job_failure(job, redis, AbandonedJobError, AbandonedJobError(), None)
    with database.session() as session:
        row = session.get(Transcription, created["id"])
        assert (row.status, row.worker_losses, row.worker_name) == ("queued", 1, None)
        retry_job = row.queue_job_id
    assert retry_job and retry_job.startswith(created["id"] + "-")
    assert Job.fetch(retry_job, connection=redis).args == (created["id"],)
    with pytest.raises(NoSuchJobError):  # the lost job's record is gone from Redis
        Job.fetch(created["id"], connection=redis)

    processing(database, created["id"], "dead-again", stamped_s_ago=3600)
    on_job_failure(Job.fetch(retry_job, connection=redis), redis, AbandonedJobError,
                   AbandonedJobError(), None)
    polled = client.get(f"/transcribe/{created['id']}",
                        headers={"Authorization": api_key}).get_json()
    assert polled["status"] == "failed" and polled["error_code"] == "worker_lost"
    assert "send the request again" in polled["error"]


def test_failure_callback_leaves_a_live_workers_job_alone(client, api_key, settings,
                                                          database):
    """RQ may report a job abandoned while its transcription runs on a live worker (a
    retry under the same id, a slow beat): the stamp says alive, so nothing changes."""
    created = client.post("/transcribe", json={"url": "http://127.0.0.1:9/a.mp3"},
                          headers={"Authorization": api_key}).get_json()
    redis = Redis.from_url(settings.redis_url)
    processing(database, created["id"], "alive", stamped_s_ago=1)
    on_job_failure(Job.fetch(created["id"], connection=redis), redis, AbandonedJobError,
                   AbandonedJobError(), None)
    with database.session() as session:
        row = session.get(Transcription, created["id"])
        assert (row.status, row.worker_name, row.worker_losses) == ("processing", "alive", 0)


def test_failure_callback_leaves_a_finished_transcription_alone(client, api_key, settings,
                                                                 database):
    created = client.post("/transcribe", json={"url": "http://127.0.0.1:9/a.mp3"},
                          headers={"Authorization": api_key}).get_json()
    with database.session() as session:
        row = session.get(Transcription, created["id"])
        row.status, row.error_code, row.error_message = "failed", "not_audio", "not audio"
    job = Job.fetch(created["id"], connection=Redis.from_url(settings.redis_url))
    on_job_failure(job, None, RuntimeError, RuntimeError(), None)
    with database.session() as session:
        assert session.get(Transcription, created["id"]).error_code == "not_audio"
