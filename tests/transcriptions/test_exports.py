"""Exports of completed transcriptions: the cue builder's limits, SRT/WebVTT/text/JSON read
back with independent parsers (``srt``, ``webvtt-py``), and the export endpoints of both
surfaces."""

from __future__ import annotations

import html
import itertools
import json
from typing import Any

import pytest
import srt
import webvtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.billing.keys import create_key, find_active_key_ids
from app.store.models import Account, Transcription, new_id, utcnow
from app.transcriptions.exports import (
    CaptionLimits,
    Cue,
    build_cues,
    speaker_prefix,
    to_json,
    to_srt,
    to_text,
    to_vtt,
)

LIMITS = CaptionLimits()
SPEAKERS = ["SPEAKER 1", "SPEAKER 2", "SPEAKER 3"]


# --------------------------------------------------------------------------- helpers


def word(text: str, start: float, end: float, speaker: str | None = None) -> dict[str, Any]:
    return {"word": text, "start": start, "end": end, "confidence": 0.9, "speaker": speaker}


def utterance(words: list[dict[str, Any]], speaker: str | None = None,
              aligned: bool = True) -> dict[str, Any]:
    item = {"start": words[0]["start"], "end": words[-1]["end"], "speaker": speaker,
            "text": " ".join(w["word"] for w in words), "confidence": 0.9}
    if aligned:
        item["words"] = words
    return item


def result_of(utterances: list[dict[str, Any]]) -> dict[str, Any]:
    speakers: list[str] = []
    for item in utterances:
        if item["speaker"] and item["speaker"] not in speakers:
            speakers.append(item["speaker"])
    return {"full_transcript": " ".join(u["text"] for u in utterances), "language": "en",
            "duration_seconds": max((u["end"] for u in utterances), default=0.0),
            "speakers": speakers, "utterances": utterances}


def cue_words(cue: Cue) -> list[str]:
    return [token for line in cue.lines for token in line.split(" ")]


def shown_lines(cue: Cue) -> list[str]:
    """The lines as SRT shows them: the speaker label in front of the first."""
    return [speaker_prefix(cue.speaker) + cue.lines[0], *cue.lines[1:]]


def result_words(result: dict[str, Any]) -> list[tuple[str, str | None, int]]:
    """(word, speaker, utterance index) of every word the captions must show, in order."""
    found = []
    for index, item in enumerate(result["utterances"]):
        if "words" in item:
            found += [(w["word"], w["speaker"], index) for w in item["words"]]
        else:
            found += [(token, item["speaker"], index) for token in item["text"].split()]
    return found


# --------------------------------------------------------------------------- strategies

#: Ordinary words (with punctuation and characters WebVTT must escape) and, now and then,
#: one longer than a caption line.
short_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé',.?!&<>-", min_size=1, max_size=12)
long_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=35, max_size=60)
word_texts = st.one_of(short_words, short_words, short_words, short_words, long_words)
#: Silences between words: mostly short, sometimes longer than a cue may bridge.
gaps = st.one_of(st.just(0.0), st.floats(0.0, 0.5), st.floats(0.0, 0.5), st.floats(1.0, 4.0))
#: Word durations: mostly short, sometimes a word held longer than a cue may last.
durations = st.one_of(st.floats(0.0, 1.2), st.floats(0.0, 1.2), st.floats(0.0, 1.2),
                      st.floats(6.0, 9.0))


@st.composite
def results(draw: st.DrawFn, aligned: bool | None = None,
            diarized: bool | None = None) -> dict[str, Any]:
    """A well-formed result (times in order, to the millisecond) with long utterances."""
    aligned = draw(st.booleans()) if aligned is None else aligned
    diarized = draw(st.booleans()) if diarized is None else diarized
    clock = draw(st.floats(0.0, 3.0))
    utterances = []
    for _ in range(draw(st.integers(0, 5))):
        speaker = draw(st.sampled_from(SPEAKERS)) if diarized else None
        words = []
        for _ in range(draw(st.integers(1, 30))):
            clock = round(clock + draw(gaps), 3)
            end = round(clock + draw(durations), 3)
            words.append(word(draw(word_texts), clock, end, speaker))
            clock = end
        utterances.append(utterance(words, speaker, aligned))
        clock += draw(gaps)
    return result_of(utterances)


# --------------------------------------------------------------------------- cue properties


