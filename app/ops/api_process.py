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


def gunicorn_command(settings: Settings, host: str, port: int) -> list[str]:
    """The argv that runs the API under gunicorn with the configured processes and threads."""
    return [
        sys.executable, "-m", "gunicorn", "app.wsgi:app",
        "--bind", f"{host}:{port}",
        "--workers", str(settings.api_workers),
        "--threads", str(settings.api_threads),
        "--worker-class", "app.api.gunicorn_worker.JsonErrorWorker",  # gthread, JSON errors
        "--limit-request-line", str(LIMIT_REQUEST_LINE),
        "--limit-request-fields", str(LIMIT_REQUEST_FIELDS),
        "--limit-request-field_size", str(LIMIT_REQUEST_FIELD_SIZE),
        "--timeout", "60",
        "--graceful-timeout", "20",
        "--access-logfile", "-",
        "--log-level", settings.log_level.lower(),
    ]
