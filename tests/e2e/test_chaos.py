"""Chaos: the real processes (gunicorn API, RQ workers, webhook worker, redis-server) are
killed the way an operator's bad day kills them, and every transcription still ends, once,
with the money right.

Each test runs its own stack and its own Redis on a fixed port (so it can be killed and
started again on the same address), with billing on and a topped-up account, and checks at
the end: every transcription is final, ``voxhook wallet audit`` exits 0, nothing is held,
and no transcription is charged more than once. The liveness windows are shortened through
the settings (VOXHOOK_WORKER_HEARTBEAT_S, …) except in the test that runs the production
defaults, where a killed worker's job must still be done within 60 s.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from app.ops.embedded_redis import EmbeddedRedis, free_port
from app.store.db import Database
from app.store.models import LedgerEntry, Reservation, Transcription, WebhookDelivery
from tests.ops.test_serve import _children
from tests.support.listeners import Behaviour, Listener, respond, trickle_body
from tests.support.paths import FIXTURES
from tests.support.receivers import Receiver, Reply
from tests.support.stack import REPO, Client, Stack
from worker.stage_holds import hold_path

#: Liveness shortened for tests: a beat a second, dead after 3 s, passes every second.
FAST = {"VOXHOOK_WORKER_HEARTBEAT_S": "1", "VOXHOOK_WORKER_LOST_AFTER_S": "3",
        "VOXHOOK_RECONCILE_INTERVAL_S": "1", "VOXHOOK_REQUEUE_AFTER_S": "3"}
FINAL = ("completed", "failed", "cancelled")


class ChaosRedis:
    """A redis-server on a port of its own that a test can kill and start again there."""

    def __init__(self, folder: Path, persist: bool) -> None:
        self.folder, self.persist, self.port = folder, persist, free_port()
        self.server: EmbeddedRedis | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.server = EmbeddedRedis(self.folder, port=self.port, persist=self.persist).start()

    def signal(self, signum: int) -> None:
        assert self.server is not None and self.server.process is not None
        self.server.process.send_signal(signum)
        self.server.process.wait(20)
        self.server.process = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@contextmanager
def chaos_stack(tmp_path: Path, pipelines_file: Path, *, persist: bool = False,
                workers: int = 1, env: dict[str, str] | None = None
                ) -> Iterator[tuple[Stack, ChaosRedis, Client]]:
    """API + ``workers`` workers on SQLite and a killable Redis, billing on, the default
    account topped up with 50 USD; a client with a key of it."""
    redis = ChaosRedis(tmp_path / "redis", persist)
    redis.start()
    stack = Stack(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/db.sqlite",
                  redis_url=redis.url, pipelines_path=pipelines_file, api_workers=1,
                  extra_env={"VOXHOOK_BILLING": "on", **(env if env is not None else FAST)})
    try:
        stack.start_api()
        for number in range(workers):
            stack.start_worker(f"worker-{number}")
        if workers:
            stack.wait_ready(timeout_s=120)
        stack.cli("wallet", "topup", "acct_default", "--usd", "50.00")
        yield stack, redis, Client(stack.base_url, stack.create_key())
    finally:
        stack.stop()
        redis.stop()


def create(client: Client, url: str, **fields: Any) -> str:
    response = client.post("/api/v1/transcriptions",
                           json={"source": "external_url", "url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_until(probe: Any, timeout_s: float, what: str, stack: Stack | None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    logs = "".join(stack.log(name)[-3000:] for name in ("worker-0", "worker-1", "webhooks")
                   ) if stack is not None else ""
    raise AssertionError(f"{what} not within {timeout_s} s\n{logs}")


def rows(stack: Stack, ids: list[str]) -> dict[str, Transcription]:
    database = Database(stack.database_url)
    try:
        with database.session() as session:
            return {row.id: row for row in session.scalars(
                select(Transcription).where(Transcription.id.in_(ids)))}
    finally:
        database.dispose()


def wait_all_final(stack: Stack, ids: list[str], timeout_s: float) -> dict[str, Transcription]:
    return wait_until(lambda: (found := rows(stack, ids)) and all(
        row.status in FINAL for row in found.values()) and found, timeout_s,
        f"all of {ids} final", stack)


def worker_pid(worker_name: str) -> int:
    """The pid in a worker's name (``host.pid.hex``; the host may contain dots)."""
    return int(worker_name.rsplit(".", 2)[1])