def check_cues(result: dict[str, Any], cues: list[Cue]) -> list[int]:
    """Every rule of build_cues, for a well-formed result; the utterance of each cue."""
    expected = result_words(result)
    assert [token for cue in cues for token in cue_words(cue)] == [w for w, _, _ in expected]
    position = 0
    previous_end = 0.0
    owners = []
    for cue in cues:
        tokens = cue_words(cue)
        taken = expected[position:position + len(tokens)]
        position += len(tokens)
        # Never two speakers, never across an utterance boundary.
        assert {speaker for _, speaker, _ in taken} == {cue.speaker}
        assert len({index for _, _, index in taken}) == 1
        owners.append(taken[0][2])
        assert 1 <= len(cue.lines) <= LIMITS.max_lines
        for line in shown_lines(cue):
            if len(line) > LIMITS.max_line_chars:  # only a word that cannot fit any line
                assert len(line.removeprefix(speaker_prefix(cue.speaker)).split(" ")) == 1
        if cue.end - cue.start > LIMITS.max_cue_seconds + 1e-9:
            assert len(tokens) == 1, cue
        assert 0.0 <= previous_end <= cue.start <= cue.end
        previous_end = cue.end
    return owners


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results(aligned=True))
def test_cues_keep_every_rule_with_word_timings(result):
    cues = build_cues(result)
    check_cues(result, cues)
    # Times are the words' own: first word's start, last word's end.
    timed = [w for item in result["utterances"] for w in item["words"]]
    position = 0
    for cue in cues:
        count = len(cue_words(cue))
        assert cue.start == timed[position]["start"]
        assert cue.end == timed[position + count - 1]["end"]
        position += count


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results(aligned=False))
def test_cues_keep_every_rule_without_word_timings(result):
    cues = build_cues(result)
    owners = check_cues(result, cues)
    # Each utterance's time is spread over its cues by characters: they cover it exactly.
    for index, item in enumerate(result["utterances"]):
        own = [cue for cue, owner in zip(cues, owners, strict=True) if owner == index]
        assert own[0].start == pytest.approx(item["start"])
        assert own[-1].end == pytest.approx(item["end"])
        for before, after in itertools.pairwise(own):
            assert before.end == pytest.approx(after.start)
        characters = sum(len(token) for token in item["text"].split())
        for cue in own:
            share = sum(len(token) for token in cue_words(cue)) / characters
            assert cue.end - cue.start == pytest.approx(
                (item["end"] - item["start"]) * share, abs=1e-6)


def test_lines_fill_greedily_and_the_label_counts():
    words = [word(text, i * 0.3, i * 0.3 + 0.2, "SPEAKER 1") for i, text in enumerate(
        "one two three four five six seven eight nine ten eleven twelve".split())]
    (cue,) = build_cues(result_of([utterance(words, "SPEAKER 1")]))
    # "SPEAKER 1: " takes 11 of the first line's 42 characters.
    assert cue.lines == ("one two three four five six", "seven eight nine ten eleven twelve")
    assert len(shown_lines(cue)[0]) <= 42
    (plain,) = build_cues(result_of([utterance(
        [{**w, "speaker": None} for w in words])]))
    assert plain.lines == ("one two three four five six seven eight", "nine ten eleven twelve")


def test_a_cue_ends_at_seven_seconds_a_pause_and_a_full_second_line():
    words = [word(f"w{i}", float(i), i + 0.5) for i in range(10)]
    cues = build_cues(result_of([utterance(words)]))
    assert [c.lines for c in cues] == [("w0 w1 w2 w3 w4 w5 w6",), ("w7 w8 w9",)]
    assert (cues[0].start, cues[0].end) == (0.0, 6.5)  # w7 would end at 7.5 s
    paused = [word("before", 0.0, 0.5), word("after", 3.0, 3.5)]
    assert [c.lines for c in build_cues(result_of([utterance(paused)]))] == [
        ("before",), ("after",)]
    many = [word("abcdefghij", i * 0.1, i * 0.1 + 0.05) for i in range(9)]
    cues = build_cues(result_of([utterance(many)]))
    assert [len(c.lines) for c in cues] == [2, 1]
    assert cues[0].lines[0] == "abcdefghij abcdefghij abcdefghij"


