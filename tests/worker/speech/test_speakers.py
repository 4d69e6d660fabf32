"""Word-to-speaker assignment and utterance building (``worker.speech.speakers`` through
``worker.speech.assemble.build_result``), against hand-made cases and against the reference
transcript and diarization of ``sample.wav``."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.score_diarization import read_rttm
from tests.support.paths import FIXTURES
from worker.speech.asr import AsrOutput, AsrSegment, AsrWord
from worker.speech.assemble import build_result
from worker.speech.diarization import SpeakerConstraints, SpeakerTurn
from worker.speech.speakers import (
    UtteranceRules,
    assign_speakers,
    number_speakers,
    utterance_breaks,
)

FIXTURES = FIXTURES
#: sample.stm names the speakers; sample.rttm numbers them.
STM_TO_RTTM = {"Diane": "speaker90", "Sheila": "speaker91"}


def reference_turns(path: Path) -> list[SpeakerTurn]:
    """The turns of an RTTM file, read by the diarization scorer's reader."""
    return [SpeakerTurn(segment.start, segment.end, str(label))
            for segment, _, label in read_rttm(path).itertracks(yield_label=True)]


def read_stm_words(path: Path) -> list[tuple[AsrSegment, list[str]]]:
    """Each STM line as a segment whose words share its time by their number of characters
    (the reference gives times per line only), with each word's true speaker."""
    segments = []
    for line in path.read_text().splitlines():
        _, _, speaker, start, end, *text = line.split()
        start_s, end_s = float(start), float(end)
        total = sum(len(word) for word in text)
        cursor, words = start_s, []
        for word in text:
            length = (end_s - start_s) * len(word) / total
            words.append(AsrWord(word, cursor, cursor + length, 0.9))
            cursor += length
        segment = AsrSegment(start_s, end_s, " ".join(text), -0.1, tuple(words))
        segments.append((segment, [STM_TO_RTTM[speaker]] * len(words)))
    return segments


def collapse(labels: list[str]) -> list[str]:
    return [label for label, _ in itertools.groupby(labels)]


# --------------------------------------------------------------------------- against the truth


def test_reference_turns_label_the_reference_words():
    """With the true diarization, at least 95% of the true words get the true speaker, and
    the utterances follow the reference turns."""
    turns = reference_turns(FIXTURES / "sample.rttm")
    reference = read_stm_words(FIXTURES / "sample.stm")
    output = AsrOutput(segments=tuple(segment for segment, _ in reference), language="en")
    result = build_result(output, 30.0, with_words=True, turns=turns)

    truth = [speaker for _, speakers in reference for speaker in speakers]
    words = [word for utterance in result["utterances"] for word in utterance["words"]]
    assert len(words) == len(truth) == 81
    # Labels are numbered by first appearance: speaker90 speaks first.
    names = {"speaker90": "SPEAKER 1", "speaker91": "SPEAKER 2"}
    assert result["speakers"] == ["SPEAKER 1", "SPEAKER 2"]
    right = sum(word["speaker"] == names[true] for word, true in zip(words, truth, strict=True))
    assert right / len(truth) >= 0.95, f"{right}/{len(truth)} words right"

    # Utterances follow the turns: the same alternation of speakers as the reference lines.
    reference_order = collapse([names[speakers[0]] for _, speakers in reference])
    assert collapse([u["speaker"] for u in result["utterances"]]) == reference_order
    for utterance in result["utterances"]:
        assert {word["speaker"] for word in utterance["words"]} == {utterance["speaker"]}
        assert utterance["text"] == " ".join(word["word"] for word in utterance["words"])


# --------------------------------------------------------------------------- the rules


def turn(start: float, end: float, speaker: str) -> SpeakerTurn:
    return SpeakerTurn(start, end, speaker)


def test_a_word_goes_to_the_speaker_overlapping_it_most():
    turns = [turn(0.0, 1.2, "A"), turn(1.0, 3.0, "B")]
    # 1.0-1.5: A overlaps 0.2 s, B 0.5 s.
    assert assign_speakers([(1.0, 1.5)], turns) == ["B"]
    # 0.8-1.1: A 0.3 s, B 0.1 s.
    assert assign_speakers([(0.8, 1.1)], turns) == ["A"]


