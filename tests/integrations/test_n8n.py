"""n8n-nodes-voxhook (``integrations/n8n``): built and linted with n8n's own node CLI, its
nodes run in n8n's execution engine against the live Voxhook, and an end-to-end run in a
real n8n from npm (installed once per lock into a cache outside the clone).

Each part prints its time (``-s``, or the captured output of a failure): the package
install, build, lint, the engine tests, the n8n install and the end-to-end run.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integrations.conftest import LiveVoxhook, run_js_tests
from tests.support.node import REPO, npm_ci, npm_ci_cached, run_on_node

PACKAGE = REPO / "integrations" / "n8n"
E2E_RUNTIME = PACKAGE / "e2e-runtime"


@contextmanager
def timed(what: str) -> Iterator[None]:
    """Print how long ``what`` took (the issue asks for each part's time)."""
    started = time.monotonic()
    yield
    print(f"[n8n timing] {what}: {time.monotonic() - started:.1f} s")


@pytest.fixture(scope="module")
def n8n_package() -> Path:
    """The package's dev dependencies (n8n's node CLI, n8n-core, n8n-workflow) from its lock,
    and its build (``dist/``), which every test here uses."""
    with timed("npm ci of integrations/n8n (skipped when its lock is installed)"):
        npm_ci(PACKAGE)
    with timed("n8n-node build"):
        result = run_on_node(["npx", "n8n-node", "build"], PACKAGE, timeout_s=300)
    assert result.returncode == 0, result.stdout[-4000:]
    return PACKAGE


@pytest.fixture(scope="module")
def n8n_runtime() -> Path:
    """A real n8n from npm, from ``e2e-runtime``'s lock, in the install cache (~4-6 min the
    first time on a machine, nothing after)."""
    with timed("n8n install (cached per lock)"):
        return npm_ci_cached(E2E_RUNTIME, "n8n", rebuild=["sqlite3"])


@pytest.mark.timeout(900)
def test_the_package_builds_what_its_manifest_declares(n8n_package: Path) -> None:
    manifest = json.loads((n8n_package / "package.json").read_text())
    assert manifest["n8n"]["strict"] is True
    assert manifest["license"] == "MIT"
    assert "n8n-community-node-package" in manifest["keywords"]
    assert not manifest.get("dependencies"), "a community node ships no runtime dependencies"
    for built in manifest["n8n"]["credentials"] + manifest["n8n"]["nodes"]:
        assert (n8n_package / built).is_file(), f"{built} is declared but not built"
    assert (n8n_package / "dist" / "icons" / "voxhook.svg").is_file()


@pytest.mark.timeout(900)
def test_n8n_node_lint_passes_without_warnings(n8n_package: Path) -> None:
    with timed("n8n-node lint"):
        result = run_on_node(["npx", "n8n-node", "lint"], n8n_package, timeout_s=300)
    problems = re.findall(r"^\s*\d+:\d+\s+(?:error|warning)\s.*$", result.stdout, re.MULTILINE)
    assert result.returncode == 0 and not problems, result.stdout[-6000:]


def test_every_recipe_is_documented_in_the_readme() -> None:
    readme = (PACKAGE / "README.md").read_text()
    recipes = sorted((PACKAGE / "workflows").glob("*.json"))
    assert len(recipes) >= 3
    for recipe in recipes:
        workflow = json.loads(recipe.read_text())
        assert f"workflows/{recipe.name}" in readme, f"{recipe.name} has no section in the README"
        assert workflow["nodes"] and workflow["connections"], recipe.name


@pytest.mark.timeout(900)
def test_nodes_in_n8ns_execution_engine(live_voxhook: LiveVoxhook, n8n_package: Path) -> None:
    """``test/engine/*.test.mjs``: workflows through n8n-core's WorkflowExecute."""
    with timed("engine tests (npm test)"):
        run_js_tests(n8n_package, ["npm", "test"], live_voxhook.js_env())


@pytest.mark.timeout(2400)
def test_end_to_end_in_a_real_n8n(live_voxhook: LiveVoxhook, n8n_package: Path,
                                  n8n_runtime: Path) -> None:
    """``test/e2e/*.test.mjs``: ``n8n start`` with the packed package installed."""
    with timed("real n8n end to end (npm run test:e2e)"):
        run_js_tests(n8n_package, ["npm", "run", "test:e2e"],
                     live_voxhook.js_env(N8N_RUNTIME=str(n8n_runtime)), timeout_s=1200)
