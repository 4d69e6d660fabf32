"""Health checks for load balancers and orchestrators (no key needed).

``/healthz``: the process answers. ``/readyz``: the database and Redis answer and at least
one worker has every pipeline's model loaded; otherwise 503 with what is missing and how
to fix it.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from sqlalchemy import text

from app.api.openapi import PUBLIC
from app.api.schemas.health import HealthSchema, ReadinessSchema

blp = Blueprint("health", __name__, description="Liveness and readiness.")


@blp.route("/healthz", methods=["GET"])
@blp.doc(**PUBLIC)
@blp.response(200, HealthSchema)
def healthz():
    """The API process is up."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.doc(**PUBLIC)
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, schema=ReadinessSchema, description="Something is missing; see 'missing'.")
def readyz():
    """Database, Redis and a worker with loaded models are all there."""
    ext = current_app.extensions["voxhook"]
    checks: dict[str, Any] = {}
    missing: list[str] = []

    try:
        with ext.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": str(exc).splitlines()[0]}
        missing.append("database: unreachable; check VOXHOOK_DATABASE_URL and that the "
                       "database server is running")

    workers = []
    try:
        ext.queue.ping()
        checks["redis"] = {"ok": True}
        workers = ext.queue.live_workers()
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": str(exc).splitlines()[0]}
        missing.append("redis: unreachable; check VOXHOOK_REDIS_URL and that Redis is running")

    codes = [pipeline.code for pipeline in ext.catalog.pipelines]
    ready_workers = [w for w in workers
                     if all(_models_ready(w.pipelines.get(code, {})) for code in codes)]
    checks["workers"] = {
        "ok": bool(ready_workers), "live": len(workers), "ready": len(ready_workers),
        "pipelines": {w.name: w.pipelines for w in workers},
    }
    if checks["redis"]["ok"] and not workers:
        missing.append("worker: none is running; start one with `voxhook worker`")
    elif workers and not ready_workers:
        for worker in workers:
            for code, state in worker.pipelines.items():
                models = [("model", state)]
                if "diarization" in state:
                    models.append(("diarization model", state["diarization"]))
                for what, model in models:
                    if model.get("state") == "failed":
                        missing.append(
                            f"pipeline {code} on worker {worker.name}: {model.get('error')}")
                    elif model.get("state") != "ready":
                        missing.append(
                            f"pipeline {code} on worker {worker.name}: {what} still loading")

    ready = not missing
    return {"status": "ready" if ready else "not_ready", "checks": checks,
            "missing": missing}, 200 if ready else 503


def _models_ready(state: dict[str, Any]) -> bool:
    """A pipeline is ready on a worker when its model, and its diarizer if any, are loaded."""
    diarizer = state.get("diarization")
    return state.get("state") == "ready" and (diarizer is None or diarizer.get("state") == "ready")
