"""A running Voxhook for the API tests of this folder: gunicorn (gevent, the default serving
model), one worker, the tiny diarizing pipeline, SQLite, the session's Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.ops.embedded_redis import EmbeddedRedis
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="session")
def api_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
              diarizing_pipelines_file: Path) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("api-stack")
    with running_stack(folder, redis_server.url, diarizing_pipelines_file,
                       ready_timeout_s=180) as stack:
        yield stack


@pytest.fixture(scope="session")
def api_stack_key(api_stack: Stack) -> str:
    return api_stack.create_key("api-tests")


@pytest.fixture(scope="module")
def single_process_api_port(tmp_path_factory: pytest.TempPathFactory,
                            redis_server: EmbeddedRedis, pipelines_file: Path) -> Iterator[int]:
    """The port of a real gunicorn serving the API with one process and no worker behind it,
    for tests that speak raw HTTP to it."""
    folder = tmp_path_factory.mktemp("single-process-api")
    with running_stack(folder, redis_server.url, pipelines_file, workers=0,
                       api_workers=1) as stack:
        yield stack.port
