"""Job deadlines that grow with the audio.

A job is enqueued before anyone knows how long its audio is, so it starts under a base
timeout. Once decoded, :func:`extend_deadline` moves the alarm to an allowance that grows
with the audio's length, and raises the job's heartbeat TTL with it so RQ does not take a long
job for abandoned. Works with RQ's SIGALRM death penalty, which runs in the worker's main
thread (the SimpleWorker runs jobs there).
"""

from __future__ import annotations

import logging
import signal
from typing import ClassVar

from rq import get_current_job
from rq.timeouts import UnixSignalDeathPenalty

log = logging.getLogger(__name__)


class ExtendableDeathPenalty(UnixSignalDeathPenalty):
    """RQ's SIGALRM timeout, which the running job can push further away."""

    active: ClassVar[ExtendableDeathPenalty | None] = None

    def setup_death_penalty(self) -> None:
        super().setup_death_penalty()
        ExtendableDeathPenalty.active = self

    def cancel_death_penalty(self) -> None:
        ExtendableDeathPenalty.active = None
        super().cancel_death_penalty()

    def extend(self, seconds: int) -> None:
        self._timeout = seconds
        signal.alarm(seconds)


def extend_deadline(seconds_from_now: int) -> bool:
    """Give the running job ``seconds_from_now`` more seconds; False outside a timed job."""
    penalty = ExtendableDeathPenalty.active
    if penalty is None:
        return False
    penalty.extend(seconds_from_now)
    job = get_current_job()
    if job is not None:
        job.timeout = seconds_from_now  # the worker's heartbeat TTL is derived from it
    log.info("job deadline set to %d s from now", seconds_from_now)
    return True
