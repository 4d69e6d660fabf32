"""The parts that let one worker process run several jobs at once: per-thread deadlines
(:class:`worker.deadline.WatchdogDeathPenalty`), per-thread interruption
(:func:`worker.stopping.interrupt_thread`), the defaults per device, the settings, and what
``voxhook serve`` asks of its worker. (Whole jobs at once: tests/e2e/test_concurrency.py.)"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from rq.timeouts import JobTimeoutException

from app.config import ConfigError, Settings
from app.ops.serve import WORKER_NICE, api_share, worker_share
from worker.deadline import WatchdogDeathPenalty, extend_deadline
from worker.errors import Cancelled
from worker.main import GPU_DEFAULT_CONCURRENCY, default_concurrency, threads_per_job
from worker.stopping import (
    INTERRUPT_SIGNAL,
    HandedBack,
    StopGrace,
    interrupt_thread,
    interruptible,
)


def _busy_until(stop: threading.Event, limit_s: float) -> None:
    """Python code running (so an asynchronous exception can land) until ``stop`` or
    ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)


def _in_thread(body) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Run ``body`` in a new thread; what it returned or raised."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["returned"] = body()
        except BaseException as exc:  # the outcome under test
            outcome["raised"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return outcome


def test_watchdog_stops_only_the_thread_whose_deadline_passed() -> None:
    """Two jobs in two threads: the one with a 1 s deadline gets the timeout (an RQ
    JobTimeoutException, which the job code handles as today); the other, with 30 s, runs
    to its end untouched."""
    other_done = threading.Event()
    results: dict[str, dict[str, object]] = {}

    def short_job() -> str:
        with WatchdogDeathPenalty(1, JobTimeoutException):
            _busy_until(threading.Event(), 20)
        return "ran to the end"

    def long_job() -> str:
        with WatchdogDeathPenalty(30, JobTimeoutException):
            _busy_until(other_done, 20)
        return "ran to the end"

    survivor = threading.Thread(target=lambda: results.setdefault("long", _in_thread(long_job)))
    survivor.start()
    results["short"] = _in_thread(short_job)
    other_done.set()
    survivor.join(30)
    assert isinstance(results["short"].get("raised"), JobTimeoutException)
    assert results["long"] == {"returned": "ran to the end"}


def test_extend_deadline_moves_this_threads_watchdog() -> None:
    """A job that extends its deadline (as on_audio does once the audio's length is known)
    outlives the original one; outside a timed job there is nothing to extend."""
    def job() -> bool:
        with WatchdogDeathPenalty(1, JobTimeoutException):
            extended = extend_deadline(30)
            _busy_until(threading.Event(), 2.5)  # past the first deadline
        return extended

    assert _in_thread(job) == {"returned": True}
    assert _in_thread(lambda: extend_deadline(30)) == {"returned": False}


def test_cancelled_watchdog_never_fires() -> None:
    """A job that ends before its deadline leaves no timer behind to hit the thread later."""
    def job() -> str:
        with WatchdogDeathPenalty(1, JobTimeoutException):
            pass
        _busy_until(threading.Event(), 2)
        return "untouched"

    assert _in_thread(job) == {"returned": "untouched"}


def test_interrupt_thread_hands_back_that_thread_only() -> None:
    """The stop grace's interruption of one lane raises HandedBack (a Cancelled: the job
    writes nothing) in that lane's thread, inside its pipeline; another lane runs on, and a
    lane whose job is past its pipeline (storing, releasing, RQ's bookkeeping) is not
    interrupted at all."""
    stop_other = threading.Event()
    started = threading.Barrier(4)
    outcomes: dict[str, dict[str, object]] = {}

    def lane(name: str, stop: threading.Event, in_pipeline: bool) -> None:
        def body() -> str:
            started.wait()
            _busy_until(stop, 20 if in_pipeline else 2)
            return "ran to the end"
        outcomes[name] = {}
        try:
            if in_pipeline:
                with interruptible():
                    outcomes[name]["returned"] = body()
            else:
                outcomes[name]["returned"] = body()
        except BaseException as exc:  # the outcome under test
            outcomes[name]["raised"] = exc

    victim = threading.Thread(target=lane, args=("victim", threading.Event(), True))
    other = threading.Thread(target=lane, args=("other", stop_other, True))
    storing = threading.Thread(target=lane, args=("storing", threading.Event(), False))
    for thread in (victim, other, storing):
        thread.start()
    started.wait()
    assert interrupt_thread(victim)() is True
    assert interrupt_thread(storing)() is False
    victim.join(10)
    storing.join(10)
    stop_other.set()
    other.join(10)
    raised = outcomes["victim"].get("raised")
    assert isinstance(raised, HandedBack) and isinstance(raised, Cancelled)
    assert "worker is stopping" in str(raised)
    assert outcomes["other"] == {"returned": "ran to the end"}
    assert outcomes["storing"] == {"returned": "ran to the end"}


def test_interruption_is_a_base_exception_no_stage_can_swallow() -> None:
    """A stage's own ``except Exception`` (a download's error mapping, a library's) lets a
    stop's interruption through, so it never becomes a failure of the customer's job."""
    def stage() -> str:
        try:
            raise HandedBack()
        except Exception:  # what urllib3's and our fetcher's error mapping do
            return "fetch_failed"

    with pytest.raises(HandedBack):
        stage()


def test_main_thread_interrupt_lands_only_inside_the_pipeline() -> None:
    """The SIGUSR1 handler raises HandedBack in the main thread while its job is inside
    ``interruptible()``, and does nothing once the job has left it."""
    grace = StopGrace(None, None, "w", lambda: None, 1.0)  # type: ignore[arg-type]
    previous = signal.getsignal(INTERRUPT_SIGNAL)
    grace.install()
    try:
        with pytest.raises(HandedBack), interruptible():
            os.kill(os.getpid(), INTERRUPT_SIGNAL)
            _busy_until(threading.Event(), 10)  # the handler raises before this ends
        os.kill(os.getpid(), INTERRUPT_SIGNAL)
        _busy_until(threading.Event(), 0.2)  # outside: nothing raised
    finally:
        signal.signal(INTERRUPT_SIGNAL, previous)


@pytest.mark.parametrize(("device", "cores", "expected"), [
    ("cpu", 2, 2), ("cpu", 16, 16), ("cpu", 1, 1), ("cuda", 16, GPU_DEFAULT_CONCURRENCY)])
def test_default_concurrency_per_device(device: str, cores: int, expected: int) -> None:
    """CPU: one job per core; GPU: the documented default; an explicit setting wins."""
    assert default_concurrency(Settings(), device, cores) == expected
    assert default_concurrency(Settings(worker_concurrency=3), device, cores) == 3


def test_threads_per_job_share_the_cores() -> None:
    assert threads_per_job(Settings(), concurrency=2, cores=2) == 1
    assert threads_per_job(Settings(), concurrency=2, cores=8) == 4
    assert threads_per_job(Settings(), concurrency=4, cores=2) == 1
    assert threads_per_job(Settings(worker_cpu_threads=3), concurrency=2, cores=8) == 3


def test_concurrency_settings_are_read_and_passed_on() -> None:
    settings = Settings.from_env({"VOXHOOK_WORKER_CONCURRENCY": "3",
                                  "VOXHOOK_WORKER_CPU_THREADS": "2",
                                  "VOXHOOK_WORKER_CORES": "5", "VOXHOOK_WORKER_NICE": "0"})
    assert (settings.worker_concurrency, settings.worker_cpu_threads, settings.worker_cores,
            settings.worker_nice) == (3, 2, 5, 0)
    env = settings.environment()
    assert (env["VOXHOOK_WORKER_CONCURRENCY"], env["VOXHOOK_WORKER_CPU_THREADS"],
            env["VOXHOOK_WORKER_CORES"], env["VOXHOOK_WORKER_NICE"]) == ("3", "2", "5", "0")
    unset = Settings.from_env({})
    assert (unset.worker_concurrency, unset.worker_cores, unset.worker_nice) == (0, 0, None)


@pytest.mark.parametrize(("name", "value"), [
    ("VOXHOOK_WORKER_CONCURRENCY", "0"), ("VOXHOOK_WORKER_CONCURRENCY", "many"),
    ("VOXHOOK_WORKER_CPU_THREADS", "-1"), ("VOXHOOK_WORKER_NICE", "20"),
    ("VOXHOOK_WORKER_NICE", "low")])
def test_bad_concurrency_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert name in str(caught.value) and value in str(caught.value)


def test_serve_asks_its_worker_to_yield(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``serve`` the worker is niced and, with two cores or more, sized by one core
    fewer; what the operator set is kept."""
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    assert worker_share(Settings(), {}) == {"VOXHOOK_WORKER_NICE": str(WORKER_NICE),
                                            "VOXHOOK_WORKER_CORES": "3"}
    assert worker_share(Settings(worker_nice=0, worker_cores=4), {}) == {
        "VOXHOOK_WORKER_NICE": "0"}
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0})
    assert worker_share(Settings(), {}) == {"VOXHOOK_WORKER_NICE": str(WORKER_NICE)}


def test_serve_runs_one_api_process_on_the_core_the_worker_leaves(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside a worker sized by cores - 1, ``serve`` starts one API process; what the
    operator set is kept, and on one core (the worker not sized) the default stands."""
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    worker = worker_share(Settings(), {})
    assert api_share(Settings(), {}, worker) == 1
    assert api_share(Settings(api_workers=3), {"VOXHOOK_API_WORKERS": "3"}, worker) == 3
    assert api_share(Settings(), {"VOXHOOK_WORKER_CORES": "2"},
                     worker_share(Settings(), {"VOXHOOK_WORKER_CORES": "2"})) == 2
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0})
    assert api_share(Settings(), {}, worker_share(Settings(), {})) == Settings().api_workers
