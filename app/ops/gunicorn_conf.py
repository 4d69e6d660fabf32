"""gunicorn hooks for the API (``--config python:app.ops.gunicorn_conf``).

Prometheus counts per process; under gunicorn several processes answer ``/metrics`` in turn,
so each must write its samples where the others can read them (prometheus_client's
multiprocess mode). The master makes a fresh folder before it forks and names it in
``PROMETHEUS_MULTIPROC_DIR``, which the workers inherit; a worker that exits is marked dead
so its live gauges leave the sum; the folder goes when the master stops. An operator who
sets ``PROMETHEUS_MULTIPROC_DIR`` keeps that folder (it is emptied at start).
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def _logconfig() -> dict[str, Any] | None:
    """With VOXHOOK_LOG_FORMAT=json, gunicorn's own lines (start, worker boots and exits)
    are JSON objects too, through the same formatter as the application's."""
    from app.config import Settings

    if Settings.from_env().log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "filters": ["rid"],
               "stream": "ext://sys.stderr"}
    return {"version": 1, "disable_existing_loggers": False,
            "filters": {"rid": {"()": "app.observability.logs.RequestIdFilter"}},
            "formatters": {"json": {"()": "app.observability.logs.JsonFormatter"}},
            "handlers": {"console": handler},
            "loggers": {"gunicorn.error": {"handlers": ["console"], "propagate": False},
                        "gunicorn.access": {"handlers": ["console"], "propagate": False}},
            "root": {"level": "INFO", "handlers": ["console"]}}


logconfig_dict = _logconfig() or {}

#: Set by :func:`on_starting` when this module made the folder (and so removes it).
_made: list[Path] = []


def on_starting(server: Any) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        path = Path(folder)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="voxhook-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
        _made.append(path)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    """Move everything the application built at start (its routes, schemas, OpenAPI document,
    ORM mappings: most of the process's objects, and never garbage) out of the collector's
    sight, so that a full collection scans only what requests left behind: ~40 ms with every
    request of the process waiting before, a few after (benchmarks/README.md)."""
    gc.freeze()


def on_exit(server: Any) -> None:
    for path in _made:
        shutil.rmtree(path, ignore_errors=True)
