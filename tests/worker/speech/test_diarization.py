"""The diarizer (``worker.speech.diarization``) on a real pyannote.audio 4 pipeline of small random
models, loaded from a folder in pyannote's own format through the production loader; the
warm-model cache; one decode per job; and a worker without pyannote installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.config import Settings
from app.transcriptions.pipelines import (
    DecodingOptions,
    DiarizationConfig,
    Pipeline,
    PipelineCatalog,
)
from tests.support.media_server import MediaServer
from tests.support.paths import FIXTURES, REPO
from tests.support.recording import SampleRecorder
from worker.errors import ModelUnavailable
from worker.media.store import MediaStore
from worker.speech.asr import AsrEngine
from worker.speech.audio import decode
from worker.speech.diarization import Diarizer, SpeakerConstraints, SpeakerTurn
from worker.speech.model_cache import ModelCache
from worker.speech.pipeline import JobSpec, run_pipeline

REPO = REPO
FIXTURES = FIXTURES
GREEDY = DecodingOptions(beam_size=1, temperature=(0.0,), max_new_tokens=48)


def diarizing_pipeline(model: Path, diarization: Path | str, code: str = "tiny") -> Pipeline:
    return Pipeline(code=code, description="random test models", model=str(model),
                    device="cpu", compute_type="int8", decoding=GREEDY,
                    diarization=DiarizationConfig(model=str(diarization), device="cpu"))


@pytest.fixture(scope="module")
def sample_samples() -> np.ndarray:
    return decode(FIXTURES / "sample.wav").samples


@pytest.fixture(scope="module")
def diarizer(tiny_model: Path, tiny_diarization: Path) -> Diarizer:
    return Diarizer(diarizing_pipeline(tiny_model, tiny_diarization))


def speakers_of(turns: tuple[SpeakerTurn, ...]) -> set[str]:
    return {turn.speaker for turn in turns}


def test_local_folder_loads_and_two_speakers_are_found(diarizer: Diarizer,
                                                       sample_samples: np.ndarray) -> None:
    """The folder loads through pyannote's own loader; an exact count of 2 gives 2."""
    assert diarizer.device == "cpu"
    turns = diarizer.diarize(sample_samples, SpeakerConstraints(exact=2))
    assert len(speakers_of(turns)) == 2
    assert [t.start for t in turns] == sorted(t.start for t in turns)
    assert all(0.0 <= t.start < t.end <= 30.0 + 1e-3 for t in turns)
    # Speech covers a good part of the file (the random models say something).
    assert sum(t.end - t.start for t in turns) > 5.0


def test_speaker_bounds_reach_pyannote(diarizer: Diarizer, sample_samples: np.ndarray) -> None:
    """min/max bounds are passed by keyword: forcing at least 3 makes 3 speakers, at most 1
    makes 1 (the random models would say otherwise on their own)."""
    at_least_three = diarizer.diarize(sample_samples, SpeakerConstraints(minimum=3, maximum=3))
    assert len(speakers_of(at_least_three)) == 3
    one = diarizer.diarize(sample_samples, SpeakerConstraints(maximum=1))
    assert len(speakers_of(one)) == 1


def test_same_input_same_output(diarizer: Diarizer, sample_samples: np.ndarray) -> None:
    constraints = SpeakerConstraints(exact=2)
    assert diarizer.diarize(sample_samples, constraints) == diarizer.diarize(
        sample_samples, constraints)


def test_progress_goes_forward_within_unit(diarizer: Diarizer,
                                           sample_samples: np.ndarray) -> None:
    seen: list[float] = []
    diarizer.diarize(sample_samples, SpeakerConstraints(exact=2), on_progress=seen.append)
    assert seen and all(0.0 <= value <= 1.0 for value in seen)
    assert seen == sorted(seen)
    assert seen[-1] >= 0.9


