"""How a transcription worker stops: it finishes its job, or hands it back.

On SIGTERM or SIGINT RQ stops taking jobs and lets the running one finish (a "warm"
shutdown). A job may run for an hour while the stop grace of Docker, systemd or
``voxhook serve`` is a minute or two, after which the process is killed. So
:class:`StopGrace` gives the job ``worker_stop_grace_s``; if it is still running then, the
job is handed back (``app.transcriptions.recovery.hand_back``: the transcription is queued again,
its hold
in the wallet released, a new job enqueued for another worker) and the job is interrupted.
A second signal (RQ's "cold" shutdown) hands back at once.

The interruption is :class:`~worker.errors.Cancelled` raised in the thread that runs the job:
in the main thread (one job at a time) from a SIGUSR1 handler, the way RQ's own timeout raises
from SIGALRM; in a job's own thread (several jobs at once, see :mod:`worker.main`) as an
asynchronous exception (:func:`worker.deadline.raise_in_thread`). The job's code treats it as
"this row is no longer mine" and writes nothing. The
hand-back itself is done first, from this thread, so the database is right even if the
process is killed before the job notices.

The interruption lands only inside :func:`interruptible`, which the job wraps around its
pipeline (fetch, decode, transcribe, diarize, assemble, analyse). Outside it (storing the
result, releasing the media, RQ's own bookkeeping) a stop changes nothing in the thread:
the store step is fenced by the row itself (only a row still this worker's is completed),
and an exception thrown into RQ's bookkeeping would end the worker with a traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from app.store.db import Database
from app.transcriptions.queue import JobQueue
from app.transcriptions.recovery import hand_back
from worker.deadline import raise_in_thread
from worker.errors import Cancelled
from worker.media.fetch import abort_exchange_of

log = logging.getLogger("voxhook.worker")

#: Raises Cancelled in the main thread, ending the running job.
INTERRUPT_SIGNAL = signal.SIGUSR1


class StopGrace:
    """Hands the running job back when the worker must stop before the job ends.

    ``running`` names the transcription the worker runs now (None when idle); ``worker_name``
    is the fence: only a row still this worker's is handed back. ``interrupt`` ends the
    running job (default: the interrupt signal, for a job in the main thread; see
    :func:`interrupt_thread` for one in its own thread).
    """

    def __init__(self, db: Database, queue: JobQueue, worker_name: str,
                 running: Callable[[], str | None], grace_s: float,
                 interrupt: Callable[[], object] | None = None) -> None:
        self.db, self.queue, self.worker_name = db, queue, worker_name
        self.running, self.grace_s = running, grace_s
        self.interrupt = interrupt or _signal_main_thread
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def install(self) -> None:
        """Route the interrupt signal to :func:`_interrupt` (call from the main thread)."""
        signal.signal(INTERRUPT_SIGNAL, _interrupt)

    def begin(self) -> None:
        """A stop was requested: start counting the grace (once)."""
        with self._lock:
            if self._timer is not None or self.running() is None:
                return
            log.info("stopping: the running job has %.0f s to finish before it is handed "
                     "back", self.grace_s)
            self._timer = threading.Timer(self.grace_s, self.hand_back_now)
            self._timer.daemon = True
            self._timer.start()

    def hand_back_now(self) -> bool:
        """Hand the running job back and interrupt it; whether there was one to hand back."""
        transcription_id = self.running()
        if transcription_id is None:
            return False
        try:
            outcome = hand_back(self.db, self.queue, transcription_id, self.worker_name,
                                lost=False)
        except Exception:
            log.exception("transcription %s could not be handed back; the recovery of "
                          "lost jobs will retry it once this worker is gone",
                          transcription_id)
            return False
        if outcome is None:
            return False
        log.warning("transcription %s handed back to the queue: this worker is stopping",
                    transcription_id)
        if self.running() == transcription_id:
            self.interrupt()
        return True

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()


class HandedBack(Cancelled):
    """The job was handed back because its worker is stopping."""

    def __init__(self, *args: object) -> None:  # raised by class, without arguments
        super().__init__(*(args or ("handed back: the worker is stopping",)))


#: The threads whose job is inside :func:`interruptible` now (their ``threading`` idents).
_interruptible_threads: set[int] = set()
#: Taken to enter or leave the region, and to interrupt another thread only while inside.
_region_lock = threading.Lock()


@contextmanager
def interruptible() -> Iterator[None]:
    """The part of a job that a stop may interrupt: the pipeline, not what follows it."""
    ident = threading.get_ident()
    with _region_lock:
        _interruptible_threads.add(ident)
    try:
        yield
    finally:
        with _region_lock:
            try:
                # An interruption made just before we took the lock is pending in this
                # thread: let it land here, inside the region, not after it.
                _checkpoint()
            finally:
                _interruptible_threads.discard(ident)


def _checkpoint() -> None:
    """A Python call: entering it is where a pending asynchronous exception is raised."""


def _signal_main_thread() -> None:
    os.kill(os.getpid(), INTERRUPT_SIGNAL)  # delivered to the main thread


def interrupt_thread(thread: threading.Thread) -> Callable[[], bool]:
    """An ``interrupt`` for a job that runs in ``thread``: raises :class:`HandedBack` there,
    if its job is inside :func:`interruptible`."""
    def interrupt() -> bool:
        with _region_lock:
            ident = thread.ident
            if ident is None or ident not in _interruptible_threads:
                return False
            raised = raise_in_thread(ident, HandedBack)
        if raised:  # a thread blocked in a read runs no Python code until the read ends
            abort_exchange_of(ident)
        return raised
    return interrupt


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Runs in the main thread, between two of its bytecodes: the region cannot change
    # under it, and taking the lock here could deadlock with the main thread's own hold.
    if threading.get_ident() in _interruptible_threads:
        raise HandedBack()
