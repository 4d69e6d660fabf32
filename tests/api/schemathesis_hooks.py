"""schemathesis hooks of tests/api/test_schemathesis.py (loaded by the fuzzer's process,
named in its config file).

``?wait=N`` (0 to 60) holds a GET until the transcription is final or N seconds pass; with no
worker in the fuzzed stack, nothing ends, so every valid ``wait`` is held in full and one
generated ``wait=42`` spends 42 s of a run bounded to a few minutes (and outlasts the
request timeout). Valid waits above 1 s are sent as 1 s: the fuzzer still sends a valid
``wait`` (and gets the held answer, documented like an immediate one) and every invalid one
(negative, over 60, not a number) as generated. What a long wait does, answering as soon as
the worker commits the end, is proven by tests/api/test_wait.py.
"""

from __future__ import annotations

from typing import Any

import schemathesis

#: The longest wait the fuzzer sends, in seconds.
FUZZ_WAIT_S = 1
#: The largest valid ``wait`` (app.transcriptions.waiting.MAX_WAIT_S).
MAX_WAIT_S = 60


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Send a valid ``wait`` over :data:`FUZZ_WAIT_S` as :data:`FUZZ_WAIT_S`."""
    if not case.query or "wait" not in case.query:
        return
    wait = case.query["wait"]
    if isinstance(wait, str) and wait.isdigit():
        wait = int(wait)
    if isinstance(wait, int) and not isinstance(wait, bool) and FUZZ_WAIT_S < wait <= MAX_WAIT_S:
        case.query["wait"] = FUZZ_WAIT_S
