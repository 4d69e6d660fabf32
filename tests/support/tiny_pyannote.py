"""Build a small, randomly initialised pyannote.audio 4 speaker-diarization pipeline, offline.

No pyannote weights can be downloaded on the machines this project is tested on, yet the
diarization code has to be exercised end to end: loading a pipeline folder with
``pyannote.audio.Pipeline.from_pretrained(folder)``, running it on audio held in memory,
passing speaker counts, reading its ``Annotation``. :func:`build_tiny_diarization` writes a
folder with the layout of the hub's ``pyannote/speaker-diarization-community-1``, so
pyannote takes exactly the code paths it takes with the real pipeline::

    folder/
      config.yaml                  SpeakerDiarization, VBx clustering, community-1 params
      segmentation/pytorch_model.bin   PyanNet, powerset (3 speakers, 2 at most), 10 s chunks
      embedding/pytorch_model.bin      WeSpeakerResNet34 (256-d embeddings)
      plda/xvec_transform.npz          mean1, mean2, lda (what pyannote's VBx setup reads)
      plda/plda.npz                    mu, tr, psi

The two models are saved the way pyannote saves its own (a Lightning checkpoint holding
``state_dict``, ``hyper_parameters`` and a ``pyannote.audio`` section with the
architecture and the task specifications; cf. ``models/embedding/wespeaker/convert.py``)
and loaded by pyannote's ``Model.from_pretrained``; the PLDA arrays are loaded by
``PLDA.from_pretrained``. Nothing is mocked and nothing is downloaded.

Speed. The embedding model is the real ``WeSpeakerResNet34`` class, whose width is fixed;
it is made cheap through its constructor's own hyper-parameters: 16 mel bins instead of 80
and a 40 ms frame shift instead of 10 ms (about 60x fewer operations). The segmentation
``PyanNet`` has a 64-unit single-layer LSTM and one 64-unit linear layer. The whole pipeline
runs on the 30 s ``tests/fixtures/sample.wav`` in a couple of seconds on two CPU cores
(plus a few seconds, once per process, to import pyannote and Lightning).

Speech activity. A randomly initialised segmentation model says "two people at once"
(or nobody) almost everywhere: the diarization then has a single speaker, or none. So
the segmentation model's last layer (``classifier``, the powerset logits) is fitted, in
about a second, on synthetic audio: 10 s chunks made of near-silence (-70 dBFS noise) and
of two synthetic "voices" (harmonic tones with syllable-like envelopes, one low-pitched,
one high-pitched), labelled "nobody", "speaker 1" and "speaker 2"; then the two speaker
logits get a small bonus (:data:`_SPEECH_BIAS`), as real speech resembles those voices
only loosely. Every other weight stays random. The resulting model finds silence where the
level drops and hands the speech to its two local speakers, depending on the random
features; the random embeddings and the VBx / k-means clustering then make the global
speakers. The output is meaningless as diarization but has the right shape. On
``sample.wav`` (seed 0): about 18 s of speech out of 30 (the reference has 22.5 s), a few
tenths of a second of it in the silent first 6.7 s, in many short turns (pauses are kept,
``min_duration_off`` is 0 as in community-1); with ``num_speakers=2`` (or ``min_speakers=2``)
exactly two speakers, ``SPEAKER_00`` and ``SPEAKER_01``. Without a speaker count VBx
finds a single speaker: random embeddings do not tell voices apart.

Use::

    pipeline = pyannote.audio.Pipeline.from_pretrained(str(build_tiny_diarization(folder)))
    output = pipeline({"waveform": samples, "sample_rate": 16000}, num_speakers=2)
    output.speaker_diarization            # pyannote.core.Annotation, overlaps included
    output.exclusive_speaker_diarization  # the same without overlapping speech

Determinism. Everything is seeded (``seed``): the same seed on the same machine writes
byte-identical files, and the pipeline gives the same output on the same audio. (The
classifier fit uses floating-point reductions, so another CPU or thread count could differ
in the last bits.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
import yaml
from pyannote.audio import __version__ as PYANNOTE_VERSION
from pyannote.audio.core.model import Model
from pyannote.audio.core.task import Problem, Resolution, Specifications
from pyannote.audio.models.embedding import WeSpeakerResNet34
from pyannote.audio.models.segmentation import PyanNet

__all__ = [
    "CHECKPOINT",
    "EMBEDDING_DIMENSION",
    "PIPELINE_PARAMS",
    "SAMPLE_RATE",
    "build_tiny_diarization",
]

SAMPLE_RATE = 16000
#: File name pyannote's ``Model.from_pretrained`` looks for in a model folder.
CHECKPOINT = "pytorch_model.bin"
#: WeSpeakerResNet34 always makes 256-d embeddings.
EMBEDDING_DIMENSION = 256
#: Dimension of the (synthetic) LDA / PLDA space; pyannote's PLDA keeps 128 dimensions.
PLDA_DIMENSION = 128
CHUNK_DURATION = 10.0
#: Hyper-parameters, as in community-1's ``config.yaml``.
PIPELINE_PARAMS: dict[str, Any] = {
    "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8},
    "segmentation": {"min_duration_off": 0.0},
}

# Synthetic training audio for the segmentation classifier.
_NUM_TRAINING_CHUNKS = 16
_NUM_HARMONICS = 12
_SILENCE, _LOW_VOICE, _HIGH_VOICE = 0, 1, 2  # powerset classes {}, {spk1}, {spk2}
_FIT_STEPS = 200
#: Added to the fitted "speaker 1" and "speaker 2" logits: real speech resembles the
#: synthetic voices only loosely, and this tips its quieter parts over to speech.
_SPEECH_BIAS = 0.5


def build_tiny_diarization(folder: Path, seed: int = 0) -> Path:
    """Write a tiny random speaker-diarization pipeline into ``folder`` and return it.

    ``pyannote.audio.Pipeline.from_pretrained(str(folder))`` loads it with no token and no
    network. ``folder`` is created if needed; files already in it are overwritten.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    segmentation = _segmentation_model()
    _fit_classifier(segmentation, rng)
    _save_model(segmentation, folder / "segmentation")
    _save_model(_embedding_model(), folder / "embedding")
    _save_plda(folder / "plda", rng)
    _save_config(folder / "config.yaml")
    return folder


