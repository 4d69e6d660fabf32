#!/usr/bin/env python3
"""Set-up and run in one command, on a machine that has Python 3.11+ and nothing else.

    python3 run.py serve [--host 127.0.0.1] [--port 8000]   # the whole service
    python3 run.py test [pytest arguments]                   # the whole test suite
    python3 run.py lock                                      # refresh requirements/*.txt

Creates ``.venv`` beside this file, installs the project's dependencies into it from the lock
(``requirements/<set>.txt``: exact versions with hashes, made by ``run.py lock``) and the
project itself without dependencies, again only when the lock or ``pyproject.toml`` changed,
then runs ``voxhook serve`` or pytest from it. Standard library only: this file runs before
anything is installed.

Speaker diarization (pyannote.audio, on torch) is installed for the tests, and for ``serve``
when ``VOXHOOK_WITH_DIARIZATION=1``. On a machine without an NVIDIA GPU, set
``VOXHOOK_TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu`` to get torch's CPU build
(about 200 MB) instead of the CUDA build PyPI serves (several GB). docs/diarization.md says
why torchaudio needs the step in :func:`ensure_cpu_torchaudio`.
"""

from __future__ import annotations

import hashlib
import json
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
LOCKS = ROOT / "requirements"
#: Which lock each command installs (``requirements/<name>.txt``).
LOCK_OF = {"serve": "serve", "test": "test"}
if os.environ.get("VOXHOOK_WITH_DIARIZATION", "").lower() in {"1", "true", "yes", "on"}:
    LOCK_OF["serve"] = "serve-diarization"
#: Every lock ``run.py lock`` writes: its extras of pyproject.toml, and the torch build it pins
#: (None: no torch). The CPU build is what tests, CI, laptops and ``serve`` use; the CUDA build
#: (PyPI's default torch) is the GPU worker image's. All target Linux on x86_64, the platform
#: the project supports (docs/deployment.md#dependencies).
LOCK_SETS: dict[str, tuple[str, str | None]] = {
    "serve": ("postgres", None),
    "serve-diarization": ("postgres,diarization", "torch==2.13.0+cpu"),
    "api-image": ("postgres,s3", None),
    "worker-image": ("postgres,diarization,s3", "torch==2.13.0"),
    "test": ("test", "torch==2.13.0+cpu"),
}
#: The tool that writes the locks (the one pinned tool run.py installs outside a lock).
UV = "uv==0.13.9"
#: Where a CPU build of torch comes from when the package index pip is configured with has none.
TORCH_CPU_INDEX = os.environ.get("VOXHOOK_TORCH_INDEX_URL", "https://download.pytorch.org/whl/cpu")
#: The first line of every lock: a digest of what pyproject.toml asks for, so a stale lock is
#: noticed (tests/test_lock.py) and the environment reinstalled.
DIGEST_PREFIX = "# pyproject-digest: "
PIP_INSTALL = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
#: pytest: 5 means no test was collected.
PYTEST_NO_TESTS = 5


