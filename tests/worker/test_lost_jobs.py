"""A transcription whose worker dies mid-job is retried once, then failed: never stuck."""

from __future__ import annotations

import pytest
from redis import Redis
from rq.exceptions import AbandonedJobError
from rq.job import Job

from app.store.models import Transcription
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


def test_lost_job_is_retried_once_then_failed(client, api_key, settings, database):
    created = client.post("/transcribe", json={"url": "http://127.0.0.1:9/a.mp3"},
                          headers={"Authorization": api_key}).get_json()
    job = Job.fetch(created["id"], connection=Redis.from_url(settings.redis_url))
    assert job.retries_left == 1  # enqueued with one retry for lost workers
    assert job.failure_callback is on_job_failure  # resolved from the dotted path

    on_job_failure(job, None, AbandonedJobError, AbandonedJobError(), None)
    with database.session() as session:
        assert session.get(Transcription, created["id"]).status == "queued"  # will retry

    job.retries_left = 0
    on_job_failure(job, None, AbandonedJobError, AbandonedJobError(), None)
    polled = client.get(f"/transcribe/{created['id']}",
                        headers={"Authorization": api_key}).get_json()
    assert polled["status"] == "failed" and polled["error_code"] == "worker_lost"
    assert "send the request again" in polled["error"]


def test_failure_callback_leaves_a_finished_transcription_alone(client, api_key, settings,
                                                                 database):
    created = client.post("/transcribe", json={"url": "http://127.0.0.1:9/a.mp3"},
                          headers={"Authorization": api_key}).get_json()
    with database.session() as session:
        row = session.get(Transcription, created["id"])
        row.status, row.error_code, row.error_message = "failed", "not_audio", "not audio"
    job = Job.fetch(created["id"], connection=Redis.from_url(settings.redis_url))
    job.retries_left = 0
    on_job_failure(job, None, RuntimeError, RuntimeError(), None)
    with database.session() as session:
        assert session.get(Transcription, created["id"]).error_code == "not_audio"
