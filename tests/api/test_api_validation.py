"""Every validation error is a 4xx JSON error that names the offending field, on both
surfaces; valid requests are stored and queued."""

from __future__ import annotations

import pytest

QUICKSTART = "/transcribe"
V1 = "/api/v1/transcriptions"
URL = "http://127.0.0.1:9/audio.mp3"


def v1_body(**fields):
    return {"source": "external_url", "url": URL, **fields}


CASES = [
    # (surface path, body, field named, status)
    (QUICKSTART, {}, "url", 422),
    (QUICKSTART, {"url": 5}, "url", 422),
    (QUICKSTART, {"url": "not a url"}, "url", 422),
    (QUICKSTART, {"url": "ftp://example.com/a.mp3"}, "url", 422),
    (QUICKSTART, {"url": URL, "surprise": 1}, "surprise", 422),
    (QUICKSTART, {"url": URL, "diarize": "yes"}, "diarize", 422),
    (QUICKSTART, {"url": URL, "align": 1}, "align", 422),
    (QUICKSTART, {"url": URL, "speaker_count": "2", "diarize": True}, "speaker_count", 422),
    (QUICKSTART, {"url": URL, "speaker_count": 0, "diarize": True}, "speaker_count", 422),
    (QUICKSTART, {"url": URL, "speaker_count": 2}, "speaker_count", 422),
    (QUICKSTART, {"url": URL, "language": "english"}, "language", 422),
    (QUICKSTART, {"url": URL, "language": "xx"}, "language", 422),
    (QUICKSTART, {"url": URL, "language": 7}, "language", 422),
    (QUICKSTART, {"url": URL, "webhook_url": "javascript:alert(1)"}, "webhook_url", 422),
    (V1, {"url": URL}, "source", 422),
    (V1, {"source": "external_url"}, "url", 422),
    (V1, v1_body(source="s3"), "source", 422),
    (V1, v1_body(pipeline_code="no-such-pipeline"), "pipeline_code", 422),
    (V1, v1_body(pipeline_code=12), "pipeline_code", 422),
    (V1, v1_body(language="EN"), "language", 422),
    (V1, v1_body(speaker_count=-1, diarize=True), "speaker_count", 422),
    (V1, v1_body(speaker_count=3), "speaker_count", 422),
    (V1, v1_body(extra_field=True), "extra_field", 422),
    (V1, v1_body(min_speakers=2), "min_speakers", 422),
    (V1, v1_body(max_speakers=3, diarize=False), "max_speakers", 422),
    (V1, v1_body(max_speakers=0, diarize=True), "max_speakers", 422),
    (V1, v1_body(min_speakers=51, diarize=True), "min_speakers", 422),
    (V1, v1_body(min_speakers=2.5, diarize=True), "min_speakers", 422),
    (QUICKSTART, {"url": URL, "speaker_count": 51, "diarize": True}, "speaker_count", 422),
    (QUICKSTART, {"url": URL, "min_speakers": 2, "diarize": True}, "min_speakers", 422),
]

#: Speaker numbers that contradict each other: every field at fault is named.
CONTRADICTIONS = [
    (v1_body(diarize=True, min_speakers=3, max_speakers=2), {"min_speakers", "max_speakers"}),
    (v1_body(diarize=True, speaker_count=5, max_speakers=3), {"speaker_count", "max_speakers"}),
    (v1_body(diarize=True, speaker_count=1, min_speakers=2), {"speaker_count", "min_speakers"}),
    (v1_body(diarize=True, speaker_count=9, min_speakers=2, max_speakers=4),
     {"speaker_count", "max_speakers"}),
    (v1_body(speaker_count=2, min_speakers=1), {"speaker_count", "min_speakers"}),
]


@pytest.mark.parametrize(("path", "body", "field", "status"), CASES)
def test_invalid_body_names_the_field(client, api_key, path, body, field, status):
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error
    assert field in error["message"]
    assert all(message for message in error["fields"][field])


