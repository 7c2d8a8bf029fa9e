"""Retries, backoff, Retry-After, deadlines and the circuit breaker (fake clock throughout)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

import xcs
from xcs.errors import CircuitOpenError, InvalidRequestError, ProviderTimeoutError
from xcs.models import FakeClock, MockProvider, Request, mark, models
from xcs.models._breaker import BreakerState
from xcs.models._registry import registry


class Script:
    """A mock provider's handler that plays a list of outcomes, then answers "ok"."""

    def __init__(self, *outcomes: Callable[[], Exception] | str) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> str:
        self.requests.append(request)
        if not self.outcomes:
            return "ok"
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, str):
            return outcome
        raise outcome()


def http500() -> Exception:
    cause = RuntimeError("the SDK's own exception")
    err = mark(xcs.ProviderError("HTTP 500 boom"), retryable=True, status=500)
    err.__cause__ = cause
    return err


def http429(after: float | None = None) -> Callable[[], Exception]:
    def make() -> Exception:
        return mark(
            xcs.RateLimitError("HTTP 429 slow down"),
            retryable=True,
            server_fault=False,
            status=429,
            retry_after=after,
        )

    return make


def http400() -> Exception:
    return mark(InvalidRequestError("HTTP 400 bad"), retryable=False, status=400)


def timeout() -> Exception:
    return mark(ProviderTimeoutError("timed out"), retryable=True)


@pytest.fixture
def script() -> Callable[..., Script]:
    def install(*outcomes: Callable[[], Exception] | str) -> Script:
        handler = Script(*outcomes)
        models.register_provider("mock", MockProvider(handler))
        return handler

    return install


# ---------------------------------------------------------------------------
# Retries and backoff


def test_transient_failures_are_retried_with_backoff(
    script: Callable[..., Script], clock: FakeClock
) -> None:
    handler = script(http500, timeout, http500)
    models.configure("mock", backoff_base=1.0, backoff_max=3.0)
    assert models("mock:m", "hi") == "ok"
    assert [r.attempt for r in handler.requests] == [0, 1, 2, 3]
    assert len(clock.sleeps) == 3
    for retry, slept in enumerate(clock.sleeps):
        assert 0 <= slept <= min(3.0, 1.0 * 2**retry)  # full jitter under the cap
    stats = models.statistics()["models"]["mock:m"]
    assert (stats.calls, stats.attempts, stats.retries, stats.failures) == (1, 4, 3, 0)


def test_attempts_are_bounded_then_the_last_error_class_is_raised(
    script: Callable[..., Script], clock: FakeClock
) -> None:
    handler = script(*[http500] * 10)
    with pytest.raises(xcs.ProviderError) as info:
        models("mock:m", "hi", max_attempts=3)
    err = info.value
    assert type(err) is xcs.ProviderError
    assert str(err) == "mock:m: HTTP 500 boom (gave up after 3 attempts)"
    assert (err.status, err.attempts, err.provider, err.model) == (500, 3, "mock", "m")  # type: ignore[attr-defined]
    assert isinstance(err.__cause__, RuntimeError)  # the SDK's exception, chained
    assert len(handler.requests) == 3
    assert len(clock.sleeps) == 2  # no sleep after the last attempt


def test_timeouts_exhausted_raise_provider_timeout(
    script: Callable[..., Script], clock: FakeClock
) -> None:
    script(timeout, timeout)
    with pytest.raises(ProviderTimeoutError, match="gave up after 2 attempts"):
        models("mock:m", "hi", max_attempts=2)


@pytest.mark.parametrize("make", [http400])
def test_client_errors_are_not_retried(
    script: Callable[..., Script], clock: FakeClock, make: Callable[[], Exception]
) -> None:
    handler = script(make, "never reached")
    with pytest.raises(InvalidRequestError) as info:
        models("mock:m", "hi")
    assert info.value.attempts == 1  # type: ignore[attr-defined]
    assert len(handler.requests) == 1
    assert clock.sleeps == []


def test_a_provider_bug_is_not_retried_or_wrapped(
    script: Callable[..., Script], clock: FakeClock
) -> None:
    handler = script(lambda: KeyError("bug"))
    with pytest.raises(KeyError):
        models("mock:m", "hi")
    assert len(handler.requests) == 1


