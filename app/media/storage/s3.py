"""Media in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, …), for deployments whose API
and workers do not share a disk.

The only module that imports boto3 (the ``s3`` extra installs it); :func:`app.media.storage.
storage_from_settings` imports it only when a bucket is configured. Memory stays bounded
whatever the file's size: streams go up in parts of :data:`PART_BYTES` and come down in chunks.

Buckets are never created here: a missing bucket is a configuration mistake to report, not
to paper over with a bucket nobody set up retention, encryption or access rules for. Errors
say what to check (bucket name, endpoint, credentials) and never contain a secret.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import BinaryIO, NoReturn, cast

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from app.config import ConfigError, S3Settings
from app.media.storage.base import (
    CHUNK_BYTES,
    ObjectMissing,
    ObjectTooLarge,
    StorageError,
    StoredObject,
    check_key,
)

log = logging.getLogger(__name__)

#: Size of each part of a multipart upload; S3 refuses parts under 5 MiB (except the last).
#: One part is held in memory at a time.
PART_BYTES = 8 * 1024 * 1024
#: Parallel part uploads of :meth:`S3Storage.save_file` (memory: about this many parts).
UPLOAD_CONCURRENCY = 4

_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}
_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden",
            "InvalidToken", "ExpiredToken", "AllAccessDisabled"}


class S3Storage:
    """Objects under ``settings.prefix`` in ``settings.bucket``.

    Implements :class:`app.media.storage.MediaStorage`. Constructing it makes no request, so the
    API starts even while the bucket is unreachable; the first operation reports the problem.
    """

    def __init__(self, settings: S3Settings) -> None:
        if bool(settings.access_key_id) != bool(settings.secret_access_key):
            raise ConfigError("set both VOXHOOK_S3_ACCESS_KEY_ID and "
                              "VOXHOOK_S3_SECRET_ACCESS_KEY, or neither (boto3's own chain)")
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        # A session of its own: explicit keys when given, else boto3's chain (environment,
        # profile, instance or container role). Clients are thread-safe; sessions are not.
        session = boto3.session.Session(
            aws_access_key_id=settings.access_key_id or None,
            aws_secret_access_key=settings.secret_access_key or None,
            region_name=settings.region or None,
        )
        self._client = session.client("s3", endpoint_url=settings.endpoint_url or None,
                                      config=_client_config(settings))
        self._transfer = TransferConfig(multipart_threshold=PART_BYTES,
                                        multipart_chunksize=PART_BYTES,
                                        max_concurrency=UPLOAD_CONCURRENCY, use_threads=True)
        #: Set once the bucket is known to exist: only then does a 404 from HEAD mean "no key".
        self._bucket_seen = False

    def __repr__(self) -> str:
        endpoint = self.settings.endpoint_url or "AWS"
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint={endpoint!r})"

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def save_stream(self, key: str, stream: BinaryIO, max_bytes: int) -> StoredObject:
        name = self._name(key)
        tally = _Tally(max_bytes)
        part = _read_part(stream, tally)
        try:
            if len(part) < PART_BYTES:  # the whole stream fits in one request
                self._client.put_object(Bucket=self.bucket, Key=name, Body=part)
            else:
                self._multipart(name, part, stream, tally)
        except (BotoCoreError, ClientError) as error:
            self._fail(error, key)
        return StoredObject(key=key, size_bytes=tally.size, sha256=tally.digest.hexdigest())

    def _multipart(self, name: str, part: bytearray, stream: BinaryIO, tally: _Tally) -> None:
        """Upload ``part`` and the rest of ``stream`` part by part; abort on any failure.

        An aborted upload leaves nothing behind (no object, no parts billed for storage).
        """
        upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=name)["UploadId"]
        parts: list[dict[str, object]] = []
        try:
            while part:
                number = len(parts) + 1
                response = self._client.upload_part(Bucket=self.bucket, Key=name, Body=part,
                                                    UploadId=upload_id, PartNumber=number)
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
                part = _read_part(stream, tally)
            self._client.complete_multipart_upload(Bucket=self.bucket, Key=name,
                                                   UploadId=upload_id,
                                                   MultipartUpload={"Parts": parts})
        except BaseException:
            self._abort(name, upload_id)
            raise

    def _abort(self, name: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
        except (BotoCoreError, ClientError) as error:
            # The original failure matters more; a lifecycle rule cleans up what is left.
            log.warning("could not abort multipart upload %s of %s in bucket %s: %s",
                        upload_id, name, self.bucket, error)

    def save_file(self, key: str, path: Path) -> StoredObject:
        name = self._name(key)
        digest = hashlib.sha256()
        with path.open("rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                digest.update(chunk)
        size = path.stat().st_size
        try:
            self._client.upload_file(str(path), self.bucket, name, Config=self._transfer)
        except (BotoCoreError, ClientError, S3UploadFailedError) as error:
            self._fail(error, key)
        path.unlink()  # a move, like LocalStorage's; kept when the upload failed
        return StoredObject(key=key, size_bytes=size, sha256=digest.hexdigest())

    def local_path(self, key: str) -> Path | None:
        check_key(key)
        return None

    def download_to(self, key: str, destination: Path) -> Path:
        body = self.open_read(key)  # ObjectMissing before the destination is touched
        try:
            with body, destination.open("wb") as sink:
                while chunk := body.read(CHUNK_BYTES):
                    sink.write(chunk)
        except BaseException as error:
            destination.unlink(missing_ok=True)  # no half file for the caller to trust
            if isinstance(error, (BotoCoreError, ClientError)):
                self._fail(error, key)
            raise
        return destination

    def open_read(self, key: str) -> BinaryIO:
        name = self._name(key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError) as error:
            self._fail(error, key)
        return cast(BinaryIO, response["Body"])  # botocore's StreamingBody, an io.IOBase

    def delete(self, key: str) -> bool:
        # S3's DELETE succeeds whether or not the object was there; HEAD tells them apart.
        if not self.exists(key):
            return False
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as error:
            self._fail(error, key)
        return True

    def exists(self, key: str) -> bool:
        name = self._name(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _code(error) not in _MISSING_KEY:
                self._fail(error, key)
            # HEAD answers a bare 404 for a missing bucket too: make sure it is the key.
            if not self._bucket_seen:
                self.check()
            return False
        except BotoCoreError as error:
            self._fail(error, key)
        self._bucket_seen = True
        return True

    def check(self) -> None:
        """Raise :class:`StorageError` saying what to fix unless the bucket can be reached.

        Cheap (one HEAD request); readiness probes may call it.
        """
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if _code(error) in {"404", "NoSuchBucket", "NotFound"}:
                raise self._no_bucket() from error
            self._fail(error, None)
        except BotoCoreError as error:
            self._fail(error, None)
        self._bucket_seen = True

    def _no_bucket(self) -> StorageError:
        return StorageError(f"S3 bucket {self.bucket!r} does not exist{self._where()}: check "
                            "VOXHOOK_S3_BUCKET and VOXHOOK_S3_ENDPOINT_URL (buckets are not "
                            "created automatically)")

    def _where(self) -> str:
        endpoint = self.settings.endpoint_url
        return f" at {endpoint}" if endpoint else f" in AWS region {self.settings.region}"

    def _fail(self, error: Exception, key: str | None) -> NoReturn:
        """Raise the :class:`StorageError` that says what ``error`` means for the operator."""
        if isinstance(error, S3UploadFailedError) and isinstance(
                error.__context__, (ClientError, BotoCoreError)):
            error = error.__context__  # boto3 wraps upload_file's ClientError in a string
        code = _code(error) if isinstance(error, ClientError) else ""
        if key is not None and code in _MISSING_KEY:
            raise ObjectMissing(key) from None
        if code == "NoSuchBucket":
            raise self._no_bucket() from error
        if code in _REFUSED:
            raise StorageError(
                f"S3 refused access to bucket {self.bucket!r}{self._where()} ({code}): check "
                "VOXHOOK_S3_ACCESS_KEY_ID and VOXHOOK_S3_SECRET_ACCESS_KEY (or boto3's "
                "credential chain) and the bucket's permissions") from error
        if isinstance(error, NoCredentialsError):
            raise StorageError(
                f"no S3 credentials for bucket {self.bucket!r}: set VOXHOOK_S3_ACCESS_KEY_ID "
                "and VOXHOOK_S3_SECRET_ACCESS_KEY, or configure boto3's credential chain "
                "(environment, profile, instance role)") from error
        if isinstance(error, EndpointConnectionError):
            raise StorageError(
                f"cannot reach S3{self._where()} for bucket {self.bucket!r}: check "
                "VOXHOOK_S3_ENDPOINT_URL and the network") from error
        what = f"object {key!r}" if key is not None else "the bucket"
        raise StorageError(f"S3 error on {what} in bucket {self.bucket!r}{self._where()}: "
                           f"{error}") from error


class _Tally:
    """Size and SHA-256 of what has been read so far, and the cap on it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.digest = hashlib.sha256()

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise ObjectTooLarge(self.max_bytes)
        self.digest.update(chunk)


