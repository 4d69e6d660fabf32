"""`voxhook serve`: one process brings up Redis, migrations, the API and a worker, transcribes,
and stops everything on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from app.ops.embedded_redis import free_port
from tests.support.stack import REPO, Client


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid``, read from /proc (Linux)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            child = int(entry.name)
            found += [child, *_children(child)]
    return found


def test_serve_runs_everything_and_stops_cleanly(tmp_path, pipelines_file, media_server):
    port = free_port()
    env = {**os.environ, "VOXHOOK_DATA_DIR": str(tmp_path / "data"),
           "VOXHOOK_PIPELINES": str(pipelines_file), "VOXHOOK_FETCH_ALLOWLIST": "127.0.0.1",
           "VOXHOOK_API_WORKERS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("VOXHOOK_DATABASE_URL", None)
    env.pop("VOXHOOK_REDIS_URL", None)
    log = (tmp_path / "serve.log").open("w+")
    serve = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)],
                             env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        else:
            raise AssertionError("not ready:\n" + (tmp_path / "serve.log").read_text()[-4000:])
        output = (tmp_path / "serve.log").read_text()
        assert f"http://127.0.0.1:{port}" in output and "keys create" in output
        assert (tmp_path / "data" / "voxhook.db").exists()  # SQLite under the data dir

        key = subprocess.run([sys.executable, "-m", "app", "keys", "create", "--name", "me"],
                             env=env, cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        client = Client(base, key)
        created = client.post("/transcribe", json={"url": media_server.url("jfk.flac")}).json()
        assert client.wait_final(f"/transcribe/{created['id']}")["status"] == "completed"
        children = _children(serve.pid)
        assert len(children) >= 3  # redis-server, gunicorn (+ its workers), the worker
    finally:
        serve.send_signal(signal.SIGINT)
        code = serve.wait(60)
    assert code == 0
    time.sleep(0.5)
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()
            and "(zombie)" not in Path(f"/proc/{pid}/status").read_text()] == []
