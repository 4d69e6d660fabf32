"""Media storage: one contract, run against the data directory and a real S3 server.

The S3 side talks to moto's S3 server on loopback (never AWS), started once for the module;
each test gets a bucket of its own. boto3 and moto are imported only where the S3 cases need
them, so the local cases run without the ``s3`` extra.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from app.config import ConfigError, S3Settings, Settings
from app.media.storage import (
    LocalStorage,
    MediaStorage,
    ObjectMissing,
    ObjectTooLarge,
    StorageError,
    storage_from_settings,
)
from tests.conftest import S3_KEY_ID, S3_SECRET

SECRET = S3_SECRET
MIB = 1024 * 1024
#: More than two 8 MiB parts, and not a whole number of them.
LARGE_BYTES = 20 * MIB + 12345


def s3_settings(endpoint: str, bucket: str) -> S3Settings:
    return S3Settings(bucket=bucket, endpoint_url=endpoint, region="us-east-1",
                      prefix="media/", access_key_id=S3_KEY_ID, secret_access_key=SECRET)


@pytest.fixture(scope="module")
def s3_module_storage(s3_endpoint: str, bucket: str) -> MediaStorage:
    from app.media.storage.s3 import S3Storage

    return S3Storage(s3_settings(s3_endpoint, bucket))  # built once: a session is slow to make


@pytest.fixture
def s3_storage(s3_module_storage: MediaStorage, s3_admin: Any, bucket: str) -> MediaStorage:
    for upload in s3_admin.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3_admin.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                        UploadId=upload["UploadId"])
    for item in s3_admin.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3_admin.delete_object(Bucket=bucket, Key=item["Key"])
    return s3_module_storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> MediaStorage:
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    return request.getfixturevalue("s3_storage")


@pytest.fixture
def leftovers(storage: MediaStorage, request: pytest.FixtureRequest) -> Callable[[], list[str]]:
    """Everything the storage holds: files under the root, or objects and unfinished uploads."""
    if isinstance(storage, LocalStorage):
        return lambda: sorted(str(p.relative_to(storage.root)) for p in storage.root.rglob("*")
                              if p.is_file())
    admin = request.getfixturevalue("s3_admin")
    bucket = request.getfixturevalue("bucket")

    def in_bucket() -> list[str]:
        objects = admin.list_objects_v2(Bucket=bucket).get("Contents", [])
        uploads = admin.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [o["Key"] for o in objects] + [f"upload of {u['Key']}" for u in uploads]

    return in_bucket


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A file of :data:`LARGE_BYTES` pseudo-random bytes, and its SHA-256, written in chunks."""
    path = tmp_path_factory.mktemp("large") / "large.bin"
    generator = random.Random(7)
    digest = hashlib.sha256()
    with path.open("wb") as sink:
        remaining = LARGE_BYTES
        while remaining:
            chunk = generator.randbytes(min(MIB, remaining))
            digest.update(chunk)
            sink.write(chunk)
            remaining -= len(chunk)
    return path, digest.hexdigest()


