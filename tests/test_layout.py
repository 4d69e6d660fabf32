"""The tree's shape holds: imports point one way and nothing imports in a circle.

- The API never loads the speech pipeline; the pipeline never loads Flask.
- ``app/api`` (the HTTP face) → the domains (``app/transcriptions``, ``app/billing``,
  ``app/media``, ``app/webhooks``) → ``app/store``; ``app/config`` and ``app/errors`` are
  shared by all and import none of them. A domain never imports ``app/api``; the worker imports
  domains and store, never ``app/api`` nor ``app/ops``.
- No import cycle anywhere in ``app/`` and ``worker/``, counting imports inside functions and
  under ``TYPE_CHECKING`` (a lazy import hides a knot, it does not untie it).

The graph is read from the source with :mod:`ast`, so a rule breaks in the test that names the
file and the import, before anything runs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEECH_MODULES = ("worker", "faster_whisper", "ctranslate2", "torch", "pyannote", "av",
                  "onnxruntime")
FLASK_MODULES = {"flask", "flask_smorest", "werkzeug"}
PACKAGES = ("app", "worker")
#: Alembic's scripts are loaded by path, not imported; they may read the models only.
MIGRATIONS = REPO / "app" / "store" / "migrations"
DOMAINS = ("app.observability", "app.transcriptions", "app.billing", "app.media", "app.webhooks")


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


def module_name(path: Path, root: Path = REPO) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path = REPO) -> dict[str, Path]:
    """Every importable module of ``app`` and ``worker`` (the migrations are scripts)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if not path.is_relative_to(root / "app" / "store" / "migrations"):
                modules[module_name(path, root)] = path
    return modules


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of ours (``app.x.y.Class`` -> ``app.x.y``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imports_of(path: Path, name: str, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(module of ours it imports, line) for every import in ``path``, wherever it stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, modules)
                if target:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from app.billing import wallet` imports app.billing.wallet
                target = _known(f"{base}.{alias.name}", modules) or _known(base, modules)
                if target:
                    yield target, node.lineno


def import_graph(root: Path = REPO) -> dict[str, dict[str, int]]:
    """module -> {module it imports: first line}, our modules only, self-imports left out."""
    modules = project_modules(root)
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, path in modules.items():
        for target, line in imports_of(path, name, modules):
            if target != name:
                graph[name].setdefault(target, line)
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (an iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        state[start] = 1
        stack = [iter(sorted(graph[start]))]
        while stack:
            target = next(stack[-1], None)
            if target is None:
                stack.pop()
                state[path.pop()] = 2
                continue
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if not state.get(target):
                state[target] = 1
                path.append(target)
                stack.append(iter(sorted(graph[target])))
    return None


def layer(module: str) -> str:
    if module in ("app.config", "app.errors"):
        return "shared"
    for prefix, name in (("app.api", "api"), ("app.store", "store"), ("app.ops", "ops"),
                         ("worker", "worker")):
        if module == prefix or module.startswith(prefix + "."):
            return name
    if any(module == domain or module.startswith(domain + ".") for domain in DOMAINS):
        return "domain"
    return "entry"  # app (the factory), app.wsgi, app.__main__


#: What each layer may import (besides itself). Downwards only: api → domain → store → shared.
ALLOWED = {
    "shared": {"shared"},
    "store": {"store", "shared"},
    "domain": {"domain", "store", "shared"},
    "api": {"api", "domain", "store", "shared"},
    "worker": {"worker", "domain", "store", "shared"},
    "ops": {"ops", "entry", "api", "domain", "store", "shared", "worker"},
    "entry": {"entry", "ops", "api", "domain", "store", "shared"},
}


def layer_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    return [f"{source} (line {line}) imports {target}: {layer(source)} may not import "
            f"{layer(target)}"
            for source, targets in sorted(graph.items())
            for target, line in sorted(targets.items())
            if layer(target) not in ALLOWED[layer(source)]]


# --------------------------------------------------------------------------- the rules


def test_app_does_not_import_the_speech_stack():
    for path, names in imported_modules("app").items():
        offending = names & set(SPEECH_MODULES)
        if path.relative_to(REPO).parts == ("app", "ops", "cli.py"):
            offending -= {"worker"}  # `voxhook worker` starts the worker, lazily
        assert not offending, f"{path} imports {offending}"


def test_worker_does_not_import_flask():
    for path, names in imported_modules("worker").items():
        assert not names & FLASK_MODULES, f"{path} imports Flask"


def test_domains_store_and_shared_modules_do_not_import_flask():
    for path, names in imported_modules("app").items():
        if layer(module_name(path)) in ("domain", "store", "shared"):
            assert not names & FLASK_MODULES, f"{path} imports Flask: it belongs in app/api"


def test_imports_point_one_way():
    violations = layer_violations(import_graph())
    assert not violations, "imports against the layering:\n" + "\n".join(violations)


def test_no_import_cycle_in_app_or_worker():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_import_of_ours_names_a_module_that_exists():
    """A stale name (``app.wallet`` after the move) must fail here: an editable install of
    another checkout can still satisfy it at run time and hide the mistake."""
    modules = project_modules()
    stale = []
    for folder in (*PACKAGES, "tests", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                stale += [f"{path.relative_to(REPO)}:{node.lineno} imports {name}"
                          for name in names
                          if name.split(".")[0] in PACKAGES and name not in modules]
    assert not stale, "imports of modules that do not exist:\n" + "\n".join(stale)


def test_migrations_read_only_the_store():
    for path in MIGRATIONS.rglob("*.py"):
        ours = {name for name in imported_modules_of(path) if name.split(".")[0] in PACKAGES}
        assert all(name.startswith("app.store") for name in ours), f"{path} imports {ours}"


def imported_modules_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_loading_the_wsgi_app_loads_no_speech_module(tmp_path):
    code = ("import sys, app.wsgi; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SPEECH_MODULES!r}))")
    env = {"VOXHOOK_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the checker


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in PACKAGES:
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").touch()
    return root


def test_the_checker_finds_a_cycle_even_through_a_lazy_import(tmp_path):
    root = _tree(tmp_path, {
        "app/billing/__init__.py": "",
        "app/billing/wallet.py": "from app.billing.money import format_usd\n",
        "app/billing/money.py": "def f():\n    from app.billing import wallet\n",
        "app/billing/pricing.py": "from app.billing.money import format_usd\n",
    })
    assert find_cycle(import_graph(root)) == ["app.billing.money", "app.billing.wallet",
                                              "app.billing.money"]


def test_the_checker_finds_relative_and_package_level_imports(tmp_path):
    root = _tree(tmp_path, {
        "app/media/__init__.py": "from .storage import factory\n",
        "app/media/storage.py": "from . import sweep\n",
        "app/media/sweep.py": "import app.media\n",
    })
    graph = import_graph(root)
    assert graph["app.media"] == {"app.media.storage": 1}
    assert graph["app.media.storage"] == {"app.media.sweep": 1}
    assert find_cycle(graph) == ["app.media", "app.media.storage", "app.media.sweep",
                                 "app.media"]


def test_the_checker_refuses_a_domain_that_imports_the_api(tmp_path):
    root = _tree(tmp_path, {
        "app/api/__init__.py": "", "app/api/auth.py": "",
        "app/store/__init__.py": "", "app/store/models.py": "",
        "app/media/__init__.py": "",
        "app/media/uploads.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                 "    from app.api.auth import Caller\n"
                                 "from app.store.models import Upload\n"),
        "worker/jobs.py": "from app.api import auth\n",
    })
    assert layer_violations(import_graph(root)) == [
        "app.media.uploads (line 3) imports app.api.auth: domain may not import api",
        "worker.jobs (line 1) imports app.api.auth: worker may not import api",
    ]
