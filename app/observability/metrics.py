"""Prometheus metrics: what each process counts, and how it is exposed.

API processes (gunicorn, several): request counts and latencies by route and status, and
transcriptions created, in prometheus_client's multiprocess mode
(``app.ops.gunicorn_conf`` gives every process the same folder), exposed at ``/metrics`` with
what is read at scrape time: queue depth, age of the oldest queued job, and each live
worker's model state (from the workers' announcements).

Workers (one port each, ``VOXHOOK_WORKER_METRICS_PORT`` / ``VOXHOOK_WEBHOOK_METRICS_PORT``):
transcriptions finished by pipeline, status and error code, stage durations, real-time
factor, audio seconds, wallet charges, webhook attempts by outcome.

Names carry units and ``_total``; labels are few and bounded (pipelines, statuses, error
codes, route templates, never ids).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from app.transcriptions.queue import JobQueue

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- API

HTTP_REQUESTS = Counter("voxhook_http_requests_total", "HTTP requests answered.",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("voxhook_http_request_duration_seconds",
                         "Time to answer an HTTP request (until the body starts).",
                         ["method", "route"],
                         buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
TRANSCRIPTIONS_CREATED = Counter("voxhook_transcriptions_created_total",
                                 "Transcriptions created.", ["pipeline", "surface"])

# --------------------------------------------------------------------------- worker

TRANSCRIPTIONS_FINISHED = Counter(
    "voxhook_transcriptions_finished_total",
    "Transcriptions that ended on this worker, by status (completed, failed) and error code.",
    ["pipeline", "status", "error_code"])
STAGE_SECONDS = Histogram("voxhook_job_stage_seconds",
                          "Time a job spent in each stage (fetch, decode, asr, diarization, "
                          "assembly).", ["pipeline", "stage"],
                          buckets=(.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900))
REALTIME_FACTOR = Histogram("voxhook_job_realtime_factor",
                            "Processing time over audio duration (below 1: faster than "
                            "real time).", ["pipeline"],
                            buckets=(.01, .02, .05, .1, .2, .3, .5, .75, 1, 1.5, 2, 5))
AUDIO_SECONDS = Counter("voxhook_audio_seconds_total", "Seconds of audio transcribed.",
                        ["pipeline"])
WALLET_CHARGES = Counter("voxhook_wallet_charges_total", "Wallet charges made.")
WALLET_CHARGED = Counter("voxhook_wallet_charged_micro_usd_total",
                         "Micro-dollars charged to wallets (exact integers).")

# --------------------------------------------------------------------------- webhooks

WEBHOOK_ATTEMPTS = Counter("voxhook_webhook_attempts_total",
                           "Webhook delivery attempts by outcome.", ["outcome"])


def record_finished(pipeline: str, status: str, error_code: str | None = None,
                    timings: dict[str, float] | None = None, duration_s: float = 0.0,
                    charged_micro_usd: int | None = None) -> None:
    """A job ended on this worker: count it, and for a completed one its stages and audio."""
    TRANSCRIPTIONS_FINISHED.labels(pipeline, status, error_code or "").inc()
    for stage, seconds in (timings or {}).items():
        STAGE_SECONDS.labels(pipeline, stage).observe(seconds)
    if duration_s > 0:
        AUDIO_SECONDS.labels(pipeline).inc(duration_s)
        REALTIME_FACTOR.labels(pipeline).observe(sum((timings or {}).values()) / duration_s)
    if charged_micro_usd:
        WALLET_CHARGES.inc()
        WALLET_CHARGED.inc(charged_micro_usd)


def serve_worker_metrics(port: int | None, what: str) -> None:
    """Expose this process's metrics on ``port`` (None: not at all). A port in use is
    logged, not fatal: the worker's job matters more than its metrics."""
    if not port:
        return
    try:
        start_http_server(port)
        log.info("%s metrics on port %d (/metrics)", what, port)
    except OSError as exc:
        log.warning("%s metrics could not listen on port %d (%s); none exposed", what,
                    port, exc)


# --------------------------------------------------------------------------- /metrics


class QueueCollector(Collector):
    """What the API reads at scrape time from Redis: queue depth, oldest job's age, and
    the model state each live worker announced."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[Any]:
        depth = GaugeMetricFamily("voxhook_queue_depth", "Jobs waiting in the queue.",
                                  labels=["queue"])
        oldest = GaugeMetricFamily("voxhook_queue_oldest_age_seconds",
                                   "How long the oldest queued job has waited (0: none).",
                                   labels=["queue"])
        models = GaugeMetricFamily(
            "voxhook_model_state", "1 for the state each live worker's model is in.",
            labels=["worker", "pipeline", "model", "state"])
        name = self.queue.queue.name
        try:
            depth.add_metric([name], self.queue.queue.count)
            oldest.add_metric([name], self._oldest_age())
            for worker in self.queue.live_workers():
                for pipeline, status in worker.pipelines.items():
                    models.add_metric([worker.name, pipeline, "asr", str(status["state"])], 1)
                    diarization = status.get("diarization")
                    if isinstance(diarization, dict):
                        models.add_metric([worker.name, pipeline, "diarization",
                                           str(diarization["state"])], 1)
        except Exception as exc:  # Redis away: the other metrics still answer
            log.warning("queue metrics unavailable: %s", exc)
            return
        yield depth
        yield oldest
        yield models

    def _oldest_age(self) -> float:
        ids = self.queue.queue.get_job_ids(0, 0)
        if not ids:
            return 0.0
        job = self.queue.queue.fetch_job(ids[0])
        if job is None or job.enqueued_at is None:
            return 0.0
        enqueued = job.enqueued_at
        if enqueued.tzinfo is None:  # RQ stores UTC without a zone
            enqueued = enqueued.replace(tzinfo=UTC)
        return max(time.time() - enqueued.timestamp(), 0.0)


def exposition(queue: JobQueue) -> tuple[bytes, str]:
    """The body and content type of ``/metrics`` for this API process: every gunicorn
    process's samples (multiprocess mode, when ``PROMETHEUS_MULTIPROC_DIR`` is set, as
    ``app.ops.gunicorn_conf`` does), else this process's own, plus the queue's."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Chain(REGISTRY))
    registry.register(QueueCollector(queue))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Chain(Collector):
    """Another registry's metrics, collected through this one."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()
