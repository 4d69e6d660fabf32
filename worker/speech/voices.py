"""Known speakers: name the diarizer's speakers after reference clips, by voice likeness.

A request may bring short clips (2 to 10 s, as ``data:`` URLs) of voices it knows, each
with a name. Each clip is decoded like any media and embedded by the diarization
pipeline's own embedding model; each speaker the diarizer found has a voice too (the
centroid of the embeddings it clustered into that speaker). Names go to speakers by cosine
similarity, best pairs first, each name and each speaker used once; a speaker whose best
remaining match is below :data:`MIN_SIMILARITY` keeps its number (``SPEAKER n``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from app.transcriptions.engine_options import KnownSpeaker
from worker.errors import MediaError
from worker.speech.audio import decode

#: A reference clip must be this long, in seconds (OpenAI's rule for the same field).
MIN_REFERENCE_S, MAX_REFERENCE_S = 2.0, 10.0
#: Below this cosine similarity a speaker is not named after any reference.
MIN_SIMILARITY = 0.0


class InvalidSpeakerReference(MediaError):
    code = "invalid_speaker_reference"


def reference_samples(speaker: KnownSpeaker, work_dir: Path) -> np.ndarray:
    """Decode one reference clip (its ``data:`` URL) to 16 kHz mono samples."""
    header, _, payload = speaker.reference.partition(",")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSpeakerReference(
            f"The reference clip of '{speaker.name}' is not valid base64 after "
            f"'{header},'.") from None
    path = work_dir / f"reference-{abs(hash(speaker.name))}"
    path.write_bytes(data)
    try:
        audio = decode(path, max_duration_s=int(MAX_REFERENCE_S) + 1)
    except MediaError as exc:
        raise InvalidSpeakerReference(
            f"The reference clip of '{speaker.name}' could not be used: {exc.message}") from exc
    finally:
        path.unlink(missing_ok=True)
    if not MIN_REFERENCE_S <= audio.duration_s <= MAX_REFERENCE_S:
        raise InvalidSpeakerReference(
            f"The reference clip of '{speaker.name}' is {audio.duration_s:.1f} s long; each "
            f"must last {MIN_REFERENCE_S:g} to {MAX_REFERENCE_S:g} seconds.")
    return audio.samples


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else -1.0


def match_voices(voices: Mapping[str, np.ndarray],
                 references: Sequence[tuple[str, np.ndarray]]) -> dict[str, str]:
    """Diarizer label -> known name, best cosine pairs first, each used once."""
    pairs = sorted(((cosine(voice, vector), label, name)
                    for label, voice in voices.items() for name, vector in references),
                   reverse=True)
    named: dict[str, str] = {}
    used: set[str] = set()
    for similarity, label, name in pairs:
        if similarity < MIN_SIMILARITY or label in named or name in used:
            continue
        named[label] = name
        used.add(name)
    return named


def rename_speakers(numbered: Mapping[str, str], known: Mapping[str, str]) -> dict[str, str]:
    """The assembly's ``label -> SPEAKER n`` with known names put in; the others are
    numbered again from 1, in the same order."""
    renamed: dict[str, str] = {}
    count = 0
    for label in numbered:
        if label in known:
            renamed[label] = known[label]
        else:
            count += 1
            renamed[label] = f"SPEAKER {count}"
    return renamed
