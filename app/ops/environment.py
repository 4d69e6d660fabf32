"""What each environment variable of Voxhook means, for ``voxhook config`` and operators.

Kept beside the CLI that prints it rather than in :mod:`app.config`, which reads the
variables: the reference text is long and changes with the docs, the reading code with the
settings.
"""

from __future__ import annotations

#: Environment variables :mod:`app.config` reads, with what each means. Shown by
#: ``voxhook config``; a test checks every variable config.py reads is listed here.
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
    "VOXHOOK_FETCH_CONNECT_TO": "comma-separated HOST:PORT:ADDRESS:PORT entries: connect to "
    "ADDRESS:PORT when a URL names HOST:PORT, like curl's --connect-to (internal mirrors, "
    "tests); the address is still checked",
    "VOXHOOK_FETCH_CA_BUNDLE": "PEM file of certificate authorities to trust for https "
    "fetches instead of the public ones (internal CAs, tests)",
    "VOXHOOK_MAX_DOWNLOAD_MB": "largest media file fetched, in MB (default 1024)",
    "VOXHOOK_FETCH_CONNECT_TIMEOUT_S": "seconds to wait for a media host to accept the "
    "connection (default 10)",
    "VOXHOOK_FETCH_READ_TIMEOUT_S": "seconds a media host may stay silent (default 30)",
    "VOXHOOK_FETCH_TOTAL_TIMEOUT_S": "seconds a whole download may take, redirects included "
    "(default 900)",
    "VOXHOOK_FETCH_MAX_REDIRECTS": "redirects followed per download (default 5)",
    "VOXHOOK_MAX_AUDIO_MINUTES": "longest audio accepted, in minutes (default 240)",
    "VOXHOOK_MAX_UPLOAD_MB": "largest uploaded file, in MB (default 1024)",
    "VOXHOOK_UPLOAD_URL_TTL_S": "seconds a signed upload URL stays valid (default 3600)",
    "VOXHOOK_UNUSED_UPLOAD_HOURS": "hours an uploaded file waits for a transcription before it "
    "is deleted (default 24)",
    "VOXHOOK_MEDIA_RETENTION_HOURS": "hours media is kept after its job ends (default 0: "
    "deleted at once; transcripts stay until deleted)",
    "VOXHOOK_SECRET_KEY": "key that signs upload and internal download URLs; default: a "
    "random key kept in the data directory (set it when API and workers run on several "
    "machines)",
    "VOXHOOK_INTERNAL_API_URL": "the API as workers on other machines reach it, to download "
    "uploaded files (default: VOXHOOK_PUBLIC_URL)",
    "VOXHOOK_WEBHOOK_RETRY_SCHEDULE": "seconds between webhook attempts, comma-separated "
    "(default 5,300,1800,7200,18000,36000,36000: about a day)",
    "VOXHOOK_WEBHOOK_JITTER": "share by which each retry delay is spread either way "
    "(default 0.1)",
    "VOXHOOK_WEBHOOK_TIMEOUT_S": "seconds a webhook receiver has to answer (default 10)",
    "VOXHOOK_S3_BUCKET": "keep media in this S3-compatible bucket instead of the data directory",
    "VOXHOOK_S3_ENDPOINT_URL": "endpoint of a non-AWS S3-compatible service (MinIO, R2, …)",
    "VOXHOOK_S3_REGION": "the bucket's region (default us-east-1)",
    "VOXHOOK_S3_PREFIX": "key prefix for media objects in the bucket (default media/)",
    "VOXHOOK_S3_ACCESS_KEY_ID": "S3 access key id (default: boto3's own credential chain)",
    "VOXHOOK_S3_SECRET_ACCESS_KEY": "S3 secret access key",
    "VOXHOOK_LOG_LEVEL": "DEBUG | INFO | WARNING (default INFO)",
    "VOXHOOK_LOG_FORMAT": "text (default) | json: one JSON object per log line",
    "VOXHOOK_WORKER_METRICS_PORT": "port on which a transcription worker exposes its "
    "Prometheus metrics (default: none)",
    "VOXHOOK_WEBHOOK_METRICS_PORT": "port on which the webhook worker exposes its Prometheus "
    "metrics (default: none)",
    "VOXHOOK_PUBLIC_URL": "the URL clients reach the API at, shown by `serve`",
    "VOXHOOK_BILLING": "off (default: costs shown, nothing enforced) | on",
    "VOXHOOK_ADMIN_TOKEN": "operator token for the admin API (/api/v1/admin: accounts, "
    "top-ups, wallet audit), at least 32 characters; unset: the admin API is off",
    "VOXHOOK_API_WORKERS": "gunicorn processes (default 2; voxhook serve on two cores or "
    "more: 1, on the core its worker leaves)",
    "VOXHOOK_API_THREADS": "threads per gunicorn process with the gthread worker class "
    "(default 4)",
    "VOXHOOK_API_WORKER_CLASS": "gevent (default: a waiting request is a greenlet, so "
    "?wait= and OpenAI's synchronous requests hold no thread) | gthread",
    "VOXHOOK_API_CONNECTIONS": "concurrent requests per gunicorn process with gevent "
    "(default 1000)",
    "VOXHOOK_WORKER_HEARTBEAT_S": "seconds between a worker's signs of life (default 10)",
    "VOXHOOK_WORKER_LOST_AFTER_S": "seconds without a sign of life after which a running "
    "job's worker counts as dead and the job is retried elsewhere (default 30)",
    "VOXHOOK_RECONCILE_INTERVAL_S": "how often each process looks for lost and orphaned jobs "
    "(default 10; 0: never)",
    "VOXHOOK_REQUEUE_AFTER_S": "seconds a queued transcription may lack a job in Redis before "
    "it is enqueued again (default 30)",
    "VOXHOOK_WORKER_STOP_GRACE_S": "seconds a stopping worker lets its running job go on "
    "before handing it back to the queue (default 90)",
    "VOXHOOK_WORKER_CONCURRENCY": "jobs one transcription worker runs at once on the "
    "models it loaded once (default: the CPU's cores on CPU, 4 on a GPU)",
    "VOXHOOK_WORKER_CPU_THREADS": "CPU threads each concurrent job's speech recognition uses "
    "(default: the cores shared out among the concurrent jobs)",
    "VOXHOOK_WORKER_CORES": "cores a transcription worker sizes its defaults by (default: "
    "all it may run on; `voxhook serve` leaves one to the API)",
    "VOXHOOK_WORKER_NICE": "niceness (0-19) a transcription worker adds to its own, so that "
    "processes beside it (the API) come first (default: 0; `voxhook serve`: 10)",
    "VOXHOOK_WEBHOOK_LEASE_MARGIN_S": "seconds a webhook delivery stays leased beyond the "
    "receiver timeout, so a killed webhook worker's delivery is retried after that "
    "(default 60)",
}
