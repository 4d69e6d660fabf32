"""Webhooks through the whole service: the API, a transcription worker that records the event
in the commit that ends the job, and the webhook worker that signs and sends it (real
processes, Redis, SQLite), to receivers on loopback. Signatures are checked with the
independent ``standardwebhooks`` package.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.ops.embedded_redis import EmbeddedRedis
from tests.support.listeners import Listener
from tests.support.media_server import MediaServer
from tests.support.receivers import Receiver, Reply
from tests.support.stack import Client, Stack, running_stack

pytestmark = pytest.mark.e2e

#: n8n's resume URLs carry a signature in the query; every byte must survive.
QUERY = "?sig=a%2Fb&x=1&x=2&empty=&plus=a+b&%7E=~"


@pytest.fixture(scope="module")
def hook_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
               pipelines_file: Path) -> Iterator[Stack]:
    """The service with its webhook worker; retries after 0.3 s and 0.6 s, no jitter."""
    env = {"VOXHOOK_WEBHOOK_RETRY_SCHEDULE": "0.3,0.6", "VOXHOOK_WEBHOOK_JITTER": "0"}
    with running_stack(tmp_path_factory.mktemp("webhooks"), redis_server.url, pipelines_file,
                       extra_env=env) as stack:
        stack.start_webhook_worker()
        yield stack


@pytest.fixture(scope="module")
def client(hook_stack: Stack) -> Client:
    return Client(hook_stack.base_url, hook_stack.create_key())


def delivery_status(client: Client, path: str) -> str | None:
    """The status of a transcription's first delivery (None before the job has ended)."""
    data = client.get(path).json()["data"]
    return data[0]["status"] if data else None


def wait_for(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not met in time")


def test_completed_transcription_is_posted_signed_and_byte_exact(
        client: Client, media_server: MediaServer) -> None:
    """The receiver gets exactly the JSON GET answers, at the URL given byte for byte; the
    signature verifies with standardwebhooks and fails after any byte changes. A 500 first
    is retried with the same webhook-id, after the back-off."""
    secret = client.get("/api/v1/webhook_secret").json()["secret"]
    with Receiver(Reply(500), Reply(200)) as receiver:
        created = client.post("/transcribe", json={
            "url": media_server.url("jfk.flac"), "webhook_url": receiver.url("/hook" + QUERY)})
        assert created.status_code == 200, created.text
        transcription_id = created.json()["id"]
        wait_for(lambda: len(receiver.requests) >= 2)
        first, second = receiver.requests[:2]
    assert first.target == "/hook" + QUERY and second.target == first.target
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.at - first.at >= 0.3  # the back-off was respected
    body = second.body
    assert json.loads(body) == client.get(f"/transcribe/{transcription_id}").json()
    assert json.loads(body)["status"] == "completed"
    verifier = Webhook(secret)
    assert verifier.verify(body, second.headers)["id"] == transcription_id
    tampered = body.replace(b"completed", b"complete!")
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, second.headers)
    history = client.get(f"/api/v1/transcriptions/{transcription_id}/webhook_deliveries")
    (delivery,) = history.json()["data"]
    assert delivery["id"] == first.headers["webhook-id"]
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]


def test_failed_transcription_and_410_stops(client: Client, media_server: MediaServer) -> None:
    """A failed transcription is announced too; a 410 ends the delivery after one attempt,
    and a resend through the API sends it again with the same webhook-id."""
    with Receiver(Reply(410), Reply(200)) as receiver:
        created = client.post("/api/v1/transcriptions", json={
            "source": "external_url", "url": media_server.url("missing.mp3"),
            "webhook_url": receiver.url()})
        transcription_id = created.json()["id"]
        path = f"/api/v1/transcriptions/{transcription_id}/webhook_deliveries"
        wait_for(lambda: delivery_status(client, path) == "failed")
        time.sleep(1.0)  # longer than the whole retry schedule: nothing more comes
        assert len(receiver.requests) == 1
        assert json.loads(receiver.requests[0].body)["status"] == "failed"
        delivery = client.get(path).json()["data"][0]
        resent = client.post(f"{path}/{delivery['id']}/resend")
        assert resent.status_code == 202, resent.text
        wait_for(lambda: len(receiver.requests) == 2)
    assert receiver.requests[1].headers["webhook-id"] == delivery["id"]
    wait_for(lambda: delivery_status(client, path) == "delivered")


def test_subscriptions_get_both_events_until_deleted(client: Client,
                                                     media_server: MediaServer) -> None:
    """An endpoint subscribed to both events receives a completed and a failed
    transcription as envelopes; after DELETE it receives nothing more."""
    with Receiver() as receiver:
        endpoint = client.post("/api/v1/webhook_endpoints", json={"url": receiver.url()})
        assert endpoint.status_code == 201, endpoint.text
        good = client.post("/api/v1/transcriptions", json={
            "source": "external_url", "url": media_server.url("jfk.flac")}).json()
        bad = client.post("/api/v1/transcriptions", json={
            "source": "external_url", "url": media_server.url("missing.mp3")}).json()
        wait_for(lambda: len(receiver.requests) >= 2)
        events = {json.loads(r.body)["data"]["id"]: json.loads(r.body)["type"]
                  for r in receiver.requests}
        assert events == {good["id"]: "transcription.completed",
                          bad["id"]: "transcription.failed"}
        deleted = client.session.delete(
            f"{client.base_url}/api/v1/webhook_endpoints/{endpoint.json()['id']}")
        assert deleted.status_code == 200
        later = client.post("/api/v1/transcriptions", json={
            "source": "external_url", "url": media_server.url("jfk.flac")}).json()
        client.wait_final(f"/api/v1/transcriptions/{later['id']}")
        time.sleep(1.0)
        assert len(receiver.requests) == 2


def test_refused_webhook_address_is_never_connected(client: Client,
                                                    media_server: MediaServer) -> None:
    """A webhook_url or endpoint on a refused address is a 422 at creation, and nothing
    ever connects to it."""
    with Listener("127.0.0.2") as trap:
        refused = client.post("/transcribe", json={
            "url": media_server.url("jfk.flac"), "webhook_url": trap.url("/hook")})
        assert refused.status_code == 422
        assert "webhook_url" in refused.json()["error"]["fields"]
        endpoint = client.post("/api/v1/webhook_endpoints", json={"url": trap.url("/hook")})
        assert endpoint.status_code == 422
        assert "url" in endpoint.json()["error"]["fields"]
        time.sleep(0.5)
    assert trap.connections == 0
