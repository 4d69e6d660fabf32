"""OpenAI's official npm SDK against the live Voxhook: one round trip (transcription in
verbose_json with words, the model list, a bad key raising AuthenticationError), run by
node's test runner from tests/js/openai-roundtrip (installed from its lock)."""

from __future__ import annotations

from tests.integrations.conftest import LiveVoxhook, run_js_tests
from tests.support.node import REPO, npm_ci

FOLDER = REPO / "tests" / "js" / "openai-roundtrip"


def test_openai_npm_sdk_round_trip(live_voxhook: LiveVoxhook) -> None:
    npm_ci(FOLDER)
    output = run_js_tests(FOLDER, ["npm", "test"], live_voxhook.js_env(), timeout_s=300)
    assert "pass 3" in output and "fail 0" in output