def pyproject_digest(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """A digest of the dependency tables of ``pyproject`` (what a lock is made from)."""
    import tomllib

    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = {"dependencies": project.get("dependencies", []),
              "optional-dependencies": project.get("optional-dependencies", {}),
              "requires-python": project.get("requires-python", ""), "sets": LOCK_SETS}
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()


def ensure_environment(lock_name: str) -> None:
    """Create the virtual environment and install the lock ``lock_name`` if needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py runs under any system Python
        sys.exit(f"Voxhook needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    lock = LOCKS / f"{lock_name}.txt"
    stamp = VENV / f".installed-{lock_name}"
    wanted = hashlib.sha256(lock.read_bytes()
                            + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and PYTHON.exists():
        return
    create_venv()
    if not lock.read_text().startswith(DIGEST_PREFIX + pyproject_digest()):
        print(f"warning: {lock.relative_to(ROOT)} was made from another pyproject.toml; "
              "run `python3 run.py lock` to refresh it.", file=sys.stderr)
    print(f"Installing Voxhook and its dependencies from {lock.relative_to(ROOT)} …",
          file=sys.stderr)
    subprocess.run([*PIP_INSTALL, "--upgrade", "pip"], check=True)
    install_lock = [*PIP_INSTALL, "--require-hashes", "--no-deps", "-r", str(lock)]
    if subprocess.run(install_lock).returncode != 0:
        # A CPU build of torch (a "+cpu" version) is on PyTorch's own index, not on PyPI.
        print(f"Trying again with {TORCH_CPU_INDEX} for torch's CPU build …", file=sys.stderr)
        subprocess.run([*install_lock, "--extra-index-url", TORCH_CPU_INDEX], check=True)
    subprocess.run([*PIP_INSTALL, "--no-deps", "-e", str(ROOT)], check=True)
    if "torch" in lock.read_text():
        ensure_cpu_torchaudio()
    stamp.write_text(wanted)


def create_venv() -> None:
    """Create ``.venv`` unless it is there."""
    if PYTHON.exists():
        return
    print(f"Creating a virtual environment in {VENV} …", file=sys.stderr)
    try:
        venv.EnvBuilder(with_pip=True).create(VENV)
    except Exception as exc:  # Debian without python3-venv has no ensurepip
        sys.exit(f"Could not create {VENV} ({exc}). On Debian/Ubuntu install the "
                 "python3-venv package, then run this again.")


def write_locks() -> int:
    """Resolve every set of :data:`LOCK_SETS` afresh into ``requirements/<name>.txt``."""
    create_venv()
    subprocess.run([*PIP_INSTALL, UV], check=True)
    LOCKS.mkdir(exist_ok=True)
    digest = pyproject_digest()
    for name, (extras, torch) in LOCK_SETS.items():
        target = LOCKS / f"{name}.txt"
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as override:
            override.write(f"{torch}; sys_platform == 'linux' and platform_machine == 'x86_64'"
                           if torch else "")
            override.flush()
            command = [str(BIN / "uv"), "pip", "compile", "pyproject.toml", "--quiet",
                       "--universal", "--python-version", "3.11", "--generate-hashes",
                       "--no-header", "--override", override.name, "-o", str(target),
                       *[f"--extra={extra}" for extra in extras.split(",")]]
            if torch and "+cpu" in torch:
                command += _torch_cpu_source()
            subprocess.run(command, cwd=ROOT, check=True)
        body = target.read_text()
        target.write_text(f"{DIGEST_PREFIX}{digest}\n# extras: {extras}; made by `python3 run.py "
                          f"lock` ({UV}); do not edit.\n{body}")
        print(f"wrote {target.relative_to(ROOT)}", file=sys.stderr)
    return 0


def _torch_cpu_source() -> list[str]:
    """uv's options to find torch's CPU build: a local wheel folder pip is configured with, if
    one holds it (machines without PyTorch's index), else PyTorch's CPU index."""
    configured = subprocess.run([str(PYTHON), "-m", "pip", "config", "get", "global.find-links"],
                                capture_output=True, text=True).stdout.split()
    for folder in configured:
        if list(Path(folder).glob("torch-*+cpu-*.whl")):
            return ["--find-links", folder]
    return ["--extra-index-url", TORCH_CPU_INDEX, "--index-strategy", "unsafe-best-match"]


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


def _venv_run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PYTHON), "-c", code], capture_output=True, text=True)


#: The browser the dashboard's and the offline docs' tests drive (Debian's package; Playwright's
#: own browser download cannot work offline).
CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium() -> None:
    """Install Debian's Chromium for the browser tests where this machine lets us (root with
    apt-get, as on CI); elsewhere say how, and those tests skip with that reason."""
    if CHROMIUM.exists():
        return
    apt = Path("/usr/bin/apt-get")
    if os.geteuid() != 0 or not apt.exists():
        print("Chromium is not installed, so the browser tests will be skipped. On Debian or "
              "Ubuntu: sudo apt-get install chromium", file=sys.stderr)
        return
    print("Installing Debian's chromium for the browser tests …", file=sys.stderr)
    quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([str(apt), "-qq", "update"], env=quiet, check=False)
    installed = subprocess.run([str(apt), "-qq", "install", "-y", "--no-install-recommends",
                                "chromium"], env=quiet, check=False).returncode == 0
    if not installed:
        print("Could not install chromium; the browser tests will be skipped.", file=sys.stderr)


def main(argv: list[str]) -> int:
    if argv[:1] == ["lock"]:
        return write_locks()
    if not argv or argv[0] not in LOCK_OF:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_environment(LOCK_OF[command])
    env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", "PYANNOTE_METRICS_ENABLED": "false"}
    if command == "serve":
        os.execve(str(BIN / "voxhook"), [str(BIN / "voxhook"), "serve", *rest], env)
    ensure_chromium()
    code = subprocess.run([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT, env=env).returncode
    if code == PYTEST_NO_TESTS:
        # A selection that matches nothing is the caller's choice; an empty suite is a fault.
        print("pytest collected no test.", file=sys.stderr)
        return 0 if rest else 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
