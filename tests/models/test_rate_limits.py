"""Rate limits through the real ``openai`` SDK: a per-request 429 delays its own request
only, account-wide signals pause the model, the AIMD window settles near a server's
real limit, and breakers are per model. Proven by what the fake server saw (arrival
order, in-flight counts, statuses), not by timing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import xcs
from xcs.errors import CircuitOpenError
from xcs.models import FakeClock, ModelBinding, bind, models

openai = pytest.importorskip("openai")

from _fake_openai import (  # noqa: E402
    FakeOpenAIServer,
    Reply,
    account_exhausted,
    chat_reply,
    echo,
    error_body,
    every_nth_once,
    prompt_of,
)

KEY = "sk-test-0123456789abcdef"


def model(server: FakeOpenAIServer, name: str = "fake-model", **params: object) -> ModelBinding:
    return bind(f"openai:{name}", base_url=server.base_url, api_key=KEY, **params)


def test_a_per_request_429_does_not_hold_back_other_requests(server: FakeOpenAIServer) -> None:
    # "a" is refused once with Retry-After 0.3 s. While its retry waits, "b" is sent and
    # answered: the server sees b arrive before a's second attempt. Before this change a
    # Retry-After paused every call of the model, and b arrived after a's retry.
    def behaviour(body: dict[str, object], index: int) -> Reply:
        if prompt_of(body) == "a" and index == 0:  # type: ignore[arg-type]
            return Reply(429, error_body("slow", "rate_limit"), headers={"retry-after": "0.3"})
        return echo(body, index)  # type: ignore[arg-type]

    server.behaviour = behaviour
    ask = model(server)
    result: list[str] = []
    first = threading.Thread(target=lambda: result.append(ask("a")))
    first.start()
    assert server.wait_for(lambda: bool(server.log) and server.log[0].status == 429)
    assert ask("b") == "b"
    first.join(10)
    assert result == ["a"]
    order = [(entry.prompt, entry.status) for entry in server.log]
    assert order == [("a", 429), ("b", 200), ("a", 200)]
    window = models.statistics()["adaptive"]["openai:fake-model@" + server.base_url]
    assert window.decreases == 0  # one 429 is sporadic: the window stays whole
    assert window.rate_limited == 1


def test_sporadic_429s_leave_the_window_whole(server: FakeOpenAIServer) -> None:
    server.behaviour = every_nth_once(7, retry_after=0.01)
    models.configure("openai", concurrency=8)
    ask = model(server)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: ask(f"q{i}"), range(42)))
    assert answers == [f"q{i}" for i in range(42)]
    assert server.statuses().count(429) == 6  # each 7th prompt, once
    stats = xcs.stats()["adaptive"]["openai:fake-model@" + server.base_url]
    assert stats["decreases"] == 0
    assert stats["window"] == 8
    assert stats["cap"] == 8


def test_the_window_settles_near_the_servers_real_limit(server: FakeOpenAIServer) -> None:
    # The server serves 3 at once and refuses the rest with 429 (Retry-After 20 ms).
    # Sixteen threads keep calling with a configured concurrency of 16: the window
    # halves to the limit's neighbourhood, and the server's refusals stay few, where
    # the same sixteen threads calling the SDK directly (its own retries honouring
    # the Retry-After) are refused again and again.
    server.limit = 3
    server.limit_retry_after = 0.02
    server.behaviour = lambda body, i: Reply(body=chat_reply(prompt_of(body)), delay=0.02)
    models.configure("openai", concurrency=16, max_attempts=50)
    ask = model(server)
    calls = 96
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: ask(f"q{i}"), range(calls)))
    assert answers == [f"q{i}" for i in range(calls)]
    ours = server.statuses().count(429)
    window = models.statistics()["adaptive"]["openai:fake-model@" + server.base_url]
    assert window.decreases >= 2  # 16 -> 8 -> 4 at least
    # Refusals stay well below one per call (27-30 of 96 measured); the window's value
    # at the end is no measure (the batch's tail, narrower than the window, grows it).
    assert ours <= calls // 2
    assert server.max_served <= 3

    server.log.clear()
    client = openai.OpenAI(api_key=KEY, base_url=server.base_url, max_retries=50)
    with ThreadPoolExecutor(16) as pool:
        direct = list(
            pool.map(
                lambda i: client.chat.completions.create(
                    model="fake-model", messages=[{"role": "user", "content": f"q{i}"}]
                ),
                range(calls),
            )
        )
    client.close()
    assert len(direct) == calls
    theirs = server.statuses().count(429)
    assert ours < theirs


def test_an_exhausted_account_pauses_the_model_until_its_reset(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    # A successful answer saying x-ratelimit-remaining-requests: 0 (reset in 2 s):
    # the next call of the model waits 2 s before it is sent; another model does not.
    server.behaviour = account_exhausted("2s")
    ask = model(server)
    assert ask("first") == "first"
    assert clock.sleeps == []
    assert ask("second") == "second"
    assert clock.sleeps == [2.0]
    server.behaviour = echo
    assert model(server, "other-model")("third") == "third"
    assert clock.sleeps == [2.0]


def test_a_429_saying_the_account_is_exhausted_pauses_the_model(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    headers = {
        "retry-after": "1",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    server.behaviour = lambda body, i: (
        Reply(429, error_body("tokens", "rate_limit"), headers=headers) if i == 0 else echo(body, i)
    )
    models.configure("openai", max_retry_after=600)
    assert model(server)("q") == "q"
    # The retry waited its own Retry-After (jittered), then the account's pause.
    retry, pause = clock.sleeps
    assert 1.0 <= retry <= 1.2
    assert 358 <= pause <= 360.0


def test_the_breaker_is_per_model(server: FakeOpenAIServer, clock: FakeClock) -> None:
    # One server hosts two models; "broken" answers 500. Its breaker opens; the other
    # model on the same base_url keeps working.
    server.behaviour = lambda body, i: (
        Reply(500, error_body("down"))
        if body["model"] == "broken"  # type: ignore[index]
        else echo(body, i)  # type: ignore[arg-type]
    )
    models.configure("openai", failure_threshold=2, reset_after=60)
    broken, healthy = model(server, "broken"), model(server, "healthy")
    for _ in range(2):
        with pytest.raises(xcs.ProviderError, match="HTTP 500"):
            broken("q", max_attempts=1)
    with pytest.raises(CircuitOpenError, match="openai:broken@"):
        broken("q")
    assert healthy("still up") == "still up"
    states = {name: row["state"] for name, row in xcs.stats()["breakers"].items()}
    assert states == {
        f"openai:broken@{server.base_url}": "open",
        f"openai:healthy@{server.base_url}": "closed",
    }


# ---------------------------------------------------------------------------
# Cold start: the SDK and its client are made before the first call, once


def test_bind_makes_the_client_in_the_background(server: FakeOpenAIServer) -> None:
    from xcs.models._registry import registry

    ask = model(server)  # bind: the endpoint (SDK import, client) is made in a thread
    for _ in range(3000):
        if registry.endpoints():
            break
        time.sleep(0.01)
    assert server.count == 0  # made without a request
    (endpoint,) = registry.endpoints()
    assert ask("q") == "q"
    assert registry.endpoints() == [endpoint]  # the first call used it, made no other


def test_making_an_endpoint_holds_no_other_call_back() -> None:
    # A provider whose construction blocks (an SDK import, a slow client) must not
    # stop calls to other endpoints: it is made outside the registry's lock.
    from xcs.models import Completion, EndpointConfig, Provider, Request

    entered, release = threading.Event(), threading.Event()

    class Slow(Provider):
        name = "slow"

        def __init__(self, endpoint: EndpointConfig) -> None:
            entered.set()
            assert release.wait(10)

        def complete(self, request: Request) -> Completion:
            return Completion("slow")

    models.register_provider("slow", Slow)
    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(str(models("slow:m", "q"))))
    second = threading.Thread(target=lambda: results.append(str(models("slow:m", "q"))))
    first.start()
    assert entered.wait(10)
    second.start()  # waits for the first's endpoint instead of making another
    assert models("sim:echo", "not held back") == "not held back"
    release.set()
    first.join(10)
    second.join(10)
    assert results == ["slow", "slow"]
