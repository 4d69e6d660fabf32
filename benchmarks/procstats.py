"""CPU accounting and clean-up for the benchmarks, from Linux's /proc.

The benchmarks run the service and its load on the same two cores, so each figure comes with
the CPU every side used and with what other processes took meanwhile; and every process the
stack started is ended at clean-up, however the run stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on; None when gone or not Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def process_tree(pid: int | None) -> list[int]:
    """``pid`` and its live descendants (Linux /proc; else just ``pid``)."""
    found: list[int] = []
    pending = [pid] if pid else []
    while pending:
        current = pending.pop()
        found.append(current)
        with contextlib.suppress(OSError, ValueError):
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    return found


def process_tree_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (Linux /proc; else 0)."""
    total = 0.0
    for current in process_tree(pid):
        fields = _stat(current)
        if fields:
            total += (int(fields[11]) + int(fields[12])) * _TICK_S
    return total


def machine_busy_s() -> float:
    """CPU seconds all cores of the machine have been busy since boot (/proc/stat; else 0)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    # user nice system idle iowait irq softirq steal [guest guest_nice: inside user/nice]
    return (sum(fields[:8]) - fields[3] - fields[4]) * _TICK_S


class Reaper:
    """Remembers every process of the stack (gunicorn's workers too) and ends those still
    running at clean-up. A terminal's Ctrl-C reaches the whole process group, so gunicorn's
    master may be gone before ``Stack.stop`` runs, leaving a worker it can no longer reach."""

    def __init__(self) -> None:
        self.known: dict[int, str] = {}  # pid -> start time, so a reused pid is left alone

    def watch(self, *pids: int) -> None:
        for pid in pids:
            for current in process_tree(pid):
                fields = _stat(current)
                if fields and fields[0] != "Z":
                    self.known[current] = fields[19]

    def _alive(self) -> list[int]:
        alive = []
        for pid, started in self.known.items():
            fields = _stat(pid)
            if fields and fields[0] != "Z" and fields[19] == started:
                alive.append(pid)
        return alive

    def reap(self) -> None:
        for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
            left = self._alive()
            if not left:
                return
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait_s
            while self._alive() and time.monotonic() < deadline:
                time.sleep(0.05)


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds so far: the whole machine, this process, and each watched process tree."""

    machine: float
    bench: float
    trees: tuple[float, ...]

    @classmethod
    def take(cls, pids: tuple[int, ...]) -> CpuSnapshot:
        return cls(machine=machine_busy_s(), bench=time.process_time(),
                   trees=tuple(process_tree_cpu_s(pid) for pid in pids))

    def others_since(self, before: CpuSnapshot) -> float:
        """CPU seconds used meanwhile by processes that are not the benchmark's."""
        ours = (self.bench - before.bench) + sum(
            after - earlier for after, earlier in zip(self.trees, before.trees, strict=True))
        return max(0.0, (self.machine - before.machine) - ours)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the report."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run_with_cleanup(run: Callable[[Any, contextlib.ExitStack], None], args: Any) -> int:
    """Run a benchmark so that Ctrl-C and SIGTERM still stop its processes and remove its
    temporary files (everything it registered on the ExitStack); returns the exit status."""

    def terminate(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        with contextlib.ExitStack() as cleanup:
            run(args, cleanup)
    except KeyboardInterrupt:
        print("\ninterrupted; processes stopped and temporary files removed", file=sys.stderr)
        return 130
    return 0
