"""Per-site measurement: does a call site block (worth overlapping) or compute?

A parallel region pays off only where its calls *wait* (on a socket, a sleep, a lock,
a subprocess): waiting threads overlap, computing threads queue for the GIL. The
runtime learns which by timing each call site twice at once: wall time (what the
caller waits) and the thread's CPU time (what the calling thread itself computed).
Their difference is time spent blocked. No user knob: the compiler asks
``SiteProfile.overlap_pays(site)`` and follows the measurement (DESIGN §1.7).

Thread CPU time counts only the calling thread, so a call that waits on work done by
*other* threads (a nested parallel region, a server) counts as blocked too, which is
exactly right: overlapping such calls pays.

On a busy machine a thread also spends time *runnable but not running* (preempted
by other processes), which wall-minus-CPU would count as blocked, and which would
dilute the blocked share of a call that does block. Where Linux reports it
(``/proc/thread-self/schedstat``: time on a CPU, time waiting in a run queue),
``Stopwatch`` leaves the run-queue wait out of the time a call took, so a computing
call is seen to compute, and a waiting one to wait, however loaded the machine is.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "BLOCKED_FRACTION_MIN",
    "BLOCKED_SECONDS_MIN",
    "SiteProfile",
    "SiteStatistics",
    "Stopwatch",
    "forced",
    "get_profile",
    "set_forced",
    "worth_overlapping",
]

R = TypeVar("R")

# A call must wait at least this long, on average, before overlapping it is worth a
# task (a task costs ~10 µs of scheduling; we want a clear multiple of that) ...
BLOCKED_SECONDS_MIN = 200e-6
# ... and waiting must be a real share of its time: a CPU-bound call that was merely
# preempted on a busy machine also shows some wall-minus-CPU time.
BLOCKED_FRACTION_MIN = 0.25
# Recent calls weigh more, so a site that changes behaviour (a cache warming up, a
# model switched to a local one) is re-decided within a few dozen calls.
_EWMA_WEIGHT = 0.2


# NOTE: [Forced overlap]
# ``xcs.testing.force_overlap()`` (and ``XCS_FORCE_OVERLAP=1`` in the environment when
# xcs is imported) put every region on its concurrent path whatever was measured: no
# probe, every item a task. Only the measurement is overridden: what the compiler
# keeps in order (loops with carried state, ``@xcs.sequential`` callees...) stays in
# order. It is process-wide, a count of the blocks open, so that nested and
# concurrent uses compose; the hot path reads one list item.
_forced = [1 if os.environ.get("XCS_FORCE_OVERLAP", "").strip() not in ("", "0") else 0]
_forced_lock = threading.Lock()


def forced() -> bool:
    """True while every region must take its concurrent path (NOTE: [Forced overlap])."""
    return _forced[0] > 0


def set_forced(delta: int) -> None:
    """Open (+1) or close (-1) a forced-overlap block."""
    with _forced_lock:
        _forced[0] = max(_forced[0] + delta, 0)


def worth_overlapping(blocked_s: float, fraction: float) -> bool:
    """The rule: calls that block at least BLOCKED_SECONDS_MIN, for at least
    BLOCKED_FRACTION_MIN of their time, are worth overlapping."""
    return blocked_s >= BLOCKED_SECONDS_MIN and fraction >= BLOCKED_FRACTION_MIN


_SCHEDSTAT = "/proc/thread-self/schedstat"


def _run_queue_wait() -> float | None:
    """Seconds this thread has spent runnable but waiting for a CPU (None: unknown)."""
    try:
        with open(_SCHEDSTAT, "rb") as stats:
            fields = stats.read().split()
        return int(fields[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class Stopwatch:
    """Times one call in the calling thread: how long it took, not counting time the
    thread spent preempted, and how much of that the thread computed.

    Example::

        watch = Stopwatch()
        call()
        took_s, cpu_s = watch.stop()   # blocked = took_s - cpu_s
    """

    __slots__ = ("_cpu", "_queued", "_wall")

    def __init__(self) -> None:
        self._queued = _run_queue_wait()
        self._cpu = time.thread_time()
        self._wall = time.perf_counter()

    def stop(self) -> tuple[float, float]:
        """(seconds taken minus run-queue wait, seconds of thread CPU time)."""
        wall = time.perf_counter() - self._wall
        cpu = time.thread_time() - self._cpu
        if self._queued is not None:
            queued = _run_queue_wait()
            if queued is not None:
                wall -= max(queued - self._queued, 0.0)
        return max(wall, cpu), cpu


@dataclass
class SiteStatistics:
    """What was measured at one call site. A snapshot; mutate only through the profile."""

    site: Hashable
    calls: int = 0
    wall_s: float = 0.0  # total wall time
    cpu_s: float = 0.0  # total thread CPU time
    recent_blocked_s: float = 0.0  # EWMA of (wall - cpu) per call

    @property
    def blocked_s(self) -> float:
        """Total time blocked (wall minus CPU, never negative)."""
        return max(self.wall_s - self.cpu_s, 0.0)

    @property
    def blocked_fraction(self) -> float:
        """Share of the wall time spent blocked, 0..1."""
        return self.blocked_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def overlap_pays(self) -> bool:
        """True when calls at this site block long enough to be worth overlapping."""
        return self.calls > 0 and worth_overlapping(self.recent_blocked_s, self.blocked_fraction)


class SiteProfile:
    """Thread-safe measurements of call sites, bounded (least recently used sites go).

    Args:
        max_sites: how many sites to remember.
    """

    def __init__(self, max_sites: int = 4096) -> None:
        self._max_sites = max_sites
        self._sites: OrderedDict[Hashable, SiteStatistics] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, site: Hashable, wall_s: float, cpu_s: float) -> None:
        """Add one call's wall and thread-CPU time to ``site``."""
        blocked = max(wall_s - cpu_s, 0.0)
        with self._lock:
            stats = self._sites.get(site)
            if stats is None:
                stats = SiteStatistics(site, recent_blocked_s=blocked)
                self._sites[site] = stats
                if len(self._sites) > self._max_sites:
                    self._sites.popitem(last=False)
            else:
                self._sites.move_to_end(site)
                stats.recent_blocked_s += _EWMA_WEIGHT * (blocked - stats.recent_blocked_s)
            stats.calls += 1
            stats.wall_s += wall_s
            stats.cpu_s += cpu_s

    def measure(self, site: Hashable, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Call ``fn(*args, **kwargs)`` and record its times at ``site``.

        The call's exception propagates unchanged; the time until it was raised is
        recorded all the same (a failing call still tells whether the site blocks).
        """
        watch = Stopwatch()
        try:
            return fn(*args, **kwargs)
        finally:
            self.record(site, *watch.stop())

    def statistics(self, site: Hashable) -> SiteStatistics | None:
        """A copy of what is known about ``site`` (None: never measured)."""
        with self._lock:
            stats = self._sites.get(site)
            if stats is None:
                return None
            return SiteStatistics(
                stats.site, stats.calls, stats.wall_s, stats.cpu_s, stats.recent_blocked_s
            )

    def overlap_pays(self, site: Hashable) -> bool | None:
        """True/False once ``site`` was measured; None while nothing is known."""
        with self._lock:
            stats = self._sites.get(site)
            return None if stats is None else stats.overlap_pays

    def clear(self) -> None:
        with self._lock:
            self._sites.clear()

    def __len__(self) -> int:
        return len(self._sites)


_profile = SiteProfile()


def get_profile() -> SiteProfile:
    """The process-wide profile shared by every jitted function."""
    return _profile
