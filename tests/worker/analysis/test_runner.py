"""AI analysis (:mod:`worker.analysis.runner`) against a loopback server that answers as an
OpenAI-compatible chat endpoint: structured output, an answer out of schema (asked once
more, then failed), a timeout, and a long transcript split into parts and merged."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator

import pytest
from jsonschema import Draft202012Validator

from app.config import Settings
from app.transcriptions.analysis_catalog import DEFAULT_ANALYSES
from app.transcriptions.pipelines import parse_catalog
from app.transcriptions.remote_config import AnalysisEndpoint
from tests.support.fake_openai import DEFAULT_ANSWERS, FakeOpenAi
from worker.analysis.runner import completed_count, pack, run_analyses, transcript_lines
from worker.remote_http import RemoteCaller

SETTINGS = Settings(fetch_allowlist=("127.0.0.1",))
RESULT = {"utterances": [
    {"start": 0.5, "end": 3.0, "text": "Let's ship on Friday.", "speaker": "SPEAKER 1"},
    {"start": 3.2, "end": 5.0, "text": "I'll send the report.", "speaker": "SPEAKER 2"},
]}


def endpoint(base_url: str, extra: str = "") -> AnalysisEndpoint:
    document = tomllib.loads(f'''
[analysis]
base_url = "{base_url}"
model = "qwen2.5:7b-instruct"
timeout_s = 1.0
retries = 1
backoff_s = 0.01
{extra}
[[pipeline]]
code = "p"
model = "base"
''')
    catalog = parse_catalog(document, Settings(), "test")
    assert catalog.pipelines[0].analyses == tuple(catalog.analysis.definitions)
    return catalog.analysis


@pytest.fixture
def llm() -> Iterator[FakeOpenAi]:
    with FakeOpenAi(slow_s=2.0) as server:
        yield server


def analyse(server: FakeOpenAi, names, result=RESULT, extra: str = ""):
    config = endpoint(server.base_url, extra)
    return run_analyses(names, result, config, SETTINGS,
                        RemoteCaller(config, SETTINGS, sleep=lambda _: None))


def test_the_defaults_answer_with_structured_output(llm: FakeOpenAi):
    names = [analysis.name for analysis in DEFAULT_ANALYSES]
    outcomes = analyse(llm, names)
    assert outcomes == {name: {"status": "completed", "result": DEFAULT_ANSWERS[name]}
                        for name in names}
    assert completed_count({"analysis": outcomes}) == 6
    request = llm.chat_requests[0]
    assert request["model"] == "qwen2.5:7b-instruct"
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"] == DEFAULT_ANALYSES[0].schema
    assert "[0.5] SPEAKER 1: Let's ship on Friday." in request["messages"][1]["content"]


def test_every_default_schema_accepts_its_sample_answer():
    for analysis in DEFAULT_ANALYSES:
        Draft202012Validator.check_schema(analysis.schema)
        assert not list(Draft202012Validator(analysis.schema).iter_errors(
            DEFAULT_ANSWERS[analysis.name])), analysis.name


def test_an_answer_out_of_schema_is_asked_once_more(llm: FakeOpenAi):
    llm.chat_script = ["bad"]
    outcomes = analyse(llm, ["summary"])
    assert outcomes["summary"] == {"status": "completed", "result": DEFAULT_ANSWERS["summary"]}
    assert len(llm.chat_requests) == 2
    retry = llm.chat_requests[1]["messages"]
    assert retry[2]["role"] == "assistant" and "does not follow the JSON schema" in (
        retry[3]["content"])


def test_two_answers_out_of_schema_fail_the_analysis_alone(llm: FakeOpenAi):
    llm.chat_script = ["bad", "bad"]
    outcomes = analyse(llm, ["summary", "topics"])
    assert outcomes["summary"]["status"] == "failed"
    assert "did not follow the analysis's JSON schema, twice" in outcomes["summary"]["error"]
    assert "'summary' is a required property" in outcomes["summary"]["error"]
    assert outcomes["topics"] == {"status": "completed", "result": DEFAULT_ANSWERS["topics"]}
    assert completed_count({"analysis": outcomes}) == 1


def test_a_timeout_fails_the_analysis_with_the_reason(llm: FakeOpenAi):
    llm.chat_script = ["slow", "slow"]
    outcomes = analyse(llm, ["summary"])
    assert outcomes["summary"]["status"] == "failed"
    assert "after 2 tries" in outcomes["summary"]["error"]
    assert "no answer within 1 s" in outcomes["summary"]["error"]


def test_json_object_mode_puts_the_schema_in_the_prompt(llm: FakeOpenAi):
    outcomes = analyse(llm, ["action_items"], extra='structured_output = "json_object"')
    assert outcomes["action_items"]["status"] == "completed"
    request = llm.chat_requests[0]
    assert request["response_format"] == {"type": "json_object"}
    assert '"action_items"' in request["messages"][0]["content"]


def test_a_long_transcript_is_split_to_fit_and_merged(llm: FakeOpenAi):
    long_result = {"utterances": [
        {"start": float(n), "end": n + 0.9, "text": f"Sentence number {n} of the meeting.",
         "speaker": None} for n in range(2000)]}
    outcomes = analyse(llm, ["summary"], long_result,
                       extra="context_tokens = 2048\nmax_output_tokens = 256")
    assert outcomes["summary"]["status"] == "completed"
    parts = [r for r in llm.chat_requests if "This is part" in r["messages"][1]["content"]]
    merges = [r for r in llm.chat_requests if "Merge them" in r["messages"][1]["content"]]
    assert len(parts) > 5 and merges
    for request in parts:  # each part fits the context, with room for the answer
        assert sum(len(m["content"]) for m in request["messages"]) / 3 < 2048 - 256
    sent = "\n".join(r["messages"][1]["content"] for r in parts)
    assert all(f"Sentence number {n} " in sent for n in range(2000))


def test_nothing_said_fails_without_asking():
    config = endpoint("http://127.0.0.1:9/v1")
    outcomes = run_analyses(["summary"], {"utterances": []}, config, SETTINGS)
    assert outcomes["summary"]["status"] == "failed"
    assert "nothing was said" in outcomes["summary"]["error"]


def test_lines_and_packing():
    assert transcript_lines(RESULT) == ["[0.5] SPEAKER 1: Let's ship on Friday.",
                                        "[3.2] SPEAKER 2: I'll send the report."]
    assert pack(["aaaa", "bbbb", "cc"], 9) == ["aaaa\nbbbb", "cc"]
    assert pack(["x" * 10], 4) == ["xxxx", "xxxx", "xx"]
