"""``worker.speech.assemble.build_result``: the result keeps its invariants whatever the engine
says.

A random or hallucinating model writes times before zero or past the end, NaN and infinite
times, words out of order, words that end before they start, empty words, segments without
text and probabilities outside [0, 1]. The assembled result must stay consistent regardless.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.transcriptions.representation import stored_result
from worker.speech.asr import AsrOutput, AsrSegment, AsrWord
from worker.speech.assemble import build_result
from worker.speech.diarization import SpeakerTurn

#: Any float an engine could conceivably write, adversarial ones included.
any_time = st.one_of(
    st.floats(min_value=-100.0, max_value=200.0),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 1e300, -1e300]),
)
any_probability = st.one_of(
    st.floats(min_value=-2.0, max_value=3.0),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0]),
)
#: Log-probabilities: a model writes them <= 0, an adversarial one anything at all.
any_logprob = st.one_of(
    st.floats(min_value=-50.0, max_value=0.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 709.0, 710.0, 1e308]),
)
#: Texts as the engine hands them over (it strips them); "" is a segment without text.
texts = st.one_of(st.just(""), st.text(alphabet="abcxyz '.,é", min_size=1, max_size=12)
                  .map(str.strip))
words = st.builds(AsrWord, word=texts, start=any_time, end=any_time,
                  probability=any_probability)
segments = st.builds(
    AsrSegment, start=any_time, end=any_time, text=texts, avg_logprob=any_logprob,
    words=st.lists(words, max_size=6).map(tuple),
)
outputs = st.builds(AsrOutput, segments=st.lists(segments, max_size=8).map(tuple),
                    language=st.sampled_from(["en", "de", "jv"]))
durations = st.one_of(st.floats(min_value=0.0, max_value=120.0),
                      st.sampled_from([0.0, 0.0005, 1.0005, 11.0, 30.0]))


def check_invariants(result: dict[str, Any], duration: float, with_words: bool) -> None:
    """Assert every invariant of an assembled result (see worker/speech/assemble.py's docstring)."""
    limit = result["duration_seconds"]
    assert limit == round(duration, 3)
    assert result["speakers"] == []
    utterances = result["utterances"]
    assert result["full_transcript"] == " ".join(u["text"] for u in utterances if u["text"])
    previous_utterance_end = 0.0
    previous_word_end = 0.0
    for utterance in utterances:
        start, end = utterance["start"], utterance["end"]
        assert all(isinstance(t, float) and math.isfinite(t) for t in (start, end))
        assert 0.0 <= start <= end <= limit
        assert start >= previous_utterance_end  # utterances never go backwards
        previous_utterance_end = end
        assert 0.0 <= utterance["confidence"] <= 1.0
        assert utterance["speaker"] is None
        if not with_words:
            assert "words" not in utterance
            continue
        for word in utterance["words"]:
            assert word["word"]  # empty words are dropped
            assert 0.0 <= word["start"] <= word["end"] <= limit
            assert start <= word["start"] and word["end"] <= end  # inside its utterance
            assert word["start"] >= previous_word_end  # word times never go backwards
            previous_word_end = word["end"]
            assert 0.0 <= word["confidence"] <= 1.0
            assert word["speaker"] is None
        if utterance["words"]:
            assert start == utterance["words"][0]["start"]
            assert end == utterance["words"][-1]["end"]
        previous_word_end = max(previous_word_end, end)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(output=outputs, duration=durations, with_words=st.booleans())
def test_invariants_hold_whatever_the_engine_says(output: AsrOutput, duration: float,
                                                  with_words: bool) -> None:
    """Adversarial segments never break times, ordering, confidences or the transcript."""
    result = build_result(output, duration, with_words=with_words)
    check_invariants(result, duration, with_words)
    assert result["language"] == output.language


@settings(max_examples=100, deadline=None)
@given(output=outputs, duration=durations)
def test_a_segment_with_text_is_never_dropped(output: AsrOutput, duration: float) -> None:
    """Every segment with text yields an utterance with that text, in order; a segment with
    words but no text (with alignment on) yields its words' text; nothing else is kept."""
    for with_words in (False, True):
        result = build_result(output, duration, with_words=with_words)
        expected = [
            s.text or (" ".join(w.word for w in s.words if w.word) if with_words else "")
            for s in output.segments
        ]
        assert [u["text"] for u in result["utterances"]] == [t for t in expected if t]


def test_utterance_confidence_is_the_mean_of_its_word_confidences() -> None:
    """With words, an utterance spans its words and its confidence is their mean (4 places)."""
    segment = AsrSegment(start=0.0, end=3.0, text="one two three", avg_logprob=-5.0, words=(
        AsrWord("one", 0.5, 0.9, 0.9), AsrWord("two", 1.0, 1.4, 0.6),
        AsrWord("three", 1.5, 2.0, 0.3)))
    result = build_result(AsrOutput((segment,), "en"), 10.0, with_words=True)
    (utterance,) = result["utterances"]
    assert utterance["confidence"] == round((0.9 + 0.6 + 0.3) / 3, 4) == 0.6
    assert (utterance["start"], utterance["end"]) == (0.5, 2.0)
    assert [w["word"] for w in utterance["words"]] == ["one", "two", "three"]
    assert [w["confidence"] for w in utterance["words"]] == [0.9, 0.6, 0.3]
    assert result["full_transcript"] == "one two three"


def test_without_words_confidence_is_exp_of_avg_logprob() -> None:
    """Without words an utterance keeps the segment's times and exp(avg_logprob) confidence."""
    segments = (AsrSegment(0.25, 1.5, "hello there", -0.5, (AsrWord("hello", 0.3, 0.6, 0.1),)),
                AsrSegment(1.5, 2.75, "general", -1.25))
    result = build_result(AsrOutput(segments, "en"), 5.0, with_words=False)
    first, second = result["utterances"]
    assert first == {"start": 0.25, "end": 1.5, "text": "hello there", "speaker": None,
                     "confidence": round(math.exp(-0.5), 4)}
    assert second["confidence"] == round(math.exp(-1.25), 4) == 0.2865
    assert result["full_transcript"] == "hello there general"
    assert result["duration_seconds"] == 5.0


def test_out_of_range_times_are_clamped_and_ordered() -> None:
    """Times past the end are clamped to the duration; a word going backwards is pushed on."""
    segment = AsrSegment(start=-3.0, end=99.0, text="a b c", avg_logprob=-0.1, words=(
        AsrWord("a", -1.0, 2.0, 1.5), AsrWord("b", 1.0, math.nan, -0.2),
        AsrWord("c", 50.0, 40.0, math.nan)))
    result = build_result(AsrOutput((segment,), "en"), 4.0, with_words=True)
    (utterance,) = result["utterances"]
    assert [(w["start"], w["end"]) for w in utterance["words"]] == [
        (0.0, 2.0), (2.0, 2.0), (4.0, 4.0)]
    assert [w["confidence"] for w in utterance["words"]] == [1.0, 0.0, 0.0]
    assert (utterance["start"], utterance["end"]) == (0.0, 4.0)


def test_segment_with_neither_text_nor_usable_words_is_skipped() -> None:
    """BUG: a segment with no text whose words are all empty (or whose words are not asked
    for) still becomes an utterance with empty text, so ``full_transcript`` is no longer the
    utterances' texts joined by single spaces (test_e2e's invariant). build_result skips a
    segment only when ``not segment.text and not segment.words``, before empty words are
    dropped and regardless of ``with_words``.
    """
    segments = (AsrSegment(0.0, 1.0, "hello", -0.1),
                AsrSegment(1.0, 2.0, "", -0.1, (AsrWord("", 1.1, 1.2, 0.5),)),
                AsrSegment(2.0, 3.0, "", -0.1, (AsrWord("ghost", 2.1, 2.2, 0.5),)),
                AsrSegment(3.0, 4.0, "world", -0.1))
    for with_words in (True, False):
        result = build_result(AsrOutput(segments, "en"), 5.0, with_words=with_words)
        utterances = result["utterances"]
        assert result["full_transcript"] == " ".join(u["text"] for u in utterances)
        for utterance in utterances:
            assert utterance["text"] or utterance.get("words")


@pytest.mark.parametrize(("avg_logprob", "confidence"), [
    (1000.0, 1.0), (math.inf, 1.0), (0.5, 1.0), (math.nan, 0.0), (-math.inf, 0.0)])
def test_out_of_range_avg_logprob_is_clamped(avg_logprob: float, confidence: float) -> None:
    """A log-probability above 0 (even past exp()'s overflow at ~709) gives confidence 1.0
    instead of crashing the job with OverflowError; NaN and -inf give 0.0."""
    segment = AsrSegment(0.0, 1.0, "hi", avg_logprob=avg_logprob)
    result = build_result(AsrOutput((segment,), "en"), 2.0, with_words=False)
    assert result["utterances"][0]["confidence"] == confidence


@pytest.mark.parametrize("with_words", [False, True])
def test_empty_output_gives_empty_result(with_words: bool) -> None:
    """No segments: no utterances, an empty transcript, and the duration to the millisecond."""
    result = build_result(AsrOutput((), "de"), 11.00049, with_words=with_words)
    assert result == {"full_transcript": "", "language": "de", "duration_seconds": 11.0,
                      "speakers": [], "utterances": []}


turns = st.lists(st.builds(SpeakerTurn, start=st.floats(0.0, 60.0), end=st.floats(0.0, 60.0),
                           speaker=st.sampled_from(["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"])),
                 max_size=6)
analyses = st.dictionaries(
    st.sampled_from(["summary", "action_items"]),
    st.one_of(st.fixed_dictionaries({"status": st.just("completed"),
                                     "result": st.fixed_dictionaries({"text": texts})}),
              st.fixed_dictionaries({"status": st.just("failed"), "error": texts})),
    max_size=2)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(output=outputs, duration=durations, with_words=st.booleans(),
       diarized=st.one_of(st.none(), turns), analysis=st.one_of(st.none(), analyses))
def test_the_result_is_stored_as_the_api_answers_it(output: AsrOutput, duration: float,
                                                    with_words: bool,
                                                    diarized: list[SpeakerTurn] | None,
                                                    analysis: dict[str, Any] | None) -> None:
    """The API answers the stored result as it is, without serializing it again
    (``StoredResult``): that is right only while what the assembler writes (and the worker
    stores) is already exactly what ``ResultSchema`` would write, which this pins, diarized
    and with analyses too. Results stored before ``stored_result`` existed came from this
    same assembler."""
    result = build_result(output, duration, with_words=with_words or diarized is not None,
                          turns=diarized)
    if analysis is not None:
        result["analysis"] = analysis
    assert stored_result(result) == result
