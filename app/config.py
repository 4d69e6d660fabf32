"""Settings: the one place that reads the environment.

Everything configurable is read once into a frozen :class:`Settings` and handed down to
constructors; no other module reads ``os.environ``. Tests build their own ``Settings`` instead of
patching globals.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

#: Environment variables this module reads, with what each means. Shown by ``voxhook --help``.
ENVIRONMENT = {
    "VOXHOOK_DATA_DIR": "where SQLite, media and the embedded Redis live (default ./data)",
    "VOXHOOK_DATABASE_URL": "SQLAlchemy URL; default SQLite under the data directory",
    "VOXHOOK_REDIS_URL": "Redis for the job queues (default redis://127.0.0.1:6379/0)",
    "VOXHOOK_QUEUE": "name of the RQ queue (default voxhook-transcriptions); deployments "
    "sharing one Redis use different names",
    "VOXHOOK_PIPELINES": "TOML file declaring the pipelines (default: one built-in pipeline)",
    "VOXHOOK_MODEL": "faster-whisper model name or local folder of the default pipeline",
    "VOXHOOK_DIARIZATION_MODEL": "pyannote speaker-diarization folder or hub id for the "
    "default pipeline (default: none, no speaker labels)",
    "HF_TOKEN": "Hugging Face token, to download a diarization model from the hub once",
    "VOXHOOK_DEVICE": "auto | cuda | cpu, for pipelines that do not say",
    "VOXHOOK_COMPUTE_TYPE": "auto | float16 | int8_float16 | int8 | float32, likewise",
    "VOXHOOK_FETCH_ALLOWLIST": "comma-separated hosts or CIDR ranges the fetcher may reach "
    "although they are private (on-premises deployments, tests)",
    "VOXHOOK_MAX_DOWNLOAD_MB": "largest media file fetched, in MB (default 1024)",
    "VOXHOOK_LOG_LEVEL": "DEBUG | INFO | WARNING (default INFO)",
    "VOXHOOK_PUBLIC_URL": "the URL clients reach the API at, shown by `serve`",
    "VOXHOOK_BILLING": "off (default: costs shown, nothing enforced) | on",
    "VOXHOOK_API_WORKERS": "gunicorn processes (default 2)",
    "VOXHOOK_API_THREADS": "threads per gunicorn process (default 4)",
}


#: Compute types CTranslate2 accepts; ``auto`` is float16 on a GPU, int8 on a CPU.
COMPUTE_TYPES = ("auto", "float16", "int8_float16", "int8", "int8_float32", "float32", "bfloat16")


class ConfigError(ValueError):
    """A setting has a value the service cannot use; the message names it and says why."""


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on downloading media, so one bad URL cannot exhaust the worker."""

    max_bytes: int = 1024 * 1024 * 1024
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 900.0
    max_redirects: int = 5


@dataclass(frozen=True)
class JobTimeouts:
    """How long a transcription job may run: a fixed allowance plus a share per audio second.

    The job starts under ``base_s`` (enough to download and decode); once the audio's length
    is known the deadline is moved to ``base_s + per_audio_second * duration``.
    """

    base_s: int = 600
    per_audio_second: float = 2.0

    def for_duration(self, duration_s: float) -> int:
        """The whole job's allowance, in seconds, for audio of ``duration_s`` seconds."""
        return int(self.base_s + self.per_audio_second * max(duration_s, 0.0))


