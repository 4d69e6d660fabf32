"""The integrations' harness itself: the project's Node reaches the live Voxhook with the key
it is handed, and a wrong key is refused, so an integration's failure is its own."""

from __future__ import annotations

from tests.integrations.conftest import LiveVoxhook
from tests.support.node import REPO, run_on_node

PROBE = """
const base = process.env.VOXHOOK_BASE_URL;
const me = await fetch(`${base}/api/v1/me`, {
  headers: {Authorization: `Bearer ${process.env.VOXHOOK_API_KEY}`}});
const wrong = await fetch(`${base}/api/v1/me`, {headers: {Authorization: 'Bearer sk_live_x'}});
console.log(JSON.stringify({node: process.versions.node, me: me.status, wrong: wrong.status,
                            account: (await me.json()).account?.name}));
"""


def test_the_projects_node_reaches_the_live_service(live_voxhook: LiveVoxhook) -> None:
    result = run_on_node(["node", "--input-type=module", "-e", PROBE], REPO,
                         live_voxhook.js_env())
    assert result.returncode == 0, result.stdout
    line = result.stdout.strip().splitlines()[-1]
    assert '"node":"24.' in line and '"me":200' in line and '"wrong":401' in line, line