def test_retry_after_is_honoured(script: Callable[..., Script], clock: FakeClock) -> None:
    script(http429(after=7.5))
    models.configure("mock", backoff_base=0.1)
    assert models("mock:m", "hi") == "ok"
    (slept,) = clock.sleeps
    assert 7.5 <= slept <= 7.5 * 1.2  # the Retry-After, jittered up to 20% later


def test_a_retry_after_beyond_the_maximum_gives_up_at_once(
    script: Callable[..., Script], clock: FakeClock
) -> None:
    handler = script(http429(after=3600))
    with pytest.raises(xcs.RateLimitError) as info:
        models("mock:m", "hi")
    assert info.value.retry_after == 3600  # type: ignore[attr-defined]
    assert clock.sleeps == []
    assert len(handler.requests) == 1


def test_a_per_request_retry_after_delays_that_request_only(
    script: Callable[..., Script], clock: FakeClock
) -> None:
    script(http429(after=5.0))
    with pytest.raises(xcs.RateLimitError):
        models("mock:m", "first", max_attempts=1)
    assert models("mock:m", "second") == "ok"  # not paused: sent at once
    assert clock.sleeps == []


def test_an_account_wide_429_pauses_the_model_only(
    script: Callable[..., Script], clock: FakeClock
) -> None:
    def account_429() -> Exception:
        err = http429(after=5.0)()
        err.account_reset = 6.0  # type: ignore[attr-defined]  # remaining-requests: 0
        return err

    script(account_429)
    with pytest.raises(xcs.RateLimitError):
        models("mock:m", "first", max_attempts=1)
    assert models("mock:m", "second") == "ok"  # waits out the account's reset
    assert clock.sleeps == [6.0]
    assert models("mock:other", "third") == "ok"  # another model is not paused
    assert clock.sleeps == [6.0]


def test_rate_limited_to_the_end_raises_rate_limit_error(clock: FakeClock) -> None:
    with pytest.raises(xcs.RateLimitError, match="gave up after 3 attempts") as info:
        models("sim:echo?rate_limit_rate=1&retry_after=2", "hi", max_attempts=3)
    assert info.value.retry_after == 2  # type: ignore[attr-defined]
    assert len(clock.sleeps) == 2
    assert all(2.0 <= s <= 2.4 for s in clock.sleeps)


# ---------------------------------------------------------------------------
# Timeouts and deadlines


def test_per_call_timeout_reaches_the_provider(script: Callable[..., Script]) -> None:
    handler = script()
    models("mock:m", "hi", timeout=2.5)
    models.configure("mock:m", timeout=9)
    models("mock:m", "hi")
    models.configure("mock", timeout=11)
    models("mock:m", "hi")
    models("mock:n", "hi")
    assert [r.timeout for r in handler.requests] == [2.5, 9, 9, 11]


def test_the_deadline_shortens_the_attempt_timeout(script: Callable[..., Script]) -> None:
    handler = script()
    with xcs.deadline(5):
        models("mock:m", "hi", timeout=60)
    assert 0 < handler.requests[0].timeout <= 5


def test_an_attempt_cut_by_the_deadline_raises_execution_timeout(clock: FakeClock) -> None:
    with pytest.raises(xcs.ExecutionTimeout) as info, xcs.deadline(30):
        models("sim:echo?timeout_rate=1", "hi", timeout=60)
    assert isinstance(info.value.__cause__, ProviderTimeoutError)
    assert len(clock.sleeps) == 1
    assert clock.sleeps[0] <= 30  # the hang, cut at the deadline


def test_never_sleeps_past_the_deadline(script: Callable[..., Script], clock: FakeClock) -> None:
    handler = script(http429(after=10.0), "not reached")
    with pytest.raises(xcs.ExecutionTimeout, match="would start too late") as info, xcs.deadline(3):
        models("mock:m", "hi")
    assert clock.sleeps == []  # the 10 s backoff was never started
    assert isinstance(info.value.__cause__, xcs.RateLimitError)
    assert len(handler.requests) == 1


def test_an_expired_deadline_sends_nothing(script: Callable[..., Script]) -> None:
    import time

    handler = script()
    with pytest.raises(xcs.ExecutionTimeout), xcs.deadline(0.01):
        time.sleep(0.02)
        models("mock:m", "hi")
    assert handler.requests == []


