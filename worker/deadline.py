"""Job deadlines that grow with the audio, for one job per worker or several at once.

A job is enqueued before anyone knows how long its audio is, so it starts under a base
timeout. Once decoded, :func:`extend_deadline` moves the deadline to an allowance that grows
with the audio's length, and raises the job's heartbeat TTL with it so RQ does not take a long
job for abandoned.

Two clocks keep the deadline. A worker that runs one job at a time runs it in its main thread
under RQ's SIGALRM timeout (:class:`ExtendableDeathPenalty`). A worker that runs several jobs
at once runs each in its own thread, where SIGALRM cannot reach (a process has one alarm, and
only the main thread receives signals); there a watchdog timer raises the timeout in the job's
own thread (:class:`WatchdogDeathPenalty`). Either way the deadline belongs to one job: the
penalty guarding the job running in *this* thread is the one :func:`extend_deadline` moves.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import threading

from rq import get_current_job
from rq.timeouts import BaseDeathPenalty, JobTimeoutException, UnixSignalDeathPenalty

log = logging.getLogger(__name__)

#: The penalty guarding the job that runs in the current thread (attribute ``penalty``).
_guarding = threading.local()


def raise_in_thread(thread_id: int, exception: type[BaseException]) -> bool:
    """Raise ``exception`` in another thread the next time it runs Python code; whether
    that thread exists. (A thread inside a long C call, a model's forward pass, notices when
    the call returns, as a SIGALRM handler would.)"""
    changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                                         ctypes.py_object(exception))
    if changed > 1:  # never expected: undo rather than hit several threads
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
    return changed == 1


class ExtendableDeathPenalty(UnixSignalDeathPenalty):
    """RQ's SIGALRM timeout, which the running job can push further away (main thread)."""

    def setup_death_penalty(self) -> None:
        super().setup_death_penalty()
        _guarding.penalty = self

    def cancel_death_penalty(self) -> None:
        _guarding.penalty = None
        super().cancel_death_penalty()

    def extend(self, seconds: int) -> None:
        self._timeout = seconds
        signal.alarm(seconds)


class JobDeadlineExceeded(JobTimeoutException):
    """RQ's timeout, raised by the watchdog (an asynchronous exception carries no text)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("the job ran past its deadline",)))


class WatchdogDeathPenalty(BaseDeathPenalty):
    """A job's timeout kept by a timer thread, for jobs that run outside the main thread.

    Created by RQ in the thread that then runs the job (``perform_job``), so that thread is
    the one the timer raises :class:`JobDeadlineExceeded` in.
    """

    def __init__(self, timeout: int, exception: type[BaseException] = JobTimeoutException,
                 **kwargs: object) -> None:
        super().__init__(timeout, exception, **kwargs)
        self._thread_id = threading.get_ident()
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def setup_death_penalty(self) -> None:
        _guarding.penalty = self
        self._arm(self._timeout)

    def cancel_death_penalty(self) -> None:
        _guarding.penalty = None
        self._arm(0)

    def extend(self, seconds: int) -> None:
        self._timeout = seconds
        self._arm(seconds)

    def _arm(self, seconds: int) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if seconds and seconds > 0:
                self._timer = threading.Timer(seconds, self._expire)
                self._timer.daemon = True
                self._timer.name = f"voxhook-deadline-{self._thread_id}"
                self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._timer is None or threading.current_thread() is not self._timer:
                return  # moved or cancelled meanwhile
            self._timer = None
            # Raised under the lock: a job ending now cancels after this, inside RQ's
            # ``__exit__``, which swallows a timeout that lands there.
            log.error("job deadline of %s s reached: stopping the job", self._timeout)
            raise_in_thread(self._thread_id, JobDeadlineExceeded)


def extend_deadline(seconds_from_now: int) -> bool:
    """Give the job running in this thread ``seconds_from_now`` more seconds; False outside
    a timed job."""
    penalty: ExtendableDeathPenalty | WatchdogDeathPenalty | None = getattr(
        _guarding, "penalty", None)
    if penalty is None:
        return False
    penalty.extend(seconds_from_now)
    job = get_current_job()
    if job is not None:
        job.timeout = seconds_from_now  # the worker's heartbeat TTL is derived from it
    log.info("job deadline set to %d s from now", seconds_from_now)
    return True
