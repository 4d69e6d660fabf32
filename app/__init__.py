"""Voxhook's HTTP API: the Flask application factory.

Importing the package does nothing; :func:`create_app` wires settings, database, queue and
blueprints together. The API never imports the speech pipeline (``worker``), torch,
faster_whisper or pyannote: jobs are enqueued by dotted path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask

from app.config import Settings
from app.db import Database
from app.pipelines import PipelineCatalog, load_catalog
from app.queue import JobQueue
from app.transcriptions import TranscriptionService

API_VERSION = "1.0.0"


@dataclass
class Services:
    """What the views need, built once per process (``app.extensions["voxhook"]``)."""

    settings: Settings
    db: Database
    queue: JobQueue
    catalog: PipelineCatalog
    transcriptions: TranscriptionService


def create_app(settings: Settings | None = None) -> Flask:
    """Build the API for ``settings`` (default: read from the environment)."""
    from flask_smorest import Api

    from app.errors import register_error_handlers
    from app.routes import health, quickstart, v1

    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.config.update(
        API_TITLE="Voxhook",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        OPENAPI_REDOC_PATH="redoc",
        OPENAPI_REDOC_URL="https://cdn.jsdelivr.net/npm/redoc/bundles/redoc.standalone.js",
        JSON_SORT_KEYS=False,
    )
    db = Database.from_settings(settings)
    queue = JobQueue(settings)
    catalog = load_catalog(settings)
    app.extensions["voxhook"] = Services(
        settings=settings, db=db, queue=queue, catalog=catalog,
        transcriptions=TranscriptionService(db, queue, catalog))

    api = Api(app, spec_kwargs={
        "info": {"description": "Self-hosted speech-to-text speaking two hosted "
                 "transcription contracts. Authenticate with 'Authorization: Bearer <key>' "
                 "or 'Authorization: <key>'."},
    })
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "sk_live_… key"})
    api.spec.options["security"] = [{"bearer": []}]
    for blueprint in (health.blp, quickstart.blp, v1.blp):
        api.register_blueprint(blueprint)
    register_error_handlers(app)
    return app
