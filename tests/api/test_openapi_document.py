"""The OpenAPI document is byte for byte the one the API served before the layout move.

``tests/fixtures/openapi.json`` was generated from the flat ``app/`` (before issue 12 moved
modules into ``app/api``, ``app/transcriptions``, …) and pins the document across that move:
paths, schemas, descriptions, examples and their order. Moving or splitting modules must not
change a byte of it. When the API changes on purpose, regenerate the fixture and review its
diff with the change:

    .venv/bin/python -m tests.api.test_openapi_document
"""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path

from app import create_app
from app.config import Settings
from tests.support.paths import FIXTURES

FIXTURE = FIXTURES / "openapi.json"


def served_document(folder: Path) -> bytes:
    """The body of ``GET /openapi.json`` from an API with the default settings."""
    settings = Settings(data_dir=folder / "data", database_url=f"sqlite:///{folder}/v.db")
    return create_app(settings).test_client().get("/openapi.json").get_data()


def test_the_openapi_document_is_unchanged(tmp_path):
    served = served_document(tmp_path)
    pinned = FIXTURE.read_bytes()
    if served != pinned:
        diff = difflib.unified_diff(pinned.decode().splitlines(), served.decode().splitlines(),
                                    "tests/fixtures/openapi.json", "served", lineterm="", n=2)
        raise AssertionError("the OpenAPI document changed (regenerate the fixture only if "
                             "the API changed on purpose; see this module's docstring):\n"
                             + "\n".join(list(diff)[:80]))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        FIXTURE.write_bytes(served_document(Path(folder)))
    print(f"wrote {FIXTURE}")
