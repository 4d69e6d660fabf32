"""How the API process is started: gunicorn's command line, shared by ``voxhook api`` (which
becomes it) and ``voxhook serve`` (which supervises it as a child).

A module of its own so that ``serve`` and the CLI do not import each other.
"""

from __future__ import annotations

import sys

from app.config import Settings


def gunicorn_command(settings: Settings, host: str, port: int) -> list[str]:
    """The argv that runs the API under gunicorn with the configured processes and threads."""
    return [
        sys.executable, "-m", "gunicorn", "app.wsgi:app",
        "--bind", f"{host}:{port}",
        "--workers", str(settings.api_workers),
        "--threads", str(settings.api_threads),
        "--worker-class", "gthread",
        "--timeout", "60",
        "--graceful-timeout", "20",
        "--access-logfile", "-",
        "--log-level", settings.log_level.lower(),
    ]
