"""The API's side of observability: ``X-Request-Id`` on every request and answer, one access
log line per request (with the id), request metrics, and ``/metrics``."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from app.observability import metrics
from app.observability.context import accept_or_make, request_id

access_log = logging.getLogger("voxhook.access")
HEADER = "X-Request-Id"


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)
    app.add_url_rule("/metrics", "metrics", _metrics)


def _start() -> None:
    g.request_started = time.perf_counter()
    g.request_id = accept_or_make(request.headers.get(HEADER))
    request_id.set(g.request_id)


def _finish(response: Response) -> Response:
    rid = g.get("request_id") or accept_or_make(None)
    response.headers[HEADER] = rid
    started = g.get("request_started")
    elapsed = time.perf_counter() - started if started is not None else 0.0
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    if route != "/metrics":
        metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        metrics.HTTP_LATENCY.labels(request.method, route).observe(elapsed)
    access_log.info("%s %s %s %.1f ms", request.method, request.path, response.status_code,
                    elapsed * 1000, extra={"method": request.method, "path": request.path,
                                            "status": response.status_code,
                                            "duration_ms": round(elapsed * 1000, 1)})
    return response


def _metrics() -> Response:
    """Prometheus metrics of the API (every gunicorn process) and the queue."""
    from flask import current_app

    body, content_type = metrics.exposition(current_app.extensions["voxhook"].queue)
    return Response(body, content_type=content_type)