def _read_part(stream: BinaryIO, tally: _Tally) -> bytearray:
    """Up to :data:`PART_BYTES` of ``stream``, shorter only at its end.

    Streams may return less than asked (sockets, WSGI inputs), so this reads until the part
    is full; every part but the last must reach S3's minimum part size.
    """
    part = bytearray()
    while len(part) < PART_BYTES:
        chunk = stream.read(min(CHUNK_BYTES, PART_BYTES - len(part)))
        if not chunk:
            break
        tally.add(chunk)
        part += chunk
    return part


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _client_config(settings: S3Settings) -> Config:
    """Timeouts and retries; path-style addressing for non-AWS endpoints.

    MinIO and most self-hosted services do not resolve ``<bucket>.<host>`` names, and all of
    them accept path-style requests. Checksums are sent only where S3 requires them: newer
    botocore adds CRC32 checksums by default, which several S3-compatible services reject,
    and the SHA-256 computed here is what the service checks against clients.
    """
    options: dict[str, object] = {
        "connect_timeout": 10,
        "read_timeout": 60,
        "retries": {"max_attempts": 5, "mode": "standard"},
    }
    if settings.endpoint_url:
        options["s3"] = {"addressing_style": "path"}
    if "request_checksum_calculation" in Config.OPTION_DEFAULTS:  # botocore >= 1.36
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    return Config(**options)