def test_an_over_long_word_stands_alone_and_whole():
    long = "x" * 50
    words = [word("a", 0.0, 0.1), word(long, 0.2, 0.9), word("b", 1.0, 1.1)]
    cues = build_cues(result_of([utterance(words)]))
    assert [c.lines for c in cues] == [("a", long), ("b",)]
    cues = build_cues(result_of([utterance([word("a", 0.0, 0.1), word(long, 0.2, 0.9),
                                            word(long, 1.0, 1.5)])]))
    assert [c.lines for c in cues] == [("a", long), (long,)]
    (held,) = build_cues(result_of([utterance([word("Sooo", 0.0, 9.0)])]))
    assert (held.start, held.end) == (0.0, 9.0)


def test_without_words_time_is_spread_by_characters():
    item = {"start": 10.0, "end": 14.0, "text": "aaaaaaaaaaaaaaaaaaaa " * 4, "speaker": None,
            "confidence": 0.5}
    cues = build_cues(result_of([item]))
    # 80 characters of words, 4 words: two words a line, two lines a cue -> one cue.
    assert len(cues) == 1 and cues[0].lines == ("aaaaaaaaaaaaaaaaaaaa aaaaaaaaaaaaaaaaaaaa",) * 2
    item = {**item, "end": 30.0, "text": "aa bbbbbb cccccccc"}
    cues = build_cues(result_of([item]))  # 20 s over 16 characters: 7 s fits 5.6 of them
    assert [c.lines for c in cues] == [("aa",), ("bbbbbb",), ("cccccccc",)]
    assert [(c.start, c.end) for c in cues] == [
        pytest.approx((10.0, 12.5)), pytest.approx((12.5, 20.0)), pytest.approx((20.0, 30.0))]


def test_odd_times_are_clamped_never_negative_nor_overlapping():
    result = result_of([
        utterance([word("late", 5.0, 6.0), word("back", 4.0, 3.0)]),
        utterance([word("early", -2.0, 5.5)]),
        {"start": float("nan"), "end": -1.0, "text": "no time", "speaker": None,
         "confidence": 0.1},
    ])
    cues = build_cues(result)
    previous = 0.0
    for cue in cues:
        assert previous <= cue.start <= cue.end
        previous = cue.end
    assert srt.parse(to_srt(result))  # still a valid file
    assert webvtt.from_string(to_vtt(result)).captions


def test_a_cue_never_mixes_speakers_within_an_utterance():
    words = [word("Yes", 0.0, 0.2, "SPEAKER 1"), word("No", 0.3, 0.5, "SPEAKER 2")]
    cues = build_cues(result_of([utterance(words, "SPEAKER 1")]))
    assert [(c.speaker, c.lines) for c in cues] == [("SPEAKER 1", ("Yes",)),
                                                    ("SPEAKER 2", ("No",))]


def test_an_empty_result_exports_empty_files():
    empty = result_of([])
    assert build_cues(empty) == [] and to_srt(empty) == "" and to_text(empty) == ""
    assert to_vtt(empty) == "WEBVTT\n"
    assert webvtt.from_string(to_vtt(empty)).captions == []


# --------------------------------------------------------------------------- formats


def ms(seconds: float) -> int:
    return round(seconds * 1000)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results(aligned=True))
def test_srt_carries_the_words_and_times_of_the_json(result):
    parsed = list(srt.parse(to_srt(result)))
    timed = [w for item in result["utterances"] for w in item["words"]]
    position = 0
    for index, subtitle in enumerate(parsed, start=1):
        assert subtitle.index == index
        lines = subtitle.content.split("\n")
        speaker = timed[position]["speaker"]
        if speaker:
            assert lines[0].startswith(f"{speaker}: ")
            lines[0] = lines[0].removeprefix(f"{speaker}: ")
        else:
            assert not lines[0].startswith("SPEAKER")
        tokens = " ".join(lines).split(" ")
        own = timed[position:position + len(tokens)]
        assert tokens == [w["word"] for w in own]
        start = subtitle.start.total_seconds()
        end = subtitle.end.total_seconds()
        assert abs(start - own[0]["start"]) <= 0.001
        assert abs(end - own[-1]["end"]) <= 0.001
        position += len(tokens)
    assert position == len(timed)
    for before, after in itertools.pairwise(parsed):
        assert before.end <= after.start


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results(aligned=True))
def test_webvtt_carries_the_words_times_and_voices_of_the_json(result):
    document = to_vtt(result)
    assert document.startswith("WEBVTT\n")
    captions = webvtt.from_string(document).captions
    timed = [w for item in result["utterances"] for w in item["words"]]
    position = 0
    for caption in captions:
        speaker = timed[position]["speaker"]
        assert caption.voice == speaker  # None when not diarized: no voice tag at all
        tokens = html.unescape(caption.text).replace("\n", " ").split(" ")
        own = timed[position:position + len(tokens)]
        assert tokens == [w["word"] for w in own]
        assert abs(caption.start_time.in_milliseconds() - ms(own[0]["start"])) <= 1
        assert abs(caption.end_time.in_milliseconds() - ms(own[-1]["end"])) <= 1
        # Reserved characters are escaped in the cue text.
        assert "&" not in caption.raw_text.replace("&amp;", "").replace(
            "&lt;", "").replace("&gt;", "")
        position += len(tokens)
    assert position == len(timed)