# ---------------------------------------------------------------------------- models


def _segmentation_model() -> PyanNet:
    model = PyanNet(
        sincnet={"stride": 10},
        lstm={"hidden_size": 64, "num_layers": 1, "bidirectional": True},
        linear={"hidden_size": 64, "num_layers": 1},
        sample_rate=SAMPLE_RATE,
    )
    # What pyannote's SpeakerDiarization task gives a model: powerset multi-class, up to 3
    # speakers per chunk and 2 at once, frame-wise, 10 s chunks.
    model.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=CHUNK_DURATION,
        min_duration=CHUNK_DURATION,
        warm_up=(0.0, 0.0),
        classes=["speaker#1", "speaker#2", "speaker#3"],
        powerset_max_classes=2,
        permutation_invariant=True,
    )
    model.build()  # adds the task-dependent classifier and its log-softmax
    return model


def _embedding_model() -> WeSpeakerResNet34:
    model = WeSpeakerResNet34(sample_rate=SAMPLE_RATE, num_mel_bins=16, frame_shift=40)
    # As pyannote's own WeSpeaker conversion script does (a representation, one per chunk).
    model.specifications = Specifications(
        problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=5.0
    )
    return model


def _save_model(model: Model, folder: Path) -> None:
    """Save ``model`` as a checkpoint that ``Model.from_pretrained(folder)`` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    model.eval()
    checkpoint: dict[str, Any] = {
        "state_dict": model.state_dict(),
        # Lightning's load_from_checkpoint rebuilds the model from these (mel bins, sizes).
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": lightning.__version__,
    }
    model.on_save_checkpoint(checkpoint)  # the "pyannote.audio" section
    torch.save(checkpoint, folder / CHECKPOINT)


def _save_plda(folder: Path, rng: np.random.Generator) -> None:
    """A synthetic PLDA in the two files pyannote's ``vbx_setup`` reads.

    ``xvec_transform.npz``: centring means and a random orthonormal 256 -> 128 projection;
    ``plda.npz``: zero mean, identity transform and decreasing between-class variances.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lda, _ = np.linalg.qr(rng.standard_normal((EMBEDDING_DIMENSION, PLDA_DIMENSION)))
    with open(folder / "xvec_transform.npz", "wb") as file:
        np.savez(
            file,
            mean1=np.zeros(EMBEDDING_DIMENSION),
            mean2=np.zeros(PLDA_DIMENSION),
            lda=lda,
        )
    with open(folder / "plda.npz", "wb") as file:
        np.savez(
            file,
            mu=np.zeros(PLDA_DIMENSION),
            tr=np.eye(PLDA_DIMENSION),
            psi=np.geomspace(10.0, 0.01, PLDA_DIMENSION),
        )


