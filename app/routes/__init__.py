"""HTTP resources: one module per surface, plus health checks."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request

from app.auth import caller
from app.models import Surface
from app.transcriptions import Idempotency, Renderer


def respond_with_new_transcription(surface: Surface, payload: dict[str, Any],
                                   render: Renderer) -> Response:
    """The body of both surfaces' create views: idempotency, the service, the stored answer.

    The answer is already rendered (and may be a replay of the stored first answer), so it is
    sent as is rather than dumped again by flask-smorest.
    """
    idempotency = Idempotency.from_request(
        request.headers.get("Idempotency-Key"), request.method, request.path, payload)
    service = current_app.extensions["voxhook"].transcriptions
    status, body = service.create(caller(), surface, payload, render, idempotency)
    response = jsonify(body)
    response.status_code = status
    return response
