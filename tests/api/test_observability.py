"""Request ids, JSON logs and Prometheus metrics, on a live stack (gunicorn with 2 gevent
processes, a worker exposing its own metrics port) started with VOXHOOK_LOG_FORMAT=json."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.ops.embedded_redis import EmbeddedRedis, free_port
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module")
def json_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
               pipelines_file: Path) -> Iterator[Stack]:
    port = free_port()
    with running_stack(tmp_path_factory.mktemp("json-stack"), redis_server.url,
                       pipelines_file, extra_env={"VOXHOOK_LOG_FORMAT": "json",
                                                  "VOXHOOK_WORKER_METRICS_PORT": str(port)}
                       ) as stack:
        stack.worker_metrics_port = port  # type: ignore[attr-defined]
        yield stack


def _lines(stack: Stack, name: str) -> list[dict]:
    """The JSON log lines of a process (anything else in its log fails the test)."""
    records = []
    for line in stack.log(name).splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(
                f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_request_id_is_echoed_logged_and_carried_into_the_job(json_stack, media_server):
    key = json_stack.create_key("observability")
    headers = {"Authorization": f"Bearer {key}", "X-Request-Id": "req-test-4242"}
    created = requests.post(f"{json_stack.base_url}/api/v1/transcriptions", headers=headers,
                            json={"source": "external_url",
                                  "url": media_server.url("jfk.flac")}, timeout=10)
    assert created.headers["X-Request-Id"] == "req-test-4242"
    transcription_id = created.json()["id"]
    done = requests.get(f"{json_stack.base_url}/api/v1/transcriptions/{transcription_id}",
                        params={"wait": 60}, headers={"Authorization": f"Bearer {key}"},
                        timeout=90)
    made = done.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)  # none sent: one is made
    bad = requests.get(f"{json_stack.base_url}/healthz",
                       headers={"X-Request-Id": "evil\tid with spaces"}, timeout=5)
    assert bad.headers["X-Request-Id"] != "evil\tid with spaces"
    api = _lines(json_stack, "api")  # every line is JSON
    access = [r for r in api if r["logger"] == "voxhook.access"
              and r["request_id"] == "req-test-4242"]
    assert access and access[0]["method"] == "POST" and access[0]["status"] == 201
    assert any(r["request_id"] == made and r.get("path", "").endswith(transcription_id)
               for r in api)
    job_lines = [r for r in _lines(json_stack, "worker") if transcription_id in r["message"]
                 and r["logger"].startswith("worker.")]
    assert job_lines and all(r["request_id"] == "req-test-4242" for r in job_lines), job_lines


def test_metrics_add_up_across_gunicorn_processes(json_stack):
    """Two gunicorn processes answer in turn; /metrics must count every request once,
    whichever process served it and whichever answers the scrape."""
    assert len(json_stack.api_worker_pids()) == 2
    before = requests.get(f"{json_stack.base_url}/metrics", timeout=5).text
    count = 60
    for _ in range(count):  # a new connection each: both processes get some
        requests.get(f"{json_stack.base_url}/healthz", timeout=5)
    after = requests.get(f"{json_stack.base_url}/metrics", timeout=5).text
    name = "voxhook_http_requests_total"
    added = (_sample(after, name, route="/healthz", status="200")
             - _sample(before, name, route="/healthz", status="200"))
    assert added == count
    assert "voxhook_http_request_duration_seconds_bucket" in after
    assert _sample(after, "voxhook_queue_depth") >= 0
    assert 'voxhook_model_state{' in after and 'state="ready"' in after


def test_worker_exposes_its_own_metrics(json_stack, media_server):
    key = json_stack.create_key("metrics")
    headers = {"Authorization": f"Bearer {key}"}
    created = requests.post(f"{json_stack.base_url}/api/v1/transcriptions", headers=headers,
                            json={"source": "external_url",
                                  "url": media_server.url("jfk.flac")}, timeout=10).json()
    requests.get(f"{json_stack.base_url}/api/v1/transcriptions/{created['id']}",
                 params={"wait": 60}, headers=headers, timeout=90)
    time.sleep(0.2)
    text = requests.get(f"http://127.0.0.1:{json_stack.worker_metrics_port}/metrics",
                        timeout=5).text
    assert _sample(text, "voxhook_transcriptions_finished_total", status="completed") >= 1
    assert _sample(text, "voxhook_audio_seconds_total") >= 11
    assert _sample(text, "voxhook_job_stage_seconds_count", stage="asr") >= 1
    assert _sample(text, "voxhook_job_realtime_factor_count") >= 1
    api = requests.get(f"{json_stack.base_url}/metrics", timeout=5).text
    assert _sample(api, "voxhook_transcriptions_created_total", surface="v1") >= 1