@dataclass(frozen=True)
class Settings:
    """Every setting of the service; read once at start-up by :meth:`from_env`."""

    data_dir: Path = Path("data")
    database_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    pipelines_path: Path | None = None
    model_override: str | None = None
    diarization_model: str | None = None
    #: Read for hub downloads of diarization models; never shown (``repr=False``).
    hf_token: str | None = field(default=None, repr=False)
    default_device: str = "auto"
    default_compute_type: str = "auto"
    fetch_allowlist: tuple[str, ...] = ()
    fetch_limits: FetchLimits = field(default_factory=FetchLimits)
    job_timeouts: JobTimeouts = field(default_factory=JobTimeouts)
    log_level: str = "INFO"
    public_url: str | None = None
    billing_enforced: bool = False
    api_workers: int = 2
    api_threads: int = 4
    queue_name: str = "voxhook-transcriptions"
    #: How often a worker announces itself (and beats for its running job), in seconds.
    worker_heartbeat_s: int = 10

    def __post_init__(self) -> None:
        if not self.database_url:
            sqlite_path = (self.data_dir / "voxhook.db").resolve()
            object.__setattr__(self, "database_url", f"sqlite:///{sqlite_path}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("VOXHOOK_DATA_DIR") or "data")
        pipelines = env.get("VOXHOOK_PIPELINES")
        billing = (env.get("VOXHOOK_BILLING") or "off").strip().lower()
        if billing not in {"on", "off"}:
            raise ConfigError(f"VOXHOOK_BILLING must be 'on' or 'off', not {billing!r}")
        return cls(
            data_dir=data_dir,
            database_url=env.get("VOXHOOK_DATABASE_URL") or "",
            redis_url=env.get("VOXHOOK_REDIS_URL") or cls.redis_url,
            pipelines_path=Path(pipelines) if pipelines else None,
            model_override=env.get("VOXHOOK_MODEL") or None,
            diarization_model=env.get("VOXHOOK_DIARIZATION_MODEL") or None,
            hf_token=env.get("HF_TOKEN") or None,
            default_device=_choice(env, "VOXHOOK_DEVICE", {"auto", "cuda", "cpu"}, "auto"),
            default_compute_type=_choice(env, "VOXHOOK_COMPUTE_TYPE", set(COMPUTE_TYPES),
                                         "auto"),
            fetch_allowlist=tuple(
                item.strip()
                for item in (env.get("VOXHOOK_FETCH_ALLOWLIST") or "").split(",")
                if item.strip()
            ),
            fetch_limits=FetchLimits(
                max_bytes=_int(env, "VOXHOOK_MAX_DOWNLOAD_MB", 1024) * 1024 * 1024
            ),
            log_level=(env.get("VOXHOOK_LOG_LEVEL") or "INFO").upper(),
            public_url=env.get("VOXHOOK_PUBLIC_URL") or None,
            billing_enforced=billing == "on",
            api_workers=_int(env, "VOXHOOK_API_WORKERS", 2),
            api_threads=_int(env, "VOXHOOK_API_THREADS", 4),
            queue_name=env.get("VOXHOOK_QUEUE") or cls.queue_name,
        )

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the `serve` supervisor use this)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def environment(self) -> dict[str, str]:
        """These settings as environment variables, for child processes started by `serve`."""
        env = {
            "VOXHOOK_DATA_DIR": str(self.data_dir),
            "VOXHOOK_DATABASE_URL": self.database_url,
            "VOXHOOK_REDIS_URL": self.redis_url,
            "VOXHOOK_DEVICE": self.default_device,
            "VOXHOOK_COMPUTE_TYPE": self.default_compute_type,
            "VOXHOOK_FETCH_ALLOWLIST": ",".join(self.fetch_allowlist),
            "VOXHOOK_MAX_DOWNLOAD_MB": str(self.fetch_limits.max_bytes // (1024 * 1024)),
            "VOXHOOK_LOG_LEVEL": self.log_level,
            "VOXHOOK_BILLING": "on" if self.billing_enforced else "off",
            "VOXHOOK_API_WORKERS": str(self.api_workers),
            "VOXHOOK_API_THREADS": str(self.api_threads),
            "VOXHOOK_QUEUE": self.queue_name,
        }
        if self.pipelines_path:
            env["VOXHOOK_PIPELINES"] = str(self.pipelines_path)
        if self.model_override:
            env["VOXHOOK_MODEL"] = self.model_override
        if self.diarization_model:
            env["VOXHOOK_DIARIZATION_MODEL"] = self.diarization_model
        if self.hf_token:
            env["HF_TOKEN"] = self.hf_token
        if self.public_url:
            env["VOXHOOK_PUBLIC_URL"] = self.public_url
        return env


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, not {value}")
    return value


def _choice(env: Mapping[str, str], name: str, allowed: set[str], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(sorted(allowed))}, not {value!r}")
    return value