def test_the_deadline_follows_calls_into_jitted_code(script: Callable[..., Script]) -> None:
    handler = script()

    @xcs.jit
    def ensemble(q: str) -> list[str]:
        return [models("mock:m", q, sample=i) for i in range(4)]

    with xcs.deadline(7):
        assert ensemble("q") == ["ok"] * 4
    assert all(0 < r.timeout <= 7 for r in handler.requests)


# ---------------------------------------------------------------------------
# The circuit breaker


def test_the_breaker_opens_fails_fast_then_probes(
    script: Callable[..., Script], clock: FakeClock
) -> None:
    handler = script(*[http500] * 3)
    models.configure("mock", failure_threshold=3, reset_after=30)
    with pytest.raises(xcs.ProviderError):
        models("mock:m", "hi", max_attempts=3)
    (endpoint,) = registry.endpoints()
    assert endpoint.breaker("m").state is BreakerState.OPEN
    sent = len(handler.requests)

    with pytest.raises(CircuitOpenError, match="nothing was sent") as info:
        models("mock:m", "again")
    assert len(handler.requests) == sent
    assert info.value.retry_after == pytest.approx(30)  # type: ignore[attr-defined]

    clock.advance(30)  # reset_after passed: one probe goes through and succeeds
    assert models("mock:m", "probe") == "ok"
    assert endpoint.breaker("m").state is BreakerState.CLOSED
    assert models.statistics()["breakers"][endpoint.scope("m")].times_opened == 1


def test_a_failed_probe_opens_the_breaker_again(
    script: Callable[..., Script], clock: FakeClock
) -> None:
    script(*[http500] * 3)
    models.configure("mock", failure_threshold=2, reset_after=10)
    with pytest.raises(xcs.ProviderError):
        models("mock:m", "hi", max_attempts=2)
    clock.advance(10)
    with pytest.raises(xcs.ProviderError, match="HTTP 500"):
        models("mock:m", "probe", max_attempts=1)
    (endpoint,) = registry.endpoints()
    assert endpoint.breaker("m").state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        models("mock:m", "hi")


def test_an_open_breaker_stops_the_retries_of_a_call(
    script: Callable[..., Script], clock: FakeClock
) -> None:
    handler = script(*[http500] * 10)
    models.configure("mock", failure_threshold=2)
    with pytest.raises(CircuitOpenError) as info:
        models("mock:m", "hi", max_attempts=10)
    assert len(handler.requests) == 2
    assert isinstance(info.value.__cause__, xcs.ProviderError)  # the last failure


def test_rate_limits_and_client_errors_do_not_open_the_breaker(
    script: Callable[..., Script], clock: FakeClock
) -> None:
    script(*[http429(after=0.0)] * 3, "ok", http400, http400)
    models.configure("mock", failure_threshold=2)
    models("mock:m", "hi", max_attempts=5)
    for _ in range(2):
        with pytest.raises(InvalidRequestError):
            models("mock:m", "hi")
    (endpoint,) = registry.endpoints()
    assert endpoint.breaker("m").state is BreakerState.CLOSED


def test_half_open_lets_exactly_one_probe_through(clock: FakeClock) -> None:
    release = threading.Event()
    entered = threading.Event()
    calls: list[str] = []

    def handler(request: Request) -> str:
        calls.append(request.messages[-1].content)
        if request.messages[-1].content == "fail":
            raise mark(xcs.ProviderError("HTTP 503"), retryable=True, status=503)
        entered.set()
        assert release.wait(10)
        return "ok"

    models.register_provider("mock", MockProvider(handler))
    models.configure("mock", failure_threshold=1, reset_after=5)
    with pytest.raises(xcs.ProviderError):
        models("mock:m", "fail", max_attempts=1)
    clock.advance(5)
    results: list[str] = []
    probe = threading.Thread(target=lambda: results.append(models("mock:m", "probe")))
    probe.start()
    assert entered.wait(10)
    with pytest.raises(CircuitOpenError, match="half-open"):
        models("mock:m", "second")
    release.set()
    probe.join(10)
    assert results == ["ok"]
    assert calls == ["fail", "probe"]
    assert models("mock:m", "after") == "ok"  # closed again
