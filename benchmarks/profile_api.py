"""Where the API's time goes on its hot paths: ``GET /api/v1/transcriptions/{id}`` and
``POST /transcribe`` under cProfile, in-process through Flask's test client (no network, no
gunicorn: the application's own cost), on SQLite in a temporary folder with a private Redis.

Run from the repository root::

    .venv/bin/python -m benchmarks.profile_api [--requests 2000] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import tempfile
import time
from pathlib import Path

from app import create_app
from app.billing.keys import create_key
from app.config import Settings
from app.ops.embedded_redis import EmbeddedRedis
from app.store.db import Database
from app.store.migrate import upgrade
from benchmarks.bench_api import MEDIA_URL
from tests.support.stack import tiny_pipelines_toml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="voxhook-profile-"))
    redis = EmbeddedRedis(folder / "redis").start()
    try:
        pipelines = folder / "pipelines.toml"
        pipelines.write_text(tiny_pipelines_toml(folder / "model-not-loaded"))
        settings = Settings(data_dir=folder / "data", redis_url=redis.url,
                            pipelines_path=pipelines, log_level="WARNING")
        database = Database.from_settings(settings)
        upgrade(database)
        with database.session() as session:
            key = create_key(session, "profile").secret
        client = create_app(settings).test_client()
        headers = {"Authorization": f"Bearer {key}"}
        ids = [client.post("/transcribe", json={"url": MEDIA_URL}, headers=headers)
               .get_json()["id"] for _ in range(50)]
        for name, call in (
                ("GET /api/v1/transcriptions/{id}", lambda n: client.get(
                    f"/api/v1/transcriptions/{ids[n % len(ids)]}", headers=headers)),
                ("POST /transcribe", lambda _n: client.post(
                    "/transcribe", json={"url": MEDIA_URL}, headers=headers))):
            for number in range(100):
                call(number)  # warm
            profile = cProfile.Profile()
            started = time.perf_counter()
            profile.enable()
            for number in range(args.requests):
                call(number)
            profile.disable()
            seconds = time.perf_counter() - started
            print(f"\n## {name}: {args.requests} requests, "
                  f"{seconds / args.requests * 1e3:.2f} ms each under the profiler")
            pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    finally:
        redis.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
