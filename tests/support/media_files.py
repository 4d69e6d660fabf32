"""Media files for the decoder's tests, built with PyAV at test time from real recordings.

Nothing here is stored in the repository: each function encodes what it needs from
``tests/fixtures/jfk.flac`` (11 s of real speech) or from numbers, writes it to the path it is
given and returns that path. No ffmpeg binary is needed; PyAV carries the codecs.
"""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
JFK = FIXTURES / "jfk.flac"
#: The order of FFmpeg's "5.1" layout, which FLAC uses for six channels.
SURROUND_51 = ("FL", "FR", "FC", "LFE", "BL", "BR")
CENTRE = SURROUND_51.index("FC")
_FRAME = 1024  # samples per audio frame handed to an encoder: AAC needs exactly this many


def read_pcm(source: Path = JFK, layout: str = "mono", rate: int = 44_100) -> np.ndarray:
    """All of ``source``'s first audio stream as int16, shape (channels, samples)."""
    resampler = av.audio.resampler.AudioResampler(format="s16p", layout=layout, rate=rate)
    with av.open(str(source)) as container:
        frames = [*container.decode(audio=0), None]  # None flushes the resampler
        rows = [out.to_ndarray() for frame in frames for out in resampler.resample(frame)]
    return np.concatenate(rows, axis=1)


def video_with_audio(path: Path, source: Path = JFK) -> Path:
    """An MP4: a synthetic MPEG-4 video (moving bars, 96x64, 10 fps) as long as ``source``,
    and ``source``'s sound as stereo AAC. The video stream comes first, as cameras write it."""
    pcm = read_pcm(source, layout="stereo")
    with av.open(str(path), "w", format="mp4") as container:
        video = _add_video(container)
        audio = container.add_stream("aac", rate=44_100, layout="stereo")
        _write_video(container, video, seconds=pcm.shape[1] / 44_100)
        _write_audio(container, audio, pcm, "stereo", 44_100)
    return path


def video_without_audio(path: Path, seconds: float = 11.0) -> Path:
    """The same kind of MP4 video, with no audio stream at all (a silent screen recording)."""
    with av.open(str(path), "w", format="mp4") as container:
        _write_video(container, _add_video(container), seconds)
    return path


def surround_flac(path: Path, source: Path = JFK) -> Path:
    """A six-channel 5.1 FLAC at 44.1 kHz: ``source``'s speech (mixed to mono) in the front
    centre channel (index :data:`CENTRE`), digital silence in the five others."""
    speech = read_pcm(source)[0]
    pcm = np.zeros((len(SURROUND_51), speech.size), np.int16)
    pcm[CENTRE] = speech
    with av.open(str(path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=44_100, layout="5.1")
        _write_audio(container, stream, pcm, "5.1", 44_100)
    return path


def truncated(path: Path, share: float, source: Path = JFK) -> Path:
    """The first ``share`` of ``source``'s bytes: a file cut short where it was made."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])
    return path


def beeps_flac(path: Path, seconds: float, rate: int = 16_000) -> Path:
    """Mono FLAC of silence with a quiet half-second 440 Hz beep every ten seconds: long audio
    that stays small on disk (FLAC stores silence in a few bytes a frame), for length limits."""
    t = np.arange(int(seconds * rate)) / rate
    signal = np.where(t % 10 < 0.5, 1500 * np.sin(2 * np.pi * 440 * t), 0.0)
    with av.open(str(path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="mono")
        _write_audio(container, stream, signal.astype(np.int16)[None, :], "mono", rate)
    return path


def declare_flac_length(path: Path, samples: int) -> Path:
    """Rewrite the total length a FLAC's STREAMINFO declares (0: unknown, as a streaming
    encoder writes it) without touching its audio: a file whose metadata lies or is absent."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0, "STREAMINFO must come first"
    # STREAMINFO starts at byte 8; bytes 10..17 of it pack rate (20 bits), channels (3),
    # bits per sample (5) and the total number of samples (36).
    packed = int.from_bytes(data[18:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | (samples & ((1 << 36) - 1))
    data[18:26] = packed.to_bytes(8, "big")
    data[26:42] = bytes(16)  # the MD5 of the audio is unknown too
    path.write_bytes(bytes(data))
    return path


def text_file(path: Path) -> Path:
    path.write_text("This is a text file, not audio.\n" * 20)
    return path


def web_page(path: Path) -> Path:
    """A sign-in page, what a private file's share link often returns."""
    path.write_text("<!doctype html><html><head><title>Sign in</title></head><body>"
                    "<form><input name=user><input name=password type=password></form>"
                    "</body></html>\n" * 10)
    return path


def png_image(path: Path) -> Path:
    """A 64x48 PNG picture: FFmpeg opens it as a one-frame video, yet it is no video."""
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = 64, 48, "rgb24"
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :, 0] = np.linspace(0, 255, 64, dtype=np.uint8)
    packets = [*codec.encode(av.VideoFrame.from_ndarray(image, format="rgb24")),
               *codec.encode(None)]
    path.write_bytes(b"".join(bytes(packet) for packet in packets))
    return path


def random_bytes(path: Path, size: int = 64_000) -> Path:
    path.write_bytes(np.random.default_rng(11).bytes(size))
    return path


def _add_video(container: av.container.OutputContainer) -> av.VideoStream:
    stream = container.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
    return stream


def _write_video(container: av.container.OutputContainer, stream: av.VideoStream,
                 seconds: float) -> None:
    for index in range(round(seconds * 10)):
        image = np.zeros((64, 96, 3), np.uint8)
        image[:, (index * 4) % 96:(index * 4) % 96 + 12] = (255, 200, 40)  # a moving bar
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = index, fractions.Fraction(1, 10)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _write_audio(container: av.container.OutputContainer, stream: av.AudioStream,
                 pcm: np.ndarray, layout: str, rate: int) -> None:
    """Encode planar int16 ``pcm`` (channels x samples) in frames of :data:`_FRAME`."""
    for start in range(0, pcm.shape[1], _FRAME):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, start:start + _FRAME]),
                                           format="s16p", layout=layout)
        frame.sample_rate, frame.pts = rate, start
        frame.time_base = fractions.Fraction(1, rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
