"""The worker's runtime: warm models (``ModelCache`` over the real ``AsrEngine``), progress
from the engine, and the heartbeat and extendable deadline of ``worker.main``'s RQ worker."""

from __future__ import annotations

import itertools
import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from app.ops.embedded_redis import EmbeddedRedis
from app.transcriptions.pipelines import DecodingOptions, Pipeline, PipelineCatalog
from app.transcriptions.queue import WORKER_KEY_PREFIX
from tests.support.paths import FIXTURES, REPO
from tests.worker.speech.test_assemble import check_invariants
from worker.errors import ModelUnavailable
from worker.speech.asr import AsrEngine
from worker.speech.assemble import build_result
from worker.speech.audio import decode
from worker.speech.model_cache import ModelCache

REPO = REPO
FIXTURES = FIXTURES
GREEDY = DecodingOptions(beam_size=1, temperature=(0.0,), max_new_tokens=48)


def tiny_pipeline(model: Path, code: str = "tiny",
                  decoding: DecodingOptions = GREEDY) -> Pipeline:
    """A CPU int8 pipeline over a local model folder, decoding greedily with a token cap."""
    return Pipeline(code=code, description="random test model", model=str(model),
                    device="cpu", compute_type="int8", decoding=decoding)


# --- ModelCache ------------------------------------------------------------------------------


def test_model_is_loaded_once_and_kept_warm(tiny_model: Path) -> None:
    """After load_all, engine() returns the same AsrEngine every time; one load in all."""
    cache = ModelCache(PipelineCatalog((tiny_pipeline(tiny_model),), "tiny"))
    assert cache.status() == {"tiny": {"state": "loading", "error": None, "loads": 0}}
    cache.load_all()
    first = cache.engine("tiny")
    second = cache.engine("tiny")
    assert isinstance(first, AsrEngine)
    assert first is second
    assert (first.device, first.compute_type) == ("cpu", "int8")
    assert cache.status() == {"tiny": {"state": "ready", "error": None, "loads": 1}}


def test_unknown_pipeline_code_is_model_unavailable(tiny_model: Path) -> None:
    """A code the catalogue does not know raises ModelUnavailable naming it."""
    cache = ModelCache(PipelineCatalog((tiny_pipeline(tiny_model),), "tiny"))
    with pytest.raises(ModelUnavailable, match="'other' is not configured"):
        cache.engine("other")


def test_missing_model_folder_fails_with_advice(tiny_model: Path, tmp_path: Path) -> None:
    """A pipeline whose folder does not exist is 'failed' with a message saying how to fix
    it, engine() raises ModelUnavailable with it, and the other pipeline still works; once
    the folder is copied in, the next engine() call loads it."""
    missing = tmp_path / "models" / "absent"
    cache = ModelCache(PipelineCatalog((tiny_pipeline(tiny_model),
                                        tiny_pipeline(missing, code="gone")), "tiny"))
    cache.load_all()
    status = cache.status()
    assert status["tiny"]["state"] == "ready"
    assert status["gone"]["state"] == "failed" and status["gone"]["loads"] == 0
    error = status["gone"]["error"]
    assert isinstance(error, str)
    assert "'gone'" in error and str(missing) in error and "does not exist" in error
    assert "Fix the path in the pipelines file (or VOXHOOK_MODEL)" in error
    with pytest.raises(ModelUnavailable) as caught:
        cache.engine("gone")
    assert caught.value.message == error
    assert caught.value.code == "model_unavailable"
    assert isinstance(cache.engine("tiny"), AsrEngine)

    shutil.copytree(tiny_model, missing)  # the operator copies the weights in
    assert isinstance(cache.engine("gone"), AsrEngine)
    assert cache.status()["gone"] == {"state": "ready", "error": None, "loads": 1}


def test_broken_model_folder_says_what_it_must_contain(tmp_path: Path) -> None:
    """An existing folder without a model fails with a message naming the files it needs."""
    folder = tmp_path / "empty-model"
    folder.mkdir()
    cache = ModelCache(PipelineCatalog((tiny_pipeline(folder),), "tiny"))
    cache.load_all()
    error = cache.status()["tiny"]["error"]
    assert isinstance(error, str)
    assert "could not be loaded" in error
    assert "model.bin" in error and "config.json" in error and "tokenizer.json" in error
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        cache.engine("tiny")


# --- Transcription progress ------------------------------------------------------------------


@pytest.mark.parametrize("word_timestamps", [True, False])
def test_progress_is_monotonic_and_within_unit(tiny_model: Path, word_timestamps: bool) -> None:
    """On sample.wav the progress callback only goes forward, stays in [0, 1], and the
    output assembles into a result that keeps every invariant."""
    engine = AsrEngine(tiny_pipeline(tiny_model))
    audio = decode(FIXTURES / "sample.wav")
    progress: list[float] = []
    output = engine.transcribe(audio.samples, language=None, word_timestamps=word_timestamps,
                               on_progress=progress.append)
    assert progress, "the engine reported no progress at all"
    assert len(progress) == len(output.segments)
    assert all(0.0 <= value <= 1.0 for value in progress)
    assert all(a <= b for a, b in itertools.pairwise(progress)), progress
    assert len(output.language) == 2
    result = build_result(output, audio.duration_s, with_words=word_timestamps)
    check_invariants(result, audio.duration_s, word_timestamps)


