"""Limits shared by every thread: concurrency (proven by in-flight counters), rpm, tpm."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import xcs
from xcs.models import FakeClock, MockProvider, Request, models, use_clock
from xcs.models._limits import TokenBucket


class InFlight:
    """A provider handler that counts calls in flight. The first calls are held
    until ``peak`` of them have been in flight together (or ``hold`` seconds have
    passed); after that nobody waits. The maximum it saw is then exactly the
    concurrency the model layer allowed, whatever the thread timing."""

    def __init__(self, peak: int, hold: float = 5.0) -> None:
        self.peak = peak
        self.hold = hold
        self.cond = threading.Condition()
        self.now = 0
        self.max = 0
        self.calls = 0

    def __call__(self, request: Request) -> str:
        with self.cond:
            self.now += 1
            self.calls += 1
            self.max = max(self.max, self.now)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.max >= self.peak, timeout=self.hold)
        try:
            return request.messages[-1].content
        finally:
            with self.cond:
                self.now -= 1


def run_threads(n: int, fn: Callable[[int], object]) -> list[object]:
    results: list[object] = [None] * n

    def work(i: int) -> None:
        results[i] = fn(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_a_model_concurrency_limit_holds_across_threads() -> None:
    handler = InFlight(peak=3)
    arrived = threading.Barrier(9)
    models.register_provider("mock", MockProvider(handler))
    models.configure("mock:m", concurrency=3)

    def call(i: int) -> str:
        arrived.wait(10)  # all 9 callers are in flight together...
        return models("mock:m", f"q{i}")

    results = run_threads(9, call)
    assert results == [f"q{i}" for i in range(9)]
    assert handler.max == 3  # ...and the provider saw 3 at once: reached, never passed
    stats = models.statistics()["limiters"]["mock:m"]
    assert stats.max_in_flight == 3
    assert stats.in_flight == 0


def test_provider_and_model_limits_both_hold() -> None:
    everyone = InFlight(peak=3)  # holds each call until 3 are in flight in all
    lock = threading.Lock()
    in_a = [0, 0]  # now, max: calls to mock:a in flight

    def handler(request: Request) -> str:
        if request.model != "a":
            return everyone(request)
        with lock:
            in_a[0] += 1
            in_a[1] = max(in_a[1], in_a[0])
        try:
            return everyone(request)
        finally:
            with lock:
                in_a[0] -= 1

    models.register_provider("mock", MockProvider(handler))
    models.configure("mock", concurrency=3)
    models.configure("mock:a", concurrency=1)
    start = threading.Barrier(8)

    def call(i: int) -> str:
        start.wait(10)
        return models("mock:a" if i % 2 else "mock:b", f"q{i}")

    assert run_threads(8, call) == [f"q{i}" for i in range(8)]
    assert in_a[1] == 1  # the model limit
    assert everyone.max == 3  # the provider limit: reached (1 a + 2 b), never passed
    assert models.statistics()["limiters"]["mock"].max_in_flight == 3


def test_the_limit_holds_inside_jitted_code() -> None:
    handler = InFlight(peak=4, hold=0.05)  # short: the jit's first run is in order
    models.register_provider("mock", MockProvider(handler))
    models.configure("mock", concurrency=4)

    @xcs.jit
    def ensemble(question: str) -> list[str]:
        return [models("mock:m", f"{question}{i}", sample=i) for i in range(12)]

    assert ensemble("q") == [f"q{i}" for i in range(12)]
    assert handler.max <= 4


def test_waiting_for_a_slot_is_bounded_by_the_deadline() -> None:
    release = threading.Event()
    started = threading.Event()

    def handler(request: Request) -> str:
        started.set()
        release.wait(10)
        return "ok"

    models.register_provider("mock", MockProvider(handler))
    models.configure("mock", concurrency=1)
    holder = threading.Thread(target=lambda: models("mock:m", "first"))
    holder.start()
    try:
        assert started.wait(10)
        begin = time.monotonic()
        with pytest.raises(xcs.ExecutionTimeout, match="concurrency slot"), xcs.deadline(0.1):
            models("mock:m", "second")
        assert time.monotonic() - begin < 5  # it gave up at the deadline, not later
    finally:
        release.set()
        holder.join(10)


def test_requests_per_minute(clock: FakeClock) -> None:
    models.configure("sim:echo", rpm=2)
    for i in range(2):
        models("sim:echo", f"q{i}")  # the bucket holds a minute's worth: no wait
    assert clock.sleeps == []
    models("sim:echo", "third")
    assert clock.sleeps == [pytest.approx(30.0)]  # one request every 30 s


def test_tokens_per_minute_reserve_then_charge_actual_usage(clock: FakeClock) -> None:
    models.configure("sim", tpm=600)  # 10 tokens a second
    # Reserve: 8 characters / 4 = 2 prompt tokens + max_tokens 100 = 102.
    models("sim:echo", "abcd efg", max_tokens=100)
    bucket = models_bucket("sim", "tpm")
    # Actual usage: 5 prompt tokens (2 words + 3) + 2 completion tokens = 7.
    assert bucket.tokens == pytest.approx(600 - 7)
    assert clock.sleeps == []


def test_a_tpm_wait_is_bounded_by_the_deadline(clock: FakeClock) -> None:
    models.configure("sim", tpm=60)  # 1 token a second
    models("sim:echo", "word " * 50, max_tokens=1)  # uses 54 of the 60 tokens
    with pytest.raises(xcs.ExecutionTimeout, match="tpm"), xcs.deadline(3):
        models("sim:echo", "hi", max_tokens=30)  # needs 31: would wait 25 s
    assert clock.sleeps == []


def models_bucket(scope: str, kind: str) -> TokenBucket:
    from xcs.models._registry import registry

    (limiter,) = [lim for lim in registry.limiter_snapshot() if lim.scope == scope]
    bucket = getattr(limiter, kind)
    assert isinstance(bucket, TokenBucket)
    return bucket


def test_token_bucket(clock: FakeClock) -> None:
    bucket = TokenBucket(120)  # 2 a second, holds 120
    bucket.take(100, None, "test")
    assert bucket.tokens == pytest.approx(20)
    bucket.take(30, None, "test")  # 10 short: waits 5 s
    assert clock.sleeps == [pytest.approx(5.0)]
    assert bucket.tokens == pytest.approx(0)
    clock.advance(1000)
    assert bucket.tokens == pytest.approx(120)  # never more than a minute's worth
    bucket.take(500, None, "test")  # more than it holds: waits for full, goes negative
    assert bucket.tokens == pytest.approx(-380)
    bucket.adjust(-400)  # a refund
    assert bucket.tokens == pytest.approx(20)


def test_settings_are_validated_and_readable() -> None:
    with pytest.raises(xcs.ValidationError, match="unknown parameter concurency"):
        models.configure("sim", concurency=3)
    with pytest.raises(xcs.ValidationError, match="concurrency"):
        models.configure("sim", concurrency=0)
    with pytest.raises(xcs.ValidationError, match="unknown model provider"):
        models.configure("nope", concurrency=1)
    with pytest.raises(xcs.ValidationError, match="scope"):
        models.configure("sim:echo?latency=1", concurrency=1)
    models.configure("sim", timeout=5, concurrency=8)
    models.configure("sim:echo", max_attempts=2, concurrency=2)
    echo = models.settings("sim:echo")
    assert (echo.timeout, echo.max_attempts, echo.concurrency) == (5, 2, 2)
    assert models.settings("sim").concurrency == 8
    models.configure("sim:echo", max_attempts=None)
    assert models.settings("sim:echo").max_attempts == 4  # back to the default


@given(
    takes=st.lists(st.tuples(st.integers(1, 120), st.floats(0, 30, allow_nan=False)), max_size=40)
)
def test_a_token_bucket_never_lets_more_through_than_its_rate(
    takes: list[tuple[int, float]],
) -> None:
    """Over any schedule, what was taken by time t is at most one bucket plus the
    refill since the start: the limit holds whatever the pattern of calls."""
    clock = FakeClock(start=0.0)
    with use_clock(clock):
        bucket = TokenBucket(120)  # 2 a second, holds 120
        taken = 0
        for amount, pause in takes:
            clock.advance(pause)
            bucket.take(amount, None, "test")
            taken += amount
            assert taken <= 120 + 2 * clock.now() + 1e-6
