"""The clock of the model layer: every sleep and every rate computation goes through it.

Backoff sleeps, token-bucket refills, circuit-breaker timers and the simulator's
latencies all read ``get_clock()``, so a test can install a ``FakeClock`` and check
time-dependent behaviour (a Retry-After of 30 s, a breaker that half-opens after a
minute) without sleeping. Deadlines (``xcs.deadline``) stay on the real monotonic
clock: they bound real waiting, and the model layer compares every sleep it is about
to make with the real time left (it never sleeps past a deadline, fake clock or not).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock", "asleep", "get_clock", "use_clock"]


class Clock(Protocol):
    """What the model layer needs of a clock."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` (a fake clock advances instead)."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and ``time.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock whose time moves only when someone sleeps on it (or ``advance`` is called).

    ``sleep(s)`` returns at once and moves the time forward by ``s``; every sleep is
    recorded in ``sleeps``, so a test can assert what the code *would* have waited.
    Thread-safe. For tests: install it with ``use_clock``.

    Example::

        clock = FakeClock()
        with use_clock(clock):
            xcs.models("sim:echo?rate_limit_rate=1&retry_after=30", "hi", max_attempts=2)
        # raises RateLimitError; clock.sleeps == [30.0 to 36.0]: the Retry-After was
        # honoured (with up to 20% jitter), without sleeping
    """

    def __init__(self, start: float | None = None) -> None:
        # Starting at the real monotonic time keeps limiters and breakers made under
        # the system clock consistent when a test switches clocks.
        self._now = time.monotonic() if start is None else start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if seconds > 0:
                self._now += seconds

    def advance(self, seconds: float) -> None:
        """Move the time forward without recording a sleep."""
        with self._lock:
            self._now += seconds

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now():.3f}, sleeps={len(self.sleeps)})"


_clock: Clock = SystemClock()


async def asleep(seconds: float) -> None:
    """Sleep on the model layer's clock without blocking the event loop: the real
    clock awaits ``asyncio.sleep``; any other clock (a ``FakeClock``) is asked to
    ``sleep`` (which returns at once) and the task yields once."""
    import asyncio

    clock = _clock
    if isinstance(clock, SystemClock):
        if seconds > 0:
            await asyncio.sleep(seconds)
        return
    if seconds > 0:
        clock.sleep(seconds)
    await asyncio.sleep(0)


def get_clock() -> Clock:
    """The clock in use (process-wide)."""
    return _clock


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Install ``clock`` process-wide for the duration of the block (for tests)."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield clock
    finally:
        _clock = previous
