"""The webhook API (Flask's test client on the real app, SQLite and PostgreSQL): endpoints,
the URL check at creation, delivery history and resend, the signing secret (API and CLI),
and the README's verification snippets against our own signatures."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import func, select
from standardwebhooks import Webhook

from app.store.models import (
    Account,
    Transcription,
    Upload,
    WebhookAttempt,
    WebhookDelivery,
    utcnow,
)
from app.webhooks.doorbell import doorbell_key
from app.webhooks.events import record_transcription_event
from app.webhooks.secrets import signing_secrets
from app.webhooks.signing import headers as signed_headers
from tests.support.listeners import Listener
from tests.support.paths import REPO
from tests.support.receivers import Receiver

ENDPOINTS = "/api/v1/webhook_endpoints"
QUICKSTART, V1 = "/transcribe", "/api/v1/transcriptions"
MEDIA = "http://127.0.0.1:9/audio.mp3"
HOOK = "http://127.0.0.1:9/hook"
EVENTS = ["transcription.completed", "transcription.failed"]
README = REPO / "README.md"
DAY = timedelta(hours=24)


def create(client, auth: dict[str, str], surface: str = V1, **fields: Any):
    body = {"url": MEDIA, **fields}
    if surface == V1:
        body["source"] = "external_url"
    return client.post(surface, json=body, headers=auth)


def create_id(client, auth: dict[str, str], **fields: Any) -> str:
    response = create(client, auth, **fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def subscribe(client, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(ENDPOINTS, json={"url": HOOK, **body}, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def finish(database, transcription_id: str, status: str = "completed"
           ) -> list[WebhookDelivery]:
    """End the transcription as the worker does, with its outbox call in the same commit."""
    with database.session() as session:
        row = session.get(Transcription, transcription_id)
        row.status, row.completed_at = status, utcnow()
        if status == "completed":
            row.progress, row.result = 1.0, {
                "full_transcript": "Hello.", "language": "en", "duration_seconds": 1.0,
                "speakers": [], "utterances": []}
        else:
            row.error_code, row.error_message = "not_audio", "The file is not audio."
        return record_transcription_event(session, row, utcnow())


def error_of(response) -> dict[str, Any]:
    return response.get_json()["error"]


# --------------------------------------------------------------------------- endpoints


def test_an_endpoint_is_created_listed_read_and_deleted(client, auth):
    created = client.post(ENDPOINTS, json={"url": HOOK + "?token=a%2Fb", "description": "n8n"},
                          headers=auth)
    assert created.status_code == 201, created.get_json()
    endpoint = created.get_json()
    assert endpoint == {"id": endpoint["id"], "object": "webhook_endpoint",
                        "url": HOOK + "?token=a%2Fb", "events": EVENTS, "description": "n8n",
                        "created_at": endpoint["created_at"]}
    assert endpoint["id"].startswith("we_")
    second = subscribe(client, auth, events=["transcription.failed"] * 2)
    assert second["events"] == ["transcription.failed"] and second["description"] is None

    listed = client.get(ENDPOINTS, headers=auth).get_json()
    assert listed == {"object": "list", "data": [endpoint, second]}
    path = f"{ENDPOINTS}/{endpoint['id']}"
    assert client.get(path, headers=auth).get_json() == endpoint

    deleted = client.delete(path, headers=auth)
    assert deleted.status_code == 200
    assert deleted.get_json() == {"id": endpoint["id"], "object": "webhook_endpoint",
                                  "deleted": True}
    assert client.get(path, headers=auth).status_code == 404
    assert client.get(ENDPOINTS, headers=auth).get_json()["data"] == [second]
    again = client.delete(path, headers=auth)  # an unsubscribe may be retried
    assert again.status_code == 200 and again.get_json() == deleted.get_json()


def test_another_accounts_endpoint_is_not_found(client, auth, other_auth):
    theirs = subscribe(client, other_auth)
    path = f"{ENDPOINTS}/{theirs['id']}"
    for response in (client.get(path, headers=auth), client.delete(path, headers=auth),
                     client.get(f"{ENDPOINTS}/we_nope", headers=auth)):
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
    assert client.get(ENDPOINTS, headers=auth).get_json()["data"] == []
    assert client.get(path, headers=other_auth).status_code == 200  # still theirs


@pytest.mark.parametrize(("body", "field", "says"), [
    ({}, "url", "Missing"),
    ({"url": "ftp://127.0.0.1/hook"}, "url", "http"),
    ({"url": HOOK, "events": ["transcription.done"]}, "events", "transcription.completed"),
    ({"url": HOOK, "events": []}, "events", "transcription.failed"),
    ({"url": HOOK, "events": "transcription.completed"}, "events", "list"),
    ({"url": HOOK, "description": "x" * 201}, "description", "200"),
    ({"url": HOOK, "secret": "mine"}, "secret", "Unknown"),
])
def test_endpoint_bodies_are_checked_field_by_field(client, auth, body, field, says):
    response = client.post(ENDPOINTS, json=body, headers=auth)
    assert response.status_code == 422, response.get_json()
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert says in " ".join(error["fields"][field])


def test_an_account_has_a_bounded_number_of_endpoints(client, auth):
    from app.webhooks.service import MAX_ENDPOINTS

    for _ in range(MAX_ENDPOINTS):
        subscribe(client, auth)
    refused = client.post(ENDPOINTS, json={"url": HOOK}, headers=auth)
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "webhook_endpoint_limit"
    assert error_of(refused)["max_endpoints"] == MAX_ENDPOINTS


# --------------------------------------------------------------------------- URL check


@pytest.fixture
def trap() -> Iterator[Listener]:
    """A listener on 127.0.0.2: loopback, and not on the tests' allowlist (127.0.0.1)."""
    with Listener("127.0.0.2") as listener:
        yield listener


