"""The Zapier app (integrations/zapier) in Zapier's own runtime, against a live Voxhook.

Its JavaScript tests run zapier-platform-core's app tester (and the handler it wraps) on the
project's Node: connecting, the REST-hook triggers with real signed deliveries to loopback
receivers, Transcribe Audio from a URL and from a file resumed by the real callback POST,
Export Captions stashed through a local stand-in for Zapier's file storage, Cancel, Find and
Voxhook's errors as Zapier errors. ``zapier-platform validate`` checks the app definition
against Zapier's schema (offline; the style check needs Zapier's servers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integrations.conftest import LiveVoxhook, run_js_tests
from tests.support.node import REPO, npm_ci, run_on_node

ZAPIER_APP = REPO / "integrations" / "zapier"


@pytest.fixture(scope="module")
def zapier_app() -> Path:
    """The app with its locked dependencies installed (npm ci, once per lock)."""
    npm_ci(ZAPIER_APP)
    return ZAPIER_APP


def test_the_app_in_zapiers_runtime_against_a_live_voxhook(zapier_app: Path,
                                                          live_voxhook: LiveVoxhook) -> None:
    output = run_js_tests(zapier_app, ["npm", "test"],
                          live_voxhook.js_env())
    assert "\N{INFORMATION SOURCE} fail 0" in output, output[-3000:]


def test_zapier_validate_accepts_the_app_definition(zapier_app: Path) -> None:
    result = run_on_node(["npx", "--no-install", "zapier-platform", "validate", "--without-style"],
                         zapier_app, timeout_s=300)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "No structural errors found" in result.stdout, result.stdout[-6000:]


def test_the_apps_javascript_is_eslint_clean(zapier_app: Path) -> None:
    result = run_on_node(["npx", "--no-install", "eslint", "."], zapier_app, timeout_s=300)
    assert result.returncode == 0, result.stdout[-6000:]
