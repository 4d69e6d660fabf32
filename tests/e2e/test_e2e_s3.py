"""Media in an S3-compatible bucket, end to end: the API streams an upload into the bucket,
the worker reads it from there, and deletes it when the job ends. The bucket is moto's S3
server on loopback (what we cannot reach, played by a local server)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from app.ops.embedded_redis import EmbeddedRedis
from tests.conftest import S3_KEY_ID, S3_SECRET
from tests.support.paths import FIXTURES
from tests.support.stack import Client, Stack, running_stack

pytestmark = pytest.mark.e2e

AUDIO = (FIXTURES / "jfk.flac").read_bytes()


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
             pipelines_file: Path, s3_endpoint: str, bucket: str) -> Iterator[Stack]:
    env = {"VOXHOOK_S3_BUCKET": bucket, "VOXHOOK_S3_ENDPOINT_URL": s3_endpoint,
           "VOXHOOK_S3_PREFIX": "media/", "VOXHOOK_S3_ACCESS_KEY_ID": S3_KEY_ID,
           "VOXHOOK_S3_SECRET_ACCESS_KEY": S3_SECRET}
    with running_stack(tmp_path_factory.mktemp("s3-stack"), redis_server.url, pipelines_file,
                       extra_env=env) as stack:
        yield stack


def objects(s3_admin: Any, bucket: str) -> list[str]:
    return [item["Key"] for item in
            s3_admin.list_objects_v2(Bucket=bucket).get("Contents", [])]


def bucket_empties(s3_admin: Any, bucket: str, timeout_s: float = 10) -> bool:
    """Whether the bucket is (or becomes) empty: the worker deletes the media just after
    it commits the job's end, so a client can see ``completed`` a moment earlier."""
    deadline = time.monotonic() + timeout_s
    while objects(s3_admin, bucket):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_uploads_live_in_the_bucket_and_go_when_the_job_ends(
        s3_stack: Stack, s3_admin: Any, bucket: str) -> None:
    """A signed-URL upload lands in the bucket (nothing in the data directory), the worker
    transcribes it from the bucket, and the object is deleted when the job completes; the
    transcript stays."""
    client = Client(s3_stack.base_url, s3_stack.create_key())
    upload = client.post("/api/v1/uploads", json={"filename": "jfk.flac"}).json()
    put = requests.put(upload["upload_url"], data=AUDIO, timeout=30)
    assert put.status_code == 200, put.text
    stored = objects(s3_admin, bucket)
    assert len(stored) == 1 and stored[0].startswith(f"media/uploads/{upload['id']}")
    body = s3_admin.get_object(Bucket=bucket, Key=stored[0])["Body"].read()
    assert body == AUDIO
    assert not [p for p in (s3_stack.data_dir / "media").rglob("*") if p.is_file()]
    created = client.post("/api/v1/transcriptions",
                          json={"source": "upload", "upload_id": upload["id"]})
    assert created.status_code == 201, created.text
    done = client.wait_final(f"/api/v1/transcriptions/{created.json()['id']}")
    assert done["status"] == "completed", done
    assert done["audio_duration_seconds"] == pytest.approx(11.0, abs=0.1)
    assert bucket_empties(s3_admin, bucket), objects(s3_admin, bucket)
    again = client.get(f"/api/v1/transcriptions/{created.json()['id']}").json()
    assert again["result"] == done["result"]


def test_one_request_upload_goes_to_the_bucket(s3_stack: Stack, s3_admin: Any,
                                               bucket: str) -> None:
    """A multipart one-request upload is streamed into the bucket and transcribed too."""
    client = Client(s3_stack.base_url, s3_stack.create_key())
    created = client.post("/transcribe", files={"file": ("jfk.flac", AUDIO, "audio/flac")},
                          data={"language": "en"})
    assert created.status_code == 200, created.text
    done = client.wait_final(f"/transcribe/{created.json()['id']}")
    assert done["status"] == "completed", done
    assert bucket_empties(s3_admin, bucket), objects(s3_admin, bucket)