def test_progress_never_goes_backwards_without_vad(tiny_model: Path) -> None:
    """BUG: AsrEngine.transcribe reports ``segment.end / duration`` for each segment as it
    arrives, but segment ends are not monotonic (with vad_filter=False and word timestamps
    this model's segments on sample.wav end at ..., 30.0, then 28.22), so progress goes
    1.0 -> 0.941 and the row's progress moves backwards. Fix: keep the highest fraction
    reported so far and report ``max(previous, fraction)``."""
    no_vad = DecodingOptions(beam_size=1, temperature=(0.0,), max_new_tokens=48,
                             vad_filter=False)
    engine = AsrEngine(tiny_pipeline(tiny_model, decoding=no_vad))
    progress: list[float] = []
    engine.transcribe(decode(FIXTURES / "sample.wav").samples, language=None,
                      word_timestamps=True, on_progress=progress.append)
    assert all(0.0 <= value <= 1.0 for value in progress)
    assert all(a <= b for a, b in itertools.pairwise(progress)), progress


# --- Heartbeat and deadline ------------------------------------------------------------------

#: Runs a TranscriptionWorker with a Heartbeat in its own process (RQ's SIGALRM death
#: penalty needs the main thread); argv: redis URL, queue name, worker name.
WORKER_SCRIPT = """
import sys
from redis import Redis
from app.transcriptions.pipelines import PipelineCatalog
from worker.main import Heartbeat, TranscriptionWorker
from worker.speech.model_cache import ModelCache

redis = Redis.from_url(sys.argv[1])
worker = TranscriptionWorker([sys.argv[2]], connection=redis, name=sys.argv[3])
heartbeat = Heartbeat(worker, ModelCache(PipelineCatalog((), "none")), redis, interval_s=1)
heartbeat.start()
try:
    worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
finally:
    heartbeat.stop()
"""


def test_deadline_extension_and_heartbeat(redis_server: EmbeddedRedis) -> None:
    """A job with a 2 s timeout that extends its deadline to 8 s and sleeps 4 s finishes
    with "done", and its last_heartbeat in Redis advances while it runs (the job itself
    never beats). The same sleep without the extension is killed by the 2 s timeout,
    which shows the first job would have died without it."""
    redis = Redis.from_url(redis_server.url)
    queue_name = f"test-runtime-{secrets.token_hex(4)}"
    worker_name = f"test-worker-{secrets.token_hex(4)}"
    queue = Queue(queue_name, connection=redis)
    extended = queue.enqueue("tests.support.jobs.sleep_extended", 8, 4.0, job_timeout=2,
                             result_ttl=600, failure_ttl=600)
    plain = queue.enqueue("tests.support.jobs.sleep_plain", 4.0, job_timeout=2,
                          result_ttl=600, failure_ttl=600)

    process = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, redis_server.url, queue_name, worker_name],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    beats_while_running: set[object] = set()
    announcements: list[dict[str, object]] = []
    give_up = time.monotonic() + 60
    try:
        while process.poll() is None and time.monotonic() < give_up:
            job = Job.fetch(extended.id, connection=redis)
            if job.get_status() == JobStatus.STARTED and job.last_heartbeat is not None:
                beats_while_running.add(job.last_heartbeat)
            raw = redis.get(WORKER_KEY_PREFIX + worker_name)
            if raw:
                announcements.append(json.loads(raw))
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate(timeout=10)[0].decode(errors="replace")
    assert process.returncode == 0, output

    extended.refresh()
    assert extended.get_status() == JobStatus.FINISHED, output
    assert extended.return_value() == "done"
    # The heartbeat thread beat about once a second during the 4 s sleep.
    assert len(beats_while_running) >= 3, (sorted(beats_while_running), output)
    span = max(beats_while_running) - min(beats_while_running)  # type: ignore[operator]
    assert span.total_seconds() >= 2

    plain.refresh()
    assert plain.get_status() == JobStatus.FAILED, output
    failure = plain.latest_result()
    assert failure is not None and failure.exc_string is not None
    assert "JobTimeoutException" in failure.exc_string

    # The worker announced itself while it ran, and withdrew the announcement on stop.
    assert announcements, output
    assert all(a["name"] == worker_name and a["pid"] == process.pid for a in announcements)
    assert all(a["queue"] == queue_name for a in announcements)
    assert announcements[-1]["pipelines"] == {}
    assert redis.get(WORKER_KEY_PREFIX + worker_name) is None


def test_batched_decoding_runs_through_faster_whispers_batched_pipeline(
        tiny_model: Path) -> None:
    """batch_size > 1 selects faster-whisper's BatchedInferencePipeline, and its output
    assembles into a consistent result with words."""
    engine = AsrEngine(tiny_pipeline(tiny_model, "batched", DecodingOptions(
        beam_size=1, temperature=(0.0,), max_new_tokens=32, batch_size=4)))
    assert type(engine.batched).__name__ == "BatchedInferencePipeline"
    audio = decode(FIXTURES / "sample.wav")
    output = engine.transcribe(audio.samples, language="en", word_timestamps=True)
    assert output.language == "en"
    result = build_result(output, audio.duration_s, with_words=True)
    check_invariants(result, audio.duration_s, with_words=True)
    assert any(u["words"] for u in result["utterances"])
