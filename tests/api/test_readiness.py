"""/healthz answers whenever the process does; /readyz only when the database, Redis and a
worker with loaded models are there, and otherwise says what is missing and how to fix it."""

from __future__ import annotations

import time

import requests

from app.config import Settings
from tests.support.stack import Client, Stack, tiny_pipelines_toml

URL_PATH = "jfk.flac"


def test_not_ready_without_a_worker(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert any("voxhook worker" in line for line in body["missing"])


def test_not_ready_when_redis_is_unreachable(app, settings: Settings):
    from app import create_app

    broken = create_app(settings.with_overrides(redis_url="redis://127.0.0.1:1/0"))
    body = broken.test_client().get("/readyz").get_json()
    assert body["status"] == "not_ready"
    assert body["checks"]["redis"]["ok"] is False
    assert any("VOXHOOK_REDIS_URL" in line for line in body["missing"])


def test_a_model_that_cannot_load_is_reported_and_fails_jobs_with_advice(
        tmp_path, redis_server, media_server):
    """A pipeline pointing at weights that are not there: /readyz and the job both say how
    to fix it, and the worker keeps running."""
    missing_model = tmp_path / "no-such-model"
    pipelines = tmp_path / "pipelines.toml"
    pipelines.write_text(tiny_pipelines_toml(missing_model, code="broken"))
    stack = Stack(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                  redis_url=redis_server.url, pipelines_path=pipelines)
    try:
        stack.start_api()
        worker = stack.start_worker()
        deadline = time.monotonic() + 60
        body: dict = {}
        while time.monotonic() < deadline:
            body = requests.get(f"{stack.base_url}/readyz", timeout=5).json()
            if any("broken" in line and "does not exist" in line for line in body["missing"]):
                break
            time.sleep(0.2)
        assert body["status"] == "not_ready"
        assert any(str(missing_model) in line for line in body["missing"]), body

        client = Client(stack.base_url, stack.create_key())
        created = client.post("/transcribe", json={"url": media_server.url(URL_PATH)}).json()
        failed = client.wait_final(f"/transcribe/{created['id']}", timeout_s=60)
        assert failed["status"] == "failed"
        assert failed["error_code"] == "model_unavailable"
        assert "pipelines file" in failed["error"] and str(missing_model) in failed["error"]
        assert worker.poll() is None  # the worker is still serving
    finally:
        stack.stop()
