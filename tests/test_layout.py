"""One-way imports: the API never loads the speech pipeline; the pipeline never loads Flask."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEECH_MODULES = ("worker", "faster_whisper", "ctranslate2", "torch", "pyannote", "av",
                  "onnxruntime")


def imported_modules(package: str) -> dict[Path, set[str]]:
    found: dict[Path, set[str]] = {}
    for path in (REPO / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[path] = names
    return found


def test_app_does_not_import_the_speech_stack():
    for path, names in imported_modules("app").items():
        offending = names & set(SPEECH_MODULES)
        if path.name == "cli.py":  # `voxhook worker` starts the worker, lazily
            offending -= {"worker"}
        assert not offending, f"{path} imports {offending}"


def test_worker_does_not_import_flask():
    for path, names in imported_modules("worker").items():
        assert not names & {"flask", "flask_smorest", "werkzeug"}, f"{path} imports Flask"


def test_loading_the_wsgi_app_loads_no_speech_module(tmp_path):
    code = ("import sys, app.wsgi; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SPEECH_MODULES!r}))")
    env = {"VOXHOOK_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
