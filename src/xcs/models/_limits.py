"""Limits shared by every thread of the process: concurrency, requests and tokens per minute.

A call takes, at each scope that has limits (its model, then its provider), first a
concurrency slot and then its share of the per-minute buckets, and only then sends.
Slots are taken before tokens because a token spent while waiting for a slot would
let a burst through later. The model's slot comes first so that a call queued behind
its own model's limit holds none of its provider's slots: other models of the
provider keep them. One fixed order (model before provider, slots before tokens)
means two calls never hold what the other waits for.

Every wait is bounded by the active ``xcs.deadline``: when the wait would outlast
it, ``xcs.ExecutionTimeout`` is raised at once rather than after sleeping in vain.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from xcs._runtime._deadline import Deadline
from xcs.models._clock import get_clock

__all__ = [
    "ConcurrencyLimit",
    "Limiter",
    "LimiterStatistics",
    "TokenBucket",
    "deadline_wait",
    "estimate_tokens",
    "hold",
]


def deadline_wait(deadline: Deadline | None, seconds: float, where: str) -> float:
    """The time one may wait for ``seconds`` of need; raise if the deadline is nearer."""
    if deadline is None:
        return seconds
    left = deadline.remaining()
    if left <= 0 or seconds >= left:
        raise deadline.timeout_error(where=where)
    return seconds


class ConcurrencyLimit:
    """At most ``limit`` holders at once; waiters are served as slots free up."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._cond = threading.Condition(threading.Lock())
        self.in_flight = 0
        self.max_in_flight = 0
        self.waited = 0  # acquisitions that had to wait for a slot

    def acquire(self, deadline: Deadline | None, where: str) -> None:
        with self._cond:
            if self.in_flight >= self.limit:
                self.waited += 1
            while self.in_flight >= self.limit:
                if deadline is None:
                    self._cond.wait()
                    continue
                left = deadline.remaining()
                if left <= 0:
                    raise deadline.timeout_error(where=where)
                self._cond.wait(left)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()


class TokenBucket:
    """A bucket refilled at ``per_minute / 60`` per second, holding at most one minute's worth.

    ``take(n)`` waits until ``n`` units are in the bucket (or, for ``n`` larger than
    the bucket, until it is full) and removes them; ``adjust(d)`` charges or refunds
    ``d`` units afterwards (the bucket may go negative: later takers then wait).
    Time comes from the model layer's clock, so tests can use a fake one.
    """

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._last = get_clock().now()

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = max(self._last, now)

    def take(self, amount: float, deadline: Deadline | None, where: str) -> None:
        clock = get_clock()
        while True:
            with self._lock:
                self._refill(clock.now())
                need = min(amount, self.capacity)
                # The tolerance ends the wait that rounding would otherwise leave a
                # hair short (refilling wait * rate can land just under `need`).
                if self._tokens + 1e-6 >= need:
                    self._tokens -= amount
                    return
                wait = (need - self._tokens) / self.rate
            clock.sleep(deadline_wait(deadline, wait, where))

    def adjust(self, amount: float) -> None:
        with self._lock:
            self._tokens = min(self.capacity, self._tokens - amount)

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill(get_clock().now())
            return self._tokens


class LimiterStatistics:
    """A snapshot of one scope's limiter."""

    __slots__ = ("in_flight", "max_in_flight", "rpm_left", "scope", "tpm_left", "waited")

    def __init__(self, limiter: Limiter) -> None:
        conc = limiter.concurrency
        self.scope = limiter.scope
        self.in_flight = conc.in_flight if conc else 0
        self.max_in_flight = conc.max_in_flight if conc else 0
        self.waited = conc.waited if conc else 0
        self.rpm_left = limiter.rpm.tokens if limiter.rpm else None
        self.tpm_left = limiter.tpm.tokens if limiter.tpm else None

    def __repr__(self) -> str:
        return (
            f"LimiterStatistics({self.scope!r}, in_flight={self.in_flight}, "
            f"max_in_flight={self.max_in_flight}, waited={self.waited})"
        )


class Limiter:
    """The limits of one scope. Not constructed by users: ``xcs.models.configure``."""

    def __init__(
        self,
        scope: str,
        concurrency: int | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
    ) -> None:
        self.scope = scope
        self.concurrency = ConcurrencyLimit(concurrency) if concurrency else None
        self.rpm = TokenBucket(rpm) if rpm else None
        self.tpm = TokenBucket(tpm) if tpm else None

    @property
    def empty(self) -> bool:
        return self.concurrency is None and self.rpm is None and self.tpm is None

    def statistics(self) -> LimiterStatistics:
        return LimiterStatistics(self)

    def __repr__(self) -> str:
        parts = [
            f"concurrency={self.concurrency.limit}" if self.concurrency else "",
            f"rpm={self.rpm.capacity:g}" if self.rpm else "",
            f"tpm={self.tpm.capacity:g}" if self.tpm else "",
        ]
        return f"<Limiter {self.scope} {' '.join(p for p in parts if p) or 'unlimited'}>"


@contextmanager
def hold(
    limiters: list[Limiter], tokens: int, deadline: Deadline | None, what: str
) -> Iterator[list[Limiter]]:
    """Hold a slot and the tokens of every limiter in order; release the slots after."""
    held: list[ConcurrencyLimit] = []
    try:
        for limiter in limiters:
            if limiter.concurrency is not None:
                limiter.concurrency.acquire(
                    deadline, f"{what} (waiting for a {limiter.scope} concurrency slot)"
                )
                held.append(limiter.concurrency)
        for limiter in limiters:
            if limiter.rpm is not None:
                limiter.rpm.take(1, deadline, f"{what} (waiting for {limiter.scope} rpm)")
            if limiter.tpm is not None:
                limiter.tpm.take(tokens, deadline, f"{what} (waiting for {limiter.scope} tpm)")
        yield limiters
    finally:
        for slot in reversed(held):
            slot.release()


def estimate_tokens(prompt_chars: int, max_tokens: int | None, default_completion: int) -> int:
    """A request's token reservation before the provider counts: about 4 characters a
    token for the prompt, plus the completion it may produce."""
    completion = max_tokens if max_tokens is not None else default_completion
    return math.ceil(prompt_chars / 4) + completion
