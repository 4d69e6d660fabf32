"""``benchmarks/bench_gpu.py`` where there is no GPU: it refuses clearly, and the parts that
need none (the model's shape, nvidia-smi's output, the table) are right."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.bench_gpu import (
    NO_CUDA,
    TURBO_SIZE,
    Row,
    cuda_devices,
    format_table,
    parse_memory_used,
)
from tests.support.paths import REPO


@pytest.mark.skipif(cuda_devices() > 0, reason="a GPU is here: the benchmark would run")
def test_without_cuda_it_exits_2_saying_why() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_gpu"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert NO_CUDA in done.stderr and "CUDA" in NO_CUDA
    assert done.stdout == ""


def test_the_model_has_large_v3_turbos_shape() -> None:
    """openai/whisper-large-v3-turbo: d_model 1280, 32 encoder and 4 decoder layers, 20
    heads, FFN 5120."""
    assert (TURBO_SIZE.width, TURBO_SIZE.encoder_layers, TURBO_SIZE.decoder_layers,
            TURBO_SIZE.heads, TURBO_SIZE.ffn) == (1280, 32, 4, 20, 5120)
    assert TURBO_SIZE.width % TURBO_SIZE.heads == 0


def test_nvidia_smi_memory_is_read_per_gpu() -> None:
    output = "1234\n80520\n"
    assert parse_memory_used(output) == 1234
    assert parse_memory_used(output, gpu=1) == 80520
    with pytest.raises(ValueError, match="GPU 2 is not among them"):
        parse_memory_used(output, gpu=2)


def test_table_lines_up_and_leaves_blanks() -> None:
    rows = [Row("RTF, one 1-min file", "sequential windows", 1.5, realtime_factor=0.025,
                gpu_memory_mib=2100),
            Row("16 files", "4 job(s) on one model", 20.0, jobs_per_minute=48.0,
                gpu_memory_mib=3900, note="n")]
    lines = format_table(rows).splitlines()
    assert len(lines) == 4
    assert "0.0250" in lines[2] and "2100" in lines[2]
    assert "48.0" in lines[3] and "3900" in lines[3] and lines[3].endswith("  n")
    header = lines[0]
    rtf_end = header.index("RTF") + len("RTF")
    assert lines[2][:rtf_end].endswith("0.0250")  # right-aligned under its header
    jobs_end = header.index("jobs/min") + len("jobs/min")
    assert lines[3][:jobs_end].endswith("48.0")
    assert lines[2][:jobs_end].strip().endswith("1.50")  # no jobs/min: blank
