"""GPU figures for a large-v3-turbo-shaped model: batching, concurrency on one model vs
processes, GPU memory, and diarization's share of a job. For a CUDA machine.

Builds a random-weight Whisper model with large-v3-turbo's shape (d_model 1280, 32 encoder
layers, 4 decoder layers, 20 heads, FFN 5120; ``tests/support/tiny_whisper.py``, so nothing is
downloaded; it keeps 80 mel bins where the real one has 128, which changes only the first
convolution) and measures on GPU 0, float16, greedy decoding with ``max_new_tokens`` capped:

1. real-time factor of one one-minute file, sequential decoding vs faster-whisper's batched
   pipeline (``--batch-size``);
2. K jobs at once (``--k``): K threads on **one** model (``num_workers=K``, what a worker
   with ``VOXHOOK_WORKER_CONCURRENCY=K`` does) vs K processes with a model each: jobs per
   minute and the GPU memory in use at the peak (``nvidia-smi``);
3. diarization's share of a job's time, with the tiny random pyannote pipeline on the GPU
   (the real pipeline's weights cannot be fetched here; its share with real weights is
   larger), next to the ASR time of the same file.

Prints one table. Without CUDA it exits with status 2 and says so; nothing else runs.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_gpu [--k 4] [--files 16] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.tiny_whisper import TinyWhisperSize

#: large-v3-turbo's shape (openai/whisper-large-v3-turbo: d_model 1280, 32 + 4 layers).
TURBO_SIZE = TinyWhisperSize(width=1280, encoder_layers=32, decoder_layers=4, heads=20,
                             ffn=5120)
NO_CUDA = ("bench_gpu needs a CUDA GPU (CTranslate2 sees none here): run it on a machine with "
           "an NVIDIA GPU and CUDA 12 (`nvidia-smi` works), from the repository root.")


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    measure: str
    setting: str
    seconds: float
    jobs_per_minute: float | None = None
    realtime_factor: float | None = None
    gpu_memory_mib: int | None = None
    note: str = ""


def cuda_devices() -> int:
    """GPUs CTranslate2 can use (0 without CUDA, or without ctranslate2's CUDA build)."""
    try:
        import ctranslate2
    except ImportError:
        return 0
    try:
        return int(ctranslate2.get_cuda_device_count())
    except Exception:
        return 0


def parse_memory_used(nvidia_smi_output: str, gpu: int = 0) -> int:
    """MiB in use on ``gpu`` from ``nvidia-smi --query-gpu=memory.used
    --format=csv,noheader,nounits`` (one line per GPU)."""
    lines = [line.strip() for line in nvidia_smi_output.splitlines() if line.strip()]
    if gpu >= len(lines):
        raise ValueError(f"nvidia-smi listed {len(lines)} GPU(s); GPU {gpu} is not among them")
    return int(float(lines[gpu].split(",")[0]))


def gpu_memory_mib(gpu: int = 0) -> int | None:
    """MiB in use on the GPU now, every process included (None without nvidia-smi)."""
    try:
        output = subprocess.run(["nvidia-smi", "--query-gpu=memory.used",
                                 "--format=csv,noheader,nounits"], capture_output=True,
                                text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_memory_used(output, gpu)


class PeakMemory:
    """Samples the GPU's memory in use every ``interval_s`` while a measurement runs."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s, self.peak = interval_s, None  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            used = gpu_memory_mib()
            if used is not None:
                self.peak = max(self.peak or 0, used)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def format_table(rows: list[Row]) -> str:
    """The rows as one aligned text table (blank where a figure does not apply)."""
    def cell(value: float | int | None, spec: str) -> str:
        return "" if value is None else format(value, spec)

    header = (f"{'measure':<28} {'setting':<26} {'seconds':>8} {'jobs/min':>9} {'RTF':>8} "
              f"{'GPU MiB':>8}  note")
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row.measure:<28} {row.setting:<26} {row.seconds:>8.2f} "
                     f"{cell(row.jobs_per_minute, '.1f'):>9} "
                     f"{cell(row.realtime_factor, '.4f'):>8} "
                     f"{cell(row.gpu_memory_mib, 'd'):>8}  {row.note}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- on the GPU

DECODING = {"beam_size": 1, "temperature": 0.0, "vad_filter": False, "language": "en",
            "condition_on_previous_text": False}

#: A child process for the "K processes" measure: loads the model, waits for "go" on stdin,
#: transcribes its share of files, prints the seconds.
CHILD = """
import json, sys, time
from faster_whisper import WhisperModel
from worker.speech.audio import decode
model_dir, audio_path, files, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
model = WhisperModel(model_dir, device="cuda", compute_type="float16", local_files_only=True)
samples = decode(audio_path).samples
list(model.transcribe(samples[:16000 * 5], max_new_tokens=tokens, **json.loads(sys.argv[5]))[0])
print("ready", flush=True)
sys.stdin.readline()
started = time.perf_counter()
for _ in range(files):
    list(model.transcribe(samples, max_new_tokens=tokens, **json.loads(sys.argv[5]))[0])
print(time.perf_counter() - started, flush=True)
"""


def run_on_gpu(args: argparse.Namespace, folder: Path) -> list[Row]:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from tests.conftest import write_repeated_wav
    from tests.support.stack import REPO
    from tests.support.tiny_whisper import build_tiny_whisper
    from worker.speech.audio import decode

    minute = folder / "minute.wav"
    write_repeated_wav(REPO / "tests" / "fixtures" / "sample.wav", minute, times=2)
    samples = decode(minute).samples
    audio_s = len(samples) / 16_000
    print(f"building the large-v3-turbo-shaped random model in {folder} ...", file=sys.stderr)
    model_dir = build_tiny_whisper(folder / "turbo", TURBO_SIZE)
    rows: list[Row] = []
    tokens = args.max_new_tokens

    def transcribe(model: object, batched: bool = False) -> None:
        options = dict(DECODING, max_new_tokens=tokens)
        if batched:
            options.pop("condition_on_previous_text")
            list(model.transcribe(samples, batch_size=args.batch_size, **options)[0])  # type: ignore[attr-defined]
        else:
            list(model.transcribe(samples, **options)[0])  # type: ignore[attr-defined]

    idle = gpu_memory_mib()
    model = WhisperModel(str(model_dir), device="cuda", compute_type="float16",
                         num_workers=args.k, local_files_only=True)
    transcribe(model)  # warm-up
    for name, batched, target in (("sequential windows", False, model),
                                  (f"batched, batch {args.batch_size}", True,
                                   BatchedInferencePipeline(model))):
        started = time.perf_counter()
        with PeakMemory() as memory:
            transcribe(target, batched)
        seconds = time.perf_counter() - started
        rows.append(Row("RTF, one 1-min file", name, seconds,
                        realtime_factor=seconds / audio_s, gpu_memory_mib=memory.peak))

    def one_model(threads: int, model: object) -> Row:
        per_thread = args.files // threads
        started = time.perf_counter()
        with PeakMemory() as memory:
            workers = [threading.Thread(target=lambda: [transcribe(model)
                                                        for _ in range(per_thread)])
                       for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        seconds = time.perf_counter() - started
        return Row(f"{per_thread * threads} files", f"{threads} job(s) on one model", seconds,
                   jobs_per_minute=per_thread * threads * 60 / seconds,
                   gpu_memory_mib=memory.peak,
                   note=f"GPU idle at {idle} MiB" if threads == 1 else "")

    rows.append(one_model(1, model))
    rows.append(one_model(args.k, model))
    del model  # its GPU memory is freed before the processes load theirs

    per_process = args.files // args.k
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(model_dir), str(minute),
                                  str(per_process), str(tokens), json.dumps(DECODING)],
                                 cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True) for _ in range(args.k)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    with PeakMemory() as memory:
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            assert child.stdout is not None
            child.stdout.readline()
            child.wait(600)
    seconds = time.perf_counter() - started
    rows.append(Row(f"{per_process * args.k} files", f"{args.k} processes, a model each",
                    seconds, jobs_per_minute=per_process * args.k * 60 / seconds,
                    gpu_memory_mib=memory.peak))
    rows += diarization_share(folder, samples, audio_s)
    return rows


def diarization_share(folder: Path, samples: object, audio_s: float) -> list[Row]:
    """Diarization's time for the one-minute file on the GPU (tiny random pyannote)."""
    try:
        from app.transcriptions.pipelines import DecodingOptions, DiarizationConfig, Pipeline
        from tests.support.tiny_pyannote import build_tiny_diarization
        from worker.speech.diarization import Diarizer, SpeakerConstraints
    except ImportError as exc:
        return [Row("diarization", "not measured", 0.0, note=str(exc))]
    model = build_tiny_diarization(folder / "diarization")
    pipeline = Pipeline(code="gpu", description="bench", model="unused", device="cuda",
                        compute_type="float16", decoding=DecodingOptions(),
                        diarization=DiarizationConfig(model=str(model), device="cuda"))
    diarizer = Diarizer(pipeline)
    diarizer.diarize(samples, SpeakerConstraints())  # type: ignore[arg-type]
    started = time.perf_counter()
    diarizer.diarize(samples, SpeakerConstraints())  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    return [Row("diarization, 1-min file", "tiny random pyannote", seconds,
                realtime_factor=seconds / audio_s,
                note="share of a job: diarization / (diarization + sequential ASR) below")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=4, help="concurrent jobs / processes")
    parser.add_argument("--files", type=int, default=16, help="one-minute files per measure")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args(argv)
    if cuda_devices() == 0:
        print(NO_CUDA, file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="voxhook-gpu-"))
    try:
        rows = run_on_gpu(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"# bench_gpu: large-v3-turbo-shaped random model, float16, K={args.k}, "
          f"{args.files} one-minute files, max_new_tokens {args.max_new_tokens}")
    print(format_table(rows))
    asr = next(row.seconds for row in rows if row.setting == "sequential windows")
    diarization = [row.seconds for row in rows if row.measure.startswith("diarization")
                   and row.seconds]
    if diarization:
        print(f"diarization's share of a job (sequential ASR + diarization): "
              f"{diarization[0] / (diarization[0] + asr):.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
