"""Several jobs at once in one worker process (``VOXHOOK_WORKER_CONCURRENCY=2``), on the real
stack (gunicorn API, ``voxhook worker``, Redis, SQLite, billing on, tiny random models): each
job keeps its own settings, result, cancellation, charge and recovery, exactly as when a
worker ran one job at a time.

Every test first proves the jobs really ran at once: both rows ``processing`` at the same
moment, in one worker process (the pid in the name), on two different lanes (the names).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.store.db import Database
from app.store.models import Reservation, Transcription
from tests.conftest import write_repeated_wav
from tests.e2e.test_chaos import (
    FAST,
    assert_money_right,
    chaos_stack,
    create,
    wait_all_final,
    wait_until,
    worker_pid,
)
from tests.support.media_server import MediaServer
from tests.support.paths import FIXTURES
from tests.support.stack import Client, Stack, tiny_pipelines_toml

TWO_AT_ONCE = {**FAST, "VOXHOOK_WORKER_CONCURRENCY": "2"}


@pytest.fixture(scope="module")
def two_pipelines(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path,
                  tiny_diarization: Path) -> Path:
    """``tiny`` (labels speakers) and ``short`` (no diarizer, fewer tokens per window): two
    pipelines on one model folder, so their results differ by the pipeline's own settings."""
    path = tmp_path_factory.mktemp("config") / "pipelines.toml"
    path.write_text(tiny_pipelines_toml(tiny_model, diarization=tiny_diarization) + f'''
[[pipeline]]
code = "short"
description = "random test model, short windows"
model = "{tiny_model}"
device = "cpu"
compute_type = "int8"
price_per_minute_usd = "0.0100"
[pipeline.decoding]
beam_size = 1
temperature = 0.0
vad_filter = true
max_new_tokens = 16
''')
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    """Ten minutes (long.wav: a short job for these models) and two (two-minutes.wav, for
    diarization, which takes minutes over ten)."""
    folder = tmp_path_factory.mktemp("concurrency-media")
    write_repeated_wav(FIXTURES / "sample.wav", folder / "long.wav", times=20)
    write_repeated_wav(FIXTURES / "sample.wav", folder / "two-minutes.wav", times=4)
    with MediaServer(folder) as server:
        yield server


def running_together(stack: Stack, ids: list[str]) -> dict[str, str]:
    """Wait until every job is ``processing`` with its cost held, at the same moment;
    returns each one's worker (lane) name."""
    database = Database(stack.database_url)
    try:
        def all_running() -> dict[str, str] | None:
            with database.session() as session:
                lanes = {}
                for tid in ids:
                    row = session.get(Transcription, tid)
                    held = session.get(Reservation, tid)
                    if (row is None or row.status != "processing" or not row.worker_name
                            or held is None or held.status != "held"):
                        return None
                    lanes[tid] = row.worker_name
                return lanes
        lanes = wait_until(all_running, 90, f"{ids} running at once", stack)
    finally:
        database.dispose()
    assert len(set(lanes.values())) == len(ids), lanes  # one lane each
    assert len({worker_pid(name) for name in lanes.values()}) == 1, lanes  # one process
    return lanes


def held_together(stack: Stack, ids: list[str]) -> dict[str, str]:
    """With ``stack.hold("asr")`` on: wait until every job is held before its transcription,
    then prove they are running at once (:func:`running_together`). Held, no job can end
    before the others start, however fast the machine."""
    for tid in ids:
        stack.wait_held(tid, "asr", "worker-0")
    return running_together(stack, ids)


def final_body(client: Client, tid: str) -> dict[str, Any]:
    body = client.wait_final(f"/api/v1/transcriptions/{tid}", timeout_s=300)
    assert body["status"] == "completed", body
    return body


def test_two_jobs_at_once_each_get_their_own_result(tmp_path, two_pipelines, media):
    """Job A (pipeline tiny, Spanish, two speakers) and job B (pipeline short, English, no
    speakers) run at once on one worker; then each runs again alone. Each concurrent result
    equals its lone twin word for word, and keeps its own language, pipeline and speakers."""
    job_a = {"url": media.url("two-minutes.wav"), "pipeline_code": "tiny", "language": "es",
             "diarize": True, "speaker_count": 2}
    job_b = {"url": media.url("long.wav"), "pipeline_code": "short", "language": "en"}
    with chaos_stack(tmp_path, two_pipelines, env=TWO_AT_ONCE) as (stack, _redis, client):
        with stack.hold("asr"):
            together = [create(client, **job_a), create(client, **job_b)]
            held_together(stack, together)
        a, b = (final_body(client, tid) for tid in together)
        alone_a = final_body(client, create(client, **job_a))
        alone_b = final_body(client, create(client, **job_b))
        assert_money_right(stack, [*together, alone_a["id"], alone_b["id"]])

    assert a["result"] == alone_a["result"]
    assert b["result"] == alone_b["result"]
    assert a["result"] != b["result"]
    assert (a["pipeline_code"], a["language"], b["pipeline_code"], b["language"]) == (
        "tiny", "es", "short", "en")
    assert len(a["result"]["speakers"]) == 2
    assert all(word["speaker"] in a["result"]["speakers"]
               for utterance in a["result"]["utterances"] for word in utterance["words"])
    assert not b["result"].get("speakers")


def test_cancel_one_of_two_running_jobs(tmp_path, two_pipelines, media):
    """Of two jobs running at once, the cancelled one ends cancelled and uncharged, its hold
    released; the other completes and is charged its cost once."""
    with chaos_stack(tmp_path, two_pipelines, env=TWO_AT_ONCE) as (stack, _redis, client):
        with stack.hold("asr"):
            kept, cancelled = (create(client, media.url("long.wav")) for _ in range(2))
            held_together(stack, [kept, cancelled])
            answer = client.post(f"/api/v1/transcriptions/{cancelled}/cancel")
            assert answer.status_code == 200, answer.text
            # The lane's beat finds the row no longer its own while the job is still held.
            wait_until(lambda: f"transcription {cancelled} is no longer this worker's"
                       in stack.log("worker-0"), 30, "the lane to notice", stack)
        done = wait_all_final(stack, [kept, cancelled], 300)
        assert done[cancelled].status == "cancelled"
        assert done[kept].status == "completed", (done[kept].error_code,
                                                  done[kept].error_message)
        assert_money_right(stack, [kept, cancelled])  # checks: the cancelled one uncharged


def test_kill_9_worker_running_two_jobs_recovers_both(tmp_path, two_pipelines, media):
    """kill -9 of a worker process running two jobs: the recovery pass notices both stamps
    lapse and hands both back; a worker started afterwards completes both, each charged once
    and counted as one loss."""
    with chaos_stack(tmp_path, two_pipelines, env=TWO_AT_ONCE) as (stack, _redis, client):
        with stack.hold("asr"):
            ids = [create(client, media.url("long.wav")) for _ in range(2)]
            lanes = held_together(stack, ids)
            victim = worker_pid(next(iter(lanes.values())))
            os.kill(victim, signal.SIGKILL)
        stack.start_worker("worker-1")
        done = wait_all_final(stack, ids, 300)
        for tid, row in done.items():
            assert row.status == "completed", (tid, row.error_code, row.error_message)
            assert row.worker_losses == 1, (tid, row.worker_losses)
            assert worker_pid(row.worker_name) != victim
        assert_money_right(stack, ids)