def assert_money_right(stack: Stack, ids: list[str]) -> None:
    """The audit passes, nothing is held, every completed job is charged exactly its cost
    once, and nothing else is charged."""
    audit = stack.cli("wallet", "audit", check=False)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    database = Database(stack.database_url)
    try:
        with database.session() as session:
            charges = dict(session.execute(
                select(LedgerEntry.transcription_id, func.count())
                .where(LedgerEntry.kind == "charge").group_by(LedgerEntry.transcription_id)
            ).all())
            held = session.scalar(select(func.count()).select_from(Reservation)
                                  .where(Reservation.status == "held"))
            statuses = {row.id: (row.status, row.cost_micro_usd) for row in session.scalars(
                select(Transcription).where(Transcription.id.in_(ids)))}
            charged = {r.transcription_id: r.amount_micro_usd for r in session.scalars(
                select(Reservation).where(Reservation.status == "charged"))}
    finally:
        database.dispose()
    assert held == 0
    assert all(count == 1 for count in charges.values()), charges  # one pocket each here
    for tid, (status, cost) in statuses.items():
        if status == "completed":
            assert charged.get(tid) == cost and cost, (tid, charged.get(tid), cost)
        else:
            assert tid not in charged


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) != 0


# --------------------------------------------------------------------------- workers


def kill_worker_mid_job(stack: Stack, client: Client, media_url: str, recover_within_s: float
                        ) -> None:
    """Hold a job in its transcription, kill -9 the worker that holds it, and see the other
    worker take it up within ``recover_within_s`` (the liveness window and the requeue: the
    hold keeps the transcription's own speed out of it); released, it completes, charged
    once."""
    names = ("worker-0", "worker-1")
    with stack.hold("asr"):
        tid = create(client, media_url)
        line = f"transcription {tid} held before stage asr"
        victim_log = wait_until(lambda: next(
            (name for name in names if line in stack.log(name)), None), 60,
            "the job held in its transcription", stack)
        victim = rows(stack, [tid])[tid].worker_name
        assert victim is not None and rows(stack, [tid])[tid].status == "processing"
        os.kill(worker_pid(victim), signal.SIGKILL)
        killed_at = time.monotonic()
        survivor_log = next(name for name in names if name != victim_log)
        wait_until(lambda: line in stack.log(survivor_log), recover_within_s,
                   "the other worker to take the job up", stack)
        recovered_in = time.monotonic() - killed_at
    done = wait_all_final(stack, [tid], 120)[tid]
    assert done.status == "completed", (done.error_code, done.error_message)
    assert done.worker_losses == 1 and done.worker_name != victim
    assert recovered_in <= recover_within_s
    assert_money_right(stack, [tid])
    print(f"job of a killed worker taken up {recovered_in:.1f} s after the kill")


def test_kill_9_worker_mid_job_is_retried_on_another(tmp_path, pipelines_file, media_server):
    with chaos_stack(tmp_path, pipelines_file, workers=2) as (stack, _redis, client):
        kill_worker_mid_job(stack, client, media_server.url("jfk.flac"), recover_within_s=60)


def test_kill_9_worker_at_production_defaults_recovers_within_60_s(tmp_path, pipelines_file,
                                                                    media_server):
    """No shortened windows: a 10 s beat, dead after 30 s, passes every 10 s."""
    with chaos_stack(tmp_path, pipelines_file, workers=2, env={}) as (stack, _redis, client):
        kill_worker_mid_job(stack, client, media_server.url("jfk.flac"), recover_within_s=60)


#: A stopping worker gives its job 1 s before it hands it back.
STOP_FAST = {**FAST, "VOXHOOK_WORKER_STOP_GRACE_S": "1"}


def row_of(stack: Stack, tid: str) -> tuple[Transcription, Reservation | None]:
    database = Database(stack.database_url)
    try:
        with database.session() as session:
            return session.get(Transcription, tid), session.get(Reservation, tid)
    finally:
        database.dispose()