def test_srt_and_webvtt_of_a_diarized_result_exactly():
    result = result_of([
        utterance([word("Hello,", 0.5, 0.9, "SPEAKER 1"), word("world.", 1.0, 1.4, "SPEAKER 1")],
                  "SPEAKER 1"),
        utterance([word("Fish", 3661.0, 3661.25, "SPEAKER 2"),
                   word("&", 3661.3, 3661.4, "SPEAKER 2"),
                   word("<chips>", 3661.5, 3662.0, "SPEAKER 2")], "SPEAKER 2"),
    ])
    assert to_srt(result) == (
        "1\n00:00:00,500 --> 00:00:01,400\nSPEAKER 1: Hello, world.\n\n"
        "2\n01:01:01,000 --> 01:01:02,000\nSPEAKER 2: Fish & <chips>\n")
    assert to_vtt(result) == (
        "WEBVTT\n\n"
        "00:00:00.500 --> 00:00:01.400\n<v SPEAKER 1>Hello, world.\n\n"
        "01:01:01.000 --> 01:01:02.000\n<v SPEAKER 2>Fish &amp; &lt;chips&gt;\n")


def test_plain_text_paragraphs():
    one = utterance([word("First", 0.0, 0.5), word("thought.", 0.6, 1.0)])
    two = utterance([word("Second", 2.0, 2.5), word("one.", 2.6, 3.0)], aligned=False)
    assert to_text(result_of([one, two])) == "First thought.\n\nSecond one.\n"
    diarized = result_of([
        {**one, "speaker": "SPEAKER 1"}, {**two, "speaker": "SPEAKER 1"},
        {**one, "speaker": "SPEAKER 2"}, {**two, "speaker": "SPEAKER 1"},
    ])
    assert to_text(diarized) == (
        "SPEAKER 1: First thought. Second one.\n\n"
        "SPEAKER 2: First thought.\n\n"
        "SPEAKER 1: Second one.\n")


@settings(max_examples=50, deadline=None)
@given(results())
def test_plain_text_holds_every_word_and_labels_only_when_diarized(result):
    text = to_text(result)
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    diarized = bool(result["speakers"])
    words = []
    for paragraph in paragraphs:
        starts_labelled = paragraph.startswith(tuple(f"{s}: " for s in SPEAKERS))
        assert starts_labelled == diarized
        words += paragraph.strip().split(" ")[2 if diarized else 0:]
    assert words == result["full_transcript"].split()


def test_json_is_the_body_indented():
    body = {"id": "tr_1", "status": "completed", "result": {"full_transcript": "Grüße"}}
    assert json.loads(to_json(body)) == body
    assert "Grüße" in to_json(body)


# --------------------------------------------------------------------------- API

V1 = "/api/v1/transcriptions"
QUICKSTART = "/transcribe"
SURFACES = [pytest.param(V1, id="v1"), pytest.param(QUICKSTART, id="quickstart")]
MEDIA_TYPES = {"srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8",
               "txt": "text/plain; charset=utf-8", "json": "application/json"}
DIARIZED = result_of([
    utterance([word("Good", 0.0, 0.4, "SPEAKER 1"), word("morning.", 0.5, 1.0, "SPEAKER 1")],
              "SPEAKER 1"),
    utterance([word("Hi!", 1.5, 1.9, "SPEAKER 2")], "SPEAKER 2"),
])


