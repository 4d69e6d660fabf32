"""How the API process is started: gunicorn's command line, shared by ``voxhook api`` (which
becomes it) and ``voxhook serve`` (which supervises it as a child).

A module of its own so that ``serve`` and the CLI do not import each other.
"""

from __future__ import annotations

import sys

from app.config import Settings


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
        "--worker-class", settings.api_worker_class,
        "--timeout", "60",
        "--graceful-timeout", "20",
        "--log-level", settings.log_level.lower(),
    ]
