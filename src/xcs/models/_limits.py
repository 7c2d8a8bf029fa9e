"""Limits shared by every thread and task of the process: concurrency, requests and
tokens per minute, and the adaptive window of each model at each endpoint.

A call takes first a slot of its model's adaptive window at its endpoint (NOTE:
[Adaptive concurrency]), then, at each scope that has limits (its model, then its
provider), a concurrency slot, then its share of the per-minute buckets, and only
then sends. Slots serve threads and asyncio tasks alike, first come first served.
Slots are taken before tokens because a token spent while waiting for a slot would
let a burst through later. The model's slot comes first so that a call queued behind
its own model's limit holds none of its provider's slots: other models of the
provider keep them. One fixed order (model before provider, slots before tokens)
means two calls never hold what the other waits for.

Every wait is bounded by the active ``xcs.deadline``: when the wait would outlast
it, ``xcs.ExecutionTimeout`` is raised at once rather than after sleeping in vain.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import deque
from typing import Any

from xcs._runtime._deadline import Deadline
from xcs.models._clock import get_clock

__all__ = [
    "AdaptiveLimit",
    "AdaptiveStatistics",
    "ConcurrencyLimit",
    "Limiter",
    "LimiterStatistics",
    "TokenBucket",
    "deadline_wait",
    "estimate_tokens",
]


def deadline_wait(deadline: Deadline | None, seconds: float, where: str) -> float:
    """The time one may wait for ``seconds`` of need; raise if the deadline is nearer."""
    if deadline is None:
        return seconds
    left = deadline.remaining()
    if left <= 0 or seconds >= left:
        raise deadline.timeout_error(where=where)
    return seconds


class _Waiter:
    """One caller queued for a slot: a thread (an event) or an asyncio task (a future)."""

    __slots__ = ("event", "future", "granted", "loop")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        future: asyncio.Future[None] | None = None,
    ) -> None:
        self.granted = False
        self.event = threading.Event() if loop is None else None
        self.loop = loop
        self.future = future

    def grant(self) -> None:
        """Called under the limit's lock: the slot is now this waiter's."""
        self.granted = True
        if self.event is not None:
            self.event.set()
        else:
            assert self.loop is not None
            assert self.future is not None
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                self.loop.call_soon_threadsafe(_resolve, self.future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ConcurrencyLimit:
    """At most ``limit`` holders at once, threads and asyncio tasks alike.

    Waiters are served first come, first served (a newcomer never takes a slot a
    queued caller is owed): ``release`` hands the slot to the next waiter directly.
    A thread waits on an event; a task awaits a future the releasing thread resolves
    through the task's loop, so an async waiter never blocks its event loop.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()
        self.in_flight = 0
        self.max_in_flight = 0
        self.waited = 0  # acquisitions that had to wait for a slot

    def capacity(self) -> int:
        """Slots there are now (the adaptive limit overrides it)."""
        return self.limit

    def _take(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _grant(self) -> None:
        """Hand free slots to waiters, in order. Under the lock."""
        while self._waiters and self.in_flight < self.capacity():
            self._take()
            self._waiters.popleft().grant()

    def try_acquire(self) -> bool:
        with self._lock:
            if not self._waiters and self.in_flight < self.capacity():
                self._take()
                return True
            return False

    def acquire(self, deadline: Deadline | None, where: str) -> None:
        with self._lock:
            if not self._waiters and self.in_flight < self.capacity():
                self._take()
                return
            self.waited += 1
            waiter = _Waiter()
            self._waiters.append(waiter)
        assert waiter.event is not None
        while True:
            timeout = None if deadline is None else max(0.0, deadline.remaining())
            if waiter.event.wait(timeout):
                return
            with self._lock:
                if waiter.granted:
                    return
                if deadline is not None and deadline.remaining() <= 0:
                    self._waiters.remove(waiter)
                    raise deadline.timeout_error(where=where)

    async def aacquire(self, deadline: Deadline | None, where: str) -> None:
        """``acquire`` for asyncio: the task waits, its loop runs on."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._waiters and self.in_flight < self.capacity():
                self._take()
                return
            self.waited += 1
            waiter = _Waiter(loop, loop.create_future())
            self._waiters.append(waiter)
        assert waiter.future is not None
        try:
            if deadline is None:
                await waiter.future
            else:
                async with asyncio.timeout(max(0.0, deadline.remaining())):
                    await waiter.future
        except BaseException as exc:
            with self._lock:
                if waiter.granted:  # granted as we were cancelled: give it back
                    self.in_flight -= 1
                    self._grant()
                else:
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError) and deadline is not None:
                raise deadline.timeout_error(where=where) from None
            raise

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self._grant()

    def queued(self) -> int:
        with self._lock:
            return len(self._waiters)


# NOTE: [Adaptive concurrency]
# A 429 answered to one request delays that request only: it is retried after its own
# Retry-After (jittered, so the retries of a burst do not land together); nothing else
# waits. What a server says about the *account* pauses every call of the model at the
# endpoint: ``x-ratelimit-remaining-requests: 0`` (or ``-tokens: 0``) with its reset
# header, on any answer, or 429s that are no longer sporadic (a quarter of the last
# 2 x window answers, 8 to 32 of them, and at least two). The 429 signal halves the
# window of requests in flight (multiplicative decrease; at most once per window:
# only a 429 to a request sent after the last decrease counts again), and every
# success widens it by 1/window (additive increase: one request more per window of
# successes), up to the configured ``concurrency``. A batch therefore settles near
# the server's real limit (below the width where a quarter of answers are 429s)
# instead of sending its whole width into a wall of 429s and retrying it all at once
# (a thundering herd). A sporadic 429 (one request in seven, say) does not shrink
# a wide window: retrying that request later is all the server asked for, and a
# window halved for it would serialise the batch for nothing. (At 16 in flight, the
# fault workload of bench/models.py, one prompt in seven refused once, never cuts;
# an earlier rule, 4 of the last 16 answers, did: fast 429s arrive in clusters ahead
# of the successes.)

AIMD_WINDOW = 32  # answers remembered per model and endpoint
AIMD_CROWDED_SHARE = 0.25  # 429s among recent answers meaning "too many at once"
AIMD_DECREASE = 0.5


class AdaptiveLimit(ConcurrencyLimit):
    """The AIMD window of one model at one endpoint (NOTE: [Adaptive concurrency]).

    ``cap`` is the configured concurrency (None: unlimited until the first crowding,
    then the window starts at half the requests in flight). Also holds the endpoint's
    account-wide pause for the model. Not constructed by users.
    """

    def __init__(self, scope: str, cap: int | None) -> None:
        super().__init__(cap or 0)
        self.scope = scope
        self.cap = cap
        self.window: float | None = float(cap) if cap else None
        self.decreases = 0
        self.rate_limited = 0
        self.pauses = 0
        self._last_cut = -math.inf
        self._answers: deque[bool] = deque(maxlen=AIMD_WINDOW)  # True: a 429
        self._paused_until = 0.0

    def capacity(self) -> int:
        if self.window is None:
            return 1 << 30
        return max(1, int(self.window))

    def set_cap(self, cap: int | None) -> None:
        """The configured concurrency changed (``xcs.models.configure``)."""
        with self._lock:
            self.cap = cap
            if cap is None:
                self.window = None
            elif self.window is None or self.window > cap:
                self.window = float(cap)
            self._grant()

    def succeeded(self) -> None:
        with self._lock:
            self._answers.append(False)
            if self.window is not None:
                top = self.cap if self.cap is not None else math.inf
                grown = float(min(top, self.window + 1.0 / self.window))
                if self.cap is None and grown >= 1 << 20:
                    grown = math.inf
                self.window = None if grown == math.inf else grown
                self._grant()

    def rate_limited_answer(self, sent_at: float, retry_after: float | None) -> bool:
        """Record a 429 to a request sent at ``sent_at``. Returns True when it is an
        account-wide signal (the window was cut, and the model is paused for the
        Retry-After)."""
        now = get_clock().now()
        with self._lock:
            self.rate_limited += 1
            self._answers.append(True)
            if not self._crowded() or sent_at < self._last_cut:
                return False
            base = self.window if self.window is not None else float(self.in_flight + 1)
            self.window = max(1.0, base * AIMD_DECREASE)
            self.decreases += 1
            self._last_cut = now
            self._answers.clear()
            if retry_after:
                self._pause_locked(now, retry_after)
            return True

    def _crowded(self) -> bool:
        """At least a quarter of the last answers were 429s (at least 2). The last
        2 x window answers are looked at (8 to 32): a narrow window must notice
        crowding within a few round trips, before additive growth outruns it."""
        width = self.window if self.window is not None else float(AIMD_WINDOW)
        span = int(min(AIMD_WINDOW, max(8.0, 2.0 * width)))
        recent = list(self._answers)[-span:]
        return sum(recent) >= max(2, math.ceil(span * AIMD_CROWDED_SHARE))

    def pause(self, seconds: float) -> None:
        """Hold every request of the model at the endpoint for ``seconds``."""
        now = get_clock().now()
        with self._lock:
            self._pause_locked(now, seconds)

    def _pause_locked(self, now: float, seconds: float) -> None:
        if now + seconds > self._paused_until:
            self._paused_until = now + seconds
            self.pauses += 1

    def paused_for(self) -> float:
        """Seconds left of an account-wide pause (0 when none)."""
        with self._lock:
            until = self._paused_until
        return max(0.0, until - get_clock().now())

    def statistics(self) -> AdaptiveStatistics:
        with self._lock:
            return AdaptiveStatistics(self)

    def __repr__(self) -> str:
        return f"<AdaptiveLimit {self.scope} window={self.window} cap={self.cap}>"


class AdaptiveStatistics:
    """A snapshot of one model's adaptive window at one endpoint."""

    __slots__ = (
        "cap",
        "decreases",
        "in_flight",
        "max_in_flight",
        "pauses",
        "rate_limited",
        "scope",
        "waited",
        "window",
    )

    def __init__(self, limit: AdaptiveLimit) -> None:
        self.scope = limit.scope
        self.cap = limit.cap
        self.window = None if limit.window is None else round(limit.window, 2)
        self.in_flight = limit.in_flight
        self.max_in_flight = limit.max_in_flight
        self.decreases = limit.decreases
        self.rate_limited = limit.rate_limited
        self.pauses = limit.pauses
        self.waited = limit.waited

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return (
            f"AdaptiveStatistics({self.scope!r}, window={self.window}, cap={self.cap}, "
            f"in_flight={self.in_flight}, decreases={self.decreases}, pauses={self.pauses})"
        )


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

    def reserve(self, amount: float) -> float:
        """Take ``amount`` now and return 0, or return the seconds to wait before
        trying again (nothing taken)."""
        with self._lock:
            self._refill(get_clock().now())
            need = min(amount, self.capacity)
            # The tolerance ends the wait that rounding would otherwise leave a
            # hair short (refilling wait * rate can land just under `need`).
            if self._tokens + 1e-6 >= need:
                self._tokens -= amount
                return 0.0
            return (need - self._tokens) / self.rate

    def take(self, amount: float, deadline: Deadline | None, where: str) -> None:
        clock = get_clock()
        while (wait := self.reserve(amount)) > 0:
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


def estimate_tokens(prompt_chars: int, max_tokens: int | None, default_completion: int) -> int:
    """A request's token reservation before the provider counts: about 4 characters a
    token for the prompt, plus the completion it may produce."""
    completion = max_tokens if max_tokens is not None else default_completion
    return math.ceil(prompt_chars / 4) + completion
