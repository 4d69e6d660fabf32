"""Shared fixtures: a real Redis, real databases (SQLite, and PostgreSQL where reachable),
a locally built Whisper model, a loopback media server, and the service as processes."""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from app import create_app
from app.billing.keys import create_key
from app.config import MediaLimits, Recovery, Settings
from app.ops.embedded_redis import EmbeddedRedis
from app.store.db import Database
from app.store.migrate import upgrade
from app.store.models import Account
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.media_server import MediaServer
from tests.support.stack import Client, Stack, tiny_pipelines_toml
from tests.support.tiny_whisper import build_tiny_whisper

FIXTURES = Path(__file__).parent / "fixtures"
#: Where a PostgreSQL for tests is looked for (this project's machines and CI have one).
POSTGRES_ADMIN_URL = os.environ.get(
    "VOXHOOK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> bool:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


POSTGRES = _postgres_reachable()
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES, reason=f"no PostgreSQL at {POSTGRES_ADMIN_URL}"))]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False) as server:
        yield server


def make_database_url(backend: str, folder: Path) -> str:
    """A fresh, empty database of ``backend`` (a new PostgreSQL database per call)."""
    if backend == "sqlite":
        return f"sqlite:///{folder / 'voxhook.db'}"
    return create_postgres_database(POSTGRES_ADMIN_URL)


def drop_database(url: str) -> None:
    drop_postgres_database(POSTGRES_ADMIN_URL, url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = make_database_url(request.param, tmp_path)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("models") / "tiny-whisper")


@pytest.fixture(scope="session")
def tiny_diarization(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pyannote speaker-diarization folder of small random models (tests/support)."""
    from tests.support.tiny_pyannote import build_tiny_diarization  # imports torch: lazily

    return build_tiny_diarization(tmp_path_factory.mktemp("models") / "tiny-diarization")


@pytest.fixture(scope="session")
def diarizing_pipelines_file(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path,
                             tiny_diarization: Path) -> Path:
    """The tiny pipeline, able to label speakers: what the service stacks run."""
    path = tmp_path_factory.mktemp("config") / "pipelines.toml"
    path.write_text(tiny_pipelines_toml(tiny_model, diarization=tiny_diarization))
    return path


@pytest.fixture(scope="session")
def pipelines_file(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    path = tmp_path_factory.mktemp("config") / "pipelines.toml"
    path.write_text(tiny_pipelines_toml(tiny_model))
    return path


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_server: EmbeddedRedis,
             pipelines_file: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    redis_url=redis_server.url, pipelines_path=pipelines_file,
                    fetch_allowlist=("127.0.0.1",),
                    # No background sweeps racing the test's own database teardown.
                    media_limits=MediaLimits(sweep_interval_s=0),
                    # No recovery thread either: tests run the passes themselves.
                    recovery=Recovery(interval_s=0),
                    queue_name=f"test-{secrets.token_hex(4)}")


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database.from_settings(settings)
    upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def app(settings: Settings, database: Database):
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def key(database: Database) -> tuple[str, str]:
    """(secret, key id) of a key named "tests" of the default account."""
    with database.session() as session:
        created = create_key(session, "tests")
        return created.secret, created.key.id


@pytest.fixture
def api_key(key: tuple[str, str]) -> str:
    return key[0]


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    """Headers of the default account's key, v1 style."""
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def other(database: Database) -> tuple[dict[str, str], str]:
    """(headers, key id) of a key of another account, ``acct_other``."""
    with database.session() as session:
        session.add(Account(id="acct_other", name="Other"))
        session.flush()
        created = create_key(session, "theirs", "acct_other")
        return {"Authorization": f"Bearer {created.secret}"}, created.key.id


@pytest.fixture
def other_auth(other: tuple[dict[str, str], str]) -> dict[str, str]:
    return other[0]


def write_repeated_wav(source: Path, target: Path, times: int) -> None:
    """A longer WAV made of ``source`` played ``times`` times."""
    with wave.open(str(source)) as reader:
        params, frames = reader.getparams(), reader.readframes(reader.getnframes())
    with wave.open(str(target), "wb") as writer:
        writer.setparams(params)
        writer.writeframes(frames * times)


@pytest.fixture(scope="session")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    folder = tmp_path_factory.mktemp("media")
    for name in ("jfk.flac", "sample.wav"):
        shutil.copy(FIXTURES / name, folder / name)
    (folder / "notes.txt").write_text("This is a text file, not audio.\n" * 20)
    write_repeated_wav(FIXTURES / "sample.wav", folder / "long.wav", times=20)  # 10 minutes
    with MediaServer(folder) as server:
        yield server


@pytest.fixture(scope="session", params=BACKENDS)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_server: EmbeddedRedis, diarizing_pipelines_file: Path) -> Iterator[Stack]:
    """The service running as processes: gunicorn API and one worker, per database backend;
    its pipeline transcribes with the tiny Whisper model and diarizes with the tiny pyannote
    pipeline."""
    folder = tmp_path_factory.mktemp(f"stack-{request.param}")
    database_url = make_database_url(request.param, folder)
    instance = Stack(data_dir=folder / "data", database_url=database_url,
                     redis_url=redis_server.url, pipelines_path=diarizing_pipelines_file)
    try:
        instance.start_api()
        instance.start_worker()
        instance.wait_ready(timeout_s=180)
        yield instance
    finally:
        instance.stop()
        drop_database(database_url)


@pytest.fixture(scope="session")
def stack_key(stack: Stack) -> str:
    return stack.create_key()


@pytest.fixture
def stack_client(stack: Stack, stack_key: str) -> Client:
    return Client(stack.base_url, stack_key)


# --------------------------------------------------------------------------- S3 (moto)

#: Credentials of the loopback S3 server (moto accepts any).
S3_KEY_ID, S3_SECRET = "testing", "dummy-secret-not-used-anywhere"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the whole module."""
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def s3_admin(s3_endpoint: str) -> Any:
    """A plain boto3 client, to set up buckets and look behind the storage's back."""
    boto3 = pytest.importorskip("boto3")
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET)


@pytest.fixture(scope="module")
def bucket(s3_admin: Any) -> str:
    """One bucket for the module; :func:`s3_storage` empties it before each test."""
    name = f"voxhook-test-{uuid.uuid4().hex[:12]}"
    s3_admin.create_bucket(Bucket=name)
    return name
