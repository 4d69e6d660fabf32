"""Billing on, end to end: the API refuses an account with nothing (402), the worker reserves
once the duration is known, fails a job the account cannot pay for (charging nothing),
charges a completed job exactly once in the same commit as its result, and releases the
reservation of a cancelled one. Real gunicorn, worker, Redis and SQLite; the wallet is
funded with the operator's CLI, as an operator would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from app.ops.embedded_redis import EmbeddedRedis
from tests.support.media_server import MediaServer
from tests.support.stack import Client, Stack, running_stack

pytestmark = pytest.mark.e2e

#: jfk.flac is 11 s: 11 s at 0.0285 USD a minute is 5225 micro-dollars.
CHEAP_COST_USD = Decimal("0.005225")


def two_pipelines(model: Path) -> str:
    """A cheap pipeline, and one whose 11 s cost more than a 5 USD top-up."""
    blocks = []
    for code, price in (("cheap", "0.0285"), ("pricey", "30.00")):
        blocks.append(f'''
[[pipeline]]
code = "{code}"
model = "{model}"
device = "cpu"
compute_type = "int8"
price_per_minute_usd = "{price}"
[pipeline.decoding]
beam_size = 1
temperature = 0.0
max_new_tokens = 48
''')
    return 'default_pipeline = "cheap"\n' + "".join(blocks)


@pytest.fixture(scope="module")
def billed_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
                 tiny_model: Path) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("billing")
    pipelines = folder / "pipelines.toml"
    pipelines.write_text(two_pipelines(tiny_model))
    with running_stack(folder, redis_server.url, pipelines,
                       extra_env={"VOXHOOK_BILLING": "on"}) as stack:
        yield stack


def available_usd(stack: Stack, account: str) -> Decimal:
    shown = stack.cli("wallet", "show", account).stdout
    found = re.search(r"available\D*?([0-9]+\.[0-9]+)", shown, re.IGNORECASE)
    assert found, shown
    return Decimal(found.group(1))


def test_billing_from_nothing_to_one_exact_charge(billed_stack: Stack,
                                                  media_server: MediaServer) -> None:
    """No funds: 402 at creation. 5 USD: a job that costs more fails insufficient_balance
    with nothing charged; a cheap one completes and is charged its exact cost once; running
    the finished job again (as RQ does after a worker dies before reporting) charges
    nothing more; the audit agrees."""
    stack = billed_stack
    account = "acct_billing"
    stack.cli("accounts", "create", "--name", "billing test", "--id", account)
    key = stack.cli("keys", "create", "--name", "billing", "--account", account).stdout.strip()
    client = Client(stack.base_url, key)
    url = media_server.url("jfk.flac")

    broke = client.post("/api/v1/transcriptions", json={"source": "external_url", "url": url})
    assert broke.status_code == 402, broke.text
    assert broke.json()["error"]["code"] == "insufficient_balance"

    stack.cli("wallet", "topup", account, "--usd", "5.00")
    assert available_usd(stack, account) == Decimal("5.00")
    pricey = client.post("/api/v1/transcriptions", json={
        "source": "external_url", "url": url, "pipeline_code": "pricey"})
    assert pricey.status_code == 201, pricey.text
    body = client.wait_final(f"/api/v1/transcriptions/{pricey.json()['id']}")
    assert body["status"] == "failed" and body["error"]["code"] == "insufficient_balance"
    assert "top up" in body["error"]["message"] and body["cost_usd"] is None
    assert available_usd(stack, account) == Decimal("5.00")

    cheap = client.post("/api/v1/transcriptions", json={"source": "external_url", "url": url})
    done = client.wait_final(f"/api/v1/transcriptions/{cheap.json()['id']}")
    assert done["status"] == "completed", done
    assert Decimal(done["cost_usd"]) == CHEAP_COST_USD
    assert available_usd(stack, account) == Decimal("5.00") - CHEAP_COST_USD

    # The job runs again (a retry after a crash between commit and report): skipped.
    queue = Queue(stack.queue, connection=Redis.from_url(stack.redis_url))
    queue.enqueue("worker.jobs.run_transcription", done["id"], job_id=f"{done['id']}-again")
    again = client.wait_final(f"/api/v1/transcriptions/{done['id']}")
    assert again["status"] == "completed"
    assert available_usd(stack, account) == Decimal("5.00") - CHEAP_COST_USD
    audit = stack.cli("wallet", "audit", check=False)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_cancelled_running_job_costs_nothing(billed_stack: Stack,
                                             media_server: MediaServer) -> None:
    """A job cancelled while it runs stops, its reservation is released and nothing is
    charged."""
    stack = billed_stack
    account = "acct_cancel"
    stack.cli("accounts", "create", "--name", "cancel test", "--id", account)
    key = stack.cli("keys", "create", "--name", "cancel", "--account", account).stdout.strip()
    stack.cli("wallet", "topup", account, "--usd", "5.00")
    client = Client(stack.base_url, key)
    with stack.hold("asr"):  # running, with its cost reserved (before transcription)
        created = client.post("/api/v1/transcriptions", json={
            "source": "external_url", "url": media_server.url("jfk.flac")})
        path = f"/api/v1/transcriptions/{created.json()['id']}"
        stack.wait_held(created.json()["id"], "asr")
        assert available_usd(stack, account) < Decimal("5.00")  # held
        cancelled = client.post(f"{path}/cancel")
        assert cancelled.status_code == 200, cancelled.text
    final = client.wait_final(path, timeout_s=60)
    assert final["status"] == "cancelled"
    assert available_usd(stack, account) == Decimal("5.00")
    assert stack.cli("wallet", "audit", check=False).returncode == 0
