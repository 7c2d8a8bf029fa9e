"""The sim: provider: deterministic answers, latency distribution, seeded faults."""

from __future__ import annotations

import math
import statistics

import pytest

import xcs
from xcs.errors import ProviderTimeoutError
from xcs.models import FakeClock, models, use_clock
from xcs.models._registry import registry


def test_answers_are_deterministic_functions_of_the_request() -> None:
    a = models("sim:chat", "question", temperature=0.7, sample=1)
    assert a == models("sim:chat", "question", temperature=0.7, sample=1)
    assert a != models("sim:chat", "question", temperature=0.7, sample=2)
    assert a != models("sim:chat", "question", temperature=0.7, seed=5, sample=1)
    assert a != models("sim:chat", "other question", temperature=0.7, sample=1)
    assert 5 <= len(a.split()) <= 40
    assert a.usage.completion_tokens == len(a.split())


def test_at_temperature_zero_seed_and_sample_do_not_matter() -> None:
    base = models("sim:chat", "q", temperature=0)
    assert models("sim:chat", "q", temperature=0, sample=3, seed=9) == base


def test_echo_max_tokens_and_stop() -> None:
    assert models("sim:echo", "a b c d") == "a b c d"
    cut = models("sim:echo", "a b c d", max_tokens=2)
    assert (cut, cut.finish_reason, cut.usage.completion_tokens) == ("a b", "length", 2)
    stopped = models("sim:echo", "a b. c d", stop=[".", "c"])
    assert (stopped, stopped.finish_reason) == ("a b", "stop")
    assert (
        models(
            "sim:echo",
            [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "x"},
                {"role": "user", "content": "last"},
            ],
        )
        == "last"
    )


def test_latency_is_slept_on_the_model_clock(clock: FakeClock) -> None:
    answer = models("sim:echo?latency=0.25&per_token=0.01", "a b c d")
    assert clock.sleeps == [pytest.approx(0.25 + 4 * 0.01)]
    assert answer.latency_s == pytest.approx(0.29)


def test_latency_distribution_is_lognormal_around_the_median(clock: FakeClock) -> None:
    for i in range(400):
        models("sim:echo?latency=0.2&sigma=0.5&seed=3", f"prompt {i}")
    logs = [math.log(s) for s in clock.sleeps]
    assert statistics.median(clock.sleeps) == pytest.approx(0.2, rel=0.15)
    assert statistics.stdev(logs) == pytest.approx(0.5, rel=0.15)


def test_slow_tail(clock: FakeClock) -> None:
    for i in range(400):
        models("sim:echo?latency=0.1&slow_rate=0.1&slow_factor=20", f"p{i}")
    slow = [s for s in clock.sleeps if s > 1.0]
    assert 20 <= len(slow) <= 60  # about 10% of 400
    assert all(s == pytest.approx(2.0) for s in slow)


def test_faults_are_reproducible_per_request_and_attempt(clock: FakeClock) -> None:
    def outcomes() -> list[str]:
        seen = []
        for i in range(60):
            try:
                models(
                    "sim:echo?error_rate=0.3&rate_limit_rate=0.2&seed=11", f"q{i}", max_attempts=1
                )
                seen.append("ok")
            except xcs.RateLimitError:
                seen.append("429")
            except xcs.ProviderError:
                seen.append("500")
        return seen

    first = outcomes()
    assert outcomes() == first  # the same faults at the same calls, run after run
    assert {"ok", "429", "500"} <= set(first)
    models._reset()
    with use_clock(clock):
        assert outcomes() == first  # a fresh process state does not change them


def test_a_different_seed_gives_different_faults(clock: FakeClock) -> None:
    def failures(seed: int) -> list[int]:
        bad = []
        for i in range(40):
            try:
                models(f"sim:echo?error_rate=0.5&seed={seed}", f"q{i}", max_attempts=1)
            except xcs.ProviderError:
                bad.append(i)
        return bad

    assert failures(1) != failures(2)


def test_retries_draw_new_faults_per_attempt(clock: FakeClock) -> None:
    # With an error rate of 0.5, some request must fail its first attempt and succeed
    # on a later one: faults are drawn per attempt, not per request.
    models.configure("sim", failure_threshold=1000)  # keep the breaker out of it
    for i in range(20):
        answer = models("sim:echo?error_rate=0.5&seed=4", f"r{i}", max_attempts=10)
        assert answer == f"r{i}"
    stats = models.statistics()["models"]["sim:echo"]
    assert stats.retries > 0
    assert stats.failures == 0


def test_timeout_fault_hangs_until_the_attempt_timeout(clock: FakeClock) -> None:
    with pytest.raises(ProviderTimeoutError, match="timed out after 2 s") as info:
        models("sim:echo?timeout_rate=1", "hi", timeout=2, max_attempts=1)
    assert clock.sleeps == [2.0]
    assert isinstance(info.value, TimeoutError)


def test_a_latency_past_the_timeout_is_a_timeout(clock: FakeClock) -> None:
    with pytest.raises(ProviderTimeoutError):
        models("sim:echo?latency=5", "hi", timeout=1, max_attempts=1)
    assert clock.sleeps == [1.0]


def test_the_simulator_is_labelled() -> None:
    models("sim:echo?latency=0", "hi")
    (endpoint,) = registry.endpoints()
    assert "(simulator)" in repr(endpoint.provider)
    assert endpoint.provider.simulated
    with pytest.raises(xcs.ProviderError, match=r"\(simulated\)"):
        models("sim:echo?error_rate=1", "hi", max_attempts=1)