def assert_handed_back(stack: Stack, tid: str, worker: str = "worker-0") -> None:
    """Queued again, not counted as a loss, nobody's, holding nothing, said in the log."""
    row, reservation = row_of(stack, tid)
    assert (row.status, row.worker_losses, row.worker_name, row.error_code) == (
        "queued", 0, None, None), (row.status, row.error_code, row.error_message,
                                   stack.log(worker)[-3000:])
    assert reservation is None  # nothing held while it waits
    assert f"transcription {tid} handed back to the queue" in stack.log(worker)


def stop_worker(stack: Stack, index: int = 1, worker: str = "worker-0") -> None:
    """SIGTERM the worker, which must exit 0 once its job is handed back."""
    process = stack.processes[index]
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0, stack.log(worker)[-3000:]


def complete_elsewhere(stack: Stack, tid: str, worker: str = "worker-1") -> Transcription:
    """A worker started now completes the transcription, charged once, no loss counted."""
    stack.start_worker(worker)
    done = wait_all_final(stack, [tid], 90)[tid]
    assert (done.status, done.worker_losses) == ("completed", 0), (
        done.error_code, done.error_message, stack.log(worker)[-3000:])
    assert_money_right(stack, [tid])
    return done


#: Each stage a job can be in when its worker is told to stop, with what the job needs to
#: reach it (diarization runs only when asked for).
STAGES_MID_JOB = [("fetch", {}), ("decode", {}), ("asr", {}), ("diarization", {"diarize": True}),
                  ("assembly", {})]


@pytest.mark.parametrize(("stage", "fields"), STAGES_MID_JOB, ids=[s for s, _ in STAGES_MID_JOB])
def test_sigterm_worker_mid_stage_hands_the_job_back(tmp_path, diarizing_pipelines_file,
                                                     media_server, stage, fields):
    """A worker told to stop while its job is in ``stage`` (held there, so the job cannot
    end within the 1 s grace however fast the machine) hands it back: queued again without
    counting as a loss, its hold released, the worker gone at once; a worker started later
    completes it, charged once."""
    with chaos_stack(tmp_path, diarizing_pipelines_file, env=STOP_FAST) as (stack, _, client):
        with stack.hold(stage):
            tid = create(client, media_server.url("jfk.flac"), **fields)
            stack.wait_held(tid, stage, "worker-0")
            stop_worker(stack)
        assert_handed_back(stack, tid)
        complete_elsewhere(stack, tid)


def test_sigterm_worker_before_store_leaves_the_handed_back_job_alone(
        tmp_path, pipelines_file, media_server):
    """Stopped with its result ready but not yet stored: the job is handed back when the
    grace ends, and the result that is then stored finds the row no longer this worker's
    (one conditional UPDATE is the fence), so it completes nothing and charges nothing;
    the next worker does both, once."""
    with chaos_stack(tmp_path, pipelines_file, env=STOP_FAST) as (stack, _redis, client):
        with stack.hold("store"):
            tid = create(client, media_server.url("jfk.flac"))
            stack.wait_held(tid, "store", "worker-0")
            stack.processes[1].send_signal(signal.SIGTERM)
            wait_until(lambda: row_of(stack, tid)[0].status == "queued", 30,
                       "the job handed back", stack)
        # Released: the held job tries to store its result, and must not.
        assert stack.processes[1].wait(20) == 0, stack.log("worker-0")[-3000:]
        assert_handed_back(stack, tid)
        complete_elsewhere(stack, tid)


def test_sigterm_worker_mid_upload_read_keeps_the_upload(tmp_path, pipelines_file):
    """An uploaded file's job handed back mid-transcription keeps its upload (the media of
    a job that ends is deleted; one that goes back to the queue needs it again)."""
    with chaos_stack(tmp_path, pipelines_file, env=STOP_FAST) as (stack, _redis, client):
        upload = client.post("/api/v1/uploads", json={"filename": "jfk.flac"}).json()
        assert requests.put(upload["upload_url"], data=(FIXTURES / "jfk.flac").read_bytes(),
                            timeout=30).status_code == 200
        with stack.hold("asr"):
            response = client.post("/api/v1/transcriptions",
                                   json={"source": "upload", "upload_id": upload["id"]})
            assert response.status_code == 201, response.text
            tid = response.json()["id"]
            stack.wait_held(tid, "asr", "worker-0")
            stop_worker(stack)
        assert_handed_back(stack, tid)
        complete_elsewhere(stack, tid)
        assert "media left for its next attempt" in stack.log("worker-0")


