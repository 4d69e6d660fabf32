"""The API answers what its OpenAPI document says, under a schema-driven fuzzer.

schemathesis reads ``/openapi.json`` from a live stack (gunicorn API on SQLite, real Redis;
no worker, so transcriptions stay queued and can be cancelled, exported with a 409, deleted)
and runs every phase over every operation: the documented examples, the coverage phase
(boundaries and each kind of invalid value), random fuzzing, and the stateful phase, which
follows the document's links (create -> get, cancel, delete, export, deliveries; key ->
revoke; account -> top-up…). Customer operations carry a key, the admin operations the
admin token (per-operation headers in the generated config).

Checks: no 5xx (``not_a_server_error``); every answer's status, content type, headers and
body as documented (``status_code_conformance``, ``content_type_conformance``,
``response_headers_conformance``, ``response_schema_conformance``); data the document calls
invalid refused (``negative_data_rejection``); a deleted resource gone and a created one
there (``use_after_free``, ``ensure_resource_availability``). Any failure fails the test
with schemathesis' own report (printed in full either way).

Left out, on purpose:
- long ``?wait=N``: no worker ends anything here, so a valid wait would be held in full; the
  hooks (tests/api/schemathesis_hooks.py) send valid waits over 1 s as 1 s, invalid ones as
  generated; tests/api/test_wait.py proves what a long wait does. The hooks also leave out
  of multipart forms the nulls and empty lists a form cannot carry, and accept the 404 of
  GET /transcribe/{id} for a transcription deleted through its v1 path;
- ``positive_data_acceptance``: the document cannot express every rule a request meets
  (a URL's host must resolve to a public address, an upload_id must be one of the account's
  uploaded files, a webhook endpoint's host likewise), so valid-looking data is rightly
  refused with a 422 that names the field;
- the signed ``PUT /api/v1/uploads/{upload_id}/content`` and ``GET /internal/media/…`` are
  fuzzed like any operation, but only their refusals can be reached: a valid HMAC signature
  cannot be generated from the document (tests/api/test_uploads.py sends real ones).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance",
          "negative_data_rejection", "use_after_free", "ensure_resource_availability")
PHASES = ("examples", "coverage", "fuzzing", "stateful")
#: Bounds that keep the run to a few minutes on two cores. One schemathesis worker: with
#: several threads, hypothesis' lambda descriptions (ast.parse) trip CPython 3.11's
#: "AST constructor recursion depth mismatch".
MAX_EXAMPLES = int(os.environ.get("VOXHOOK_SCHEMATHESIS_EXAMPLES", "15"))
MAX_TIME_S = 200
#: The statuses that refuse invalid data: schemathesis' own list, plus 413, 414 and 431:
#: gunicorn's limits on the body, the request line and the headers (a query of long
#: ``analysis`` values is over 8 KiB before any schema sees it), answered in our JSON
#: (app/api/gunicorn_worker.py).
REFUSED = ("400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422",
           "428", "429", "431", "5xx")


#: Hooks the fuzzer loads: ``?wait`` bounded to 1 s (see the module's docstring).
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")


def _config(key: str, admin_token: str) -> str:
    """schemathesis.toml: the hooks, the key on every operation, the admin token on the
    admin API, the refusals of invalid data and /readyz's documented 503."""
    return f'''
hooks = "{HOOKS}"

[checks.negative_data_rejection]
expected-statuses = {json.dumps(list(REFUSED))}

[headers]
Authorization = "Bearer {key}"

[[operations]]
include-path-regex = "^/api/v1/admin/"
headers = {{ Authorization = "Bearer {admin_token}" }}

# Not ready (no worker runs here) is a 503, as documented: that is /readyz's job.
[[operations]]
include-path = "/readyz"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
'''


def test_the_api_keeps_its_openapi_contract(tmp_path: Path, redis_server, pipelines_file):
    admin_token = secrets.token_hex(32)
    with running_stack(tmp_path, redis_server.url, pipelines_file, workers=0, api_workers=2,
                       extra_env={"VOXHOOK_ADMIN_TOKEN": admin_token}) as stack:
        key = stack.create_key("schemathesis")
        config = tmp_path / "schemathesis.toml"
        config.write_text(_config(key, admin_token))
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
            "--no-color", "run",
            f"{stack.base_url}/openapi.json",
            "--checks", ",".join(CHECKS), "--phases", ",".join(PHASES),
            "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_TIME_S),
            "--request-timeout", "30", "--seed", "11", "--workers", "1",
            "--suppress-health-check", "all",
            "--report-dir", str(tmp_path / "report"),
        ]
        run = subprocess.run(command, capture_output=True, text=True, timeout=540,
                             cwd=tmp_path)  # its cache of crashes stays out of the checkout
        api_log = stack.log("api")
    print(run.stdout[-20000:], run.stderr[-5000:])
    assert "Traceback" not in api_log, api_log[-5000:]
    assert run.returncode == 0, ("schemathesis found answers the document does not describe "
                                 f"(full report above):\n{run.stdout[-12000:]}")
