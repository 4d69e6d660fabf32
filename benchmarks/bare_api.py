"""The ceiling the API is measured against: a bare Flask app under the API's own gunicorn
set-up that answers a constant JSON after one indexed SELECT (a transcription by primary
key) on the API's database. Served by ``benchmarks/bench_api_ceiling.py`` as
``benchmarks.bare_api:app``; it is no part of the service."""

from __future__ import annotations

from flask import Flask, jsonify
from sqlalchemy import text

from app.config import Settings
from app.store.db import Database

_database = Database.from_settings(Settings.from_env())
app = Flask(__name__)


@app.get("/bare/<transcription_id>")
def bare(transcription_id: str):  # type: ignore[no-untyped-def]
    with _database.engine.connect() as connection:
        found = connection.execute(text("SELECT status FROM transcriptions WHERE id = :id"),
                                   {"id": transcription_id}).first()
    return jsonify({"object": "transcription", "id": transcription_id,
                    "found": found is not None})