def first_stalls_then_serves(body: bytes) -> tuple[Behaviour, list[int]]:
    """A media host whose first connection is a slow-loris (headers, then a byte every
    0.1 s, never done) and every later one answers ``body``; and its connection count."""
    served: list[int] = []
    trickle, answer = trickle_body(0.1, declared=len(body)), respond(body, "audio/flac")

    def behave(connection: socket.socket, request: bytes, stop: threading.Event) -> None:
        served.append(1)
        (trickle if len(served) == 1 else answer)(connection, request, stop)
    return behave, served


def test_sigterm_worker_mid_slow_download_hands_the_job_back(tmp_path, pipelines_file):
    """Stopped while a slow-loris host trickles the media: the download is interrupted,
    and the job is handed back, not failed as ``fetch_failed``; the next attempt downloads
    it again and completes."""
    behaviour, served = first_stalls_then_serves((FIXTURES / "jfk.flac").read_bytes())
    with Listener(behaviour=behaviour) as host, \
            chaos_stack(tmp_path, pipelines_file, env=STOP_FAST) as (stack, _redis, client):
        tid = create(client, host.url("/jfk.flac"))
        wait_until(lambda: served, 60, "the download to begin", stack)
        stop_worker(stack)
        assert_handed_back(stack, tid)
        complete_elsewhere(stack, tid)
        assert len(served) == 2


def relay(target_port: int, stall_first: bool = True) -> tuple[Behaviour, list[int]]:
    """A TCP relay to 127.0.0.1:``target_port`` (one request per connection); with
    ``stall_first``, the first connection's response stops after its first 1,000 bytes
    and the connection stays open: a network that stalls mid-download."""
    relayed: list[int] = []

    def behave(connection: socket.socket, request: bytes, stop: threading.Event) -> None:
        relayed.append(1)
        line, rest = request.split(b"\r\n", 1)  # one request per connection, as said
        with socket.create_connection(("127.0.0.1", target_port), timeout=30) as upstream:
            upstream.sendall(line + b"\r\nConnection: close\r\n" + rest)
            response = b""
            while chunk := upstream.recv(65536):
                response += chunk
        if stall_first and len(relayed) == 1:
            connection.sendall(response[:1000])
            stop.wait(120)
            return
        connection.sendall(response)
    return behave, relayed


def test_sigterm_remote_worker_mid_upload_download_hands_the_job_back(tmp_path,
                                                                      pipelines_file):
    """A worker on another machine reads the upload through the API's signed internal URL;
    stopped while that download stalls, it hands the job back and leaves the upload in
    place, and the next worker downloads it again and completes."""
    shared = {**STOP_FAST, "VOXHOOK_SECRET_KEY": secrets.token_urlsafe(32)}
    with chaos_stack(tmp_path, pipelines_file, workers=0, env=shared) as (api, _redis, client):
        behaviour, relayed = relay(api.port)
        with Listener(behaviour=behaviour) as network:
            remote = Stack(data_dir=tmp_path / "worker-machine", database_url=api.database_url,
                           redis_url=api.redis_url, pipelines_path=pipelines_file,
                           queue=api.queue, port=api.port, allowlist="",
                           extra_env={**shared, "VOXHOOK_BILLING": "on",
                                      "VOXHOOK_INTERNAL_API_URL": network.url("")})
            try:
                upload = client.post("/api/v1/uploads", json={"filename": "jfk.flac"}).json()
                assert requests.put(upload["upload_url"],
                                    data=(FIXTURES / "jfk.flac").read_bytes(),
                                    timeout=30).status_code == 200
                remote.start_worker("worker-0")
                response = client.post("/api/v1/transcriptions",
                                       json={"source": "upload", "upload_id": upload["id"]})
                assert response.status_code == 201, response.text
                tid = response.json()["id"]
                wait_until(lambda: relayed, 120, "the upload's download to begin", remote)
                stop_worker(remote, index=0)
                assert_handed_back(remote, tid)
                complete_elsewhere(remote, tid)
                assert len(relayed) == 2
            finally:
                remote.stop()