def test_a_refused_address_is_refused_at_creation_and_never_connected_to(client, auth,
                                                                        database, trap):
    url = trap.url("/hook?x=1")
    refusals = [
        ("url", client.post(ENDPOINTS, json={"url": url}, headers=auth)),
        ("webhook_url", create(client, auth, V1, webhook_url=url)),
        ("webhook_url", create(client, auth, QUICKSTART, webhook_url=url)),
        # A one-request upload is refused before its file is stored.
        ("webhook_url", client.post(V1, headers=auth, content_type="multipart/form-data",
                                    data={"file": (io.BytesIO(b"RIFF" * 100), "a.wav"),
                                          "webhook_url": url})),
    ]
    for field, response in refusals:
        assert response.status_code == 422, response.get_json()
        error = error_of(response)
        assert error["code"] == "validation_error"
        (message,) = error["fields"][field]
        assert "127.0.0.2 is loopback" in message and "public" in message
    time.sleep(0.3)  # room for a connection to be counted, were one made
    assert trap.connections == 0
    with database.session() as session:
        for table in (Transcription, Upload):
            assert session.scalar(select(func.count()).select_from(table)) == 0
    assert client.get(ENDPOINTS, headers=auth).get_json()["data"] == []


@pytest.mark.parametrize(("url", "says"), [
    ("http://nowhere.invalid/hook", "could not be resolved"),
    ("http://127.0.0.1:99999/hook", "port"),
    ("http://127.0.0.1:0/hook", "port"),
    ("http://127.0.0.1:9/a b", "percent-encode"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[::1]:9/hook", "loopback"),
])
def test_unusable_webhook_urls_are_refused_naming_the_field(client, auth, url, says):
    for field, response in (("url", client.post(ENDPOINTS, json={"url": url}, headers=auth)),
                            ("webhook_url", create(client, auth, V1, webhook_url=url))):
        assert response.status_code == 422, response.get_json()
        assert says in " ".join(error_of(response)["fields"][field])


# --------------------------------------------------------------------------- deliveries


def deliveries_path(transcription_id: str) -> str:
    return f"{V1}/{transcription_id}/webhook_deliveries"


def test_deliveries_are_listed_with_their_attempts(client, auth, database):
    endpoint = subscribe(client, auth, url="http://127.0.0.1:9/sub")
    transcription_id = create_id(client, auth, webhook_url=HOOK)
    listed = client.get(deliveries_path(transcription_id), headers=auth)
    assert listed.status_code == 200 and listed.get_json() == {"object": "list", "data": []}

    own, subscribed = finish(database, transcription_id)
    started = utcnow()
    with database.session() as session:  # what the dispatcher writes after a 503
        session.add(WebhookAttempt(delivery_id=own.id, attempted_at=started, status_code=503,
                                   latency_ms=42, error="HTTP 503 Service Unavailable",
                                   next_attempt_at=started + timedelta(seconds=5)))
        row = session.get(WebhookDelivery, own.id)
        row.attempts, row.last_status_code = 1, 503
        row.last_error = "HTTP 503 Service Unavailable"
        row.next_attempt_at = started + timedelta(seconds=5)

    data = client.get(deliveries_path(transcription_id), headers=auth).get_json()["data"]
    assert [item["id"] for item in data] == [own.id, subscribed.id]
    first = data[0]
    assert set(first) == {"id", "object", "event", "url", "endpoint_id", "status",
                          "last_status_code", "last_error", "next_attempt_at", "created_at",
                          "delivered_at", "attempts"}
    assert first["object"] == "webhook_delivery" and first["event"] == "transcription.completed"
    assert first["url"] == HOOK and first["endpoint_id"] is None
    assert first["status"] == "pending" and first["last_status_code"] == 503
    (attempt,) = first["attempts"]
    assert attempt == {"attempted_at": attempt["attempted_at"], "status_code": 503,
                       "latency_ms": 42, "error": "HTTP 503 Service Unavailable",
                       "next_attempt_at": attempt["next_attempt_at"]}
    assert data[1]["endpoint_id"] == endpoint["id"] and data[1]["attempts"] == []
    assert data[1]["url"] == "http://127.0.0.1:9/sub"


def test_deliveries_of_another_account_or_a_deleted_transcription_are_not_found(
        client, auth, other_auth, database):
    transcription_id = create_id(client, auth, webhook_url=HOOK)
    (delivery,) = finish(database, transcription_id)
    resend = f"{deliveries_path(transcription_id)}/{delivery.id}/resend"
    for response in (client.get(deliveries_path(transcription_id), headers=other_auth),
                     client.post(resend, headers=other_auth),
                     client.get(deliveries_path("tr_nope"), headers=auth)):
        assert response.status_code == 404
    assert client.delete(f"{V1}/{transcription_id}", headers=auth).status_code == 200
    assert client.get(deliveries_path(transcription_id), headers=auth).status_code == 404
    assert client.post(resend, headers=auth).status_code == 404


@pytest.fixture
def redis(settings) -> Iterator[Redis]:
    connection = Redis.from_url(settings.redis_url)
    yield connection
    connection.close()


def test_resend_makes_a_delivery_due_now_and_rings_the_doorbell(client, auth, database,
                                                                settings, redis):
    transcription_id = create_id(client, auth, webhook_url=HOOK)
    (delivery,) = finish(database, transcription_id)
    with database.session() as session:  # as the dispatcher leaves one that gave up
        row = session.get(WebhookDelivery, delivery.id)
        row.status, row.next_attempt_at, row.attempts = "failed", None, 8
        row.last_error = "gave up after 8 attempts: HTTP 500 Internal Server Error"
    redis.delete(doorbell_key(settings))

    before = utcnow()
    response = client.post(f"{deliveries_path(transcription_id)}/{delivery.id}/resend",
                           headers=auth)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["id"] == delivery.id and body["status"] == "pending"
    assert body["object"] == "webhook_delivery" and isinstance(body["attempts"], list)
    with database.session() as session:
        row = session.get(WebhookDelivery, delivery.id)
        assert row.status == "pending" and row.body == delivery.body  # same message
        due = row.next_attempt_at
        due = due if due.tzinfo else due.replace(tzinfo=before.tzinfo)
        assert before <= due <= utcnow()
    assert redis.llen(doorbell_key(settings)) == 1


def test_resend_only_finds_a_delivery_of_that_transcription(client, auth, database):
    first = create_id(client, auth, webhook_url=HOOK)
    second = create_id(client, auth, webhook_url=HOOK)
    (delivery,) = finish(database, first)
    finish(database, second)
    for path in (f"{deliveries_path(second)}/{delivery.id}/resend",
                 f"{deliveries_path(first)}/msg_nope/resend"):
        response = client.post(path, headers=auth)
        assert response.status_code == 404
        assert "webhook_deliveries" in error_of(response)["message"]


def test_deleting_an_endpoint_stops_its_deliveries(client, auth, database):
    endpoint = subscribe(client, auth, url="http://127.0.0.1:9/sub")
    first = create_id(client, auth, webhook_url=HOOK)
    own, subscribed = finish(database, first)
    assert client.delete(f"{ENDPOINTS}/{endpoint['id']}", headers=auth).status_code == 200

    data = client.get(deliveries_path(first), headers=auth).get_json()["data"]
    assert [(item["id"], item["status"]) for item in data] == [(own.id, "pending"),
                                                             (subscribed.id, "failed")]
    assert "endpoint deleted" in data[1]["last_error"] and data[1]["next_attempt_at"] is None
    refused = client.post(f"{deliveries_path(first)}/{subscribed.id}/resend", headers=auth)
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "webhook_delivery_not_resendable"

    later = create_id(client, auth)  # no webhook_url; its only subscriber is gone
    assert finish(database, later, "failed") == []


def test_a_delivery_and_its_resend_reach_the_receiver_byte_for_byte(client, auth, database,
                                                                   settings):
    """Through the real dispatcher: the query string untouched, the body as recorded, the
    same webhook-id again on resend, each signed with the account's secret."""
    from worker.webhooks.dispatcher import Dispatcher

    secret = client.get("/api/v1/webhook_secret", headers=auth).get_json()["secret"]
    query = "?sig=a%2Fb&x=1&x=2&empty=&plus=a+b&%7E=~"
    with Receiver() as receiver:
        transcription_id = create_id(client, auth, webhook_url=receiver.url("/hook" + query))
        (delivery,) = finish(database, transcription_id)
        dispatcher = Dispatcher(settings, database)
        try:
            assert dispatcher.run_once() == 1
            resent = client.post(f"{deliveries_path(transcription_id)}/{delivery.id}/resend",
                                 headers=auth)
            assert resent.status_code == 202
            assert dispatcher.run_once() == 1
        finally:
            dispatcher.close()
    first, second = receiver.requests
    for request in (first, second):
        assert request.method == "POST" and request.target == "/hook" + query
        assert request.body == delivery.body.encode()
        assert request.headers["webhook-id"] == delivery.id
        Webhook(secret).verify(request.body, request.headers)
    history = client.get(deliveries_path(transcription_id), headers=auth).get_json()["data"]
    assert history[0]["status"] == "delivered"
    assert [attempt["status_code"] for attempt in history[0]["attempts"]] == [200, 200]


# --------------------------------------------------------------------------- secret


def test_the_secret_is_made_once_and_rotation_keeps_the_previous_for_a_while(
        client, auth, other_auth, database, settings):
    first = client.get("/api/v1/webhook_secret", headers=auth)
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    secret = first.get_json()
    assert secret == {"object": "webhook_secret", "secret": secret["secret"],
                      "previous_valid_until": None}
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret["secret"])
    assert client.get("/api/v1/webhook_secret", headers=auth).get_json() == secret
    theirs = client.get("/api/v1/webhook_secret", headers=other_auth).get_json()["secret"]
    assert theirs != secret["secret"]

    before = utcnow()
    rotated = client.post("/api/v1/webhook_secret/rotate", headers=auth)
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    new = rotated.get_json()
    assert new["secret"] != secret["secret"] and new["secret"].startswith("whsec_")
    until = datetime.fromisoformat(new["previous_valid_until"])
    overlap = timedelta(seconds=settings.webhooks.secret_overlap_s)
    assert before + overlap <= until <= utcnow() + overlap
    assert client.get("/api/v1/webhook_secret", headers=auth).get_json() == new
    assert client.get("/api/v1/webhook_secret", headers=other_auth).get_json()["secret"] == \
        theirs

    # What deliveries are signed with: both secrets until the overlap ends, then the new.
    with database.session() as session:
        assert signing_secrets(session, "acct_default", utcnow()) == [new["secret"],
                                                                      secret["secret"]]
        assert signing_secrets(session, "acct_default", until + timedelta(seconds=1)) == [
            new["secret"]]


