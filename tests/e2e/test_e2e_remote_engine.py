"""End to end with remote engines and AI analysis, billing on: the service (gunicorn API, RQ
worker, webhook worker) sends audio to engines played by local servers (one answering like
vLLM serving Voxtral with a 30 s limit, errors and slowness included; and another Voxhook's
own OpenAI surface) and asks a local OpenAI-compatible chat server for analyses."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from app.billing.pricing import (
    micro_usd_to_usd as usd,
)
from app.billing.pricing import (
    per_minute_cost_micro_usd,
    quickstart_cost_micro_usd,
)
from app.ops.embedded_redis import EmbeddedRedis
from tests.e2e.test_e2e_billing import available_usd
from tests.e2e.test_e2e_speakers import check_speakers
from tests.support.fake_openai import DEFAULT_ANSWERS, FakeOpenAi
from tests.support.media_server import MediaServer
from tests.support.receivers import Receiver
from tests.support.stack import Client, Stack, running_stack

ACCOUNT = "acct_remote"
ENGINE_KEY_VARIABLE = "I19_ENGINE_KEY"


def remote_pipelines(vllm: FakeOpenAi, engine_stack: Stack, diarization: Path) -> str:
    return f'''
default_pipeline = "voxtral"
[analysis]
base_url = "{vllm.base_url}"
model = "qwen2.5:7b-instruct"
timeout_s = 2
retries = 1
backoff_s = 0.05

[[pipeline]]
code = "voxtral"
aliases = ["voxtral-mini-transcribe"]
price_per_minute_usd = "0.0296"
price_per_analysis_usd = "0.0015"
[pipeline.engine]
base_url = "{vllm.base_url}"
model = "mistralai/Voxtral-Mini-3B-2507"
max_piece_seconds = 30
timeout_s = 3
retries = 2
backoff_s = 0.05
concurrency = 4
[pipeline.diarization]
model = "{diarization}"
device = "cpu"

[[pipeline]]
code = "other-voxhook"
price_per_minute_usd = "0.0100"
analyses = []
[pipeline.engine]
base_url = "{engine_stack.base_url}/v1"
model = "tiny"
api_key_env = "{ENGINE_KEY_VARIABLE}"
max_piece_seconds = 60
timeout_s = 60
'''


@pytest.fixture(scope="module")
def vllm() -> Iterator[FakeOpenAi]:
    with FakeOpenAi(max_seconds=30, slow_s=4.0) as server:
        yield server


@pytest.fixture(scope="module")
def engine_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
                 pipelines_file: Path) -> Iterator[Stack]:
    """Another Voxhook (the tiny Whisper model), whose OpenAI surface is an engine."""
    with running_stack(tmp_path_factory.mktemp("engine-stack"), redis_server.url,
                       pipelines_file, api_workers=1) as stack:
        yield stack


@pytest.fixture(scope="module")
def engine_key(engine_stack: Stack) -> str:
    return engine_stack.create_key("remote-engine")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
          vllm: FakeOpenAi, engine_stack: Stack, engine_key: str,
          tiny_diarization: Path) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("remote-stack")
    pipelines = folder / "pipelines.toml"
    pipelines.write_text(remote_pipelines(vllm, engine_stack, tiny_diarization))
    with running_stack(folder, redis_server.url, pipelines, api_workers=1, extra_env={
            "VOXHOOK_BILLING": "on", ENGINE_KEY_VARIABLE: engine_key}) as instance:
        instance.start_webhook_worker()
        instance.cli("accounts", "create", "--name", "remote test", "--id", ACCOUNT)
        instance.cli("wallet", "topup", ACCOUNT, "--usd", "5.00")
        yield instance


@pytest.fixture(scope="module")
def client(stack: Stack) -> Client:
    key = stack.cli("keys", "create", "--name", "remote", "--account", ACCOUNT).stdout.strip()
    return Client(stack.base_url, key)


@pytest.fixture(autouse=True)
def clean_scripts(vllm: FakeOpenAi) -> Iterator[None]:
    vllm.script.clear()
    vllm.chat_script.clear()
    yield
    vllm.script.clear()
    vllm.chat_script.clear()


def audit_is_clean(stack: Stack) -> None:
    audit = stack.cli("wallet", "audit", check=False)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_the_pipelines_list_shows_engines_and_capabilities(client: Client):
    listed = {p["code"]: p for p in client.get("/api/v1/pipelines").json()["data"]}
    voxtral = listed["voxtral"]
    assert voxtral["engine"] == {"kind": "openai-compatible",
                                 "model": "mistralai/Voxtral-Mini-3B-2507"}
    assert voxtral["capabilities"]["words"] is True
    assert voxtral["capabilities"]["speakers"] is True
    assert voxtral["capabilities"]["analysis"] == list(DEFAULT_ANSWERS)
    assert voxtral["price_per_analysis_usd"] == "0.0015"
    assert listed["other-voxhook"]["capabilities"]["analysis"] == []
    assert listed["other-voxhook"]["capabilities"]["speakers"] is False


def test_ten_minutes_through_a_30_second_engine_with_analysis(
        stack: Stack, client: Client, vllm: FakeOpenAi, media_server: MediaServer):
    """long.wav (10 min) in pieces of at most 30 s, stitched with continuous, monotonic
    times; two analyses; charged 10 min and two analyses exactly, in one commit; the TXT
    export and the webhook carry the analyses; the audit agrees."""
    before = available_usd(stack, ACCOUNT)
    sent_before = len(vllm.audio_requests)
    with Receiver() as receiver:
        created = client.post("/api/v1/transcriptions", json={
            "source": "external_url", "url": media_server.url("long.wav"),
            "analysis": ["summary", "action_items"], "webhook_url": receiver.url()})
        assert created.status_code == 201, created.text
        body = client.wait_final(f"/api/v1/transcriptions/{created.json()['id']}",
                                 timeout_s=240)
        assert body["status"] == "completed", body
        pieces = [seconds for seconds, _, _ in vllm.audio_requests[sent_before:]]
        assert len(pieces) >= 20 and max(pieces) <= 30
        assert sum(pieces) == pytest.approx(600, abs=0.01)
        words = [w for u in body["result"]["utterances"] for w in u["words"]]
        starts = [w["start"] for w in words]
        assert starts == sorted(starts) and starts[0] == pytest.approx(0.1)
        assert max(b - a for a, b in itertools.pairwise(starts)) < 2.0
        assert words[-1]["end"] > 598 and body["result"]["duration_seconds"] == 600
        assert body["result"]["language"] == "en"
        assert {name: (outcome["status"], outcome["result"])
                for name, outcome in body["result"]["analysis"].items()} == {
            "summary": ("completed", DEFAULT_ANSWERS["summary"]),
            "action_items": ("completed", DEFAULT_ANSWERS["action_items"])}
        cost = Decimal("0.296000") + 2 * Decimal("0.0015")
        assert Decimal(body["cost_usd"]) == cost
        assert available_usd(stack, ACCOUNT) == before - cost
        text = client.get(f"/api/v1/transcriptions/{body['id']}/export",
                          params={"format": "txt"}).text
        assert "AI analysis" in text and "A short test conversation." in text
        assert "task: Send the report; owner: SPEAKER 1; due: Friday" in text
        delivered = _wait_for_webhook(receiver)
    assert delivered["result"]["analysis"]["summary"]["result"] == (
        DEFAULT_ANSWERS["summary"])
    audit_is_clean(stack)


def _wait_for_webhook(receiver: Receiver, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if receiver.requests:
            return json.loads(receiver.requests[0].body)
        time.sleep(0.1)
    raise TimeoutError("no webhook arrived")


def test_speakers_are_assigned_to_the_remote_engines_words(client: Client,
                                                         media_server: MediaServer):
    created = client.post("/api/v1/transcriptions", json={
        "source": "external_url", "url": media_server.url("sample.wav"), "diarize": True,
        "speaker_count": 2})
    body = client.wait_final(f"/api/v1/transcriptions/{created.json()['id']}", timeout_s=180)
    assert body["status"] == "completed", body
    words = check_speakers(body["result"], count=2)
    assert [w["word"] for w in words][:3] == ["w0", "w1", "w2"]  # the engine's words


def test_quickstart_analysis_out_of_schema_twice_fails_alone_and_is_not_charged(
        stack: Stack, client: Client, vllm: FakeOpenAi, media_server: MediaServer):
    """The Quickstart surface asks too; summary answers out of schema twice (failed, with
    the reason, not charged), topics once (asked again, completed, charged)."""
    before = available_usd(stack, ACCOUNT)
    vllm.chat_script.extend(["bad", "bad", "bad"])
    created = client.post("/transcribe", json={"url": media_server.url("jfk.flac"),
                                               "analysis": ["summary", "topics"]})
    assert created.status_code == 200, created.text
    body = client.wait_final(f"/transcribe/{created.json()['id']}")
    assert body["status"] == "completed", body
    analysis = body["result"]["analysis"]
    assert analysis["summary"]["status"] == "failed"
    assert "did not follow the analysis's JSON schema, twice" in analysis["summary"]["error"]
    assert analysis["topics"]["status"] == "completed"
    # The audio at 0.20 USD an hour, and one analysis.
    cost = usd(quickstart_cost_micro_usd(body["audio_duration_seconds"])) + Decimal("0.0015")
    assert Decimal(str(body["cost_cents"])) == cost * 100
    assert available_usd(stack, ACCOUNT) == before - cost
    audit_is_clean(stack)


def test_an_analysis_that_times_out_leaves_the_transcript_complete(
        stack: Stack, client: Client, vllm: FakeOpenAi, media_server: MediaServer):
    before = available_usd(stack, ACCOUNT)
    vllm.chat_script.extend(["slow", "slow"])
    created = client.post("/api/v1/transcriptions", json={
        "source": "external_url", "url": media_server.url("jfk.flac"), "analysis": ["summary"]})
    body = client.wait_final(f"/api/v1/transcriptions/{created.json()['id']}")
    assert body["status"] == "completed" and body["result"]["full_transcript"]
    summary = body["result"]["analysis"]["summary"]
    assert summary["status"] == "failed" and "no answer within 2 s" in summary["error"]
    cost = usd(per_minute_cost_micro_usd(body["audio_duration_seconds"], Decimal("0.0296")))
    assert Decimal(body["cost_usd"]) == cost  # the audio alone: the analysis failed
    assert available_usd(stack, ACCOUNT) == before - cost
    audit_is_clean(stack)


def test_an_engine_that_stays_down_fails_the_job_and_charges_nothing(
        stack: Stack, client: Client, vllm: FakeOpenAi, media_server: MediaServer):
    before = available_usd(stack, ACCOUNT)
    vllm.script.extend(["503"] * 3)
    created = client.post("/api/v1/transcriptions", json={
        "source": "external_url", "url": media_server.url("jfk.flac"),
        "analysis": ["summary"]})
    body = client.wait_final(f"/api/v1/transcriptions/{created.json()['id']}")
    assert body["status"] == "failed", body
    assert body["error"]["code"] == "engine_unavailable"
    message = body["error"]["message"]
    assert "pipeline 'voxtral'" in message and vllm.base_url in message
    assert "after 3 tries" in message and "Nothing was charged" in message
    assert body["cost_usd"] is None
    assert available_usd(stack, ACCOUNT) == before
    audit_is_clean(stack)


def test_another_voxhook_is_an_engine(client: Client, engine_stack: Stack, engine_key: str,
                                      media_server: MediaServer):
    """The remote engine is another Voxhook's OpenAI surface: the audio reaches it with the
    key from the environment, and its words come back with their times."""
    created = client.post("/api/v1/transcriptions", json={
        "source": "external_url", "url": media_server.url("jfk.flac"),
        "pipeline_code": "other-voxhook"})
    body = client.wait_final(f"/api/v1/transcriptions/{created.json()['id']}", timeout_s=180)
    assert body["status"] == "completed", body
    words = [w for u in body["result"]["utterances"] for w in u["words"]]
    assert words and all(0 <= w["start"] <= w["end"] <= 11.1 for w in words)
    engine_side = Client(engine_stack.base_url, engine_key).get(
        "/api/v1/transcriptions").json()["data"]
    assert len(engine_side) == 1 and engine_side[0]["status"] == "completed"
    assert engine_side[0]["audio_duration_seconds"] == pytest.approx(11.0, abs=0.1)
    assert body["result"]["full_transcript"] == engine_side[0]["result"]["full_transcript"]
