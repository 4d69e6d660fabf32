"""``?wait=N`` on both surfaces' GET: hold the request until the transcription is final.

The view asks :func:`get_when_final` instead of the service's ``get``: it answers at once
when the transcription is final (or ``wait`` is 0 or absent), else as soon as the worker
announces its end (see :mod:`app.transcriptions.waiting`), else after N seconds with the
transcription as it is then (still ``queued`` or ``processing``: ask again).
"""

from __future__ import annotations

from flask import Flask, current_app
from marshmallow import EXCLUDE, Schema, fields, validate

from app.api.auth import Caller
from app.store.models import Transcription, TranscriptionStatus
from app.transcriptions.waiting import MAX_WAIT_S, FinalNotifications, wait_until_final

#: Where each process keeps its subscription (``app.extensions``).
EXTENSION = "voxhook.final_notifications"


class WaitQuerySchema(Schema):
    """``?wait=N`` of the GET views."""

    class Meta:
        unknown = EXCLUDE  # other query parameters stay ignored, as before

    wait = fields.Integer(
        load_default=0, validate=validate.Range(min=0, max=MAX_WAIT_S),
        metadata={"description": (
            f"Hold the request up to this many seconds (0 to {MAX_WAIT_S}) and answer as "
            "soon as the transcription is completed, failed or cancelled, instead of "
            "polling. The answer after the time is up is the transcription as it is then "
            "(ask again). 0 (the default) answers at once.")})


def init_app(app: Flask) -> None:
    """Give the app its per-process subscription (the listener starts on first use)."""
    settings = app.extensions["voxhook"].settings
    app.extensions[EXTENSION] = FinalNotifications(settings.redis_url, settings.queue_name)


def notifications() -> FinalNotifications:
    return current_app.extensions[EXTENSION]


def is_final(transcription: Transcription) -> bool:
    return TranscriptionStatus(transcription.status).is_final


def get_when_final(caller: Caller, transcription_id: str, wait_s: float) -> Transcription:
    """The caller's transcription, once final or after ``wait_s`` seconds (404 at once for
    an unknown id, like a plain GET)."""
    service = current_app.extensions["voxhook"].transcriptions
    first = service.get(caller, transcription_id)
    if wait_s <= 0 or is_final(first):
        return first
    return wait_until_final(notifications(), transcription_id, wait_s,
                            lambda: service.get(caller, transcription_id), is_final)
