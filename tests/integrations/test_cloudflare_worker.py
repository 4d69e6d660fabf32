"""The Cloudflare Worker (integrations/cloudflare-worker): its tests inside workerd against the
live Voxhook, its types and lint, and the bundle ``wrangler deploy`` would upload.

The JavaScript tests start the Worker from its own ``wrangler.jsonc`` with wrangler's test
harness (workerd listening on a loopback port, so Voxhook's webhook worker can deliver to
it for real) and point it at the session's Voxhook; see that folder's README.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integrations.conftest import LiveVoxhook, run_js_tests
from tests.support.node import REPO, npm_ci

FOLDER = REPO / "integrations" / "cloudflare-worker"
#: Nothing leaves the machine at test time: no wrangler metrics, no Request.cf lookup.
OFFLINE = {"WRANGLER_SEND_METRICS": "false", "CLOUDFLARE_CF_FETCH_ENABLED": "false"}
#: The JavaScript tests there are (edge 6, rate limits 1, origin down 4, relay 4, live 6,
#: example 1): fewer passing means a file was not picked up.
MIN_JS_TESTS = 22


@pytest.fixture(scope="module")
def worker_folder() -> Path:
    """The Worker's packages, installed from its package-lock.json."""
    npm_ci(FOLDER)
    return FOLDER


def test_worker_in_workerd_against_live_voxhook(live_voxhook: LiveVoxhook,
                                                worker_folder: Path) -> None:
    output = run_js_tests(worker_folder, ["npm", "test"], live_voxhook.js_env(**OFFLINE))
    # Every test file was found and ran (a glob that matched nothing would pass vacuously).
    passed = re.search(r"\bpass (\d+)", output)
    assert passed and int(passed[1]) >= MIN_JS_TESTS and re.search(r"\bfail 0\b", output), \
        output[-3000:]


def test_typescript_strict_and_eslint_clean(worker_folder: Path) -> None:
    run_js_tests(worker_folder, ["npm", "run", "check"], OFFLINE)


def test_wrangler_deploy_dry_run_builds(worker_folder: Path, tmp_path: Path) -> None:
    output = run_js_tests(worker_folder, ["npx", "wrangler", "deploy", "--dry-run",
                                          "--outdir", str(tmp_path)], OFFLINE)
    bundle = (tmp_path / "index.js").read_text()
    assert "edge_misconfigured" in bundle and "FixedLengthStream" in bundle
    for binding in ("CALLER_RATE_LIMIT", "VOXHOOK_ORIGIN", "ALLOWED_ORIGINS",
                    "DEFAULT_MAX_UPLOAD_BYTES", "ORIGIN_TIMEOUT_MS", "RATE_LIMIT_PERIOD_S",
                    "WEBHOOK_FORWARD_URL"):
        assert f"env.{binding}" in output, f"{binding} missing from the deployed bindings"
    assert "sk_live_" not in bundle
