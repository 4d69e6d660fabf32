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
        _check_worker_yields_to_the_api(children, tmp_path / "serve.log")
    finally:
        serve.send_signal(signal.SIGINT)
        code = serve.wait(60)
    assert code == 0
    time.sleep(0.5)
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()
            and "(zombie)" not in Path(f"/proc/{pid}/status").read_text()] == []


def _nice(stat_path: Path) -> int:
    """The niceness in a /proc/.../stat file (field 19)."""
    return int(stat_path.read_text().rsplit(")", 1)[1].split()[16])


def _check_worker_yields_to_the_api(children: list[int], log: Path) -> None:
    """The transcription worker, and every thread in it, runs 10 nicer than the API's
    processes; with two cores or more it sized itself by one core fewer (its ready line) and
    the API runs one process."""
    commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                for pid in children if Path(f"/proc/{pid}").exists()}
    worker = next(pid for pid, argv in commands.items() if argv[1:4] == [b"-m", b"app",
                                                                          b"worker"])
    api = [pid for pid, argv in commands.items() if any(b"gunicorn" in part for part in argv)]
    assert api, commands
    api_nice = {_nice(Path(f"/proc/{pid}/stat")) for pid in api}
    assert len(api_nice) == 1
    expected = min(api_nice.pop() + 10, 19)
    threads = list(Path(f"/proc/{worker}/task").iterdir())
    assert len(threads) > 1  # the heartbeat at least
    assert {_nice(task / "stat") for task in threads} == {expected}
    cores = len(os.sched_getaffinity(0))
    if cores >= 2:
        assert len(api) == 2, commands  # gunicorn's master and one process, on the free core
        ready = [line for line in log.read_text().splitlines() if " ready: " in line
                 and "job(s) at once" in line]
        assert ready and f"{cores - 1} job(s) at once, 1 CPU thread(s) each" in ready[-1]
