"""Webhook delivery: real receivers on loopback, the real dispatcher on SQLite and PostgreSQL.

The back-off is never slept through: :meth:`Dispatcher.run_once` takes the time as an
argument, and the tests step it past each ``next_attempt_at``.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.config import Settings, WebhookSettings
from app.ops.embedded_redis import free_port
from app.store.db import Database
from app.store.models import (
    DEFAULT_ACCOUNT_ID,
    Account,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    new_id,
    utcnow,
)
from app.webhooks.doorbell import ring_doorbell
from app.webhooks.signing import new_secret
from tests.support.listeners import Listener
from tests.support.receivers import Receiver, Reply
from tests.support.stack import REPO, Stack
from worker.media.fetch import FetchPolicy
from worker.webhooks.delivery import (
    EXCERPT_BYTES,
    RETRY_AFTER_CAP_S,
    AttemptResult,
    Outcome,
    attempt,
    classify,
    next_delay,
    parse_retry_after,
)
from worker.webhooks.dispatcher import Dispatcher

BODY = '{"id":"tr_1","status":"completed","text":"Ask not — ☃"}'
QUERY = "?sig=a%2Fb&x=1&x=2&empty=&plus=a+b&%7E=~"


# --------------------------------------------------------------------------- the policy


@pytest.mark.parametrize(("result", "outcome"), [
    (AttemptResult(200, 5, None), Outcome.DELIVERED),
    (AttemptResult(204, 5, None), Outcome.DELIVERED),
    (AttemptResult(None, 5, "connection refused"), Outcome.RETRY),
    (AttemptResult(None, 10_000, "timeout"), Outcome.RETRY),
    (AttemptResult(500, 5, "HTTP 500"), Outcome.RETRY),
    (AttemptResult(503, 5, "HTTP 503"), Outcome.RETRY),
    (AttemptResult(408, 5, "HTTP 408"), Outcome.RETRY),
    (AttemptResult(429, 5, "HTTP 429"), Outcome.RETRY),
    (AttemptResult(400, 5, "HTTP 400"), Outcome.STOP),
    (AttemptResult(404, 5, "HTTP 404"), Outcome.STOP),
    (AttemptResult(410, 5, "HTTP 410"), Outcome.STOP),
    (AttemptResult(301, 5, "HTTP 301"), Outcome.STOP),
    (AttemptResult(None, 0, "refused", refused=True), Outcome.STOP),
])
def test_classify(result, outcome):
    assert classify(result) is outcome


def test_next_delay_follows_the_schedule_with_jitter_and_then_gives_up():
    schedule = (5.0, 300.0, 1800.0)
    assert [next_delay(n, schedule, 0.0) for n in (1, 2, 3, 4)] == [5.0, 300.0, 1800.0, None]
    rng = random.Random(7)
    spread = [next_delay(2, schedule, 0.1, rng=rng) for _ in range(200)]
    assert all(270.0 <= delay <= 330.0 for delay in spread)
    assert len(set(spread)) > 100  # spread, not one value


def test_retry_after_raises_the_delay_up_to_a_cap():
    assert next_delay(1, (5.0, 60.0), 0.0, retry_after_s=120.0) == 120.0
    assert next_delay(2, (5.0, 60.0), 0.0, retry_after_s=1.0) == 60.0  # never shortens
    assert next_delay(1, (5.0,), 0.0, retry_after_s=10 * 86400.0) == RETRY_AFTER_CAP_S
    assert next_delay(2, (5.0,), 0.0, retry_after_s=30.0) is None  # exhausted all the same


def test_parse_retry_after():
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True),
                             now) == 90.0
    assert parse_retry_after("Sat, 21 Nov 2026 11:00:00 GMT", now) == 0.0  # in the past
    for unreadable in (None, "", "soon", "-5", "1.5e3", "Sat, 99 Foo 2026"):
        assert parse_retry_after(unreadable, now) is None


@dataclass(frozen=True)
class Message:
    id: str
    url: str
    body: str = BODY


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "http:///hook",
                                 "http://127.0.0.1:99999/hook", "http://127.0.0.1:x/hook"])
def test_a_url_that_cannot_be_a_webhook_is_refused_without_a_request(url):
    result = attempt(Message("msg_1", url), [new_secret()], FetchPolicy(), timeout_s=1.0)
    assert result.refused and result.status_code is None
    assert classify(result) is Outcome.STOP
    assert result.error.startswith("refused: a webhook URL must be http or https")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def dispatchers(settings: Settings, database: Database):
    """Build dispatchers on the test database with a short schedule and no jitter."""
    made: list[Dispatcher] = []

    def make(schedule: tuple[float, ...] = (60.0, 120.0), timeout_s: float = 2.0,
             threads: int = 4, **options) -> Dispatcher:
        webhooks = WebhookSettings(retry_schedule_s=schedule, jitter=0.0, timeout_s=timeout_s)
        dispatcher = Dispatcher(replace(settings, webhooks=webhooks), database,
                                threads=threads, **options)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()


def add_delivery(database: Database, url: str, due: datetime, body: str = BODY,
                 endpoint_id: str | None = None) -> str:
    delivery_id = new_id("msg")
    with database.session() as session:
        session.add(WebhookDelivery(
            id=delivery_id, account_id=DEFAULT_ACCOUNT_ID, transcription_id=new_id("tr"),
            endpoint_id=endpoint_id, url=url, event="transcription.completed", body=body,
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=due, created_at=due))
    return delivery_id


def delivery(database: Database, delivery_id: str) -> WebhookDelivery:
    with database.session() as session:
        return session.get(WebhookDelivery, delivery_id)


def attempts(database: Database, delivery_id: str) -> list[WebhookAttempt]:
    with database.session() as session:
        return list(session.scalars(select(WebhookAttempt)
                                    .where(WebhookAttempt.delivery_id == delivery_id)
                                    .order_by(WebhookAttempt.id)))


def aware(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def account_secret(database: Database) -> str:
    with database.session() as session:
        return session.get(Account, DEFAULT_ACCOUNT_ID).webhook_secret


# --------------------------------------------------------------------------- deliveries


def test_500_then_200_two_signed_attempts_with_one_id_after_the_back_off(database,
                                                                         dispatchers):
    dispatcher = dispatchers(schedule=(60.0, 120.0))
    start = utcnow()
    with Receiver(Reply(500, b"oops"), Reply(200, b"thanks")) as receiver:
        delivery_id = add_delivery(database, receiver.url("/hooks/voxhook"), start)
        assert dispatcher.run_once(start) == 1
        first = delivery(database, delivery_id)
        assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 500)
        assert aware(first.next_attempt_at) == start + timedelta(seconds=60)
        assert first.leased_until is None

        assert dispatcher.run_once(start + timedelta(seconds=59)) == 0  # not yet due
        assert len(receiver.requests) == 1
        assert dispatcher.run_once(start + timedelta(seconds=60)) == 1
        assert dispatcher.run_once(start + timedelta(days=2)) == 0  # delivered: done

    done = delivery(database, delivery_id)
    assert (done.status, done.attempts, done.last_status_code) == ("delivered", 2, 200)
    assert aware(done.delivered_at) == start + timedelta(seconds=60)
    assert done.last_error is None and done.next_attempt_at is None
    records = attempts(database, delivery_id)
    assert [(a.status_code, a.error) for a in records] == [
        (500, "HTTP 500 Internal Server Error"), (200, None)]
    assert [aware(a.next_attempt_at) for a in records] == [start + timedelta(seconds=60), None]
    assert [a.response_excerpt for a in records] == ["oops", "thanks"]
    assert all(a.latency_ms >= 0 for a in records)

    secret = account_secret(database)
    assert secret.startswith("whsec_")  # made on first use
    sent = receiver.requests
    assert [r.method for r in sent] == ["POST", "POST"]
    assert [r.headers["webhook-id"] for r in sent] == [delivery_id, delivery_id]
    assert [int(r.headers["webhook-timestamp"]) for r in sent] == [
        int(start.timestamp()), int(start.timestamp()) + 60]
    for request in sent:
        assert request.body == BODY.encode()
        assert request.headers["content-type"] == "application/json"
        assert request.headers["content-length"] == str(len(BODY.encode()))
        assert Webhook(secret).verify(request.body, request.headers)["id"] == "tr_1"


def test_410_is_one_attempt_then_never_again(database, dispatchers):
    dispatcher = dispatchers()
    start = utcnow()
    with Receiver(Reply(410, b"gone")) as receiver:
        delivery_id = add_delivery(database, receiver.url(), start)
        assert dispatcher.run_once(start) == 1
        for later in (timedelta(seconds=60), timedelta(hours=1), timedelta(days=3)):
            assert dispatcher.run_once(start + later) == 0
    assert len(receiver.requests) == 1
    stopped = delivery(database, delivery_id)
    assert (stopped.status, stopped.attempts, stopped.next_attempt_at) == ("failed", 1, None)
    assert stopped.last_error == "not retried: HTTP 410 Gone"
    assert attempts(database, delivery_id)[0].next_attempt_at is None


def test_a_redirect_is_not_followed_and_stops(database, dispatchers):
    dispatcher = dispatchers()
    start = utcnow()
    with Receiver(Reply(200)) as target, \
            Receiver(Reply(308, headers={"Location": target.url()})) as receiver:
        delivery_id = add_delivery(database, receiver.url(), start)
        assert dispatcher.run_once(start) == 1
    assert target.requests == []
    stopped = delivery(database, delivery_id)
    assert stopped.status == "failed" and stopped.last_status_code == 308
    assert "do not follow redirects" in stopped.last_error


def test_a_receiver_slower_than_the_timeout_is_cut_off_and_retried(database, dispatchers):
    dispatcher = dispatchers(timeout_s=1.0)
    start = utcnow()
    with Receiver(Reply(200, delay_s=30), Reply(200)) as receiver:
        delivery_id = add_delivery(database, receiver.url(), start)
        began = time.monotonic()
        assert dispatcher.run_once(start) == 1
        assert time.monotonic() - began < 5
        first = attempts(database, delivery_id)[0]
        assert first.status_code is None
        assert first.error == "timeout: 127.0.0.1 did not answer within 1 s"
        assert 900 <= first.latency_ms < 5000
        waiting = delivery(database, delivery_id)
        assert waiting.status == "pending" and waiting.last_error == first.error
        assert dispatcher.run_once(start + timedelta(seconds=60)) == 1
    assert delivery(database, delivery_id).status == "delivered"
    assert len(receiver.requests) == 2


def test_429_with_retry_after_is_honoured_over_a_shorter_schedule(database, dispatchers):
    dispatcher = dispatchers(schedule=(5.0, 10.0))
    start = utcnow()
    with Receiver(Reply(429, headers={"Retry-After": "120"}), Reply(200)) as receiver:
        delivery_id = add_delivery(database, receiver.url(), start)
        assert dispatcher.run_once(start) == 1
        waiting = delivery(database, delivery_id)
        assert aware(waiting.next_attempt_at) == start + timedelta(seconds=120)
        assert waiting.last_error == "HTTP 429 Too Many Requests"
        assert dispatcher.run_once(start + timedelta(seconds=10)) == 0  # the schedule's time
        assert dispatcher.run_once(start + timedelta(seconds=120)) == 1
    assert delivery(database, delivery_id).status == "delivered"


def test_an_exhausted_schedule_fails_the_delivery(database, dispatchers):
    dispatcher = dispatchers(schedule=(60.0,))
    start = utcnow()
    with Receiver(Reply(503)) as receiver:
        delivery_id = add_delivery(database, receiver.url(), start)
        assert dispatcher.run_once(start) == 1
        assert dispatcher.run_once(start + timedelta(seconds=60)) == 1
        assert dispatcher.run_once(start + timedelta(days=3)) == 0
    assert len(receiver.requests) == 2
    failed = delivery(database, delivery_id)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 2, None)
    assert failed.last_error == "gave up after 2 attempts: HTTP 503 Service Unavailable"


def test_a_refused_address_is_never_connected_to(database, dispatchers):
    """127.0.0.2 is loopback and only 127.0.0.1 is allowlisted: refused at delivery time."""
    dispatcher = dispatchers()
    start = utcnow()
    with Listener("127.0.0.2") as trap:
        delivery_id = add_delivery(database, trap.url("/hook"), start)
        assert dispatcher.run_once(start) == 1
        assert dispatcher.run_once(start + timedelta(days=2)) == 0
        time.sleep(0.2)  # a connection, had one been made, would be counted by now
    assert trap.connections == 0
    refused = delivery(database, delivery_id)
    assert refused.status == "failed" and refused.last_status_code is None
    assert refused.last_error.startswith("not retried: refused: The URL was refused")
    assert "127.0.0.2 is loopback" in refused.last_error
    assert len(attempts(database, delivery_id)) == 1


def test_an_unreachable_receiver_is_retried(database, dispatchers):
    dispatcher = dispatchers()
    start = utcnow()
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    delivery_id = add_delivery(database, url, start)
    assert dispatcher.run_once(start) == 1
    waiting = delivery(database, delivery_id)
    assert waiting.status == "pending" and waiting.last_status_code is None
    assert waiting.last_error.startswith("Could not connect to 127.0.0.1")


def test_only_a_bounded_excerpt_of_a_huge_answer_is_read(database, dispatchers):
    dispatcher = dispatchers()
    start = utcnow()
    huge = b"\0" + b"x" * (10 * 1024 * 1024)
    with Receiver(Reply(200, huge)) as receiver:
        delivery_id = add_delivery(database, receiver.url(), start)
        began = time.monotonic()
        assert dispatcher.run_once(start) == 1
        assert time.monotonic() - began < 1.5
    record = attempts(database, delivery_id)[0]
    assert record.status_code == 200
    assert len(record.response_excerpt.encode()) <= EXCERPT_BYTES + 2  # NUL shown as U+FFFD
    assert record.response_excerpt.startswith("\ufffdxxx")
    assert delivery(database, delivery_id).status == "delivered"


def test_the_query_string_arrives_byte_for_byte(database, dispatchers):
    dispatcher = dispatchers()
    start = utcnow()
    with Receiver() as receiver:
        add_delivery(database, receiver.url("/in/hook" + QUERY), start)
        assert dispatcher.run_once(start) == 1
    assert receiver.requests[0].target == "/in/hook" + QUERY


def test_during_a_rotation_both_secrets_sign(database, dispatchers):
    dispatcher = dispatchers()
    start = utcnow()
    current, previous = new_secret(), new_secret()
    with database.session() as session:
        account = session.get(Account, DEFAULT_ACCOUNT_ID)
        account.webhook_secret, account.webhook_secret_previous = current, previous
        account.webhook_secret_previous_until = start + timedelta(hours=1)
    with Receiver() as receiver:
        add_delivery(database, receiver.url(), start)
        add_delivery(database, receiver.url(), start + timedelta(hours=2))
        assert dispatcher.run_once(start) == 1
        assert dispatcher.run_once(start + timedelta(hours=2)) == 1
    during, after = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    during_headers = dict(during.headers)
    for secret in (current, previous):
        Webhook(secret).verify(during.body, during_headers)


def test_a_delivery_to_a_deleted_endpoint_is_not_sent(database, dispatchers):
    dispatcher = dispatchers()
    start = utcnow()
    with database.session() as session:
        session.add(WebhookEndpoint(id="we_gone", account_id=DEFAULT_ACCOUNT_ID, url="x",
                                    events=["transcription.completed"], deleted_at=start))
    with Receiver() as receiver:
        delivery_id = add_delivery(database, receiver.url(), start, endpoint_id="we_gone")
        assert dispatcher.run_once(start) == 1
    assert receiver.requests == []
    gone = delivery(database, delivery_id)
    assert gone.status == "failed"
    assert gone.last_error == "not sent: the webhook endpoint was deleted"


def test_a_leased_delivery_waits_for_its_lease_to_run_out(database, dispatchers):
    """Another dispatcher holds it (or held it and died): taken only after the lease."""
    dispatcher = dispatchers()
    start = utcnow()
    with Receiver() as receiver:
        delivery_id = add_delivery(database, receiver.url(), start)
        with database.session() as session:
            session.get(WebhookDelivery, delivery_id).leased_until = start + timedelta(seconds=70)
        assert dispatcher.run_once(start) == 0
        assert dispatcher.run_once(start + timedelta(seconds=71)) == 1
    assert len(receiver.requests) == 1


def test_two_dispatchers_at_once_never_send_a_delivery_twice(database, dispatchers):
    first, second = dispatchers(threads=4), dispatchers(threads=4)
    start = utcnow()
    with Receiver(Reply(200, delay_s=0.05)) as receiver:
        ids = {add_delivery(database, receiver.url(), start) for _ in range(24)}
        counts: list[int] = []
        barrier = threading.Barrier(2)

        def run(dispatcher: Dispatcher) -> None:
            barrier.wait()
            counts.append(dispatcher.run_once(start))

        threads = [threading.Thread(target=run, args=(d,)) for d in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert sum(counts) == 24
    sent = receiver.by_id()
    assert set(sent) == ids and all(len(requests) == 1 for requests in sent.values())
    with database.session() as session:
        statuses = session.scalars(select(WebhookDelivery.status)
                                   .where(WebhookDelivery.id.in_(ids))).all()
        records = session.scalars(select(WebhookAttempt)
                                  .where(WebhookAttempt.delivery_id.in_(ids))).all()
    assert statuses == ["delivered"] * 24 and len(records) == 24


# --------------------------------------------------------------------------- the process


def test_the_doorbell_wakes_a_waiting_dispatcher_at_once(settings, database, dispatchers,
                                                         redis_server):
    from redis import Redis

    redis = Redis.from_url(redis_server.url)
    dispatcher = dispatchers(redis=redis, poll_interval_s=30.0)  # the poll would take 30 s
    runner = threading.Thread(target=dispatcher.run_forever)
    with Receiver() as receiver:
        runner.start()
        time.sleep(0.3)  # let it look once, find nothing, and wait on the bell
        add_delivery(database, receiver.url(), utcnow())
        ring_doorbell(redis, settings)
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(receiver.requests) == 1
        dispatcher.stop()
        ring_doorbell(redis, settings)  # end the wait now rather than in 30 s
        runner.join(10)
    assert not runner.is_alive()


def test_the_webhook_worker_command_sends_retries_and_stops_on_sigterm(settings, database,
                                                                       tmp_path):
    stack = Stack(data_dir=tmp_path / "stack", database_url=settings.database_url,
                  redis_url=settings.redis_url, pipelines_path=settings.pipelines_path,
                  queue=settings.queue_name,
                  extra_env={"VOXHOOK_WEBHOOK_RETRY_SCHEDULE": "0.2,0.4",
                             "VOXHOOK_WEBHOOK_JITTER": "0"})
    with Receiver(Reply(500), Reply(502), Reply(200)) as receiver:
        delivery_id = add_delivery(database, receiver.url("/hook" + QUERY), utcnow())
        process = stack.start_webhook_worker()
        try:
            deadline = time.monotonic() + 20
            while delivery(database, delivery_id).status == "pending":
                assert time.monotonic() < deadline, stack.log("webhooks")
                assert process.poll() is None, stack.log("webhooks")
                time.sleep(0.05)
        finally:
            stack.stop()
    assert process.returncode == 0, stack.log("webhooks")
    done = delivery(database, delivery_id)
    assert (done.status, done.attempts) == ("delivered", 3)
    sent = receiver.requests
    assert [r.headers["webhook-id"] for r in sent] == [delivery_id] * 3
    assert sent[2].at - sent[1].at >= 0.4 - 0.05 and sent[1].at - sent[0].at >= 0.2 - 0.05
    log = stack.log("webhooks")
    assert "webhook worker stopped" in log
    assert account_secret(database) not in log and "sig=" not in log  # nothing secret logged


def test_the_dispatcher_loads_no_speech_stack():
    heavy = ("torch", "faster_whisper", "pyannote", "ctranslate2", "onnxruntime", "av")
    code = ("import sys, worker.webhooks.dispatcher; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