def test_overlap_is_summed_over_a_speakers_turns():
    turns = [turn(0.0, 1.0, "A"), turn(1.0, 1.4, "B"), turn(1.4, 2.0, "A")]
    # 0.9-1.6: A 0.1 + 0.2 = 0.3 s, B 0.4 s → B; 0.7-1.6: A 0.3 + 0.2 = 0.5 s → A.
    assert assign_speakers([(0.9, 1.6)], turns) == ["B"]
    assert assign_speakers([(0.7, 1.6)], turns) == ["A"]


def test_a_tie_keeps_the_previous_speaker():
    """A word inside two overlapping turns stays with whoever was talking."""
    turns = [turn(0.0, 5.0, "A"), turn(2.0, 2.6, "B"), turn(6.0, 9.0, "B")]
    assert assign_speakers([(1.0, 1.5), (2.1, 2.5)], turns) == ["A", "A"]
    assert assign_speakers([(6.1, 6.5), (2.1, 2.5)], turns) == ["B", "B"]


def test_a_tie_without_history_goes_to_the_longer_turn():
    turns = [turn(0.0, 5.0, "A"), turn(2.0, 2.6, "B")]
    assert assign_speakers([(2.1, 2.5)], turns) == ["A"]


def test_a_word_in_a_gap_goes_to_the_nearest_turn():
    turns = [turn(0.0, 1.0, "A"), turn(3.0, 4.0, "B")]
    assert assign_speakers([(1.2, 1.4), (2.5, 2.8), (5.0, 5.5)], turns) == ["A", "B", "B"]
    # Before the first turn, after a long turn that started earlier than a short one.
    turns = [turn(1.0, 10.0, "A"), turn(2.0, 3.0, "B")]
    assert assign_speakers([(0.1, 0.3), (10.5, 11.0)], turns) == ["A", "A"]


def test_untimed_words_inherit_from_their_neighbours():
    turns = [turn(0.0, 1.0, "A"), turn(1.0, 2.0, "B")]
    assert assign_speakers([None, (0.1, 0.5), None, (1.2, 1.5), None], turns) == [
        "A", "A", "A", "B", "B"]


def test_no_turns_means_one_speaker():
    assert assign_speakers([(0.0, 1.0), None], []) == ["SPEAKER_00", "SPEAKER_00"]


def test_labels_are_numbered_by_first_appearance():
    assert number_speakers(["SPEAKER_02", None, "SPEAKER_00", "SPEAKER_02", "SPEAKER_01"]) == {
        "SPEAKER_02": "SPEAKER 1", "SPEAKER_00": "SPEAKER 2", "SPEAKER_01": "SPEAKER 3"}


def test_utterances_break_at_speaker_changes_pauses_and_length():
    rules = UtteranceRules(pause_s=1.0, soft_chars=10, max_chars=25, max_duration_s=8.0)
    words = [
        ("one", 0.0, 0.5, "A"), ("two.", 0.6, 1.0, "A"),     # speaker change next
        ("three", 1.1, 1.5, "B"), ("four", 3.0, 3.4, "B"),   # 1.5 s pause before "four"
        ("fifteen", 3.5, 3.9, "B"), ("chars.", 4.0, 4.4, "B"),  # 17 chars, sentence end
        ("next", 4.5, 4.9, "B"),
    ]
    assert utterance_breaks(words, rules) == [0, 2, 3, 6]
    long_words = [("abcdefghij", float(i), i + 0.5, "A") for i in range(6)]
    # 10 + 1 + 10 = 21 chars fit, a third word would make 32 > 25.
    assert utterance_breaks(long_words, rules) == [0, 2, 4]
    slow = [("a", float(i), i + 0.5, "A") for i in range(0, 20, 1)]
    # One word a second: past 8 s of span the utterance closes.
    assert utterance_breaks(slow, rules) == [0, 8, 16]


def test_diarized_result_keeps_the_contract():
    """Every word labelled; an utterance's speaker is its words'; text joins its words
    (without spaces where the engine wrote none); confidence is the mean of its words'."""
    segments = (
        AsrSegment(0.0, 3.0, "Hello there friend", -0.2, (
            AsrWord("Hello", 0.0, 0.4, 0.9), AsrWord("there", 0.5, 0.9, 0.7),
            AsrWord("friend", 2.1, 2.6, 0.5))),
        AsrSegment(3.0, 4.0, "你好", -0.2, (
            AsrWord("你", 3.0, 3.3, 0.8), AsrWord("好", 3.3, 3.6, 0.6, spaced=False))),
        AsrSegment(4.0, 5.0, "wordless", -0.5, ()),
    )
    turns = [turn(0.0, 1.0, "X"), turn(2.0, 3.7, "Y"), turn(4.0, 5.0, "X")]
    result = build_result(AsrOutput(segments, "en"), 5.0, with_words=True, turns=turns)
    assert result["speakers"] == ["SPEAKER 1", "SPEAKER 2"]
    texts = [(u["speaker"], u["text"]) for u in result["utterances"]]
    assert texts == [("SPEAKER 1", "Hello there"), ("SPEAKER 2", "friend 你好"),
                     ("SPEAKER 1", "wordless")]
    first = result["utterances"][0]
    assert first["confidence"] == pytest.approx(0.8)
    assert result["utterances"][2]["confidence"] == pytest.approx(math.exp(-0.5), abs=1e-4)
    assert result["full_transcript"] == "Hello there friend 你好 wordless"


