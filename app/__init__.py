"""Voxhook's HTTP API: the Flask application factory.

Importing the package does nothing (the worker imports ``app.config``, ``app.store.models`` and
``app.media.uploads`` without loading Flask); :func:`create_app` wires settings, database, queue,
storage and blueprints together. The API never imports the speech pipeline (``worker``),
torch, faster_whisper or pyannote: jobs are enqueued by dotted path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from app.config import Settings
    from app.media.storage import MediaStorage
    from app.media.uploads import UploadService
    from app.store.db import Database
    from app.transcriptions.pipelines import PipelineCatalog
    from app.transcriptions.queue import JobQueue
    from app.transcriptions.service import TranscriptionService
    from app.webhooks.service import WebhookService

API_VERSION = "1.0.0"


@dataclass
class Services:
    """What the views need, built once per process (``app.extensions["voxhook"]``)."""

    settings: Settings
    db: Database
    queue: JobQueue
    catalog: PipelineCatalog
    storage: MediaStorage
    transcriptions: TranscriptionService
    uploads: UploadService
    webhooks: WebhookService


def create_app(settings: Settings | None = None) -> Flask:
    """Build the API for ``settings`` (default: read from the environment)."""
    from flask import Flask

    from app.api import docs_assets, waiting
    from app.api import observability as observability_http
    from app.api.bodies import SpoolingRequest
    from app.api.edge import register_edge_checks
    from app.api.errors import register_error_handlers
    from app.api.openai import routes as openai
    from app.api.openapi import PUBLIC, ContractPlugin, VoxhookApi
    from app.api.routes import account, admin, health, quickstart, uploads, v1, webhooks
    from app.config import Settings
    from app.dashboard import init_app as init_dashboard
    from app.media.netguard import Resolver
    from app.media.storage import storage_from_settings
    from app.media.sweep import SweepSchedule
    from app.media.uploads import UploadService
    from app.observability.logs import configure_logging
    from app.store.db import Database
    from app.transcriptions.pipelines import load_catalog
    from app.transcriptions.queue import JobQueue
    from app.transcriptions.recovery import RecoverySchedule
    from app.transcriptions.service import TranscriptionService
    from app.webhooks.doorbell import ring_doorbell
    from app.webhooks.service import WebhookService

    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    app = Flask(__name__)
    app.request_class = SpoolingRequest  # multipart file parts go to disk, not memory
    app.config.update(
        API_TITLE="Voxhook",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_REDOC_PATH="redoc",
        JSON_SORT_KEYS=False,
    )
    docs_assets.configure(app)  # /docs and /redoc load nothing from the internet
    db = Database.from_settings(settings)
    queue = JobQueue(settings)
    catalog = load_catalog(settings)
    storage = storage_from_settings(settings)
    # Webhook URLs meet the media fetcher's address rules (allowlist, connect-to).
    resolver = Resolver.from_settings(settings.fetch_allowlist, settings.fetch_connect_to)
    app.extensions["voxhook"] = Services(
        settings=settings, db=db, queue=queue, catalog=catalog, storage=storage,
        transcriptions=TranscriptionService(db, queue, catalog, storage,
                                            settings.media_limits.retention_s,
                                            settings.billing_enforced, resolver),
        uploads=UploadService(db, storage, settings),
        webhooks=WebhookService(db, resolver, settings.webhooks.secret_overlap_s,
                                lambda: ring_doorbell(queue.redis, settings)))

    api = VoxhookApi(app, spec_kwargs={
        "extra_plugins": [ContractPlugin()],
        "info": {"description": "Self-hosted speech-to-text speaking two hosted "
                 "transcription contracts. Authenticate with 'Authorization: Bearer <key>' "
                 "or 'Authorization: <key>'."},
    })
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "sk_live_… key"})
    api.spec.options["security"] = [{"bearer": []}]
    api.spec.components.security_scheme("admin", admin.SECURITY_SCHEME)
    for blueprint in (health.blp, quickstart.blp, v1.blp, account.blp, webhooks.blp,
                      uploads.blp, uploads.internal_blp, admin.blp, openai.blp):
        api.register_blueprint(blueprint)
    document_rule = next(rule for rule in app.url_map.iter_rules()
                         if rule.rule == "/openapi.json")
    api.spec.path(rule=document_rule, operations={"get": {
        **PUBLIC, "summary": "This OpenAPI document (browsable at /docs and /redoc).",
        "tags": ["health"], "responses": {"200": {
            "description": "The document.",
            "content": {"application/json": {"schema": {"type": "object"}}}}}}})
    register_edge_checks(app, api.spec.to_dict())
    register_error_handlers(app)
    init_dashboard(app)
    waiting.init_app(app)
    observability_http.init_app(app)
    sweeps = SweepSchedule(settings, db, storage)
    app.teardown_request(lambda _error: sweeps.poke())  # after the answer, never before
    # Lost and orphaned jobs are looked for by every API process too
    # (app/transcriptions/recovery.py), in a thread started by the first request of each
    # gunicorn worker (they fork after this).
    recovery = RecoverySchedule(settings, db, queue)
    app.teardown_request(lambda _error: recovery.ensure_running())
    return app
