#!/usr/bin/env python3
"""Set-up and run in one command, on a machine that has Python 3.11+ and nothing else.

    python3 run.py serve [--host 127.0.0.1] [--port 8000]   # the whole service
    python3 run.py test [pytest arguments]                   # the whole test suite

Creates ``.venv`` beside this file, installs the project into it (again only when
``pyproject.toml`` changed), then runs ``voxhook serve`` or pytest from it. Standard library
only: this file runs before anything is installed.

Speaker diarization (pyannote.audio, on torch) is installed for the tests, and for ``serve``
when ``VOXHOOK_WITH_DIARIZATION=1``. On a machine without an NVIDIA GPU, set
``VOXHOOK_TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu`` to get torch's CPU build
(about 200 MB) instead of the CUDA build PyPI serves (several GB). docs/diarization.md says
why torchaudio needs the step in :func:`ensure_cpu_torchaudio`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
EXTRAS = {"serve": "postgres", "test": "test"}
if os.environ.get("VOXHOOK_WITH_DIARIZATION", "").lower() in {"1", "true", "yes", "on"}:
    EXTRAS["serve"] = "postgres,diarization"
#: The torch release installed before anything that depends on torch, so that pip does not
#: pick the newest (CUDA) build from PyPI for a CPU machine. A CPU build of this release is
#: on PyTorch's CPU index; the GPU image pins its own (docker/Dockerfile).
TORCH_VERSION = "2.13.0"
PIP_INSTALL = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
#: pytest: 5 means no test was collected.
PYTEST_NO_TESTS = 5


def ensure_environment(extras: str) -> None:
    """Create the virtual environment and install the project with ``extras`` if needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py runs under any system Python
        sys.exit(f"Voxhook needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    stamp = VENV / f".installed-{extras}"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"Creating a virtual environment in {VENV} …", file=sys.stderr)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as exc:  # Debian without python3-venv has no ensurepip
            sys.exit(f"Could not create {VENV} ({exc}). On Debian/Ubuntu install the "
                     "python3-venv package, then run this again.")
    print(f"Installing Voxhook and its dependencies ({extras}) …", file=sys.stderr)
    subprocess.run([*PIP_INSTALL, "--upgrade", "pip"], check=True)
    with_diarization = extras == "test" or "diarization" in extras.split(",")
    if with_diarization:
        ensure_torch()
    subprocess.run([*PIP_INSTALL, "-e", f"{ROOT}[{extras}]"], check=True)
    if with_diarization:
        ensure_cpu_torchaudio()
    stamp.write_text(wanted)


def ensure_torch() -> None:
    """Install :data:`TORCH_VERSION` unless some torch is already there (a GPU build stays)."""
    if _venv_imports("torch"):
        return
    index = os.environ.get("VOXHOOK_TORCH_INDEX_URL")
    extra = ["--extra-index-url", index] if index else []
    print(f"Installing torch {TORCH_VERSION} {'from ' + index if index else ''}…",
          file=sys.stderr)
    subprocess.run([*PIP_INSTALL, *extra, f"torch=={TORCH_VERSION}"], check=True)


def ensure_cpu_torchaudio() -> None:
    """Make ``import torchaudio`` work next to a torch that its compiled extension does not fit.

    PyPI's torchaudio wheels carry an extension linked against CUDA torch of one release;
    next to a CPU torch (or another release) ``import torchaudio`` fails while loading it,
    and pyannote.audio imports torchaudio. What pyannote uses of torchaudio (Kaldi filter
    banks, resampling, MFCC) is plain Python on torch, and torchaudio runs without its
    extension when the library files are absent. So, only when the import fails that way,
    the same torchaudio release is reinstalled from its wheel minus ``torchaudio/lib/*.so``.
    """
    probe = _venv_run("import torchaudio")
    if probe.returncode == 0:
        return
    if "Could not load this library" not in probe.stderr:
        sys.exit(f"torchaudio does not import:\n{probe.stderr}")
    version = _venv_run("import importlib.metadata as m; print(m.version('torchaudio'))")
    release = version.stdout.strip()
    print(f"torchaudio {release} was built for another torch; installing it without its "
          "compiled extension (see docs/diarization.md) …", file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        downloaded = Path(scratch) / "downloaded"
        subprocess.run([str(PYTHON), "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "-d", str(downloaded), f"torchaudio=={release}"],
                       check=True)
        (wheel,) = downloaded.glob("torchaudio-*.whl")
        rebuilt = Path(scratch) / wheel.name
        _copy_wheel_without_extension(wheel, rebuilt)
        subprocess.run([*PIP_INSTALL, "--no-deps", "--force-reinstall", str(rebuilt)],
                       check=True)
    probe = _venv_run("import torchaudio.compliance.kaldi")
    if probe.returncode != 0:
        sys.exit(f"torchaudio still does not import:\n{probe.stderr}")


def _copy_wheel_without_extension(source: Path, target: Path) -> None:
    """Copy a torchaudio wheel, leaving out ``torchaudio/lib/*.so`` and their RECORD lines."""
    def is_extension(name: str) -> bool:
        return name.startswith("torchaudio/lib/") and ".so" in name

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w",
                                                          zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            if is_extension(item.filename):
                continue
            data = old.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines(keepends=True)
                data = "".join(line for line in lines
                               if not is_extension(line.split(",", 1)[0])).encode()
            new.writestr(item, data)


def _venv_imports(module: str) -> bool:
    return PYTHON.exists() and _venv_run(f"import {module}").returncode == 0


def _venv_run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PYTHON), "-c", code], capture_output=True, text=True)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXTRAS:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_environment(EXTRAS[command])
    env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", "PYANNOTE_METRICS_ENABLED": "false"}
    if command == "serve":
        os.execve(str(BIN / "voxhook"), [str(BIN / "voxhook"), "serve", *rest], env)
    code = subprocess.run([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT, env=env).returncode
    if code == PYTEST_NO_TESTS:
        # A selection that matches nothing is the caller's choice; an empty suite is a fault.
        print("pytest collected no test.", file=sys.stderr)
        return 0 if rest else 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
