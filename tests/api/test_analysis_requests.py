"""Asking for AI analyses on both surfaces: the ``analysis`` field is checked against what
the pipeline offers (422 naming the field and the choices), stored for the worker, and the
pipelines list shows each pipeline's engine and capabilities."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.store.models import Transcription
from app.transcriptions.engine_options import EngineOptions

V1, QUICKSTART = "/api/v1/transcriptions", "/transcribe"
URL = "http://127.0.0.1:9/audio.wav"


@pytest.fixture
def pipelines_file(tmp_path: Path) -> Path:
    path = tmp_path / "pipelines.toml"
    path.write_text('''
[analysis]
base_url = "http://127.0.0.1:9/v1"
model = "llm"
[[pipeline]]
code = "analysed"
model = "base"
analyses = ["summary", "topics"]
price_per_analysis_usd = "0.0015"
[[pipeline]]
code = "remote"
analyses = []
[pipeline.engine]
base_url = "http://127.0.0.1:9/v1"
model = "voxtral"
words = false
''')
    return path


def stored_analyses(database, transcription_id: str) -> tuple[str, ...]:
    with database.session() as session:
        row = session.get(Transcription, transcription_id)
        return EngineOptions.from_json(row.engine_options).analyses


def test_both_surfaces_store_the_asked_analyses(client, auth, database):
    v1 = client.post(V1, json={"source": "external_url", "url": URL,
                               "analysis": ["topics", "summary"]}, headers=auth)
    assert v1.status_code == 201, v1.get_json()
    assert stored_analyses(database, v1.get_json()["id"]) == ("topics", "summary")
    quick = client.post(QUICKSTART, json={"url": URL, "analysis": ["summary"]}, headers=auth)
    assert quick.status_code == 200, quick.get_json()
    assert stored_analyses(database, quick.get_json()["id"]) == ("summary",)
    plain = client.post(V1, json={"source": "external_url", "url": URL}, headers=auth)
    with database.session() as session:
        assert session.get(Transcription, plain.get_json()["id"]).engine_options is None


def test_a_form_field_takes_comma_separated_names(client, auth, database):
    response = client.post(V1, data={"analysis": "summary, topics",
                                      "file": (io.BytesIO(b"RIFF0000WAVE"), "a.wav")},
                           headers=auth, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    assert stored_analyses(database, response.get_json()["id"]) == ("summary", "topics")


@pytest.mark.parametrize(("body", "says"), [
    ({"analysis": ["chapters"]}, "offers: summary, topics"),
    ({"analysis": ["summary"], "pipeline_code": "remote"}, "offers: none"),
    ({"analysis": ["summary", "summary"]}, "given twice"),
    ({"analysis": "summary"}, None),  # JSON wants a list... or names: accepted, see below
    ({"analysis": [3]}, "Not a valid string"),
    ({"analysis": [""]}, "Length must be between 1 and 64"),
])
def test_bad_analysis_names_the_field(client, auth, body, says):
    response = client.post(V1, json={"source": "external_url", "url": URL, **body},
                           headers=auth)
    if says is None:
        assert response.status_code == 201
        return
    assert response.status_code == 422, response.get_json()
    fields = response.get_json()["error"]["fields"]
    about_analysis = {name: v for name, v in fields.items() if name.startswith("analysis")}
    assert says in str(about_analysis), fields


def test_the_pipelines_list_shows_engine_and_capabilities(client, auth):
    listed = {p["code"]: p for p in client.get("/api/v1/pipelines", headers=auth)
              .get_json()["data"]}
    assert listed["analysed"]["engine"] == {"kind": "faster-whisper", "model": "base"}
    assert listed["analysed"]["capabilities"]["analysis"] == ["summary", "topics"]
    assert listed["analysed"]["price_per_analysis_usd"] == "0.0015"
    assert listed["remote"]["engine"] == {"kind": "openai-compatible", "model": "voxtral"}
    assert listed["remote"]["capabilities"]["words"] is False
    assert listed["remote"]["capabilities"]["speakers"] is False
