"""The circuit breaker of one endpoint: stop sending to a server that keeps failing.

After ``failure_threshold`` consecutive failed attempts (5xx, timeouts, connection
errors, malformed answers) the breaker *opens*: calls fail fast with
``CircuitOpenError`` instead of each waiting out its own timeouts. After
``reset_after`` seconds it lets exactly one *probe* request through (half-open);
the probe's success closes it, its failure opens it for another ``reset_after``.
Any answer that is not a server fault (a 4xx, a 429) counts as success here: the
server is up, and the retry logic deals with the rest.
"""

from __future__ import annotations

import enum
import threading

from xcs.errors import CircuitOpenError
from xcs.models._clock import get_clock

__all__ = ["BreakerState", "BreakerStatistics", "CircuitBreaker"]


class BreakerState(enum.Enum):
    CLOSED = "closed"  # requests flow; consecutive failures are counted
    OPEN = "open"  # requests fail fast until reset_after has passed
    HALF_OPEN = "half-open"  # one probe is in flight; its outcome decides


class BreakerStatistics:
    """A snapshot of one breaker."""

    __slots__ = ("consecutive_failures", "endpoint", "rejected", "state", "times_opened")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.endpoint = breaker.endpoint
        self.state = breaker.state
        self.consecutive_failures = breaker.consecutive_failures
        self.times_opened = breaker.times_opened
        self.rejected = breaker.rejected

    def __repr__(self) -> str:
        return (
            f"BreakerStatistics({self.endpoint!r}, state={self.state.value}, "
            f"consecutive_failures={self.consecutive_failures}, opened={self.times_opened}, "
            f"rejected={self.rejected})"
        )


class CircuitBreaker:
    """One endpoint's breaker. Thread-safe; time from the model layer's clock.

    Not constructed by users: the model layer keeps one per endpoint.
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.times_opened = 0
        self.rejected = 0  # calls failed fast
        self._opened_at = 0.0
        self._probe: object | None = None  # the token of the probe in flight

    def admit(self, reset_after: float, provider: str, model: str) -> object:
        """Let an attempt through, or raise ``CircuitOpenError``.

        Returns a token to pass to ``record`` (the probe is recognised by it).
        """
        token = object()
        with self._lock:
            if self.state is BreakerState.CLOSED:
                return token
            now = get_clock().now()
            reopen = self._opened_at + reset_after
            if self.state is BreakerState.OPEN and now >= reopen:
                self.state = BreakerState.HALF_OPEN
                self._probe = token
                return token
            self.rejected += 1
            wait = max(0.0, reopen - now)
            detail = (
                f"open after {self.consecutive_failures} consecutive failures; "
                f"next probe in {wait:.1f} s"
                if self.state is BreakerState.OPEN
                else "half-open, a probe request is in flight"
            )
        raise CircuitOpenError(
            f"{provider}:{model}: circuit breaker of endpoint {self.endpoint} is {detail}; "
            "nothing was sent",
            provider=provider,
            model=model,
            endpoint=self.endpoint,
            retry_after=wait,
        )

    def record(self, token: object, *, failed: bool, threshold: int) -> None:
        """Record the outcome of an admitted attempt."""
        with self._lock:
            probe = token is self._probe
            if probe:
                self._probe = None
            if not failed:
                self.consecutive_failures = 0
                if probe or self.state is BreakerState.HALF_OPEN:
                    self.state = BreakerState.CLOSED
                return
            self.consecutive_failures += 1
            if probe or (
                self.state is BreakerState.CLOSED and self.consecutive_failures >= threshold
            ):
                self._open()

    def abandon(self, token: object) -> None:
        """An admitted attempt ended without an outcome (interrupted): if it was the
        probe, let the next caller probe."""
        with self._lock:
            if token is self._probe:
                self._probe = None
                self.state = BreakerState.OPEN  # _opened_at kept: next admit probes

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self._opened_at = get_clock().now()
        self.times_opened += 1

    def statistics(self) -> BreakerStatistics:
        with self._lock:
            return BreakerStatistics(self)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.endpoint} {self.state.value}>"