class SizedReads(io.RawIOBase):
    """A stream that insists on bounded reads and may fail part-way, like a dropped client."""

    def __init__(self, source: BinaryIO, fail_after: int | None = None) -> None:
        self.source = source
        self.fail_after = fail_after
        self.given = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert 0 < size <= 8 * MIB, f"unbounded read({size})"
        if self.fail_after is not None and self.given >= self.fail_after:
            raise OSError("client went away")
        chunk = self.source.read(min(size, 64 * 1024 + 1))  # short reads, like a socket
        self.given += len(chunk)
        return chunk


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def test_save_stream_round_trip(storage: MediaStorage, tmp_path: Path) -> None:
    data = b"RIFF fake audio \x00\xff" * 100
    stored = storage.save_stream("uploads/up_1", io.BytesIO(data), max_bytes=len(data))
    assert (stored.key, stored.size_bytes) == ("uploads/up_1", len(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert storage.exists("uploads/up_1")
    with storage.open_read("uploads/up_1") as stream:
        assert stream.read() == data
    destination = storage.download_to("uploads/up_1", tmp_path / "copy.bin")
    assert destination.read_bytes() == data


def test_empty_stream_is_an_empty_object(storage: MediaStorage) -> None:
    stored = storage.save_stream("uploads/empty", io.BytesIO(b""), max_bytes=10)
    assert stored.size_bytes == 0 and stored.sha256 == hashlib.sha256(b"").hexdigest()
    with storage.open_read("uploads/empty") as stream:
        assert stream.read() == b""


def test_large_stream_round_trips_in_parts(storage: MediaStorage, large_file: tuple[Path, str],
                                           tmp_path: Path, request: pytest.FixtureRequest
                                           ) -> None:
    path, sha256 = large_file
    with path.open("rb") as source:
        stored = storage.save_stream("uploads/large", SizedReads(source), max_bytes=LARGE_BYTES)
    assert (stored.size_bytes, stored.sha256) == (LARGE_BYTES, sha256)
    copy = storage.download_to("uploads/large", tmp_path / "large.copy")
    assert copy.stat().st_size == LARGE_BYTES and file_sha256(copy) == sha256
    if not isinstance(storage, LocalStorage):  # three parts of 8, 8 and 4 MiB
        head = request.getfixturevalue("s3_admin").head_object(
            Bucket=request.getfixturevalue("bucket"), Key="media/uploads/large")
        assert head["ETag"].strip('"').endswith("-3")


def test_stream_at_the_limit_is_accepted(storage: MediaStorage) -> None:
    assert storage.save_stream("uploads/x", io.BytesIO(b"12345"), max_bytes=5).size_bytes == 5


@pytest.mark.parametrize("max_bytes", [100, 10 * MIB], ids=["one-part", "multipart"])
def test_over_the_limit_leaves_nothing(storage: MediaStorage, large_file: tuple[Path, str],
                                       leftovers: Callable[[], list[str]], max_bytes: int
                                       ) -> None:
    path, _ = large_file
    with path.open("rb") as source, pytest.raises(ObjectTooLarge) as raised:
        storage.save_stream("uploads/big", SizedReads(source), max_bytes=max_bytes)
    assert raised.value.max_bytes == max_bytes
    assert not storage.exists("uploads/big")
    assert leftovers() == []


def test_failing_stream_leaves_nothing(storage: MediaStorage, large_file: tuple[Path, str],
                                       leftovers: Callable[[], list[str]]) -> None:
    path, _ = large_file
    with path.open("rb") as source, pytest.raises(OSError, match="client went away"):
        storage.save_stream("uploads/cut", SizedReads(source, fail_after=12 * MIB), 100 * MIB)
    assert leftovers() == []


def test_save_file_moves(storage: MediaStorage, tmp_path: Path) -> None:
    source = tmp_path / "fetched.wav"
    source.write_bytes(b"fetched media" * 1000)
    stored = storage.save_file("fetched/job_1", source)
    assert not source.exists()
    assert stored.size_bytes == 13000
    assert stored.sha256 == hashlib.sha256(b"fetched media" * 1000).hexdigest()
    with storage.open_read("fetched/job_1") as stream:
        assert stream.read() == b"fetched media" * 1000


def test_local_path_only_for_local_storage(storage: MediaStorage) -> None:
    storage.save_stream("uploads/here", io.BytesIO(b"x"), max_bytes=1)
    path = storage.local_path("uploads/here")
    if isinstance(storage, LocalStorage):
        assert path is not None and path.read_bytes() == b"x"
    else:
        assert path is None


def test_missing_key(storage: MediaStorage, tmp_path: Path) -> None:
    destination = tmp_path / "never.bin"
    with pytest.raises(ObjectMissing):
        storage.download_to("uploads/nothing", destination)
    assert not destination.exists()
    with pytest.raises(ObjectMissing):
        storage.open_read("uploads/nothing")
    assert not storage.exists("uploads/nothing")
    assert storage.local_path("uploads/nothing") is None


def test_delete_says_whether_there_was_an_object(storage: MediaStorage) -> None:
    storage.save_stream("uploads/gone", io.BytesIO(b"bye"), max_bytes=3)
    assert storage.delete("uploads/gone") is True
    assert not storage.exists("uploads/gone")
    assert storage.delete("uploads/gone") is False


@pytest.mark.parametrize("key", ["../x", "/abs", "", "a/../b", "uploads/"])
def test_unsafe_keys_are_refused(storage: MediaStorage, key: str, tmp_path: Path) -> None:
    calls: list[Callable[[], object]] = [
        lambda: storage.save_stream(key, io.BytesIO(b"x"), max_bytes=1),
        lambda: storage.save_file(key, tmp_path / "any"),
        lambda: storage.local_path(key),
        lambda: storage.download_to(key, tmp_path / "out"),
        lambda: storage.open_read(key),
        lambda: storage.delete(key),
        lambda: storage.exists(key),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="unsafe storage key"):
            call()


def test_s3_keys_carry_the_prefix(s3_storage: MediaStorage, s3_endpoint: str, bucket: str,
                                  s3_admin: Any) -> None:
    from app.media.storage.s3 import S3Storage

    settings = s3_settings(s3_endpoint, bucket)
    s3_storage.save_stream("uploads/a", io.BytesIO(b"a"), max_bytes=1)
    S3Storage(S3Settings(**{**vars(settings), "prefix": "tenant-b/"})).save_stream(
        "uploads/a", io.BytesIO(b"b"), max_bytes=1)
    keys = [o["Key"] for o in s3_admin.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["media/uploads/a", "tenant-b/uploads/a"]


def test_missing_bucket_is_a_clear_error(s3_endpoint: str, tmp_path: Path) -> None:
    from app.media.storage.s3 import S3Storage

    storage = S3Storage(s3_settings(s3_endpoint, "voxhook-no-such-bucket"))
    source = tmp_path / "f.bin"
    source.write_bytes(b"x")
    calls: list[Callable[[], object]] = [
        lambda: storage.save_stream("uploads/a", io.BytesIO(b"x"), max_bytes=1),
        lambda: storage.save_file("uploads/a", source),
        lambda: storage.open_read("uploads/a"),
        lambda: storage.exists("uploads/a"),
        lambda: storage.delete("uploads/a"),
        storage.check,
    ]
    for call in calls:
        with pytest.raises(StorageError, match="'voxhook-no-such-bucket' does not exist") as raised:
            call()
        assert not isinstance(raised.value, ObjectMissing)
        assert SECRET not in str(raised.value)
    assert source.exists()  # a failed move keeps the file


def test_half_configured_credentials_are_refused() -> None:
    from app.media.storage.s3 import S3Storage

    with pytest.raises(ConfigError, match="VOXHOOK_S3_SECRET_ACCESS_KEY"):
        S3Storage(S3Settings(bucket="b", access_key_id="only-the-id"))


def test_repr_hides_the_secret(s3_endpoint: str) -> None:
    from app.media.storage.s3 import S3Storage

    assert SECRET not in repr(S3Storage(s3_settings(s3_endpoint, "b")))


def test_storage_from_settings(tmp_path: Path) -> None:
    s3_storage = pytest.importorskip("app.media.storage.s3")
    local = storage_from_settings(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "media" / "store"
    # Constructing the S3 storage makes no request, so an unreachable endpoint is fine here.
    bucketed = storage_from_settings(Settings(data_dir=tmp_path, s3=S3Settings(
        bucket="media-bucket", endpoint_url="http://127.0.0.1:9", access_key_id="testing",
        secret_access_key=SECRET)))
    assert isinstance(bucketed, s3_storage.S3Storage) and bucketed.bucket == "media-bucket"


@pytest.mark.parametrize(("operation", "code", "status"), [
    ("put_object", "InvalidAccessKeyId", 403),
    ("put_object", "SignatureDoesNotMatch", 403),
    ("head_object", "403", 403),
])
def test_refused_credentials_say_what_to_check(s3_endpoint: str, operation: str, code: str,
                                               status: int) -> None:
    """moto accepts any credentials, so S3's refusal is stubbed on the client."""
    from botocore.stub import Stubber

    from app.media.storage.s3 import S3Storage

    storage = S3Storage(s3_settings(s3_endpoint, "media-bucket"))
    with Stubber(storage._client) as stub:
        stub.add_client_error(operation, service_error_code=code, http_status_code=status)
        with pytest.raises(StorageError, match="refused access to bucket 'media-bucket'") as raised:
            if operation == "put_object":
                storage.save_stream("uploads/a", io.BytesIO(b"x"), max_bytes=1)
            else:
                storage.exists("uploads/a")
    message = str(raised.value)
    assert "VOXHOOK_S3_ACCESS_KEY_ID" in message and SECRET not in message
