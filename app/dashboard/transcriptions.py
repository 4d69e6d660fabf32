"""Transcribing and reading transcriptions in the dashboard.

A dropped file goes from the browser straight to a signed upload URL (the same one
``POST /api/v1/uploads`` answers), so its size is bounded only by the upload limit and the
API process streams it to storage; then the transcription is created from the upload, as
``POST /api/v1/transcriptions`` with ``source: "upload"`` would. A URL is sent as a plain
form. Both go through the v1 request schema and :class:`TranscriptionService`.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, jsonify, redirect, render_template, request, send_file, url_for
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict
from werkzeug.wsgi import wrap_file

from app.api.routes import respond_with_export
from app.api.schemas.transcriptions import V1CreateSchema
from app.dashboard.account import _messages, notice
from app.dashboard.web import blp, caller, services
from app.errors import ApiError, NotFound, ValidationFailed
from app.media.storage import CHUNK_BYTES
from app.store.models import Surface, Transcription, TranscriptionStatus, as_utc, utcnow
from app.transcriptions.exports import FORMATS
from app.transcriptions.representation import V1TranscriptionSchema
from app.transcriptions.service import ListQuery

PAGE_SIZE = 20
STATUSES = [str(status) for status in TranscriptionStatus]
_transcription = V1TranscriptionSchema()


def _created(transcription: Transcription) -> tuple[int, dict[str, Any]]:
    return 201, {"id": transcription.id}


def _payload(form: MultiDict[str, str], source: dict[str, str]) -> dict[str, Any]:
    """The transcribe form's options as the v1 create body, loaded by the API's schema (so
    the same checks and messages); :class:`ValidationFailed` naming each bad field."""
    fields: dict[str, Any] = dict(source)
    for name in ("pipeline_code", "language"):
        if form.get(name, "").strip():
            fields[name] = form[name].strip()
    fields["diarize"] = form.get("diarize") in ("on", "true", "1")
    count = form.get("speaker_count", "").strip()
    if fields["diarize"] and count:  # a number field's text; the schema judges the value
        fields["speaker_count"] = int(count) if count.isdecimal() else count
    try:
        return V1CreateSchema().load(fields)
    except ValidationError as exc:
        messages = _messages(exc.messages)
        raise ValidationFailed("Check the form: " + "; ".join(
            f"{name}: {' '.join(texts)}" for name, texts in messages.items()),
            fields=messages) from None


def _create(payload: dict[str, Any]) -> str:
    created = services().transcriptions.create(caller(), Surface.V1, payload, _created, None)
    return str(created.body["id"])


# --------------------------------------------------------------------------- transcribe


@blp.route("/transcribe", methods=["GET"])
def transcribe() -> Any:
    return _transcribe_page()


def _transcribe_page(errors: dict[str, list[str]] | None = None, form: Any = None,
                     status: int = 200) -> Any:
    catalog = services().catalog
    languages = sorted({code for pipeline in catalog.pipelines for code in pipeline.languages})
    return render_template("dashboard/transcribe.html", pipelines=catalog.pipelines,
                           default_pipeline=catalog.default_code, languages=languages,
                           max_upload_bytes=services().settings.uploads.max_bytes,
                           errors=errors or {}, form=form or {}), status


@blp.route("/transcribe", methods=["POST"])
def transcribe_url() -> Any:
    """The no-script way in: a URL (or sharing link) and the options, as a plain form."""
    try:
        transcription_id = _create(_payload(request.form,
                                            {"source": "external_url",
                                             "url": request.form.get("url", "").strip()}))
    except ApiError as exc:
        return _transcribe_page(exc.fields or {"url": [exc.message]}, request.form,
                                exc.status)
    notice("Transcription queued: this page follows it until it is done.")
    return redirect(url_for("dashboard.transcription", transcription_id=transcription_id))


@blp.route("/uploads", methods=["POST"])
def create_upload() -> Response:
    """For the drop zone's script: a signed URL to PUT one file to (JSON in and out)."""
    body = request.get_json(silent=True) or {}
    filename = str(body.get("filename") or "")[:255] or None
    content_type = str(body.get("content_type") or "")[:255] or None
    new = services().uploads.create(caller(), request.host_url, filename, content_type)
    return jsonify({"upload_id": new.upload.id, "upload_url": new.upload_url,
                    "max_bytes": new.max_bytes})


