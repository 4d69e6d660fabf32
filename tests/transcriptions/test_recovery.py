"""The recovery passes (app/transcriptions/recovery.py) on real SQLite and PostgreSQL with a
real Redis: lost workers are noticed from their stamp, their jobs handed back once and then
failed, with no hold left; queued transcriptions whose job vanished from Redis are enqueued
again; and many processes running the passes at once enqueue each transcription exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select

from app.billing import wallet
from app.billing.audit import audit_wallets
from app.config import Recovery, Settings
from app.store.db import Database
from app.store.models import (
    DEFAULT_ACCOUNT_ID,
    Reservation,
    Transcription,
    WebhookDelivery,
    utcnow,
)
from app.transcriptions.queue import JobQueue
from app.transcriptions.recovery import (
    hand_back,
    reap_lost_jobs,
    recover,
    requeue_orphans,
    stamp_heartbeat,
)
from tests.billing.test_wallet_concurrency import run_at_once

USD = 1_000_000
LOST_AFTER = Recovery().worker_lost_after_s
LATER = timedelta(seconds=Recovery().requeue_after_s + 1)


@pytest.fixture
def queue(settings: Settings) -> JobQueue:
    return JobQueue(settings)


def create(client, auth: dict[str, str], **fields: Any) -> str:
    body = {"source": "external_url", "url": "http://127.0.0.1:9/a.mp3", **fields}
    response = client.post("/api/v1/transcriptions", json=body, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def take(database: Database, transcription_id: str, worker: str, stamped_s_ago: float,
         hold_micro_usd: int | None = None) -> None:
    """What a worker's claim does (and, with ``hold_micro_usd``, its reservation), stamped
    ``stamped_s_ago`` seconds ago."""
    with database.session() as session:
        row = session.get(Transcription, transcription_id)
        row.status, row.worker_name = "processing", worker
        row.started_at = row.heartbeat_at = utcnow() - timedelta(seconds=stamped_s_ago)
        if hold_micro_usd is not None:
            wallet.reserve(session, row.account_id, row.api_key_id, row.id, hold_micro_usd)


def queued_jobs(queue: JobQueue) -> list[str]:
    """Job ids waiting in the queue, in order."""
    return [item.decode() for item in queue.redis.lrange(queue.queue.key, 0, -1)]


def row(database: Database, transcription_id: str) -> Transcription:
    with database.session() as session:
        found = session.get(Transcription, transcription_id)
        assert found is not None
        return found


def held(database: Database) -> int:
    with database.session() as session:
        balances = wallet.balances(session, DEFAULT_ACCOUNT_ID)
        return balances.held


@pytest.fixture
def funded(database: Database) -> None:
    with database.session() as session:
        wallet.topup(session, DEFAULT_ACCOUNT_ID, 20 * USD)


# --------------------------------------------------------------------------- lost workers


def test_a_stale_job_is_handed_back_with_its_hold_released(client, auth, database, queue,
                                                          settings, funded):
    tid = create(client, auth)
    queue.queue.empty()  # the first job was taken by the worker that then died
    take(database, tid, "dead", stamped_s_ago=LOST_AFTER + 5, hold_micro_usd=2 * USD)
    assert held(database) == 2 * USD

    report = reap_lost_jobs(database, queue, settings)

    assert report.handed_back == [tid] and not report.failed
    again = row(database, tid)
    assert (again.status, again.worker_name, again.worker_losses) == ("queued", None, 1)
    assert queued_jobs(queue) == [again.queue_job_id]
    assert held(database) == 0  # nothing is held while it waits
    with database.session() as session:  # the retry reserves afresh
        assert session.get(Reservation, tid) is None
    assert audit_wallets(database).ok


def test_a_live_workers_job_is_left_alone(client, auth, database, queue, settings):
    tid = create(client, auth)
    take(database, tid, "alive", stamped_s_ago=LOST_AFTER - 10)
    assert reap_lost_jobs(database, queue, settings).total == 0
    assert row(database, tid).status == "processing"
    # A stamp keeps a job alive however long it has run (liveness is not the timeout).
    with database.session() as session:
        session.get(Transcription, tid).started_at = utcnow() - timedelta(hours=5)
    assert stamp_heartbeat(database, tid, "alive")
    assert reap_lost_jobs(database, queue, settings).total == 0
    assert not stamp_heartbeat(database, tid, "someone-else")  # the stamp is fenced


def test_a_worker_that_stamps_meanwhile_keeps_its_job(client, auth, database, queue):
    """The hand-back states the stamp it saw: a beat in between makes it match nothing."""
    tid = create(client, auth)
    take(database, tid, "slow", stamped_s_ago=LOST_AFTER + 5)
    seen = row(database, tid).heartbeat_at
    assert stamp_heartbeat(database, tid, "slow")
    assert hand_back(database, queue, tid, "slow", lost=True, seen_heartbeat=seen) is None
    assert row(database, tid).status == "processing"


def test_a_second_loss_fails_with_worker_lost_and_announces_it(client, auth, database, queue,
                                                               settings, funded):
    tid = create(client, auth, webhook_url="http://127.0.0.1:9/hook")
    take(database, tid, "dead", stamped_s_ago=LOST_AFTER + 5, hold_micro_usd=USD)
    assert reap_lost_jobs(database, queue, settings).handed_back == [tid]
    take(database, tid, "dead-too", stamped_s_ago=LOST_AFTER + 5, hold_micro_usd=USD)

    report = reap_lost_jobs(database, queue, settings)

    assert report.failed == [tid] and not report.handed_back
    final = row(database, tid)
    assert (final.status, final.error_code, final.worker_losses) == ("failed", "worker_lost", 2)
    assert held(database) == 0
    with database.session() as session:
        deliveries = session.scalars(select(WebhookDelivery)
                                     .where(WebhookDelivery.transcription_id == tid)).all()
        assert [d.event for d in deliveries] == ["transcription.failed"]
    assert audit_wallets(database).ok


def test_a_stopping_worker_hands_back_without_a_loss(client, auth, database, queue):
    tid = create(client, auth)
    take(database, tid, "stopping", stamped_s_ago=0)
    assert hand_back(database, queue, tid, "someone-else", lost=False) is None  # fenced
    assert hand_back(database, queue, tid, "stopping", lost=False) == "queued"
    again = row(database, tid)
    assert (again.status, again.worker_losses) == ("queued", 0)
    assert again.queue_job_id in queued_jobs(queue)


def test_a_retried_job_is_charged_once(client, auth, database, queue, settings, funded):
    """Hand back, reserve again, complete: one charge, as held by the second attempt."""
    tid = create(client, auth)
    take(database, tid, "dead", stamped_s_ago=LOST_AFTER + 5, hold_micro_usd=3 * USD)
    reap_lost_jobs(database, queue, settings)
    take(database, tid, "second", stamped_s_ago=0, hold_micro_usd=3 * USD)
    with database.session() as session:
        assert wallet.charge(session, tid) == 3 * USD
        assert wallet.charge(session, tid) == 0
    with database.session() as session:
        balances = wallet.balances(session, DEFAULT_ACCOUNT_ID)
    assert (balances.topup, balances.held) == (17 * USD, 0)
    assert audit_wallets(database).ok


# --------------------------------------------------------------------------- Redis loss


def test_queued_transcriptions_missing_from_redis_are_enqueued_again(client, auth, database,
                                                                     queue, settings):
    lost, kept, young = create(client, auth), create(client, auth), create(client, auth)
    Redis.from_url(settings.redis_url).delete(f"rq:job:{lost}")
    queue.redis.lrem(queue.queue.key, 0, lost)  # Redis lost this one
    with database.session() as session:  # only the young one was created just now
        for tid in (lost, kept):
            session.get(Transcription, tid).created_at = utcnow() - LATER

    report = requeue_orphans(database, queue, settings)

    assert report.requeued == [lost]
    retry = row(database, lost).queue_job_id
    assert retry is not None and queued_jobs(queue) == [kept, young, retry]
    assert requeue_orphans(database, queue, settings).total == 0  # now it is live
    # A worker that took a job and died before claiming the row: started long ago.
    queue.redis.lrem(queue.queue.key, 0, kept)
    queue.redis.hset(f"rq:job:{kept}", mapping={
        "status": "started", "started_at": (utcnow() - LATER).strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    assert requeue_orphans(database, queue, settings).requeued == [kept]


def test_redis_unreachable_requeues_nothing(client, auth, database, settings):
    tid = create(client, auth)
    nowhere = JobQueue(settings.with_overrides(redis_url="redis://127.0.0.1:9/0"))
    with pytest.raises(Exception):  # noqa: B017 - whatever redis-py raises
        requeue_orphans(database, nowhere, settings, now=utcnow() + LATER)
    assert row(database, tid).queue_job_id is None


# --------------------------------------------------------------------------- concurrency

RACERS = 8


def test_racing_reconcilers_enqueue_each_transcription_once(client, auth, database, queue,
                                                            settings, database_url):
    ids = [create(client, auth) for _ in range(12)]
    queue.queue.empty()  # Redis came back empty
    now = utcnow() + LATER

    def reconcile(_index: int, own: Database, barrier: threading.Barrier) -> list[str]:
        own_queue = JobQueue(settings)
        barrier.wait()
        return requeue_orphans(own, own_queue, settings, now=now).requeued

    requeued = [tid for result in run_at_once(RACERS, reconcile, database_url)
                for tid in result]

    assert sorted(requeued) == sorted(ids)
    per_transcription = Counter(job.rsplit("-", 1)[0] for job in queued_jobs(queue))
    assert per_transcription == dict.fromkeys(ids, 1)


def test_racing_reapers_hand_each_lost_job_back_once(client, auth, database, queue, settings,
                                                     database_url, funded):
    ids = [create(client, auth) for _ in range(8)]
    queue.queue.empty()
    for tid in ids:
        take(database, tid, "dead", stamped_s_ago=LOST_AFTER + 5, hold_micro_usd=USD)

    def reap(_index: int, own: Database, barrier: threading.Barrier) -> list[str]:
        own_queue = JobQueue(settings)
        barrier.wait()
        return recover(own, own_queue, settings).handed_back

    handed = [tid for result in run_at_once(RACERS, reap, database_url) for tid in result]

    assert sorted(handed) == sorted(ids)
    assert Counter(job.rsplit("-", 1)[0] for job in queued_jobs(queue)) == dict.fromkeys(ids, 1)
    assert all(row(database, tid).worker_losses == 1 for tid in ids)
    assert held(database) == 0 and audit_wallets(database).ok
