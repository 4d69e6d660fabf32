"""Build a small, randomly initialised Whisper model that faster-whisper loads offline.

No Whisper weights can be downloaded on the machines this project is tested on, yet the
ASR code has to be exercised end to end (model loading, language detection, VAD, word
timestamps). A random model is enough for that: it speaks deterministic gibberish, but it
has the real Whisper layout, a real 51,865-token multilingual vocabulary and a real
byte-level BPE ``tokenizer.json``, so faster-whisper and CTranslate2 take exactly the code
paths they take with ``whisper-tiny``.

Only numpy, ``ctranslate2`` and ``tokenizers`` are needed (no torch, no transformers).

Typical use::

    folder = build_tiny_whisper(tmp_path / "whisper")
    model = WhisperModel(str(folder), device="cpu", compute_type="int8")
    segments, info = model.transcribe(
        audio, beam_size=1, temperature=0.0, max_new_tokens=48, word_timestamps=True
    )

Decode greedily with a token cap: a random model never satisfies the quality thresholds, so
default decoding runs every temperature fallback and is slow. Its timestamps can also run
past the end of the audio.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import string
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ctranslate2.specs import attention_spec, common_spec, transformer_spec
from ctranslate2.specs.whisper_spec import WhisperSpec
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

__all__ = ["BENCHMARK_SIZE", "TEST_SIZE", "TinyWhisperSize", "build_tiny_whisper"]


@dataclass(frozen=True)
class TinyWhisperSize:
    """Shape of the random model; the vocabulary is always the full multilingual one."""

    width: int = 64
    """Model dimension ``d_model``; must be even (sinusoidal encodings) and divisible by
    ``heads``."""
    encoder_layers: int = 2
    """Number of encoder layers."""
    decoder_layers: int = 2
    """Number of decoder layers; the last half of them provide the alignment heads."""
    heads: int = 2
    """Attention heads per layer, in the encoder and the decoder."""
    ffn: int = 256
    """Inner width of the feed-forward blocks."""


TEST_SIZE = TinyWhisperSize()
"""Small enough to build and run in well under a second: used by the test-suite."""

BENCHMARK_SIZE = TinyWhisperSize(width=384, encoder_layers=4, decoder_layers=4, heads=6, ffn=1536)
"""The shape of ``whisper-tiny``: realistic compute cost, for benchmarks."""

# Whisper's fixed geometry (identical for every Whisper size).
N_MELS = 80
"""Mel bins fed to the encoder; faster-whisper's feature extractor defaults to 80."""
N_AUDIO_CTX = 1500
"""Encoder positions: 30 s of audio at 50 frames per second after the stride-2 conv."""
N_TEXT_CTX = 448
"""Decoder positions (faster-whisper's ``max_length``)."""
N_TIMESTAMPS = 1501
"""Timestamp tokens ``<|0.00|>`` … ``<|30.00|>`` in steps of 0.02 s."""
N_TEXT_TOKENS = 50257
"""Ids below ``<|endoftext|>``: 50,256 BPE tokens, then the empty token ``""`` (50256)."""

EMPTY_TOKEN = ""
"""Real multilingual Whisper vocabularies hold an empty token at id 50256. CTranslate2
4.8 decides that a Whisper model is multilingual by looking this token up (older releases
looked at the vocabulary size instead); without it, language detection is refused."""

LANGUAGES = (
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar",
    "sv", "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu",
    "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa",
    "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn",
    "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc",
    "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn",
    "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw",
    "su",
)  # fmt: skip
"""The 99 language tokens in the order of OpenAI's ``whisper/tokenizer.py`` (pre-v3
models, hence no ``yue``): language token ids match real multilingual Whisper models."""

TASK_TOKENS = (
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
)
"""Special tokens between the language tokens and the timestamps, in Whisper's order."""

VOCAB_SIZE = N_TEXT_TOKENS + 2 + len(LANGUAGES) + len(TASK_TOKENS) + N_TIMESTAMPS
"""51,865, the size of the (pre-v3) multilingual Whisper vocabulary."""

FORMAT_VERSION = 1
"""Bump when the generated files change, so existing builds are rebuilt."""

MARKER = ".tiny_whisper.json"
"""Written last; its presence with matching parameters means the build is complete."""

MODEL_FILES = ("model.bin", "config.json", "vocabulary.json", "tokenizer.json")
"""Everything faster-whisper reads. ``preprocessor_config.json`` is left out on purpose:
without it faster-whisper uses Whisper's (80-mel) defaults, which is what we want."""

WEIGHT_STD = 0.02
"""Standard deviation of the random weights (a common transformer initialisation)."""