def _save_config(path: Path) -> None:
    config = {
        "dependencies": {"pyannote.audio": PYANNOTE_VERSION},
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {
                "clustering": "VBxClustering",
                "segmentation": "$model/segmentation",
                "segmentation_batch_size": 32,
                "embedding": "$model/embedding",
                "embedding_batch_size": 32,
                "embedding_exclude_overlap": True,
                "plda": "$model/plda",
            },
        },
        "params": PIPELINE_PARAMS,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


# ------------------------------------------------------- fitting the powerset classifier


def _fit_classifier(model: PyanNet, rng: np.random.Generator) -> None:
    """Fit ``model.classifier`` (only) to label synthetic silence and two synthetic voices."""
    waveforms, labels = _synthetic_chunks(rng)
    frames = _frame_labels(model, labels)

    features: list[torch.Tensor] = []
    handle = model.classifier.register_forward_hook(
        lambda module, inputs, output: features.append(inputs[0].detach())
    )
    try:
        with torch.inference_mode():
            model.eval()
            model(torch.from_numpy(waveforms)[:, None])
    finally:
        handle.remove()
    x = features[0].clone().reshape(-1, features[0].shape[-1])
    y = torch.from_numpy(frames).reshape(-1)

    classifier = model.classifier
    optimizer = torch.optim.Adam(classifier.parameters(), lr=0.05)
    with torch.enable_grad():
        for _ in range(_FIT_STEPS):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(classifier(x), y)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        classifier.bias[[_LOW_VOICE, _HIGH_VOICE]] += _SPEECH_BIAS


def _synthetic_chunks(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(chunks, samples)`` float32 audio and per-sample class labels."""
    num_samples = int(CHUNK_DURATION * SAMPLE_RATE)
    waveforms = np.zeros((_NUM_TRAINING_CHUNKS, num_samples), dtype=np.float32)
    labels = np.zeros((_NUM_TRAINING_CHUNKS, num_samples), dtype=np.int64)
    for chunk in range(_NUM_TRAINING_CHUNKS):
        position = 0
        kind = int(rng.integers(0, 3))
        while position < num_samples:
            if kind == _SILENCE:
                length = int(rng.uniform(0.3, 4.0) * SAMPLE_RATE)
            else:
                length = int(rng.uniform(0.8, 3.5) * SAMPLE_RATE)
            length = min(length, num_samples - position)
            if kind == _SILENCE:
                segment = np.zeros(length)
            else:
                segment = _voice(rng, length, high=kind == _HIGH_VOICE)
            segment = segment + rng.normal(0.0, 10 ** (-70 / 20), length)  # room noise
            waveforms[chunk, position : position + length] = segment
            labels[chunk, position : position + length] = kind
            position += length
            kind = int(rng.choice([k for k in range(3) if k != kind]))
    return waveforms, labels


def _voice(rng: np.random.Generator, length: int, high: bool) -> np.ndarray:
    """A voiced, speech-like sound: harmonics of a wavering pitch, syllable envelope."""
    t = np.arange(length) / SAMPLE_RATE
    base = rng.uniform(190.0, 260.0) if high else rng.uniform(90.0, 140.0)
    wobble = 1.0 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(base * wobble) / SAMPLE_RATE
    harmonics = np.arange(1, _NUM_HARMONICS + 1)
    # a vowel-like spectral envelope: two random formants on a falling slope
    formants = rng.uniform([300.0, 900.0], [900.0, 2500.0])
    frequencies = harmonics * base
    gains = 1.0 / harmonics + sum(
        np.exp(-(((frequencies - f) / 150.0) ** 2)) for f in formants
    )
    signal = np.sin(np.outer(phase, harmonics)) @ gains
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3.0, 5.0) * t), 0.15, None) ** 0.5
    signal *= syllables
    signal += 0.05 * rng.standard_normal(length) * syllables  # breath
    level = 10 ** (rng.uniform(-32.0, -22.0) / 20)
    return level * signal / (np.sqrt(np.mean(signal**2)) + 1e-12)


def _frame_labels(model: PyanNet, labels: np.ndarray) -> np.ndarray:
    """Per-sample labels read at the centre of each output frame's receptive field."""
    num_frames = model.num_frames(labels.shape[1])
    centres = np.array([model.receptive_field_center(frame=i) for i in range(num_frames)])
    return labels[:, np.minimum(centres, labels.shape[1] - 1)]