def run_cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"VOXHOOK_DATA_DIR": str(settings.data_dir),
           "VOXHOOK_DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_the_cli_prints_the_secret_alone_and_rotates_it(settings, database, client, auth):
    shown = run_cli(settings, "webhooks", "secret", "acct_default")
    assert shown.returncode == 0, shown.stderr
    secret = shown.stdout.strip()
    assert shown.stdout == secret + "\n" and secret.startswith("whsec_")
    assert secret not in shown.stderr
    assert run_cli(settings, "webhooks", "secret", "acct_default").stdout.strip() == secret
    assert client.get("/api/v1/webhook_secret", headers=auth).get_json()["secret"] == secret

    rotated = run_cli(settings, "webhooks", "secret", "acct_default", "--rotate")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new.startswith("whsec_") and new != secret
    assert "previous secret also signs" in rotated.stderr and secret not in rotated.stderr
    with database.session() as session:
        account = session.get(Account, "acct_default")
        assert (account.webhook_secret, account.webhook_secret_previous) == (new, secret)

    missing = run_cli(settings, "webhooks", "secret", "acct_nope")
    assert missing.returncode == 1 and "acct_nope" in missing.stderr
    assert missing.stdout == ""


# --------------------------------------------------------------------------- README snippets


def readme_block(language: str, contains: str) -> str:
    """The README's fenced ``language`` block that contains ``contains``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.DOTALL)
    (block,) = [block for block in blocks if contains in block]
    return block


def signed_delivery(secrets: list[str], timestamp: int | None = None
                    ) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"type": "transcription.completed", "data": {"text": "Grüße"}},
                      ensure_ascii=False).encode()
    when = int(time.time()) if timestamp is None else timestamp
    return signed_headers("msg_0123456789abcdef01234567", when, body, secrets), body


def test_the_readme_python_verification_accepts_our_signatures_only(client, auth):
    namespace: dict[str, Any] = {}
    exec(readme_block("python", "def verify_webhook"), namespace)  # the README, as printed
    verify = namespace["verify_webhook"]
    old = client.get("/api/v1/webhook_secret", headers=auth).get_json()["secret"]
    new = client.post("/api/v1/webhook_secret/rotate", headers=auth).get_json()["secret"]

    headers, body = signed_delivery([new, old])  # during a rotation's overlap
    assert verify(new, headers, body) and verify(old, headers, body)
    assert Webhook(new).verify(body, headers) == json.loads(body)  # the library agrees
    changed = body.replace("Grüße".encode(), "Grüsse".encode())
    assert not verify(new, headers, changed)
    assert not verify(new, {**headers, "webhook-id": "msg_other"}, body)
    headers, body = signed_delivery([new])
    assert not verify(old, headers, body)  # after the overlap: the new secret only
    stale, body = signed_delivery([new], int(time.time()) - 600)
    assert not verify(new, stale, body)  # a replay of an old message


@pytest.mark.skipif(shutil.which("node") is None, reason="no Node.js here")
def test_the_readme_javascript_verification_accepts_our_signatures_only(client, auth,
                                                                       tmp_path):
    secret = client.get("/api/v1/webhook_secret", headers=auth).get_json()["secret"]
    headers, body = signed_delivery([secret])
    stale, _ = signed_delivery([secret], int(time.time()) - 600)
    cases = [(secret, headers, body, True),
             (secret, headers, body.replace("Grüße".encode(), "Grüsse".encode()), False),
             (secret, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"])
                                                           + 1)}, body, False),
             (secret, stale, body, False),
             ("whsec_" + "A" * 43 + "=", headers, body, False)]
    script = tmp_path / "verify.js"
    script.write_text(readme_block("js", "function verifyWebhook") + """
const cases = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map(([secret, headers, body]) =>
  verifyWebhook(secret, headers, Buffer.from(body, "base64")))));
""")
    stdin = json.dumps([[s, h, base64.b64encode(b).decode()] for s, h, b, _ in cases])
    result = subprocess.run(["node", str(script)], input=stdin, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [expected for *_, expected in cases]


def test_openapi_documents_the_webhook_api(client):
    spec = client.get("/openapi.json").get_json()
    paths = spec["paths"]
    assert set(paths[ENDPOINTS]) >= {"get", "post"}
    assert set(paths[ENDPOINTS + "/{endpoint_id}"]) >= {"get", "delete"}
    deliveries = V1 + "/{transcription_id}/webhook_deliveries"
    assert "get" in paths[deliveries]
    assert "202" in paths[deliveries + "/{delivery_id}/resend"]["post"]["responses"]
    assert "get" in paths["/api/v1/webhook_secret"]
    assert "post" in paths["/api/v1/webhook_secret/rotate"]
    assert "WebhookEventEnvelope" in spec["components"]["schemas"]