def build_tiny_whisper(
    folder: str | os.PathLike[str],
    size: TinyWhisperSize = TEST_SIZE,
    seed: int = 0,
) -> Path:
    """Write a random Whisper model into ``folder`` and return the folder.

    The folder holds ``model.bin``, ``config.json`` and ``vocabulary.json`` (CTranslate2)
    and ``tokenizer.json`` (faster-whisper). The build is deterministic for a given size
    and seed, and idempotent: when the folder already holds a complete build with the same
    parameters nothing is written, so a session-wide cache folder can be shared.

    Files are produced in a sibling temporary folder and moved in, with the marker last,
    so an interrupted build is never taken for a complete one.
    """
    folder = Path(folder)
    wanted = {"format": FORMAT_VERSION, "size": asdict(size), "seed": seed}
    if _is_complete(folder, wanted):
        return folder

    _check_size(size)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).unlink(missing_ok=True)

    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        tokenizer, tokens = _build_tokenizer()
        tokenizer.save(str(staging / "tokenizer.json"))
        spec = _build_spec(size, seed, tokens, _suppress_ids(tokenizer))
        spec.save(str(staging))
        for name in MODEL_FILES:
            os.replace(staging / name, folder / name)
        (staging / MARKER).write_text(json.dumps(wanted, sort_keys=True), encoding="utf-8")
        os.replace(staging / MARKER, folder / MARKER)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _is_complete(folder: Path, wanted: dict[str, object]) -> bool:
    """True when ``folder`` holds every model file and a marker for these parameters."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker == wanted and all((folder / name).is_file() for name in MODEL_FILES)


def _check_size(size: TinyWhisperSize) -> None:
    """Fail early with a clear message rather than deep inside CTranslate2."""
    if size.width % 2 or size.width % size.heads:
        raise ValueError(f"width {size.width} must be even and divisible by heads {size.heads}")
    if min(size.encoder_layers, size.decoder_layers, size.heads, size.ffn) < 1:
        raise ValueError(f"every dimension must be positive: {size}")


# --------------------------------------------------------------------------- tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character table, in GPT-2's order.

    Using the same order as GPT-2 gives the same ids for the 256 base symbols (for
    example ``Ġ``, the space, is 220, which Whisper's ``suppress_ids_begin`` names).
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _text_tokens() -> tuple[list[str], list[tuple[str, str]]]:
    """The 50,257 tokens below ``<|endoftext|>`` and the BPE merges that produce them.

    Beyond the 256 byte symbols, tokens are lower-case letter strings, optionally led by
    ``Ġ`` (a space), built by appending one letter to a shorter token, so every token has
    a valid merge. All 2- and 3-character ones are taken, then an evenly spread selection
    of 4-character ones fills the vocabulary. About a third of the tokens start with a
    space, so random output decodes to readable, space-separated pseudo-words and
    faster-whisper's word splitting has words to find.
    """
    byte_symbols = _bytes_to_unicode()
    base = list(byte_symbols.values())
    space = byte_symbols[ord(" ")]  # "Ġ"
    letters = string.ascii_lowercase

    def level(n: int) -> tuple[list[str], list[str]]:
        """Tokens of ``n`` characters: ``Ġ`` + n-1 letters, and n letters."""
        spaced = [space + "".join(p) for p in itertools.product(letters, repeat=n - 1)]
        plain = ["".join(p) for p in itertools.product(letters, repeat=n)]
        return spaced, plain

    merged: list[str] = []
    for n in (2, 3):
        spaced, plain = level(n)
        merged += spaced + plain
    spaced, plain = level(4)
    merged += spaced
    missing = N_TEXT_TOKENS - 1 - len(base) - len(merged)
    merged += [plain[i * len(plain) // missing] for i in range(missing)]

    merges = [(token[:-1], token[-1]) for token in merged]
    return [*base, *merged, EMPTY_TOKEN], merges


def _special_tokens() -> list[str]:
    """Whisper's special tokens from id 50257 on, in the real multilingual order."""
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in LANGUAGES),
        *TASK_TOKENS,
        # Same formatting as CTranslate2's Whisper converter.
        *("<|%.2f|>" % (i * 0.02) for i in range(N_TIMESTAMPS)),
    ]


def _build_tokenizer() -> tuple[Tokenizer, list[str]]:
    """A byte-level BPE tokenizer (GPT-2 style) and its full id-ordered token list."""
    text_tokens, merges = _text_tokens()
    assert len(text_tokens) == N_TEXT_TOKENS
    vocab = {token: i for i, token in enumerate(text_tokens)}
    tokenizer = Tokenizer(models.BPE(vocab, merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()

    specials = _special_tokens()
    tokenizer.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in specials]
    )
    tokens = text_tokens + specials
    assert len(tokens) == VOCAB_SIZE
    assert tokenizer.token_to_id(specials[-1]) == VOCAB_SIZE - 1
    return tokenizer, tokens


def _suppress_ids(tokenizer: Tokenizer) -> list[int]:
    """The non-speech symbols a real Whisper ``config.json`` suppresses.

    Computed with faster-whisper's own rule, so the list fits this tokenizer.
    """
    from faster_whisper.tokenizer import Tokenizer as WhisperTokenizer

    whisper_tokenizer = WhisperTokenizer(
        tokenizer, multilingual=True, task="transcribe", language="en"
    )
    return list(whisper_tokenizer.non_speech_tokens)