@pytest.mark.parametrize(("body", "named"), CONTRADICTIONS)
def test_contradicting_speaker_numbers_name_every_field(client, api_key, body, named):
    response = client.post(V1, json=body, headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert set(error["fields"]) == named, error
    assert all(field in error["message"] for field in named)


def test_consistent_speaker_numbers_pass_the_schema(client, api_key):
    """Count within the bounds is fine; only the pipeline's lack of a diarizer is refused."""
    body = v1_body(diarize=True, speaker_count=3, min_speakers=2, max_speakers=4)
    response = client.post(V1, json=body, headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"diarize"}


def test_unknown_pipeline_lists_the_available_codes(client, api_key):
    response = client.post(V1, json=v1_body(pipeline_code="whisper-huge"),
                           headers={"Authorization": f"Bearer {api_key}"})
    error = response.get_json()["error"]
    assert error["available_pipeline_codes"] == ["tiny", "qwen3-asr-flash-filetrans"]
    assert "tiny" in error["message"] and "qwen3-asr-flash-filetrans" in error["message"]


@pytest.mark.parametrize("path", [QUICKSTART, V1])
def test_malformed_json_is_a_400(client, api_key, path):
    response = client.post(path, data='{"url": "http://x', content_type="application/json",
                           headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("path", [QUICKSTART, V1])
def test_a_json_array_is_not_a_body(client, api_key, path):
    response = client.post(path, json=[1, 2], headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_error"


def test_diarize_is_refused_until_a_pipeline_can_diarize(client, api_key):
    response = client.post(QUICKSTART, json={"url": URL, "diarize": True, "speaker_count": 2},
                           headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 422
    assert "diarize" in response.get_json()["error"]["fields"]


def test_a_language_the_pipeline_does_not_know_is_refused(client, api_key):
    """'ak' is ISO 639-1 but not one of Whisper's languages."""
    response = client.post(QUICKSTART, json={"url": URL, "language": "ak"},
                           headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 422
    assert "language" in response.get_json()["error"]["fields"]


def test_valid_requests_are_stored_queued_and_readable(client, api_key, settings):
    from redis import Redis
    from rq import Queue

    headers = {"Authorization": api_key}  # the Quickstart style: no "Bearer"
    created = client.post(QUICKSTART, json={"url": URL, "language": "de", "align": False},
                          headers=headers)
    assert created.status_code == 200
    body = created.get_json()
    assert body == {"id": body["id"], "status": "queued"}
    queue = Queue(settings.queue_name, connection=Redis.from_url(settings.redis_url))
    assert body["id"] in queue.job_ids

    polled = client.get(f"{QUICKSTART}/{body['id']}", headers=headers).get_json()
    assert polled["status"] == "queued" and polled["result"] is None
    assert polled["progress"] == 0.0 and polled["cost_cents"] is None
    v1 = client.get(f"{V1}/{body['id']}", headers={"Authorization": f"Bearer {api_key}"})
    assert v1.get_json()["language"] == "de" and v1.get_json()["align"] is False


def test_openapi_document_describes_both_surfaces(client):
    spec = client.get("/openapi.json").get_json()
    for path in ("/transcribe", "/transcribe/{transcription_id}", "/api/v1/transcriptions",
                 "/api/v1/transcriptions/{transcription_id}", "/api/v1/pipelines",
                 "/healthz", "/readyz"):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert "speaker_count" in schemas["QuickstartCreate"]["properties"]
    assert "confidence" in schemas["Utterance"]["properties"]
    assert client.get("/docs").status_code == 200


def test_pipelines_endpoint_offers_the_choices(client, api_key):
    response = client.get("/api/v1/pipelines", headers={"Authorization": f"Bearer {api_key}"})
    (pipeline,) = response.get_json()["data"]
    assert pipeline["code"] == "tiny" and pipeline["default"] is True
    assert pipeline["price_per_minute_usd"] == "0.0285"
    assert pipeline["aliases"] == ["qwen3-asr-flash-filetrans"]
    assert pipeline["can_diarize"] is False
    assert "en" in pipeline["languages"] and "de" in pipeline["languages"]


def test_unknown_routes_and_methods_answer_json(client):
    assert client.get("/nope").get_json()["error"]["code"] == "not_found"
    response = client.delete("/healthz")
    assert response.status_code == 405 and "error" in response.get_json()