def test_second_sigterm_stops_the_worker_at_once_and_loses_no_job(tmp_path, pipelines_file,
                                                                  media_server):
    """A second SIGTERM within a long grace (60 s) stops the worker at once; its job is
    handed back on the way out (or, were the database away, found by the recovery of lost
    jobs), and another worker completes it within 60 s, charged once."""
    env = {**FAST, "VOXHOOK_WORKER_STOP_GRACE_S": "60"}
    with chaos_stack(tmp_path, pipelines_file, env=env) as (stack, _redis, client):
        with stack.hold("asr"):
            tid = create(client, media_server.url("jfk.flac"))
            stack.wait_held(tid, "asr", "worker-0")
            worker = stack.processes[1]
            worker.send_signal(signal.SIGTERM)
            wait_until(lambda: "has 60 s to finish" in stack.log("worker-0"), 30,
                       "the warm stop to begin", stack)
            time.sleep(1.1)  # RQ takes a second signal within 1 s for the same stop
            worker.send_signal(signal.SIGTERM)
            worker.wait(20)  # well inside the 60 s grace
        stack.start_worker("worker-1")
        done = wait_all_final(stack, [tid], 60)[tid]
        assert done.status == "completed", (done.error_code, done.error_message)
        assert_money_right(stack, [tid])


def test_sigterm_api_and_webhook_worker_stop_and_free_the_port(tmp_path, pipelines_file):
    with chaos_stack(tmp_path, pipelines_file, workers=0) as (stack, _redis, _client):
        webhooks = stack.start_webhook_worker()
        wait_until(lambda: "webhook worker ready" in stack.log("webhooks"), 30,
                   "the webhook worker to start", stack)
        api = stack.processes[0]
        members = [api.pid, *_children(api.pid), webhooks.pid]
        for process in (api, webhooks):
            process.send_signal(signal.SIGTERM)  # the leader only, as Docker does
        assert api.wait(25) == 0 and webhooks.wait(15) == 0
        time.sleep(0.5)
        assert [pid for pid in members if Path(f"/proc/{pid}").exists()
                and "(zombie)" not in Path(f"/proc/{pid}/status").read_text()] == []
        assert port_free(stack.port)


# --------------------------------------------------------------------------- Redis


def test_kill_9_redis_without_persistence_every_queued_job_completes(tmp_path, pipelines_file,
                                                                     media_server):
    with chaos_stack(tmp_path, pipelines_file) as (stack, redis, client):
        ids = [create(client, media_server.url("jfk.flac")) for _ in range(8)]
        redis.signal(signal.SIGKILL)  # most are still queued: Redis forgets them
        time.sleep(2)
        redis.start()  # empty, on the same port
        done = wait_all_final(stack, ids, 120)
        assert [row.status for row in done.values()] == ["completed"] * len(ids), {
            tid: (row.status, row.error_code) for tid, row in done.items()}
        assert any(row.queue_job_id for row in done.values())  # some had to be enqueued again
        assert_money_right(stack, ids)


def test_sigterm_redis_mid_queue_with_persistence_loses_and_repeats_nothing(
        tmp_path, pipelines_file, media_server):
    """Redis stopped cleanly keeps its queue (append-only file): every job completes, and
    none was enqueued a second time (the reconciler saw them all live)."""
    with chaos_stack(tmp_path, pipelines_file, persist=True) as (stack, redis, client):
        ids = [create(client, media_server.url("jfk.flac")) for _ in range(6)]
        redis.signal(signal.SIGTERM)
        time.sleep(2)
        redis.start()
        done = wait_all_final(stack, ids, 120)
        assert [row.status for row in done.values()] == ["completed"] * len(ids)
        assert [row.queue_job_id for row in done.values()] == [None] * len(ids)
        assert_money_right(stack, ids)


# --------------------------------------------------------------------------- webhooks


