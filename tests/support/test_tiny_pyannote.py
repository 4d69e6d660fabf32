"""The tiny random diarization pipeline must load and run through pyannote's real code.

These tests build a real pipeline folder, load it with ``Pipeline.from_pretrained`` (the
production path) with the network blocked, and run real diarizations on the two-speaker
``sample.wav`` (no mocking): the rest of the test-suite relies on this pipeline to stand in
for ``pyannote/speaker-diarization-community-1``.
"""

from __future__ import annotations

import socket
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from pyannote.audio import Pipeline
from pyannote.audio.models.embedding import WeSpeakerResNet34
from pyannote.audio.models.segmentation import PyanNet
from pyannote.audio.pipelines import SpeakerDiarization
from pyannote.core import Annotation, Segment

from tests.support.tiny_pyannote import PIPELINE_PARAMS, build_tiny_diarization

FIXTURES = Path(__file__).parents[1] / "fixtures"  # see its SOURCES.md
SAMPLE = FIXTURES / "sample.wav"  # 30 s, two people on the phone, silent for the first 6.7 s
FILES = [
    "config.yaml",
    "segmentation/pytorch_model.bin",
    "embedding/pytorch_model.bin",
    "plda/xvec_transform.npz",
    "plda/plda.npz",
]


def _no_network(*args: Any, **kwargs: Any) -> None:
    raise AssertionError(f"network access attempted: {args[1:]!r}")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model hub, no telemetry, and any attempt to open an internet socket fails."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYANNOTE_METRICS_ENABLED", "false")
    original_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _no_network(self, address)
        original_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_diarization(tmp_path_factory.mktemp("tiny-pyannote") / "pipeline")


@pytest.fixture(scope="module")
def pipeline(folder: Path) -> Iterator[Pipeline]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("PYANNOTE_METRICS_ENABLED", "false")
        yield Pipeline.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def audio() -> dict[str, Any]:
    with wave.open(str(SAMPLE)) as file:
        assert (file.getnchannels(), file.getframerate(), file.getsampwidth()) == (1, 16000, 2)
        samples = np.frombuffer(file.readframes(file.getnframes()), dtype=np.int16)
    waveform = torch.from_numpy(samples.astype(np.float32) / 32768.0)[None]
    return {"waveform": waveform, "sample_rate": 16000}


def diarize(pipeline: Pipeline, audio: dict[str, Any], **counts: int) -> Any:
    # pyannote adds keys (e.g. "uri") to the mapping it is given: hand it a copy.
    return pipeline(dict(audio), **counts)


def turns(annotation: Annotation) -> list[tuple[float, float, str]]:
    return [
        (round(turn.start, 6), round(turn.end, 6), str(label))
        for turn, _, label in annotation.itertracks(yield_label=True)
    ]


def test_folder_has_the_community_1_layout(folder: Path) -> None:
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(
        FILES
    )
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["pipeline"]["name"] == "pyannote.audio.pipelines.SpeakerDiarization"
    params = config["pipeline"]["params"]
    assert params["segmentation"] == "$model/segmentation"
    assert params["embedding"] == "$model/embedding"
    assert params["plda"] == "$model/plda"
    assert params["clustering"] == "VBxClustering"
    assert config["params"] == PIPELINE_PARAMS


def test_loads_offline_through_from_pretrained(folder: Path, offline: None) -> None:
    loaded = Pipeline.from_pretrained(str(folder))
    assert isinstance(loaded, SpeakerDiarization)
    segmentation = loaded._segmentation.model
    assert isinstance(segmentation, PyanNet)
    specifications = segmentation.specifications
    assert specifications.powerset
    assert specifications.duration == 10.0
    assert len(specifications.classes) == 3
    assert specifications.powerset_max_classes == 2
    assert isinstance(loaded._embedding.model_, WeSpeakerResNet34)
    assert loaded._embedding.dimension == 256
    assert loaded.parameters(instantiated=True) == PIPELINE_PARAMS


def test_two_speakers_when_asked_for_two(
    pipeline: Pipeline, audio: dict[str, Any], offline: None
) -> None:
    output = diarize(pipeline, audio, num_speakers=2)
    diarization = output.speaker_diarization
    exclusive = output.exclusive_speaker_diarization
    assert isinstance(diarization, Annotation)
    assert diarization.labels() == ["SPEAKER_00", "SPEAKER_01"]
    assert exclusive.labels() == ["SPEAKER_00", "SPEAKER_01"]
    assert output.speaker_embeddings.shape == (2, 256)
    # speech over a good part of the 30 s, and (mostly) none in the silent first 6.7 s
    speech = diarization.get_timeline().support()
    assert speech.duration() > 12.0
    assert speech.crop(Segment(0.0, 6.5)).duration() < 2.0
    for label in exclusive.labels():
        assert exclusive.label_duration(label) > 1.0
    assert all(0.0 <= turn.start < turn.end <= 30.0 for turn in diarization.get_timeline())


@pytest.mark.parametrize(
    ("bounds", "allowed"),
    [
        ({"min_speakers": 2, "max_speakers": 3}, {2, 3}),
        ({"min_speakers": 2}, {2, 3, 4, 5, 6}),
        ({"min_speakers": 1, "max_speakers": 2}, {1, 2}),
        ({"max_speakers": 1}, {1}),
    ],
)
def test_speaker_bounds(
    pipeline: Pipeline, audio: dict[str, Any], bounds: dict[str, int], allowed: set[int]
) -> None:
    diarization = diarize(pipeline, audio, **bounds).speaker_diarization
    assert len(diarization.labels()) in allowed
    assert diarization.get_timeline().support().duration() > 12.0


def test_same_seed_same_folder_and_same_output(
    folder: Path,
    pipeline: Pipeline,
    audio: dict[str, Any],
    tmp_path: Path,
    offline: None,
) -> None:
    again = build_tiny_diarization(tmp_path / "again")
    for name in FILES:
        assert (again / name).read_bytes() == (folder / name).read_bytes(), name
    other = Pipeline.from_pretrained(str(again))
    first = diarize(pipeline, audio, num_speakers=2).speaker_diarization
    second = diarize(other, audio, num_speakers=2).speaker_diarization
    assert turns(first) == turns(second)
    assert turns(diarize(pipeline, audio, num_speakers=2).speaker_diarization) == turns(first)


def test_another_seed_another_model(folder: Path, tmp_path: Path) -> None:
    other = build_tiny_diarization(tmp_path / "other", seed=1)
    for name in ["segmentation/pytorch_model.bin", "embedding/pytorch_model.bin"]:
        assert (other / name).read_bytes() != (folder / name).read_bytes(), name
    assert (other / "config.yaml").read_text() == (folder / "config.yaml").read_text()
