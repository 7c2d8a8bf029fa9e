"""openai: through the real openai SDK against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable

import pytest

import xcs
from xcs.errors import (
    CircuitOpenError,
    InvalidRequestError,
    ProviderNotInstalledError,
    ProviderTimeoutError,
)
from xcs.models import FakeClock, ModelBinding, bind, models
from xcs.models._registry import registry

openai = pytest.importorskip("openai")

from _fake_openai import (  # noqa: E402
    FakeOpenAIServer,
    Reply,
    chat_reply,
    echo,
    error_body,
)

KEY = "sk-test-0123456789abcdef"


def model(server: FakeOpenAIServer, **params: object) -> ModelBinding:
    return bind("openai:fake-model", base_url=server.base_url, api_key=KEY, **params)


def sequence(*replies: Reply) -> Callable[[dict[str, object], int], Reply]:
    """Answer the i-th request with the i-th reply, then echo."""

    def behaviour(body: dict[str, object], index: int) -> Reply:
        return replies[index] if index < len(replies) else echo(body, index)  # type: ignore[arg-type]

    return behaviour


# ---------------------------------------------------------------------------
# Normal replies


def test_a_normal_reply(server: FakeOpenAIServer) -> None:
    answer = model(server)(
        "hello there", system="be brief", temperature=0.3, max_tokens=20, stop=["\n"], seed=7
    )
    assert answer == "hello there"
    assert answer.model == "openai:fake-model"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (7, 3)
    assert answer.finish_reason == "stop"
    assert answer.cost_usd is None  # another server's prices are unknown
    (body,) = server.requests
    assert body["model"] == "fake-model"
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
    assert (body["temperature"], body["max_tokens"], body["stop"], body["seed"]) == (
        0.3,
        20,
        ["\n"],
        7,
    )
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"


def test_latency_is_measured(server: FakeOpenAIServer) -> None:
    server.behaviour = lambda body, i: Reply(body=chat_reply("slow"), delay=0.2)
    answer = model(server)("q")
    assert answer == "slow"
    assert answer.latency_s >= 0.2


def test_one_client_per_endpoint_shared_and_closed(server: FakeOpenAIServer) -> None:
    for i in range(3):
        model(server)(f"q{i}")
    bind("openai:other-model", base_url=server.base_url, api_key=KEY)("q")
    (endpoint,) = registry.endpoints()  # same server, same key: one endpoint, one client
    client = endpoint.provider._client  # type: ignore[attr-defined]
    bind("openai:fake-model", base_url=server.base_url, api_key=KEY + "x")("q")
    assert len(registry.endpoints()) == 2  # another key: another client
    registry.close()  # what the exit hook does
    assert client.is_closed()
    assert registry.endpoints() == []


def test_the_key_can_come_from_the_environment(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123")
    assert models("openai:fake-model", "q", base_url=server.base_url) == "q"
    assert server.headers[0]["authorization"] == "Bearer sk-from-env-123"


def test_a_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(xcs.AuthenticationError, match="OPENAI_API_KEY") as info:
        models("openai:gpt-4o-mini", "q")
    assert info.value.env_var == "OPENAI_API_KEY"  # type: ignore[attr-defined]


def test_a_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # import openai -> ImportError
    with pytest.raises(ProviderNotInstalledError, match=r"pip install 'xcs-jit\[openai\]'") as info:
        models("openai:gpt-4o-mini", "q", api_key=KEY)
    assert isinstance(info.value, ImportError)


# ---------------------------------------------------------------------------
# Failures, retries, timeouts


def test_429_with_retry_after_is_retried_after_that_long(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    server.behaviour = sequence(
        Reply(429, error_body("slow down", "rate_limit"), headers={"retry-after": "3"}),
        Reply(429, error_body("slow down", "rate_limit"), headers={"retry-after-ms": "1500"}),
    )
    assert model(server)("q") == "q"
    assert server.count == 3
    # Each Retry-After, jittered up to 20% later (never earlier).
    assert len(clock.sleeps) == 2
    assert 3.0 <= clock.sleeps[0] <= 3.6
    assert 1.5 <= clock.sleeps[1] <= 1.8


def test_429_to_the_end_is_a_rate_limit_error(server: FakeOpenAIServer, clock: FakeClock) -> None:
    server.behaviour = lambda body, i: Reply(
        429, error_body("slow down", "rate_limit"), headers={"retry-after": "2"}
    )
    with pytest.raises(xcs.RateLimitError, match="gave up after 3 attempts") as info:
        model(server)("q", max_attempts=3)
    assert info.value.retry_after == 2.0  # type: ignore[attr-defined]
    assert info.value.status == 429  # type: ignore[attr-defined]
    assert isinstance(info.value.__cause__, openai.RateLimitError)
    assert server.count == 3


def test_500_is_retried(server: FakeOpenAIServer, clock: FakeClock) -> None:
    server.behaviour = sequence(Reply(500, error_body("boom")), Reply(503, error_body("busy")))
    assert model(server)("q") == "q"
    assert server.count == 3
    assert len(clock.sleeps) == 2


def test_500_to_the_end(server: FakeOpenAIServer, clock: FakeClock) -> None:
    server.behaviour = lambda body, i: Reply(500, error_body("boom"))
    with pytest.raises(xcs.ProviderError, match="HTTP 500") as info:
        model(server)("q", max_attempts=2)
    err = info.value
    assert type(err) is xcs.ProviderError
    assert (err.status, err.attempts, err.provider, err.model) == (500, 2, "openai", "fake-model")  # type: ignore[attr-defined]
    assert isinstance(err.__cause__, openai.InternalServerError)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b'{"id": "x", "choices": [ {"message": '),  # cut short
        Reply(200, b"<html>a proxy error page</html>"),
        Reply(200, {"id": "x", "object": "chat.completion"}),  # no choices
    ],
    ids=["truncated-json", "not-json", "no-choices"],
)
def test_malformed_replies_are_retried_then_reported(
    server: FakeOpenAIServer, clock: FakeClock, reply: Reply
) -> None:
    server.behaviour = sequence(reply)
    assert model(server)("q") == "q"  # the second attempt is fine
    server.behaviour = lambda body, i: reply
    with pytest.raises(xcs.ProviderError, match="malformed response") as info:
        model(server)("again", max_attempts=2)
    assert "gave up after 2 attempts" in str(info.value)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, InvalidRequestError),
        (404, InvalidRequestError),
        (422, InvalidRequestError),
        (401, xcs.AuthenticationError),
        (403, xcs.AuthenticationError),
    ],
)
def test_client_errors_are_raised_at_once(
    server: FakeOpenAIServer, clock: FakeClock, status: int, error_class: type[Exception]
) -> None:
    server.behaviour = lambda body, i: Reply(status, error_body("no", "invalid_request_error"))
    with pytest.raises(error_class, match=f"HTTP {status}") as info:
        model(server)("q")
    assert type(info.value) is error_class
    assert server.count == 1
    assert clock.sleeps == []
    assert isinstance(info.value.__cause__, openai.APIStatusError)


def test_a_hang_times_out_and_is_retried(server: FakeOpenAIServer, clock: FakeClock) -> None:
    server.behaviour = lambda body, i: Reply(body=chat_reply("late"), delay=60)
    with pytest.raises(ProviderTimeoutError, match="gave up after 2 attempts") as info:
        model(server)("q", timeout=0.3, max_attempts=2)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value.__cause__, openai.APITimeoutError)
    assert server.count == 2


def test_a_hang_is_cut_by_the_deadline(server: FakeOpenAIServer) -> None:
    server.behaviour = lambda body, i: Reply(body=chat_reply("late"), delay=60)
    with pytest.raises(xcs.ExecutionTimeout) as info, xcs.deadline(0.4):
        model(server)("q", timeout=60)
    assert isinstance(info.value.__cause__, ProviderTimeoutError)
    assert server.count == 1


def test_connection_refused_is_retried_then_reported(clock: FakeClock) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(xcs.ProviderError, match="connection failed") as info:
        models("openai:m", "q", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_attempts=2)
    assert isinstance(info.value.__cause__, openai.APIConnectionError)
    assert len(clock.sleeps) == 1


# ---------------------------------------------------------------------------
# Limits and the breaker, as the server sees them


def test_the_concurrency_limit_as_the_server_sees_it(server: FakeOpenAIServer) -> None:
    # The first requests are held until 3 are in flight together: the server's
    # maximum then shows the limit was reached, and never passed, whatever the timing.
    server.behaviour = lambda body, i: Reply(
        body=chat_reply(body["messages"][-1]["content"]),
        wait_for_in_flight=3,  # type: ignore[index]
    )
    models.configure("openai:fake-model", concurrency=3)
    ask = model(server)
    results: list[str] = [""] * 8
    start = threading.Barrier(8)

    def call(i: int) -> None:
        start.wait(10)
        results[i] = ask(f"q{i}")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [f"q{i}" for i in range(8)]
    assert server.max_in_flight == 3
    assert server.count == 8


def test_a_jitted_ensemble_runs_concurrently_within_the_limit(server: FakeOpenAIServer) -> None:
    models.configure("openai", concurrency=4)
    ask = model(server)

    def ensemble(question: str) -> list[str]:
        return [ask(f"{question} #{i}", sample=i) for i in range(8)]

    fast = xcs.jit(ensemble)
    # The jit overlaps a region only once it has measured that its calls block; a
    # server that answers in microseconds would not show that, one that waits does.
    server.behaviour = lambda body, i: Reply(
        body=chat_reply(body["messages"][-1]["content"]), delay=0.05
    )  # type: ignore[index]
    assert fast("warm-up") == ensemble("warm-up")
    server.behaviour = lambda body, i: Reply(
        body=chat_reply(body["messages"][-1]["content"]),
        wait_for_in_flight=4,  # type: ignore[index]
    )
    assert fast("q") == [f"q #{i}" for i in range(8)]
    assert server.max_in_flight == 4


def test_the_breaker_opens_on_a_failing_server(server: FakeOpenAIServer, clock: FakeClock) -> None:
    server.behaviour = lambda body, i: Reply(500, error_body("down"))
    models.configure("openai", failure_threshold=3, reset_after=20)
    for _ in range(3):
        with pytest.raises(xcs.ProviderError, match="HTTP 500"):
            model(server)("q", max_attempts=1)
    with pytest.raises(CircuitOpenError):
        model(server)("q")
    assert server.count == 3  # nothing was sent while open
    server.behaviour = echo
    clock.advance(20)
    assert model(server)("probe") == "probe"
    assert model(server)("after") == "after"
    assert server.count == 5


def test_requests_carry_no_sdk_retries(server: FakeOpenAIServer, clock: FakeClock) -> None:
    # The SDK's own retries are off: every attempt the server sees is one of ours.
    server.behaviour = lambda body, i: Reply(500, error_body("boom"))
    with pytest.raises(xcs.ProviderError):
        model(server)("q", max_attempts=1)
    assert server.count == 1


def test_body_is_what_the_sdk_sent(server: FakeOpenAIServer) -> None:
    model(server)("q")
    assert json.loads(json.dumps(server.requests[0]))["messages"][0]["content"] == "q"