# --------------------------------------------------------------------------- weights


def _sinusoids(length: int, channels: int) -> np.ndarray:
    """Whisper's fixed sinusoidal encoder positions (``whisper/model.py``)."""
    increment = np.log(10000) / (channels // 2 - 1)
    inv_timescales = np.exp(-increment * np.arange(channels // 2))
    scaled = np.arange(length)[:, None] * inv_timescales[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)


class _Init:
    """Deterministic random float32 arrays, drawn in call order from one seed."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def normal(self, *shape: int) -> np.ndarray:
        return self._rng.standard_normal(shape, dtype=np.float32) * np.float32(WEIGHT_STD)

    def linear(self, spec: common_spec.LinearSpec, out: int, inp: int) -> None:
        spec.weight = self.normal(out, inp)
        spec.bias = self.normal(out)

    def layer_norm(self, spec: common_spec.LayerNormSpec, width: int) -> None:
        # Unit gain and zero shift, as at the start of training: random gains would
        # shrink every activation towards zero.
        spec.gamma = np.ones(width, dtype=np.float32)
        spec.beta = np.zeros(width, dtype=np.float32)

    def ffn(self, spec: transformer_spec.FeedForwardSpec, width: int, inner: int) -> None:
        self.layer_norm(spec.layer_norm, width)
        self.linear(spec.linear_0, inner, width)
        self.linear(spec.linear_1, width, inner)

    def self_attention(self, spec: attention_spec.MultiHeadAttentionSpec, width: int) -> None:
        self.layer_norm(spec.layer_norm, width)
        self.linear(spec.linear[0], 3 * width, width)  # fused q, k, v
        self.linear(spec.linear[1], width, width)

    def cross_attention(self, spec: attention_spec.MultiHeadAttentionSpec, width: int) -> None:
        self.layer_norm(spec.layer_norm, width)
        self.linear(spec.linear[0], width, width)  # q
        self.linear(spec.linear[1], 2 * width, width)  # fused k, v
        self.linear(spec.linear[2], width, width)


def _build_spec(
    size: TinyWhisperSize, seed: int, tokens: list[str], suppress_ids: list[int]
) -> WhisperSpec:
    """Fill a CTranslate2 ``WhisperSpec`` as its Hugging Face converter would."""
    d = size.width
    init = _Init(seed)
    spec = WhisperSpec(size.encoder_layers, size.heads, size.decoder_layers, size.heads)

    encoder = spec.encoder
    encoder.conv1.weight = init.normal(d, N_MELS, 3)
    encoder.conv1.bias = init.normal(d)
    encoder.conv2.weight = init.normal(d, d, 3)
    encoder.conv2.bias = init.normal(d)
    encoder.position_encodings.encodings = _sinusoids(N_AUDIO_CTX, d)
    init.layer_norm(encoder.layer_norm, d)
    for layer in encoder.layer:
        init.self_attention(layer.self_attention, d)
        init.ffn(layer.ffn, d, size.ffn)

    decoder = spec.decoder
    embeddings = init.normal(len(tokens), d)
    decoder.embeddings.weight = embeddings
    decoder.projection.weight = embeddings  # tied, as in Whisper; saved once
    # A trained model never writes the empty token; a random one might, and an empty
    # token becomes an empty "word". A large negative logit bias rules it out.
    projection_bias = np.zeros(len(tokens), dtype=np.float32)
    projection_bias[tokens.index(EMPTY_TOKEN)] = -1e4
    decoder.projection.bias = projection_bias
    decoder.position_encodings.encodings = init.normal(N_TEXT_CTX, d)
    init.layer_norm(decoder.layer_norm, d)
    for layer in decoder.layer:
        init.self_attention(layer.self_attention, d)
        init.cross_attention(layer.attention, d)
        init.ffn(layer.ffn, d, size.ffn)

    token_id = {token: i for i, token in enumerate(tokens)}
    config = spec.config
    config.suppress_ids = suppress_ids
    config.suppress_ids_begin = [token_id["Ġ"], token_id["<|endoftext|>"]]
    config.lang_ids = [token_id[f"<|{code}|>"] for code in LANGUAGES]
    # CTranslate2's converter default when a model names no alignment heads.
    config.alignment_heads = [
        [layer, head]
        for layer in range(size.decoder_layers // 2, size.decoder_layers)
        for head in range(size.heads)
    ]

    spec.register_vocabulary(tokens)
    spec.validate()
    # Saves the tied embedding/projection once. int8 weights make the smallest file and
    # match the compute type the tests load with (CTranslate2 converts them on load for
    # any other compute_type); float16 would make CPU loads with "default" warn.
    spec.optimize(quantization="int8")
    return spec
