"""schemathesis hooks of tests/api/test_schemathesis.py (loaded by the fuzzer's process,
named in its config file).

- ``?wait=N`` (0 to 60) holds a GET until the transcription is final or N seconds pass; with
  no worker in the fuzzed stack, nothing ends, so every valid ``wait`` is held in full and
  one generated ``wait=42`` spends 42 s of a run bounded to a few minutes (and outlasts the
  request timeout). Valid waits above 1 s are sent as 1 s: the fuzzer still sends a valid
  ``wait`` (and gets the held answer) and every invalid one (negative, over 60, not a
  number) as generated. What a long wait does, answering as soon as the worker commits the
  end, is proven by tests/api/test_wait.py.
- A multipart form cannot carry a null or an empty list: the HTTP client sends no part for
  such a field, so the server never sees it. Those fields are taken out of the case before
  it is sent. A form generated as invalid whose fields are all valid as sent (the file
  part counted as the binary string it is) is valid data, and its acceptance is not
  reported: schemathesis never revalidates a body holding binary, so it would report
  "invalid data accepted" for a form the server rightly took.
- One transcription has two paths: after DELETE /api/v1/transcriptions/{id} (a link of
  both create operations), GET /transcribe/{id} rightly answers 404, but
  ``ensure_resource_availability`` only counts deletions under the GET's own path and
  reports "created resource not found". The hooks record the transcriptions deleted with a
  2xx and drop that failure for those only; any other missing transcription still fails.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.parameters import ParameterLocation
from schemathesis.openapi.checks import EnsureResourceAvailability
from schemathesis.transport.serialization import contains_binary

#: The longest wait the fuzzer sends, in seconds.
FUZZ_WAIT_S = 1
#: The largest valid ``wait`` (app.transcriptions.waiting.MAX_WAIT_S).
MAX_WAIT_S = 60
#: The v1 DELETE, which also removes the transcription's Quickstart path.
V1_DELETE = "/api/v1/transcriptions/{transcription_id}"
#: Transcriptions deleted with a 2xx during this run.
deleted_transcriptions: set[str] = set()


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Send a valid ``wait`` over :data:`FUZZ_WAIT_S` as :data:`FUZZ_WAIT_S`; leave out of a
    multipart form the fields it cannot carry."""
    if case.query and "wait" in case.query:
        wait = case.query["wait"]
        if isinstance(wait, str) and wait.isdigit():
            wait = int(wait)
        if (isinstance(wait, int) and not isinstance(wait, bool)
                and FUZZ_WAIT_S < wait <= MAX_WAIT_S):
            case.query["wait"] = FUZZ_WAIT_S
    if case.media_type == "multipart/form-data" and isinstance(case.body, dict):
        for name in [name for name, value in case.body.items() if value is None or value == []]:
            del case.body[name]


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Remember a transcription deleted through the v1 path."""
    if (case.method.upper() == "DELETE" and case.operation.path == V1_DELETE
            and 200 <= response.status_code < 300):
        deleted_transcriptions.add(str((case.path_parameters or {}).get("transcription_id")))


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but "created resource not found" for a deleted transcription and
    "invalid data accepted" for a multipart form that is valid as sent."""
    if isinstance(failure, EnsureResourceAvailability):
        transcription_id = str((case.path_parameters or {}).get("transcription_id"))
        return transcription_id not in deleted_transcriptions
    if isinstance(failure, AcceptedNegativeData):
        return not _form_is_valid_as_sent(case)
    return True


def _form_is_valid_as_sent(case: Any) -> bool:
    """A multipart case whose only invalid part was its body, and whose body, files read as
    the strings they are sent as, meets the form's schema."""
    meta = case.meta
    if case.media_type != "multipart/form-data" or not isinstance(case.body, dict) or meta is None:
        return False
    if any(meta.is_negative_at(location) for location in meta.components
           if location != ParameterLocation.BODY):
        return False
    sent = {name: "" if contains_binary(value) else value for name, value in case.body.items()}
    validator = case.operation.schema.adapter.jsonschema_validator_cls
    return case._validate_component(ParameterLocation.BODY, sent, validator)
