"""The Make custom app and scenario blueprints (integrations/make), as far as anything can be
tested without a Make account.

Its TypeScript tests (run by the project's Node, which strips the types) check that every IML
JSON file validates against the JSON schemas written in integrations/make/schemas, replay every
request the connection, webhook, modules and blueprints describe against a live Voxhook with
sample values substituted, and compare outputs with the modules' interfaces and samples. Here,
``tsc`` type-checks those tests and every blueprint against the ``Blueprint`` type of Make's
own SDK package (``@makehq/sdk``). Make's IML runtime itself is not published and not tested.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integrations.conftest import LiveVoxhook, run_js_tests
from tests.support.node import REPO, npm_ci, run_on_node

MAKE_APP = REPO / "integrations" / "make"
TYPECHECK = MAKE_APP / ".typecheck"


@pytest.fixture(scope="module")
def make_app() -> Path:
    """The app folder with its locked tool chain installed (npm ci, once per lock)."""
    npm_ci(MAKE_APP)
    return MAKE_APP


def write_blueprint_checks() -> list[Path]:
    """One TypeScript module per blueprint: the blueprint's JSON as a literal that must
    satisfy ``Blueprint`` (a literal, so misspelt or missing fields and wrong enum values are
    errors, which they would not be through a widened JSON import)."""
    shutil.rmtree(TYPECHECK, ignore_errors=True)
    TYPECHECK.mkdir()
    written = []
    for blueprint in sorted((MAKE_APP / "blueprints").glob("*.blueprint.json")):
        target = TYPECHECK / f"{blueprint.name.removesuffix('.blueprint.json')}.ts"
        literal = blueprint.read_text().rstrip()
        target.write_text("import type { Blueprint } from '@makehq/sdk';\n\n"
                          f"export const blueprint = {literal} satisfies Blueprint;\n")
        written.append(target)
    return written


def test_the_app_files_and_every_request_against_a_live_voxhook(make_app: Path,
                                                               live_voxhook: LiveVoxhook) -> None:
    output = run_js_tests(make_app, ["npm", "test"], live_voxhook.js_env())
    assert "\N{INFORMATION SOURCE} fail 0" in output, output[-3000:]


def test_blueprints_and_tests_type_check_against_makes_sdk(make_app: Path) -> None:
    written = write_blueprint_checks()
    assert len(written) == 4, written
    result = run_on_node(["npx", "--no-install", "tsc", "--noEmit", "-p", "."], make_app)
    assert result.returncode == 0, result.stdout[-6000:]


def test_the_type_check_catches_a_broken_blueprint(make_app: Path) -> None:
    """The check has teeth: a blueprint whose scheduling type Make does not know fails."""
    write_blueprint_checks()
    broken = TYPECHECK / "receive-transcript.ts"
    broken.write_text(broken.read_text().replace('"type": "immediately"', '"type": "hourly"', 1))
    try:
        result = run_on_node(["npx", "--no-install", "tsc", "--noEmit", "-p", "."], make_app)
    finally:
        shutil.rmtree(TYPECHECK, ignore_errors=True)
    assert result.returncode != 0
    assert "receive-transcript.ts" in result.stdout and '"hourly"' in result.stdout, result.stdout