@blp.route("/uploads/<upload_id>/transcription", methods=["POST"])
def transcribe_upload(upload_id: str) -> Response:
    """For the drop zone's script: create the transcription of an uploaded file, with the
    options of the form (JSON in and out)."""
    options = MultiDict({str(k): str(v) for k, v in (request.get_json(silent=True) or {}).items()
                         if v not in (None, "", False)})
    transcription_id = _create(_payload(options, {"source": "upload", "upload_id": upload_id}))
    response = jsonify({"id": transcription_id,
                        "url": url_for("dashboard.transcription",
                                       transcription_id=transcription_id)})
    response.status_code = 201
    return response


# --------------------------------------------------------------------------- list, detail


@blp.route("/transcriptions", methods=["GET"])
def transcriptions() -> Any:
    status = request.args.get("status", "")
    statuses = (status,) if status in STATUSES else ()
    after = request.args.get("after") or None
    page = services().transcriptions.page(caller(), ListQuery(
        limit=PAGE_SIZE, starting_after=after, statuses=statuses, include_result=False))
    active = any(not TranscriptionStatus(t.status).is_final for t in page.items)
    return render_template("dashboard/transcriptions.html", page=page, status=status,
                           statuses=STATUSES, after=after, active=active)


@blp.route("/transcriptions/<transcription_id>", methods=["GET"])
def transcription(transcription_id: str) -> Any:
    found = services().transcriptions.get(caller(), transcription_id)
    deliveries = services().webhooks.deliveries(caller().account_id, transcription_id)
    result = found.result or {}
    return render_template(
        "dashboard/transcription.html", t=found, result=result,
        speakers=result.get("speakers") or [], utterances=result.get("utterances") or [],
        media=_media_retained(found), deliveries=deliveries, formats=list(FORMATS),
        active=not TranscriptionStatus(found.status).is_final)


def _media_retained(found: Transcription) -> bool:
    if not found.media_key:
        return False
    until = found.media_delete_after
    if until is None:
        return True
    return as_utc(until) > utcnow()


@blp.route("/transcriptions/<transcription_id>/media", methods=["GET"])
def transcription_media(transcription_id: str) -> Response:
    """The transcription's audio while the server keeps it (VOXHOOK_MEDIA_RETENTION_HOURS),
    with byte ranges from the data directory so the player can seek anywhere."""
    found = services().transcriptions.get(caller(), transcription_id)
    if not _media_retained(found):
        raise NotFound("The audio of this transcription is no longer kept on the server.")
    assert found.media_key is not None
    content_type = "application/octet-stream"
    if found.upload_id:
        upload = services().uploads.get(caller(), found.upload_id)
        if upload.content_type and upload.content_type.split("/")[0] in ("audio", "video"):
            content_type = upload.content_type
    storage = services().storage
    path = storage.local_path(found.media_key)
    if path is not None:
        return send_file(path, mimetype=content_type, conditional=True, max_age=0)
    stream = storage.open_read(found.media_key)
    return Response(wrap_file(request.environ, stream, buffer_size=CHUNK_BYTES),
                    mimetype=content_type, direct_passthrough=True)


@blp.route("/transcriptions/<transcription_id>/export/<format_name>", methods=["GET"])
def transcription_export(transcription_id: str, format_name: str) -> Response:
    if format_name not in FORMATS:
        abort(404)
    return respond_with_export(transcription_id, format_name, _transcription.dump)


@blp.route("/transcriptions/<transcription_id>/cancel", methods=["POST"])
def cancel_transcription(transcription_id: str) -> Any:
    services().transcriptions.cancel(caller(), transcription_id)
    notice("Transcription cancelled; nothing is charged for it.")
    return redirect(url_for("dashboard.transcription", transcription_id=transcription_id))


@blp.route("/transcriptions/<transcription_id>/delete", methods=["POST"])
def delete_transcription(transcription_id: str) -> Any:
    services().transcriptions.delete(caller(), transcription_id)
    notice(f"Transcription {transcription_id} deleted, with its transcript and audio.")
    return redirect(url_for("dashboard.transcriptions"))


@blp.route("/transcriptions/<transcription_id>/deliveries/<delivery_id>/resend",
           methods=["POST"])
def resend_delivery(transcription_id: str, delivery_id: str) -> Any:
    services().webhooks.resend(caller().account_id, transcription_id, delivery_id)
    notice("Webhook queued to be sent again; its attempt appears here within moments.")
    return redirect(url_for("dashboard.transcription", transcription_id=transcription_id)
                    + "#webhooks")