def insert(database, secret: str, status: str = "completed",
           result: dict[str, Any] | None = None) -> str:
    """A transcription row of the key's account, as the worker leaves it."""
    done = status in ("completed", "failed")
    with database.session() as session:
        key_id, account_id = find_active_key_ids(session, secret)
        row = Transcription(
            id=new_id("tr"), account_id=account_id, api_key_id=key_id, surface="v1",
            status=status, source="external_url", url="http://127.0.0.1:9/a.mp3",
            pipeline_code="tiny", language=None, align=True, diarize=True, progress=1.0 if done
            else 0.0, audio_duration_seconds=2.0 if done else None,
            cost_micro_usd=950 if done else None,
            result=(result or DIARIZED) if status == "completed" else None,
            error_code="fetch_failed" if status == "failed" else None,
            error_message="The URL answered 404." if status == "failed" else None,
            created_at=utcnow(), completed_at=utcnow() if done else None)
        session.add(row)
        return row.id


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("format_name", ["srt", "vtt", "txt", "json"])
def test_export_of_a_completed_transcription(client, database, api_key, surface, format_name):
    tid = insert(database, api_key)
    response = client.get(f"{surface}/{tid}/export?format={format_name}", headers=auth(api_key))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == MEDIA_TYPES[format_name]
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{tid}.{format_name}"')
    text = response.get_data(as_text=True)
    if format_name == "srt":
        subtitles = list(srt.parse(text))
        assert [s.content for s in subtitles] == ["SPEAKER 1: Good morning.", "SPEAKER 2: Hi!"]
    elif format_name == "vtt":
        captions = webvtt.from_string(text).captions
        assert [(c.voice, c.text) for c in captions] == [("SPEAKER 1", "Good morning."),
                                                         ("SPEAKER 2", "Hi!")]
    elif format_name == "txt":
        assert text == "SPEAKER 1: Good morning.\n\nSPEAKER 2: Hi!\n"
    else:
        polled = client.get(f"{surface}/{tid}", headers=auth(api_key)).get_json()
        assert json.loads(text) == polled


@pytest.mark.parametrize("surface", SURFACES)
def test_export_of_a_queued_or_failed_transcription_is_a_409(client, database, api_key,
                                                             surface):
    queued = insert(database, api_key, status="queued")
    response = client.get(f"{surface}/{queued}/export?format=srt", headers=auth(api_key))
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "transcription_not_ready" and error["status"] == "queued"
    assert "queued" in error["message"] and f"{surface}/{queued}" in error["message"]
    failed = insert(database, api_key, status="failed")
    response = client.get(f"{surface}/{failed}/export?format=txt", headers=auth(api_key))
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "transcription_failed"


@pytest.mark.parametrize("surface", SURFACES)
def test_export_of_another_accounts_or_an_unknown_transcription_is_a_404(
        client, database, api_key, surface):
    with database.session() as session:
        session.add(Account(id="acct_other", name="Other"))
        session.flush()
        other = create_key(session, "other", "acct_other").secret
    theirs = insert(database, other)
    for tid in (theirs, "tr_nope"):
        response = client.get(f"{surface}/{tid}/export?format=srt", headers=auth(api_key))
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
    assert client.get(f"{surface}/{theirs}/export?format=srt",
                      headers=auth(other)).status_code == 200


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("query", ["?format=docx", "?format=SRT", "", "?format="])
def test_a_bad_format_is_a_422_naming_the_field_and_the_choices(client, database, api_key,
                                                               surface, query):
    tid = insert(database, api_key)
    response = client.get(f"{surface}/{tid}/export{query}", headers=auth(api_key))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["format"]
    for choice in ("srt", "vtt", "txt", "json"):
        assert choice in error["fields"]["format"][0] and choice in error["message"]


@pytest.mark.parametrize("surface", SURFACES)
def test_export_needs_a_key(client, database, api_key, surface):
    tid = insert(database, api_key)
    response = client.get(f"{surface}/{tid}/export?format=srt")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_openapi_documents_the_exports(client):
    spec = client.get("/openapi.json").get_json()
    for path in ("/api/v1/transcriptions/{transcription_id}/export",
                 "/transcribe/{transcription_id}/export"):
        operation = spec["paths"][path]["get"]
        assert operation["summary"].startswith("Download a completed transcription")
        (parameter,) = [p for p in operation["parameters"] if p["name"] == "format"]
        assert parameter["in"] == "query" and parameter["required"] is True
        assert parameter["schema"]["enum"] == ["srt", "vtt", "txt", "json"]
        content = operation["responses"]["200"]["content"]
        assert set(content) == {"application/x-subrip", "text/vtt", "text/plain",
                                "application/json"}
        assert "$ref" in content["application/json"]["schema"]
        assert {"401", "404", "409", "422"} <= set(operation["responses"])
