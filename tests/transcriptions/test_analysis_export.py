"""AI analyses in the plain-text export: after the transcript, a heading per analysis and
its answer in lines a person reads, or why it failed; nothing when none was asked."""

from __future__ import annotations

from app.transcriptions.exports import render

RESULT = {"utterances": [{"start": 0.0, "end": 1.0, "text": "Hello there.", "speaker": None}]}


def test_analyses_follow_the_transcript():
    result = {**RESULT, "analysis": {
        "summary": {"status": "completed", "result": {"summary": "A greeting."}},
        "action_items": {"status": "completed", "result": {"action_items": [
            {"task": "Reply", "owner": "SPEAKER 2", "due": None}]}},
        "sentiment": {"status": "completed", "result": {"overall": "positive", "speakers": [
            {"speaker": "SPEAKER 1", "sentiment": "positive", "reason": "Friendly."}]}},
        "topics": {"status": "failed", "error": "the endpoint timed out"},
    }}
    assert render("txt", result, {}) == (
        "Hello there.\n"
        "\n---\nAI analysis\n\n"
        "Summary\nA greeting.\n\n"
        "Action items\n- task: Reply; owner: SPEAKER 2\n\n"
        "Sentiment\noverall: positive\n"
        "speakers: speaker: SPEAKER 1; sentiment: positive; reason: Friendly.\n\n"
        "Topics\n(failed: the endpoint timed out)\n")


def test_no_analysis_no_section():
    assert render("txt", RESULT, {}) == "Hello there.\n"
    assert render("txt", {**RESULT, "analysis": {}}, {}) == "Hello there.\n"