def test_a_missing_folder_says_how_to_fix_it(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        Diarizer(diarizing_pipeline(tiny_model, tmp_path / "nowhere"))
    assert "does not exist" in caught.value.message
    assert "VOXHOOK_DIARIZATION_MODEL" in caught.value.message


def test_a_broken_folder_says_what_it_must_contain(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    with pytest.raises(ModelUnavailable) as caught:
        Diarizer(diarizing_pipeline(tiny_model, tmp_path / "broken"))
    assert "config.yaml" in caught.value.message


class _Hooks:
    def __init__(self) -> None:
        self.durations: list[float] = []
        self.progress: list[float] = []

    def on_audio(self, duration_s: float) -> None:
        self.durations.append(duration_s)

    def on_progress(self, fraction: float) -> None:
        self.progress.append(fraction)


def test_a_diarized_job_decodes_once_and_both_models_get_the_same_samples(
        tiny_model: Path, tiny_diarization: Path, tmp_path: Path) -> None:
    """The pipeline hands the very same array to the speech model and to the diarizer, and
    the result labels every word, numbering speakers by first appearance."""
    seen: list[np.ndarray] = []
    cache = ModelCache(
        PipelineCatalog((diarizing_pipeline(tiny_model, tiny_diarization),), "tiny"),
        load=lambda pipeline: SampleRecorder(AsrEngine(pipeline), seen),
        load_diarizer=lambda pipeline, token: SampleRecorder(Diarizer(pipeline, token), seen))
    cache.load_all()
    status = cache.status()["tiny"]
    assert status["state"] == "ready" and status["diarization"]["state"] == "ready"
    hooks = _Hooks()
    settings = Settings(data_dir=tmp_path / "data", fetch_allowlist=("127.0.0.1",))
    with MediaServer(FIXTURES) as server:
        spec = JobSpec(transcription_id="tr_test", url=server.url("sample.wav"),
                       pipeline_code="tiny", language="en", align=False, diarize=True,
                       speakers=SpeakerConstraints(exact=2))
        outcome = run_pipeline(spec, cache, settings, MediaStore.from_settings(settings), hooks,
                               tmp_path)
    assert len(seen) == 2 and seen[0] is seen[1]
    assert hooks.durations == [pytest.approx(30.0, abs=0.01)]
    assert list(outcome.timings) == ["fetch", "decode", "asr", "diarization", "assembly"]
    assert hooks.progress == sorted(hooks.progress) and hooks.progress[-1] <= 1.0
    result = outcome.result
    words = [w for u in result["utterances"] for w in u["words"]]  # diarize forces words
    assert words and all(w["speaker"] in result["speakers"] for w in words)
    # Two speakers asked for, two listed: those with words first, by first appearance.
    assert result["speakers"] == ["SPEAKER 1", "SPEAKER 2"]
    in_transcript = list(dict.fromkeys(w["speaker"] for w in words))
    assert result["speakers"][:len(in_transcript)] == in_transcript


def test_without_pyannote_only_diarization_is_unavailable(tmp_path: Path,
                                                          tiny_model: Path) -> None:
    """A worker where pyannote.audio is not installed (played by a package that shadows it
    and fails to import, as a missing one does) loads its speech model and reports the
    diarizer as failed, saying how to install it."""
    shadow = tmp_path / "shadow" / "pyannote"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ImportError(\"No module named 'pyannote.audio'\")\n")
    script = f"""
import json
from app.transcriptions.pipelines import PipelineCatalog
from tests.worker.speech.test_diarization import diarizing_pipeline
from worker.speech.model_cache import ModelCache
from worker.errors import ModelUnavailable
from pathlib import Path
cache = ModelCache(PipelineCatalog((diarizing_pipeline(Path({str(tiny_model)!r}),
                                                       "/models/x"),), "tiny"))
cache.load_all()
cache.engine("tiny")
try:
    cache.diarizer("tiny")
except ModelUnavailable as exc:
    print(json.dumps({{"status": cache.status(), "error": exc.message}}))
"""
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": f"{shadow.parent}:{REPO}", "PATH": "/usr/bin:/bin",
             "HF_HUB_OFFLINE": "1"})
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["status"]["tiny"]["state"] == "ready"
    assert report["status"]["tiny"]["diarization"]["state"] == "failed"
    assert "pyannote.audio is not installed" in report["error"]
    assert "voxhook[diarization]" in report["error"]