def test_kill_9_webhook_worker_mid_delivery_still_delivers(tmp_path, pipelines_file,
                                                          media_server):
    """The receiver holds the first attempt open; the webhook worker is killed during it.
    A new webhook worker takes the delivery once the dead one's lease lapses: it arrives,
    with the same webhook-id and bytes, and is recorded delivered."""
    env = {**FAST, "VOXHOOK_WEBHOOK_TIMEOUT_S": "20", "VOXHOOK_WEBHOOK_LEASE_MARGIN_S": "1"}
    with Receiver(Reply(delay_s=30), Reply()) as receiver, \
            chaos_stack(tmp_path, pipelines_file, env=env) as (stack, _redis, client):
        first = stack.start_webhook_worker("webhooks")
        tid = create(client, media_server.url("jfk.flac"), webhook_url=receiver.url("/hook"))
        wait_until(lambda: receiver.requests, 60, "the first attempt to arrive", stack)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        stack.start_webhook_worker("webhooks-2")
        wait_until(lambda: len(receiver.requests) >= 2, 60, "the delivery again", stack)

        database = Database(stack.database_url)
        try:
            def delivered() -> WebhookDelivery | None:
                with database.session() as session:
                    found = session.scalars(select(WebhookDelivery).where(
                        WebhookDelivery.transcription_id == tid)).all()
                    return found[0] if len(found) == 1 and found[0].status == "delivered" \
                        else None
            delivery = wait_until(delivered, 30, "the delivery recorded delivered", stack)
        finally:
            database.dispose()
        assert list(receiver.by_id()) == [delivery.id]  # one webhook-id on every attempt
        assert len({request.body for request in receiver.requests}) == 1
        assert len(receiver.requests) == delivery.attempts + 1  # the killed one + recorded
        assert_money_right(stack, [tid])


# --------------------------------------------------------------------------- serve


def test_ctrl_c_serve_mid_job_leaves_no_process_and_a_free_port(tmp_path, pipelines_file,
                                                              media_server):
    """Ctrl-C while a job runs (held mid-way, so it cannot end first) and the API's master
    is frozen (so it cannot stop in time): serve kills every group, returns only when the
    port is free, and the job is back in the queue with nothing held."""
    port = free_port()
    env = {**os.environ, "VOXHOOK_DATA_DIR": str(tmp_path / "data"),
           "VOXHOOK_PIPELINES": str(pipelines_file), "VOXHOOK_FETCH_ALLOWLIST": "127.0.0.1",
           "VOXHOOK_API_WORKERS": "2", "HF_HUB_OFFLINE": "1", **FAST}
    for name in ("VOXHOOK_DATABASE_URL", "VOXHOOK_REDIS_URL"):
        env.pop(name, None)
    log = (tmp_path / "serve.log").open("w+")
    serve = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)],
                             env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                return requests.get(f"{base}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, 120, "serve to be ready", None)
        key = subprocess.run([sys.executable, "-m", "app", "keys", "create", "--name", "me"],
                             env=env, cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        client = Client(base, key)
        hold = hold_path(tmp_path / "data", "asr")  # the job is mid-way when Ctrl-C comes
        hold.parent.mkdir(parents=True, exist_ok=True)
        hold.touch()
        tid = create(client, media_server.url("jfk.flac"))
        wait_until(lambda: f"transcription {tid} held before stage asr"
                   in (tmp_path / "serve.log").read_text(), 60, "the job held mid-way", None)
        children = _children(serve.pid)
        masters = [pid for pid in children if "gunicorn" in _cmdline(pid)
                   and _parent(pid) == serve.pid]
        assert masters, children
        os.kill(masters[0], signal.SIGSTOP)  # frozen: it will not stop in time
    finally:
        stopped_at = time.monotonic()
        serve.send_signal(signal.SIGINT)
        code = serve.wait(60)
    took = time.monotonic() - stopped_at
    left = [pid for pid in children if Path(f"/proc/{pid}").exists()
            and "(zombie)" not in Path(f"/proc/{pid}/status").read_text()]
    assert left == [], [(pid, _cmdline(pid)) for pid in left]
    assert port_free(port)
    assert code == 0 and took < 30, (code, took)
    output = (tmp_path / "serve.log").read_text()
    assert "did not stop in time" in output
    database = Database(f"sqlite:///{(tmp_path / 'data' / 'voxhook.db').resolve()}")
    try:
        with database.session() as session:
            row = session.get(Transcription, tid)
            assert (row.status, row.worker_losses) == ("queued", 0), row.status
            assert session.scalar(select(func.count()).select_from(Reservation)
                                  .where(Reservation.status == "held")) == 0
    finally:
        database.dispose()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1

