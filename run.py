#!/usr/bin/env python3
"""Set-up and run in one command, on a machine that has Python 3.11+ and nothing else.

    python3 run.py serve [--host 127.0.0.1] [--port 8000]   # the whole service
    python3 run.py test [pytest arguments]                   # the whole test suite

Creates ``.venv`` beside this file, installs the project into it (again only when
``pyproject.toml`` changed), then runs ``voxhook serve`` or pytest from it. Standard library
only: this file runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
EXTRAS = {"serve": "postgres", "test": "test"}
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
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[{extras}]"], check=True)
    stamp.write_text(wanted)


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
