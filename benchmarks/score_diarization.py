"""Score a diarization against a reference: the diarization error rate (DER).

For judging real diarization models on recordings with a reference RTTM. The hypothesis is
either an RTTM file or Voxhook's own output: a transcription result (``{"utterances":
[...], ...}``) or a whole transcription holding one under ``"result"``. The DER is
pyannote.metrics' :class:`~pyannote.metrics.diarization.DiarizationErrorRate`:

    DER = (missed speech + false alarm + speaker confusion) / reference speech

with hypothesis speakers mapped one-to-one onto reference speakers in the way that
minimises the error (so speaker names never matter), overlapping speech counted once per
speaker, and no collar unless one is asked for.

Run from the repository root::

    .venv/bin/python -m benchmarks.score_diarization REFERENCE.rttm HYPOTHESIS
        [--collar SECONDS] [--join-gap SECONDS] [--json]

``HYPOTHESIS`` is a ``.rttm`` file or a ``.json`` file (a result or a transcription).

A transcription's speech is taken from its words (their times and speakers) when the
utterance has words, else from the utterance's span and speaker. Words leave the pauses
between them out of the speech, where a reference usually marks one continuous turn; the
DER counts those pauses as missed speech. ``--join-gap 0.5`` closes a speaker's pauses of
up to half a second, as a reference annotator would. Words or utterances with no speaker
(a transcription made without diarization) count as speech of one speaker,
:data:`UNLABELLED`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

__all__ = [
    "UNLABELLED",
    "annotation_from_result",
    "der_components",
    "diarization_error_rate",
    "load_hypothesis",
    "main",
    "read_rttm",
]

#: Speaker label given to speech that a transcription attributes to nobody.
UNLABELLED = "(unlabelled)"

# Keys of pyannote.metrics' detailed DER components.
_DER = "diarization error rate"
_TOTAL = "total"
_MISSED = "missed detection"
_FALSE_ALARM = "false alarm"
_CONFUSION = "confusion"


# ---------------------------------------------------------------------------- reading


def read_rttm(path: str | Path, uri: str | None = None) -> Annotation:
    """The speaker turns of one recording in an RTTM file.

    Reads ``SPEAKER`` lines (``SPEAKER uri channel onset duration <NA> <NA> speaker ...``);
    other line types, blank lines and ``;;`` comments are skipped. ``uri`` picks the
    recording when the file holds several; without it, the file must hold only one.
    Raises :class:`ValueError` on a malformed line or an ambiguous or unknown ``uri``.
    """
    turns = _rttm_turns(path)
    if uri is None:
        if len(turns) > 1:
            raise ValueError(
                f"{path} holds several recordings ({', '.join(sorted(turns))}): pick one"
            )
        uri = next(iter(turns), Path(path).stem)
    elif turns and uri not in turns:
        raise ValueError(f"{path} has no recording {uri!r} (it has {', '.join(sorted(turns))})")
    return _annotation(turns.get(uri, []), uri=uri)


def _rttm_turns(path: str | Path) -> dict[str, list[tuple[float, float, str]]]:
    """Per recording (uri): its turns as ``(start, end, speaker)``."""
    turns: dict[str, list[tuple[float, float, str]]] = {}
    text = Path(path).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":  # blank, ";;" comment, other line type
            continue
        if len(fields) < 8:
            raise ValueError(f"{path}:{number}: an RTTM SPEAKER line has at least 8 fields")
        try:
            onset, duration = float(fields[3]), float(fields[4])
        except ValueError:
            raise ValueError(f"{path}:{number}: onset and duration must be numbers") from None
        if not (math.isfinite(onset) and math.isfinite(duration)) or duration < 0:
            raise ValueError(f"{path}:{number}: bad onset or duration")
        turns.setdefault(fields[1], []).append((onset, onset + duration, fields[7]))
    return turns


def annotation_from_result(
    result: Mapping[str, Any], uri: str = "hypothesis", join_gap: float = 0.0
) -> Annotation:
    """Who speaks when, according to a Voxhook transcription result.

    Per utterance: its words' times and speakers when it has words (a word without a
    speaker takes its utterance's), else the utterance's own span and speaker. Items
    without a speaker are labelled :data:`UNLABELLED`; items without finite times, or of
    zero length, are skipped. Each speaker's pauses of at most ``join_gap`` seconds are
    closed.
    """
    turns: list[tuple[float, float, str]] = []
    for utterance in result.get("utterances") or []:
        speaker = utterance.get("speaker")
        words = utterance.get("words") or []
        if words:
            for word in words:
                turn = _turn(word, word.get("speaker") or speaker)
                if turn is not None:
                    turns.append(turn)
        else:
            turn = _turn(utterance, speaker)
            if turn is not None:
                turns.append(turn)
    annotation = _annotation(turns, uri=uri)
    return annotation.support(collar=join_gap) if join_gap > 0 else annotation


def load_hypothesis(path: str | Path, uri: str | None = None, join_gap: float = 0.0) -> Annotation:
    """An RTTM file (``.rttm``) or a transcription's JSON (``.json``) as an annotation.

    The JSON holds a result (with ``utterances``) or a whole transcription (with a
    ``result``). ``uri`` picks the recording in an RTTM file that holds several.
    """
    path = Path(path)
    if path.suffix.lower() == ".rttm":
        annotation = read_rttm(path, uri=uri)
        return annotation.support(collar=join_gap) if join_gap > 0 else annotation
    if path.suffix.lower() != ".json":
        raise ValueError(f"{path}: the hypothesis must be a .rttm or a .json file")
    document = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(document, dict) and isinstance(document.get("result"), dict):
        document = document["result"]
    if not isinstance(document, dict) or not isinstance(document.get("utterances"), list):
        raise ValueError(
            f"{path}: expected a transcription result (with 'utterances') "
            "or a transcription (with a 'result')"
        )
    return annotation_from_result(document, uri=uri or path.stem, join_gap=join_gap)


def _turn(item: Mapping[str, Any], speaker: Any) -> tuple[float, float, str] | None:
    start, end = item.get("start"), item.get("end")
    if not isinstance(start, int | float) or not isinstance(end, int | float):
        return None
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        return None
    return float(start), float(end), UNLABELLED if speaker is None else str(speaker)


def _annotation(turns: Iterable[tuple[float, float, str]], uri: str) -> Annotation:
    annotation = Annotation(uri=uri)
    for start, end, speaker in turns:
        segment = Segment(start, end)
        if segment:  # an empty segment is no speech
            annotation[segment, annotation.new_track(segment)] = speaker
    return annotation


# ---------------------------------------------------------------------------- scoring


def der_components(
    reference: Annotation, hypothesis: Annotation, collar: float = 0.0
) -> dict[str, float]:
    """The DER and its parts, in seconds: ``missed``, ``false_alarm``, ``confusion`` and
    ``total`` (the reference speech, overlaps counted per speaker), plus ``der``.

    ``collar``: width in seconds of the zone left unscored around each reference turn
    boundary, centred on it (pyannote.metrics' convention: half on each side; NIST
    md-eval's ``-c 0.25`` is ``collar=0.5`` here).
    """
    metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
    # Everything outside both annotations is non-speech in both and scores nothing: scoring
    # the union of their extents is exact (and keeps pyannote from warning that it guessed).
    extent = reference.get_timeline().extent() | hypothesis.get_timeline().extent()
    uem = Timeline([extent] if extent else [], uri=reference.uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        details = metric(reference, hypothesis, uem=uem, detailed=True)
    return {
        "der": float(details[_DER]),
        "missed": float(details[_MISSED]),
        "false_alarm": float(details[_FALSE_ALARM]),
        "confusion": float(details[_CONFUSION]),
        "total": float(details[_TOTAL]),
    }


def diarization_error_rate(
    reference: Annotation, hypothesis: Annotation, collar: float = 0.0
) -> float:
    """The diarization error rate of ``hypothesis`` against ``reference`` (0.0 is perfect;
    it can exceed 1.0). See :func:`der_components` for ``collar``."""
    return der_components(reference, hypothesis, collar=collar)["der"]


# ---------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.score_diarization",
        description="Diarization error rate of a hypothesis against a reference RTTM.",
    )
    parser.add_argument("reference", type=Path, help="reference RTTM file")
    parser.add_argument(
        "hypothesis", type=Path,
        help="an RTTM file, or a JSON file holding a transcription result or a transcription",
    )
    parser.add_argument(
        "--collar", type=float, default=0.0,
        help="unscored zone around each reference boundary, total width in seconds (0)",
    )
    parser.add_argument(
        "--join-gap", type=float, default=0.0,
        help="close each hypothesis speaker's pauses of up to this many seconds (0)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    try:
        reference = read_rttm(args.reference)
        # an RTTM hypothesis holding several recordings is read for the reference's
        several = (args.hypothesis.suffix.lower() == ".rttm"
                   and len(_rttm_turns(args.hypothesis)) > 1)
        hypothesis = load_hypothesis(args.hypothesis, uri=str(reference.uri) if several else None,
                                     join_gap=args.join_gap)
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scores = der_components(reference, hypothesis, collar=args.collar)

    if args.json:
        print(json.dumps({**scores, "collar": args.collar,
                          "reference_speakers": len(reference.labels()),
                          "hypothesis_speakers": len(hypothesis.labels())}))
        return 0
    total = scores["total"]

    def share(seconds: float) -> str:
        return f"{100 * seconds / total:6.2f} %" if total else "     - "

    print(f"reference:  {args.reference} ({len(reference.labels())} speakers)")
    print(f"hypothesis: {args.hypothesis} ({len(hypothesis.labels())} speakers)")
    print(f"collar:     {args.collar:g} s")
    print(f"DER:               {100 * scores['der']:6.2f} %")
    print(f"  missed speech:   {share(scores['missed'])}  {scores['missed']:8.3f} s")
    print(f"  false alarm:     {share(scores['false_alarm'])}  {scores['false_alarm']:8.3f} s")
    print(f"  confusion:       {share(scores['confusion'])}  {scores['confusion']:8.3f} s")
    print(f"  total (reference speech):    {total:8.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