def test_speakers_without_words_are_listed_after_those_with_words():
    """A speaker the diarizer heard but whose speech gave no words still counts: listed
    after the speakers of the transcript, in order of their first turn."""
    segments = (AsrSegment(2.0, 3.0, "late", -0.1, (AsrWord("late", 2.0, 2.5, 0.9),)),)
    turns = [turn(0.0, 1.0, "Q"), turn(1.2, 1.5, "R"), turn(2.0, 3.0, "P")]
    result = build_result(AsrOutput(segments, "en"), 3.0, with_words=True, turns=turns)
    assert result["speakers"] == ["SPEAKER 1", "SPEAKER 2", "SPEAKER 3"]
    assert result["utterances"][0]["speaker"] == "SPEAKER 1"  # P: the one who said a word
    assert number_speakers(["P"], turns) == {"P": "SPEAKER 1", "Q": "SPEAKER 2",
                                             "R": "SPEAKER 3"}


def test_undiarized_result_has_no_speakers():
    segments = (AsrSegment(0.0, 1.0, "Hi", -0.1, (AsrWord("Hi", 0.0, 0.5, 0.9),)),)
    result = build_result(AsrOutput(segments, "en"), 1.0, with_words=True)
    assert result["speakers"] == []
    assert result["utterances"][0]["speaker"] is None
    assert result["utterances"][0]["words"][0]["speaker"] is None


def test_speaker_constraints_become_pyannote_keywords():
    assert SpeakerConstraints().keywords() == {}
    assert SpeakerConstraints(exact=2, minimum=1, maximum=3).keywords() == {"num_speakers": 2}
    assert SpeakerConstraints(minimum=2).keywords() == {"min_speakers": 2}
    assert SpeakerConstraints(minimum=1, maximum=4).keywords() == {
        "min_speakers": 1, "max_speakers": 4}


# --------------------------------------------------------------------------- properties

times = st.floats(min_value=-5.0, max_value=60.0, allow_nan=False)
raw_words = st.lists(st.tuples(st.text("abc", min_size=1, max_size=6), times, times,
                               st.booleans()), max_size=40)
raw_turns = st.lists(st.tuples(times, times, st.sampled_from(["S0", "S1", "S2"])), max_size=12)


@settings(max_examples=150, deadline=None)
@given(raw_words, raw_turns)
def test_every_word_is_labelled_and_utterances_are_single_speaker(words, turns):
    """Whatever the engine and diarizer say: every word gets a speaker that is listed,
    utterances hold one speaker each, in order of time, and labels go by first appearance."""
    asr_words = tuple(AsrWord(text, start, end, 0.5) if timed
                      else AsrWord(text, math.nan, math.nan, 0.5)
                      for text, start, end, timed in words)
    output = AsrOutput((AsrSegment(0.0, 60.0, "x", -0.1, asr_words),), "en")
    result = build_result(output, 60.0, with_words=True,
                          turns=[SpeakerTurn(min(a, b), max(a, b), s) for a, b, s in turns])
    labelled = [w for u in result["utterances"] for w in u.get("words", [])]
    assert len(labelled) == len(words) or not words
    if labelled:
        assert all(w["speaker"] in result["speakers"] for w in labelled)
        order = list(dict.fromkeys(w["speaker"] for w in labelled))
        assert result["speakers"][:len(order)] == order
        assert result["speakers"] == [f"SPEAKER {n + 1}" for n in range(len(result["speakers"]))]
        heard = {speaker for a, b, speaker in turns if a != b}
        assert len(result["speakers"]) == (len(heard) if heard else 1)
    for utterance in result["utterances"]:
        assert {w["speaker"] for w in utterance.get("words", [])} <= {utterance["speaker"]}
    starts = [u["start"] for u in result["utterances"]]
    assert starts == sorted(starts)
