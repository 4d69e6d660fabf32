"""The diarization scorer (``benchmarks/score_diarization.py``) against known answers.

The reference is the true diarization of ``tests/fixtures/sample.wav`` (``sample.rttm``:
10 turns, 2 speakers, 24.35 s of speech counted per speaker, 1.89 s of it overlapping).
Hypotheses are made from it: itself, shifted, relabelled, or turned into a Voxhook
transcription result. Expected errors are worked out independently (frame by frame, or
from the turns' times).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyannote.core import Annotation, Segment

from benchmarks.score_diarization import (
    UNLABELLED,
    annotation_from_result,
    der_components,
    diarization_error_rate,
    load_hypothesis,
    main,
    read_rttm,
)

ROOT = Path(__file__).parents[1]
SAMPLE_RTTM = ROOT / "tests" / "fixtures" / "sample.rttm"
REFERENCE_SPEECH = 24.35  # the sum of sample.rttm's durations

Turn = tuple[float, float, str]


def rttm_turns(path: Path) -> list[Turn]:
    turns = []
    for line in path.read_text().splitlines():
        fields = line.split()
        turns.append((float(fields[3]), float(fields[3]) + float(fields[4]), fields[7]))
    return turns


def write_rttm(path: Path, turns: list[Turn], uri: str = "sample") -> Path:
    path.write_text("".join(
        f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA> <NA>\n"
        for start, end, speaker in turns
    ))
    return path


def frame_der(reference: list[Turn], hypothesis: list[Turn], step: float = 0.01) -> float:
    """DER on 10 ms frames, hypothesis labels taken as reference labels (no mapping)."""
    size = round(max(end for _, end, _ in reference + hypothesis) / step) + 1

    def activity(turns: list[Turn]) -> dict[str, np.ndarray]:
        active: dict[str, np.ndarray] = {}
        for start, end, speaker in turns:
            frames = active.setdefault(speaker, np.zeros(size, dtype=bool))
            frames[round(start / step):round(end / step)] = True
        return active

    ref, hyp = activity(reference), activity(hypothesis)
    n_ref = sum(ref.values())
    n_hyp = sum(hyp.values())
    n_correct = sum(ref[s] & hyp[s] for s in ref if s in hyp)
    missed = np.maximum(n_ref - n_hyp, 0).sum()
    false_alarm = np.maximum(n_hyp - n_ref, 0).sum()
    confusion = (np.minimum(n_ref, n_hyp) - n_correct).sum()
    return float((missed + false_alarm + confusion) / n_ref.sum())


@pytest.fixture(scope="module")
def reference() -> Annotation:
    return read_rttm(SAMPLE_RTTM)


def result_from_turns(turns: list[Turn], words_per_turn: int = 0) -> dict[str, Any]:
    """A transcription result whose utterances (and words, tiling them) are ``turns``."""
    utterances = []
    for start, end, speaker in turns:
        utterance: dict[str, Any] = {
            "start": start, "end": end, "text": "…", "speaker": speaker, "confidence": 0.9,
        }
        if words_per_turn:
            bounds = [float(t) for t in np.linspace(start, end, words_per_turn + 1)]
            utterance["words"] = [
                {"word": f" w{i}", "start": a, "end": b, "confidence": 0.9, "speaker": speaker}
                for i, (a, b) in enumerate(itertools.pairwise(bounds))
            ]
        utterances.append(utterance)
    return {"full_transcript": "…", "language": "en", "duration_seconds": 30.0,
            "speakers": sorted({s for _, _, s in turns}), "utterances": utterances}


# ---------------------------------------------------------------------------- reading


def test_read_rttm(reference: Annotation) -> None:
    assert reference.uri == "sample"
    assert reference.labels() == ["speaker90", "speaker91"]
    assert len(list(reference.itertracks())) == 10
    assert sum(s.duration for s, _ in reference.itertracks()) == pytest.approx(REFERENCE_SPEECH)
    # overlapping turns are kept as they are (speaker91 talks over speaker90 at 18.15 s)
    assert reference.crop(Segment(18.2, 18.3)).labels() == ["speaker90", "speaker91"]


def test_read_rttm_picks_one_recording(tmp_path: Path) -> None:
    path = tmp_path / "two.rttm"
    path.write_text(
        ";; two recordings\n"
        "SPEAKER a 1 0.000 1.000 <NA> <NA> x <NA> <NA>\n"
        "\n"
        "SPKR-INFO a 1 <NA> <NA> <NA> unknown x <NA> <NA>\n"
        "SPEAKER b 1 2.000 3.000 <NA> <NA> y <NA> <NA>\n"
    )
    with pytest.raises(ValueError, match="several recordings"):
        read_rttm(path)
    b = read_rttm(path, uri="b")
    assert (b.uri, b.labels(), b.get_timeline().duration()) == ("b", ["y"], 3.0)
    with pytest.raises(ValueError, match="no recording"):
        read_rttm(path, uri="c")
    (tmp_path / "bad.rttm").write_text("SPEAKER a 1 zero 1.0 <NA> <NA> x <NA> <NA>\n")
    with pytest.raises(ValueError, match=r"bad\.rttm:1"):
        read_rttm(tmp_path / "bad.rttm")


# ---------------------------------------------------------------------------- scoring


def test_reference_against_itself_is_perfect(reference: Annotation) -> None:
    assert diarization_error_rate(reference, reference) == 0.0
    parts = der_components(reference, read_rttm(SAMPLE_RTTM))
    assert parts == {"der": 0.0, "missed": 0.0, "false_alarm": 0.0, "confusion": 0.0,
                     "total": pytest.approx(REFERENCE_SPEECH)}


def test_shifted_by_half_a_second(reference: Annotation, tmp_path: Path) -> None:
    turns = rttm_turns(SAMPLE_RTTM)
    shifted = [(start + 0.5, end + 0.5, speaker) for start, end, speaker in turns]
    hypothesis = read_rttm(write_rttm(tmp_path / "shifted.rttm", shifted))
    parts = der_components(reference, hypothesis)
    # each turn loses 0.5 s at its start and gains 0.5 s past its end (less where turns
    # touch): roughly 10 x 1 s of 24.35 s
    assert 0.2 < parts["der"] < 0.45
    assert parts["der"] == pytest.approx(frame_der(turns, shifted), abs=1e-6)
    assert parts["missed"] == pytest.approx(parts["false_alarm"])  # same speech, moved
    assert parts["missed"] + parts["false_alarm"] + parts["confusion"] == pytest.approx(
        parts["der"] * REFERENCE_SPEECH)
    # a collar as wide as the shift on each side of every boundary forgives it all
    assert diarization_error_rate(reference, hypothesis, collar=1.0) == pytest.approx(0.0)
    assert 0 < diarization_error_rate(reference, hypothesis, collar=0.5) < parts["der"]


def test_speaker_names_do_not_matter(reference: Annotation, tmp_path: Path) -> None:
    swap = {"speaker90": "speaker91", "speaker91": "speaker90"}
    swapped = [(start, end, swap[speaker]) for start, end, speaker in rttm_turns(SAMPLE_RTTM)]
    hypothesis = read_rttm(write_rttm(tmp_path / "swapped.rttm", swapped))
    assert hypothesis.labels() == reference.labels()
    assert diarization_error_rate(reference, hypothesis) == 0.0
    renamed = reference.rename_labels({"speaker90": "SPEAKER 2", "speaker91": "SPEAKER 1"})
    assert diarization_error_rate(reference, renamed) == 0.0


def test_one_speaker_for_everything(reference: Annotation) -> None:
    hypothesis = Annotation(uri="sample")
    for segment in reference.get_timeline().support():
        hypothesis[segment] = "everyone"
    parts = der_components(reference, hypothesis)
    # "everyone" is mapped onto speaker91 (12.5 s, more than speaker90's 11.85 s): the rest
    # of speaker90's time is confusion, except where both speak at once (1.89 s in all):
    # there one of the two is missed
    turns = rttm_turns(SAMPLE_RTTM)
    overlap = sum(
        max(0.0, min(end90, end91) - max(start90, start91))
        for start90, end90, speaker90 in turns if speaker90 == "speaker90"
        for start91, end91, speaker91 in turns if speaker91 == "speaker91"
    )
    assert overlap == pytest.approx(1.89)
    assert reference.label_duration("speaker91") > reference.label_duration("speaker90")
    assert parts["confusion"] == pytest.approx(reference.label_duration("speaker90") - overlap)
    assert parts["missed"] == pytest.approx(overlap)
    assert parts["false_alarm"] == 0.0


# ---------------------------------------------------------------------------- results


def test_result_from_the_reference_scores_zero(reference: Annotation) -> None:
    turns = rttm_turns(SAMPLE_RTTM)
    for words in (0, 1, 4):  # utterances alone, or words tiling them
        hypothesis = annotation_from_result(result_from_turns(turns, words_per_turn=words))
        assert hypothesis.labels() == ["speaker90", "speaker91"]
        assert diarization_error_rate(reference, hypothesis) == pytest.approx(0.0, abs=1e-9)


def test_result_words_take_precedence(reference: Annotation) -> None:
    result = result_from_turns(rttm_turns(SAMPLE_RTTM), words_per_turn=2)
    utterance = result["utterances"][4]  # 10.57-14.70 speaker90
    utterance["speaker"] = "speaker91"  # the utterance says one thing, its words another
    utterance["words"][1]["speaker"] = "speaker91"  # the second half: 12.635-14.70
    utterance["end"] = 30.0  # words rule: the utterance's span is not used either
    hypothesis = annotation_from_result(result)
    parts = der_components(reference, hypothesis)
    assert parts["confusion"] == pytest.approx(14.70 - 12.635)
    assert parts["false_alarm"] == 0.0
    assert parts["missed"] == 0.0


def test_result_with_pauses_and_missing_speakers(reference: Annotation) -> None:
    result = {"utterances": [
        {"start": 6.69, "end": 7.12, "speaker": None, "words": [  # no diarization
            {"word": "Hello?", "start": 6.69, "end": 7.12, "confidence": 0.9, "speaker": None}]},
        {"start": 7.55, "end": 8.35, "speaker": "SPEAKER 2", "words": [
            {"word": "Hel", "start": 7.55, "end": 7.85, "confidence": 0.9},  # no "speaker"
            {"word": "lo?", "start": 8.05, "end": 8.35, "confidence": 0.9,
             "speaker": "SPEAKER 2"},
            {"word": "?", "start": 8.35, "end": 8.35, "confidence": 0.9, "speaker": "x"},
            {"word": "?", "start": None, "end": None, "confidence": 0.9, "speaker": "y"}]},
    ]}
    hypothesis = annotation_from_result(result)
    assert hypothesis.labels() == sorted([UNLABELLED, "SPEAKER 2"])
    assert hypothesis.label_duration("SPEAKER 2") == pytest.approx(0.6)  # the pause is out
    joined = annotation_from_result(result, join_gap=0.5)
    assert joined.label_duration("SPEAKER 2") == pytest.approx(0.8)
    assert diarization_error_rate(reference, joined) < diarization_error_rate(
        reference, hypothesis)


def test_load_hypothesis_forms(tmp_path: Path, reference: Annotation) -> None:
    result = result_from_turns(rttm_turns(SAMPLE_RTTM), words_per_turn=3)
    (tmp_path / "result.json").write_text(json.dumps(result))
    (tmp_path / "transcription.json").write_text(json.dumps(
        {"id": "tr_1", "status": "completed", "result": result}))
    for name in ("result.json", "transcription.json"):
        hypothesis = load_hypothesis(tmp_path / name)
        assert diarization_error_rate(reference, hypothesis) == pytest.approx(0.0, abs=1e-9)
    (tmp_path / "other.json").write_text(json.dumps({"status": "queued", "result": None}))
    with pytest.raises(ValueError, match="utterances"):
        load_hypothesis(tmp_path / "other.json")
    with pytest.raises(ValueError, match=r"\.rttm or a \.json"):
        load_hypothesis(tmp_path / "hypothesis.txt")


# ---------------------------------------------------------------------------- command line


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYANNOTE_METRICS_ENABLED": "false"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.score_diarization", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_cli_prints_the_figures(tmp_path: Path, reference: Annotation) -> None:
    turns = rttm_turns(SAMPLE_RTTM)
    shifted = write_rttm(tmp_path / "shifted.rttm",
                         [(start + 0.5, end + 0.5, speaker) for start, end, speaker in turns])
    expected = der_components(reference, read_rttm(shifted))

    done = run_cli(str(SAMPLE_RTTM), str(shifted))
    assert done.returncode == 0, done.stderr
    assert f"DER: {100 * expected['der']:6.2f} %".replace(" ", "") in done.stdout.replace(
        " ", "")
    for label in ("missed speech", "false alarm", "confusion", "total"):
        assert label in done.stdout
    assert f"{expected['missed']:.3f} s" in done.stdout
    assert f"{REFERENCE_SPEECH:.3f} s" in done.stdout

    done = run_cli(str(SAMPLE_RTTM), str(shifted), "--json", "--collar", "0.5")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["der"] == pytest.approx(
        diarization_error_rate(reference, read_rttm(shifted), collar=0.5))
    assert figures["reference_speakers"] == figures["hypothesis_speakers"] == 2


def test_cli_reads_a_transcription(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = result_from_turns(rttm_turns(SAMPLE_RTTM), words_per_turn=2)
    path = tmp_path / "transcription.json"
    path.write_text(json.dumps({"id": "tr_1", "result": result}))
    assert main([str(SAMPLE_RTTM), str(path)]) == 0
    out = capsys.readouterr().out
    assert "DER:" in out and "0.00 %" in out

    done = run_cli(str(SAMPLE_RTTM), str(tmp_path / "missing.json"))
    assert done.returncode == 2
    assert "error:" in done.stderr


def test_cli_multi_recording_rttm_hypothesis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    turns = rttm_turns(SAMPLE_RTTM)
    both = tmp_path / "both.rttm"
    write_rttm(both, turns, uri="sample")
    with both.open("a") as file:
        file.write("SPEAKER other 1 0.000 30.000 <NA> <NA> someone <NA> <NA>\n")
    assert main([str(SAMPLE_RTTM), str(both), "--json"]) == 0  # "sample" is scored
    assert json.loads(capsys.readouterr().out)["der"] == 0.0
