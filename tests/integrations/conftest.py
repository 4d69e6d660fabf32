"""A live Voxhook for the integrations' tests, and the way to run their JavaScript tests.

Each integration (n8n, Zapier, Make, the Cloudflare Worker) is tested in its own runtime
(n8n's engine, Zapier's app tester, workerd) by its own JavaScript test files; a pytest test
here starts the real service once per session (gunicorn API, transcription worker, webhook
worker, Redis, SQLite, the tiny models), hands its address and keys to those files through the
environment (:meth:`LiveVoxhook.js_env`), runs them on the project's Node and fails with their
output when they fail. So one command, ``python3 run.py test``, runs both languages.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.ops.embedded_redis import EmbeddedRedis
from tests.conftest import FIXTURES
from tests.support.media_server import MediaServer
from tests.support.node import run_on_node
from tests.support.stack import Stack, running_stack


@dataclass
class LiveVoxhook:
    """The running service, as an integration's tests see it."""

    stack: Stack
    #: A key of the default account ("Default account").
    api_key: str
    #: ``VOXHOOK_ADMIN_TOKEN`` of the stack (the admin API is enabled).
    admin_token: str
    #: A loopback server serving ``jfk.flac`` (11 s), ``sample.wav`` (30 s, two speakers),
    #: ``long.wav`` (10 min) and ``notes.txt`` (not audio); the stack may fetch from it.
    media: MediaServer

    @property
    def base_url(self) -> str:
        return self.stack.base_url

    def js_env(self, **extra: str) -> dict[str, str]:
        """What a JavaScript test needs to reach this Voxhook (on top of the toolchain's)."""
        return {"VOXHOOK_BASE_URL": self.base_url, "VOXHOOK_API_KEY": self.api_key,
                "VOXHOOK_ADMIN_TOKEN": self.admin_token, "VOXHOOK_MEDIA_URL": self.media.base_url,
                "VOXHOOK_FIXTURES": str(FIXTURES), **extra}


@pytest.fixture(scope="session")
def live_voxhook(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
                 diarizing_pipelines_file: Path, media_server: MediaServer
                 ) -> Iterator[LiveVoxhook]:
    """The whole service for the session, on SQLite, with its webhook worker; webhooks to
    loopback receivers are allowed and retried after 1 s and 2 s."""
    admin_token = secrets.token_urlsafe(32)
    folder = tmp_path_factory.mktemp("live-voxhook")
    with running_stack(folder, redis_server.url, diarizing_pipelines_file, ready_timeout_s=180,
                       extra_env={"VOXHOOK_ADMIN_TOKEN": admin_token,
                                  "VOXHOOK_WEBHOOK_RETRY_SCHEDULE": "1,2",
                                  "VOXHOOK_WEBHOOK_JITTER": "0"}) as stack:
        stack.start_webhook_worker()
        yield LiveVoxhook(stack=stack, api_key=stack.create_key("integrations"),
                          admin_token=admin_token, media=media_server)


def run_js_tests(folder: Path, command: list[str], env: dict[str, str],
                 timeout_s: float = 900) -> str:
    """Run an integration's JavaScript test command in ``folder`` on the project's Node; fail
    the calling test with the runner's output if it fails. Returns that output."""
    result = run_on_node(command, folder, env, timeout_s=timeout_s)
    print(result.stdout)
    assert result.returncode == 0, (
        f"`{' '.join(command)}` in {folder.name} failed (exit {result.returncode}):\n"
        f"{result.stdout[-20000:]}")
    return result.stdout
