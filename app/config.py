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
class MediaLimits:
    """Bounds on what the decoder accepts and how long media is kept."""

    #: The longest audio accepted, in seconds (decided by decoding, not by metadata alone).
    max_audio_s: int = 4 * 3600
    #: Media is kept this long after its job ends; 0 deletes it when the job ends.
    retention_s: int = 0
    #: How often, at most, a process deletes media whose time is up; 0 never (tests).
    sweep_interval_s: float = 300.0


@dataclass(frozen=True)
class UploadSettings:
    """Direct uploads (SPEC.md section 5): size cap, signed URL lifetime, unused lifetime."""

    max_bytes: int = 1024 * 1024 * 1024
    url_ttl_s: int = 3600
    #: An uploaded file no transcription has used is deleted after this long.
    unused_ttl_s: int = 24 * 3600


@dataclass(frozen=True)
class S3Settings:
    """An S3-compatible bucket for media; ``bucket`` empty means the data directory."""

    bucket: str = ""
    endpoint_url: str | None = None
    region: str = "us-east-1"
    prefix: str = "media/"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.bucket)


#: Seconds between webhook attempts (about a day in all), as Svix and Stripe space theirs.
DEFAULT_WEBHOOK_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True)
class WebhookSettings:
    """How webhook deliveries are sent and retried."""

    #: Delay before each retry; its length is the number of retries.
    retry_schedule_s: tuple[float, ...] = DEFAULT_WEBHOOK_SCHEDULE
    #: Each delay is spread by up to this share either way, so retries do not arrive in
    #: lockstep after an outage.
    jitter: float = 0.1
    #: A receiver must answer within this many seconds.
    timeout_s: float = 10.0
    #: After a rotation, deliveries carry signatures by both secrets for this long.
    secret_overlap_s: float = 24 * 3600.0
    #: A delivery is leased for the timeout plus this (room for the database writes around
    #: the attempt); a webhook worker killed mid-attempt lets go when the lease runs out.
    lease_margin_s: float = 60.0


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
class Recovery:
    """How the service notices dead workers and lost jobs, and how it stops (see
    :mod:`app.transcriptions.recovery` and ``docs/deployment.md#liveness-and-recovery``).

    With the defaults a job whose worker died is handed to another worker within
    ``worker_lost_after_s + interval_s`` = 40 s, and a queued transcription whose job
    vanished from Redis is enqueued again within ``requeue_after_s + interval_s`` = 40 s.
    """

    #: A worker running a job stamps the transcription this often (and announces itself).
    heartbeat_s: int = 10
    #: A running job whose stamp is older than this lost its worker (3 missed beats).
    worker_lost_after_s: int = 30
    #: How often every worker and API process reaps lost jobs and re-enqueues orphaned
    #: ones; 0 turns it off (tests that want a frozen queue).
    interval_s: float = 10.0
    #: A queued transcription without a live job in Redis for this long is enqueued again
    #: (long enough for the API's own enqueue after its commit).
    requeue_after_s: int = 30
    #: After SIGTERM a worker lets its job go on this long, then hands it back to the
    #: queue (Compose's stop_grace_period is 120 s: this leaves room to hand back).
    worker_stop_grace_s: float = 90.0

    def __post_init__(self) -> None:
        if self.worker_lost_after_s < 2 * self.heartbeat_s:
            raise ConfigError(
                f"VOXHOOK_WORKER_LOST_AFTER_S ({self.worker_lost_after_s}) must be at least "
                f"twice VOXHOOK_WORKER_HEARTBEAT_S ({self.heartbeat_s}), or one late beat "
                "would count a live worker as dead")


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
    #: curl-style ``HOST:PORT:ADDRESS:PORT`` overrides of where a fetch connects to.
    fetch_connect_to: tuple[str, ...] = ()
    fetch_ca_bundle: Path | None = None
    fetch_limits: FetchLimits = field(default_factory=FetchLimits)
    media_limits: MediaLimits = field(default_factory=MediaLimits)
    uploads: UploadSettings = field(default_factory=UploadSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    #: Signs upload and internal download URLs; empty: a key kept in the data directory
    #: (see :func:`app.media.signing.signing_key`). Never shown (``repr=False``).
    secret_key: str = field(default="", repr=False)
    internal_api_url: str | None = None
    job_timeouts: JobTimeouts = field(default_factory=JobTimeouts)
    log_level: str = "INFO"
    #: ``text`` or ``json`` (one object per line), for every process.
    log_format: str = "text"
    #: Where a transcription worker / the webhook worker serve /metrics (None: nowhere).
    worker_metrics_port: int | None = None
    webhook_metrics_port: int | None = None
    public_url: str | None = None
    billing_enforced: bool = False
    #: The operator's token for the admin API; empty: the admin API is off. Never shown.
    admin_token: str = field(default="", repr=False)
    api_workers: int = 2
    api_threads: int = 4
    #: gunicorn's worker class: ``gevent`` (greenlets; long waits cost no thread) or
    #: ``gthread`` (a thread per request in flight).
    api_worker_class: str = "gevent"
    #: With gevent: how many requests one gunicorn process serves at once.
    api_connections: int = 1000
    queue_name: str = "voxhook-transcriptions"
    #: Liveness of workers and jobs, reconciliation with Redis, and stopping.
    recovery: Recovery = field(default_factory=Recovery)
    #: Jobs a transcription worker runs at once (0: chosen per device, see
    #: :func:`worker.main.default_concurrency`).
    worker_concurrency: int = 0
    #: CPU threads per concurrent job's speech recognition (0: cores / concurrency).
    worker_cpu_threads: int = 0
    #: Cores the worker's defaults are sized by (0: all the process may run on).
    worker_cores: int = 0
    #: Niceness the worker adds to its own at start (None: not set; 0: unchanged).
    worker_nice: int | None = None

    @property
    def worker_heartbeat_s(self) -> int:
        """How often a worker announces itself (and beats for its running job), in seconds."""
        return self.recovery.heartbeat_s

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
            fetch_allowlist=_list(env, "VOXHOOK_FETCH_ALLOWLIST"),
            fetch_connect_to=_list(env, "VOXHOOK_FETCH_CONNECT_TO"),
            fetch_ca_bundle=Path(env["VOXHOOK_FETCH_CA_BUNDLE"])
            if env.get("VOXHOOK_FETCH_CA_BUNDLE") else None,
            fetch_limits=FetchLimits(
                max_bytes=_int(env, "VOXHOOK_MAX_DOWNLOAD_MB", 1024) * 1024 * 1024,
                connect_timeout_s=_number(env, "VOXHOOK_FETCH_CONNECT_TIMEOUT_S", 10.0),
                read_timeout_s=_number(env, "VOXHOOK_FETCH_READ_TIMEOUT_S", 30.0),
                total_timeout_s=_number(env, "VOXHOOK_FETCH_TOTAL_TIMEOUT_S", 900.0),
                max_redirects=_int(env, "VOXHOOK_FETCH_MAX_REDIRECTS", 5),
            ),
            media_limits=MediaLimits(
                max_audio_s=_int(env, "VOXHOOK_MAX_AUDIO_MINUTES", 240) * 60,
                retention_s=int(_number(env, "VOXHOOK_MEDIA_RETENTION_HOURS", 0.0,
                                        minimum=0.0) * 3600),
            ),
            uploads=UploadSettings(
                max_bytes=_int(env, "VOXHOOK_MAX_UPLOAD_MB", 1024) * 1024 * 1024,
                url_ttl_s=_int(env, "VOXHOOK_UPLOAD_URL_TTL_S", 3600),
                unused_ttl_s=int(_number(env, "VOXHOOK_UNUSED_UPLOAD_HOURS", 24.0) * 3600),
            ),
            s3=S3Settings(
                bucket=env.get("VOXHOOK_S3_BUCKET") or "",
                endpoint_url=env.get("VOXHOOK_S3_ENDPOINT_URL") or None,
                region=env.get("VOXHOOK_S3_REGION") or "us-east-1",
                prefix=env.get("VOXHOOK_S3_PREFIX") or "media/",
                access_key_id=env.get("VOXHOOK_S3_ACCESS_KEY_ID") or None,
                secret_access_key=env.get("VOXHOOK_S3_SECRET_ACCESS_KEY") or None,
            ),
            webhooks=WebhookSettings(
                retry_schedule_s=_schedule(env, "VOXHOOK_WEBHOOK_RETRY_SCHEDULE"),
                jitter=_number(env, "VOXHOOK_WEBHOOK_JITTER", 0.1, minimum=0.0),
                timeout_s=_number(env, "VOXHOOK_WEBHOOK_TIMEOUT_S", 10.0),
                lease_margin_s=_number(env, "VOXHOOK_WEBHOOK_LEASE_MARGIN_S", 60.0),
            ),
            secret_key=env.get("VOXHOOK_SECRET_KEY") or "",
            internal_api_url=env.get("VOXHOOK_INTERNAL_API_URL") or None,
            log_level=(env.get("VOXHOOK_LOG_LEVEL") or "INFO").upper(),
            log_format=_choice(env, "VOXHOOK_LOG_FORMAT", {"text", "json"}, "text"),
            worker_metrics_port=_int(env, "VOXHOOK_WORKER_METRICS_PORT", 0) or None,
            webhook_metrics_port=_int(env, "VOXHOOK_WEBHOOK_METRICS_PORT", 0) or None,
            public_url=env.get("VOXHOOK_PUBLIC_URL") or None,
            billing_enforced=billing == "on",
            admin_token=_admin_token(env),
            api_workers=_int(env, "VOXHOOK_API_WORKERS", 2),
            api_threads=_int(env, "VOXHOOK_API_THREADS", 4),
            api_worker_class=_choice(env, "VOXHOOK_API_WORKER_CLASS", {"gevent", "gthread"},
                                     "gevent"),
            api_connections=_int(env, "VOXHOOK_API_CONNECTIONS", 1000),
            queue_name=env.get("VOXHOOK_QUEUE") or cls.queue_name,
            worker_concurrency=_int(env, "VOXHOOK_WORKER_CONCURRENCY", 0),
            worker_cpu_threads=_int(env, "VOXHOOK_WORKER_CPU_THREADS", 0),
            worker_cores=_int(env, "VOXHOOK_WORKER_CORES", 0),
            worker_nice=_niceness(env),
            recovery=Recovery(
                heartbeat_s=_int(env, "VOXHOOK_WORKER_HEARTBEAT_S", 10),
                worker_lost_after_s=_int(env, "VOXHOOK_WORKER_LOST_AFTER_S", 30),
                interval_s=_number(env, "VOXHOOK_RECONCILE_INTERVAL_S", 10.0, minimum=0.0),
                requeue_after_s=_int(env, "VOXHOOK_REQUEUE_AFTER_S", 30),
                worker_stop_grace_s=_number(env, "VOXHOOK_WORKER_STOP_GRACE_S", 90.0,
                                            minimum=0.0),
            ),
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
            "VOXHOOK_FETCH_CONNECT_TO": ",".join(self.fetch_connect_to),
            "VOXHOOK_MAX_DOWNLOAD_MB": str(self.fetch_limits.max_bytes // (1024 * 1024)),
            "VOXHOOK_FETCH_CONNECT_TIMEOUT_S": str(self.fetch_limits.connect_timeout_s),
            "VOXHOOK_FETCH_READ_TIMEOUT_S": str(self.fetch_limits.read_timeout_s),
            "VOXHOOK_FETCH_TOTAL_TIMEOUT_S": str(self.fetch_limits.total_timeout_s),
            "VOXHOOK_FETCH_MAX_REDIRECTS": str(self.fetch_limits.max_redirects),
            "VOXHOOK_MAX_AUDIO_MINUTES": str(self.media_limits.max_audio_s // 60),
            "VOXHOOK_MEDIA_RETENTION_HOURS": str(self.media_limits.retention_s / 3600),
            "VOXHOOK_MAX_UPLOAD_MB": str(self.uploads.max_bytes // (1024 * 1024)),
            "VOXHOOK_UPLOAD_URL_TTL_S": str(self.uploads.url_ttl_s),
            "VOXHOOK_UNUSED_UPLOAD_HOURS": str(self.uploads.unused_ttl_s / 3600),
            "VOXHOOK_WEBHOOK_RETRY_SCHEDULE": ",".join(
                f"{delay:g}" for delay in self.webhooks.retry_schedule_s),
            "VOXHOOK_WEBHOOK_JITTER": str(self.webhooks.jitter),
            "VOXHOOK_WEBHOOK_TIMEOUT_S": str(self.webhooks.timeout_s),
            "VOXHOOK_LOG_LEVEL": self.log_level,
            "VOXHOOK_LOG_FORMAT": self.log_format,
            "VOXHOOK_BILLING": "on" if self.billing_enforced else "off",
            "VOXHOOK_API_WORKERS": str(self.api_workers),
            "VOXHOOK_API_THREADS": str(self.api_threads),
            "VOXHOOK_API_WORKER_CLASS": self.api_worker_class,
            "VOXHOOK_API_CONNECTIONS": str(self.api_connections),
            "VOXHOOK_QUEUE": self.queue_name,
            "VOXHOOK_WEBHOOK_LEASE_MARGIN_S": str(self.webhooks.lease_margin_s),
            "VOXHOOK_WORKER_HEARTBEAT_S": str(self.recovery.heartbeat_s),
            "VOXHOOK_WORKER_LOST_AFTER_S": str(self.recovery.worker_lost_after_s),
            "VOXHOOK_RECONCILE_INTERVAL_S": str(self.recovery.interval_s),
            "VOXHOOK_REQUEUE_AFTER_S": str(self.recovery.requeue_after_s),
            "VOXHOOK_WORKER_STOP_GRACE_S": str(self.recovery.worker_stop_grace_s),
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
        if self.worker_metrics_port:
            env["VOXHOOK_WORKER_METRICS_PORT"] = str(self.worker_metrics_port)
        if self.worker_concurrency:
            env["VOXHOOK_WORKER_CONCURRENCY"] = str(self.worker_concurrency)
        if self.worker_cpu_threads:
            env["VOXHOOK_WORKER_CPU_THREADS"] = str(self.worker_cpu_threads)
        if self.worker_cores:
            env["VOXHOOK_WORKER_CORES"] = str(self.worker_cores)
        if self.worker_nice is not None:
            env["VOXHOOK_WORKER_NICE"] = str(self.worker_nice)
        if self.webhook_metrics_port:
            env["VOXHOOK_WEBHOOK_METRICS_PORT"] = str(self.webhook_metrics_port)
        if self.fetch_ca_bundle:
            env["VOXHOOK_FETCH_CA_BUNDLE"] = str(self.fetch_ca_bundle)
        if self.secret_key:
            env["VOXHOOK_SECRET_KEY"] = self.secret_key
        if self.internal_api_url:
            env["VOXHOOK_INTERNAL_API_URL"] = self.internal_api_url
        if self.admin_token:
            env["VOXHOOK_ADMIN_TOKEN"] = self.admin_token
        s3 = self.s3
        for name, value in (("BUCKET", s3.bucket), ("ENDPOINT_URL", s3.endpoint_url),
                            ("REGION", s3.region), ("PREFIX", s3.prefix),
                            ("ACCESS_KEY_ID", s3.access_key_id),
                            ("SECRET_ACCESS_KEY", s3.secret_access_key)):
            if value:
                env[f"VOXHOOK_S3_{name}"] = value
        return env


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, which containers and ``taskset``
    narrow), by which the worker and ``serve`` size themselves."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _niceness(env: Mapping[str, str]) -> int | None:
    raw = env.get("VOXHOOK_WORKER_NICE")
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"VOXHOOK_WORKER_NICE must be a whole number from 0 to 19, not "
                          f"{raw!r}") from None
    if not 0 <= value <= 19:
        raise ConfigError(f"VOXHOOK_WORKER_NICE must be from 0 (unchanged) to 19 (yield the "
                          f"most), not {value}")
    return value


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


def _number(env: Mapping[str, str], name: str, default: float,
            minimum: float = 0.001) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not minimum <= value < float("inf"):
        raise ConfigError(f"{name} must be at least {minimum:g}, not {raw}")
    return value


#: The shortest admin token accepted: it guards every account's money.
ADMIN_TOKEN_MIN_LENGTH = 32


def secret_from_environment(name: str | None,
                            environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the environment variable ``name`` (a remote service's key, named by
    ``api_key_env`` in the pipelines file); None when unnamed, unset or empty. Read when the
    key is used, so the key itself is never in a file, a setting's repr or a log line."""
    if not name:
        return None
    env = os.environ if environ is None else environ
    return env.get(name) or None


def _admin_token(env: Mapping[str, str]) -> str:
    """VOXHOOK_ADMIN_TOKEN, refused when short or when it looks like a customer key (which
    would blur which of the two a leaked value is)."""
    token = (env.get("VOXHOOK_ADMIN_TOKEN") or "").strip()
    if not token:
        return ""
    if len(token) < ADMIN_TOKEN_MIN_LENGTH or any(c.isspace() for c in token):
        raise ConfigError(f"VOXHOOK_ADMIN_TOKEN must be at least {ADMIN_TOKEN_MIN_LENGTH} "
                          "characters without spaces; make one with `openssl rand -hex 32`")
    if token.startswith("sk_live_"):
        raise ConfigError("VOXHOOK_ADMIN_TOKEN must not look like a customer API key "
                          "(sk_live_…); make one with `openssl rand -hex 32`")
    return token


def _schedule(env: Mapping[str, str], name: str) -> tuple[float, ...]:
    """Comma-separated seconds, each positive (unset or blank: the default schedule)."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return DEFAULT_WEBHOOK_SCHEDULE
    try:
        delays = tuple(float(item) for item in raw.split(",") if item.strip())
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated seconds, not {raw!r}") from None
    if any(not 0 < delay < float("inf") for delay in delays):
        raise ConfigError(f"{name} must list positive numbers of seconds, not {raw!r}")
    return delays


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated setting as its non-blank items."""
    return tuple(item.strip() for item in (env.get(name) or "").split(",") if item.strip())


def _choice(env: Mapping[str, str], name: str, allowed: set[str], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(sorted(allowed))}, not {value!r}")
    return value
