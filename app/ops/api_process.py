"""How the API process is started: gunicorn's command line, shared by ``voxhook api`` (which
becomes it) and ``voxhook serve`` (which supervises it as a child).

A module of its own so that ``serve`` and the CLI do not import each other.
"""

from __future__ import annotations

import sys

from app.config import Settings

#: gunicorn's limits on a request's head, explicit (gunicorn refuses beyond them, in our JSON:
#: ``app.api.gunicorn_worker``). The request line may be as long as gunicorn allows at most
#: (signed URLs and listing filters live in the query string); headers stay at its defaults.
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190
#: The worker class run for each ``VOXHOOK_API_WORKER_CLASS``: gunicorn's own, answering the
#: requests it refuses itself in the API's JSON error shape.
JSON_ERROR_WORKERS = {
    "gthread": "app.api.gunicorn_worker.JsonErrorThreadWorker",
    "gevent": "app.api.gunicorn_gevent_worker.JsonErrorGeventWorker",
}


def gunicorn_command(settings: Settings, host: str, port: int) -> list[str]:
    """The argv that runs the API under gunicorn with the configured processes and worker
    class: gevent by default, so a request that waits (``?wait=``, OpenAI's synchronous
    transcriptions) parks a greenlet instead of holding one of a few threads
    (docs/deployment.md, "Serving model"). ``app.ops.gunicorn_conf`` keeps Prometheus'
    multiprocess metrics right across the processes."""
    concurrency = (["--worker-connections", str(settings.api_connections)]
                   if settings.api_worker_class == "gevent"
                   else ["--threads", str(settings.api_threads)])
    return [
        sys.executable, "-m", "gunicorn", "app.wsgi:app",
        "--config", "python:app.ops.gunicorn_conf",
        "--bind", f"{host}:{port}",
        "--workers", str(settings.api_workers),
        *concurrency,
        # gunicorn's own refusals (limits, malformed requests) in our JSON error shape.
        "--worker-class", JSON_ERROR_WORKERS[settings.api_worker_class],
        "--limit-request-line", str(LIMIT_REQUEST_LINE),
        "--limit-request-fields", str(LIMIT_REQUEST_FIELDS),
        "--limit-request-field_size", str(LIMIT_REQUEST_FIELD_SIZE),
        "--timeout", "60",
        "--graceful-timeout", "20",
        "--log-level", settings.log_level.lower(),
    ]
