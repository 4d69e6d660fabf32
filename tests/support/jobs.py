"""RQ job functions for tests of the worker runtime (deadlines and heartbeats).

Enqueued by dotted path (``tests.support.jobs.<name>``) and run by a real
``worker.main.TranscriptionWorker`` in a subprocess started from the repository root.
"""

from __future__ import annotations

import time

from worker.deadline import extend_deadline


def sleep_extended(extend_to_s: int, sleep_s: float) -> str:
    """Move the job's deadline to ``extend_to_s`` seconds from now, then sleep; "done".

    Raises if there was no deadline to extend (the job did not run under the worker's
    ExtendableDeathPenalty), so a silent no-op cannot pass for an extension.
    """
    if not extend_deadline(extend_to_s):
        raise RuntimeError("extend_deadline found no running timed job")
    time.sleep(sleep_s)
    return "done"


def sleep_plain(sleep_s: float) -> str:
    """Sleep under the job's original deadline; "done" if it was long enough."""
    time.sleep(sleep_s)
    return "done"
