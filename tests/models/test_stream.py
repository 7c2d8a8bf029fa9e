"""xcs.models.stream: chunks that join to the non-streamed answer, .response with
usage and cost, retries only before the first chunk, a dropped connection mid-stream
is a ProviderError, time to first token on the span."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
from _fake_openai import (
    FakeOpenAIServer,
    Reply,
    anthropic_stream_events,
    chat_reply,
    stream_events,
)

import xcs
from xcs.models import Cache, FakeClock, MockProvider, bind, mark, models

KEY = "sk-test-0123456789abcdef"


def test_sim_chunks_join_to_the_answer(clock: FakeClock) -> None:
    model_id = "sim:chat?per_token=0.01&latency=0.5&price_in=1&price_out=2"
    stream = models.stream(model_id, "tell me", temperature=0.7, sample=2)
    with pytest.raises(xcs.ValidationError, match="once the stream has ended"):
        stream.response
    chunks = list(stream)
    answer = models(model_id, "tell me", temperature=0.7, sample=2)
    assert len(chunks) == len(answer.split(" ")) > 1
    assert "".join(chunks) == answer == stream.response
    assert stream.response.usage == answer.usage
    assert stream.response.cost_usd == answer.cost_usd > 0
    assert stream.response.finish_reason == answer.finish_reason
    # The same simulated time in all, the first word after latency - per-token time.
    assert sum(clock.sleeps[: len(chunks)]) == pytest.approx(sum(clock.sleeps[len(chunks) :]))
    assert models.statistics()["models"]["sim:chat"].calls == 2


def test_binding_stream_and_what_a_stream_does_not_take() -> None:
    echo = bind("sim:echo", max_tokens=3)
    stream = echo.stream("one two three four")
    assert list(stream) == ["one", " two", " three"]
    assert stream.response.finish_reason == "length"

    import pydantic

    class City(pydantic.BaseModel):
        name: str

    with pytest.raises(xcs.ValidationError, match="cannot be streamed"):
        models.stream("sim:echo", "q", response_model=City)
    with pytest.raises(xcs.ValidationError, match="temprature"):
        models.stream("sim:echo", "q", temprature=1)


def test_a_failure_before_the_first_chunk_is_retried(clock: FakeClock) -> None:
    def handler(request: xcs.models.Request) -> str:
        if request.attempt == 0:
            raise mark(xcs.ProviderError("HTTP 503"), retryable=True, status=503)
        return "fine now"

    provider = MockProvider(handler)
    models.register_provider("mock", provider)
    stream = models.stream("mock:m", "q")
    assert list(stream) == ["fine now"]  # the default: one chunk per complete()
    assert len(provider.requests) == 2
    assert models.statistics()["models"]["mock:m"].retries == 1


def test_the_span_records_time_to_first_token() -> None:
    with xcs.trace() as t:
        list(models.stream("sim:echo", "a b c"))
    (span,) = [s for s in t.spans if s.kind == "model"]
    assert span.attrs["streamed"] is True
    assert span.attrs["ttft_s"] >= 0
    assert span.attrs["completion_tokens"] == 3


def test_closing_a_stream_releases_its_slot(clock: FakeClock) -> None:
    models.configure("sim", concurrency=1)
    with models.stream("sim:echo", "a b c") as stream:
        assert next(stream) == "a"
    with xcs.deadline(5):
        assert models("sim:echo", "x") == "x"  # the slot is free again
    assert models.statistics()["limiters"]["sim"].in_flight == 0


def test_a_finished_stream_is_cached() -> None:
    with Cache():
        streamed = models.stream("sim:chat", "q", temperature=0)
        text = "".join(streamed)
        hit = models("sim:chat", "q", temperature=0)
        assert hit.cached
        assert hit == text
        again = models.stream("sim:chat", "q", temperature=0)
        assert list(again) == [text]
        assert again.response.cached


# ---------------------------------------------------------------------------
# openai: server-sent events through the real SDK


def llm(server: FakeOpenAIServer) -> xcs.models.ModelBinding:
    pytest.importorskip("openai")
    return bind("openai:fake-model", base_url=server.base_url, api_key=KEY)


def test_openai_streams_events(server: FakeOpenAIServer) -> None:
    server.behaviour = lambda body, i: Reply(events=stream_events(["Hel", "lo", " there"]))
    stream = llm(server).stream("hi", temperature=0)
    assert list(stream) == ["Hel", "lo", " there"]
    response = stream.response
    assert response == "Hello there"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (7, 3)
    assert response.finish_reason == "stop"
    (body,) = server.requests
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    # The same answer, not streamed:
    server.behaviour = lambda body, i: Reply(body=chat_reply("Hello there"))
    assert llm(server)("hi", temperature=0) == response


def test_openai_a_dropped_connection_mid_stream_is_a_provider_error(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    server.behaviour = lambda body, i: Reply(
        events=stream_events(["one", " two", " three", " four"]), drop_after=3
    )
    stream = llm(server).stream("count")
    got: list[str] = []
    with pytest.raises(xcs.ProviderError, match="stream broke") as info:
        for chunk in stream:
            got.append(chunk)
    assert got == ["one", " two"]  # the role event, then two chunks, then the cut
    assert info.value.partial == "one two"
    assert server.count == 1  # delivered text is never sent twice: not retried
    assert models.statistics()["models"]["openai:fake-model"].failures == 1


def test_openai_a_drop_before_any_text_is_retried(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    events = stream_events(["ok"])
    server.behaviour = lambda body, i: Reply(events=events, drop_after=1 if i == 0 else None)
    stream = llm(server).stream("q")
    assert list(stream) == ["ok"]
    assert server.count == 2


class Dripping(xcs.models.Provider):
    """Streams "a", then each further chunk once ``more`` is set; records closing."""

    name = "drip"

    def __init__(self, endpoint: object = None) -> None:
        self.more = threading.Event()
        self.closed = threading.Event()

    def complete(self, request: xcs.models.Request) -> xcs.models.Completion:
        return xcs.models.Completion("a b c")

    def stream(self, request: xcs.models.Request) -> Iterator[str | xcs.models.Completion]:
        try:
            yield "a"
            for chunk in (" b", " c"):
                assert self.more.wait(10)
                yield chunk
            yield xcs.models.Completion("a b c")
        finally:
            self.closed.set()


@pytest.mark.parametrize("how", ["close", "with", "abandon"])
def test_a_stream_left_early_stops_and_frees_its_slot(how: str) -> None:
    provider = Dripping()
    models.register_provider("drip", provider)
    models.configure("drip", concurrency=1)
    stream = models.stream("drip:m", "q")
    assert next(stream) == "a"
    if how == "close":
        stream.close()
    elif how == "with":
        with stream:
            pass
    else:
        del stream
        gc.collect()
    provider.more.set()  # the call wakes, meets the closed stream, and unwinds
    assert provider.closed.wait(10)
    with xcs.deadline(10):
        assert models("drip:m", "again") == "a b c"  # the one slot is free again
    assert models.statistics()["limiters"]["drip"].in_flight == 0


# ---------------------------------------------------------------------------
# anthropic: the Messages API's events through the real SDK


def test_anthropic_streams_events(server: FakeOpenAIServer) -> None:
    pytest.importorskip("anthropic")
    server.behaviour = lambda body, i: Reply(
        events=anthropic_stream_events(["Bon", "jour"]), named_events=True
    )
    claude = bind("anthropic:fake-claude", base_url=server.root_url, api_key=KEY)
    stream = claude.stream("hi", temperature=0.2)
    assert list(stream) == ["Bon", "jour"]
    assert stream.response == "Bonjour"
    assert (stream.response.usage.prompt_tokens, stream.response.usage.completion_tokens) == (9, 2)
    assert stream.response.finish_reason == "stop"
    assert server.requests[0]["stream"] is True


def test_anthropic_a_dropped_stream_is_a_provider_error(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    pytest.importorskip("anthropic")
    server.behaviour = lambda body, i: Reply(
        events=anthropic_stream_events(["one", " two", " three"]), named_events=True, drop_after=4
    )
    claude = bind("anthropic:fake-claude", base_url=server.root_url, api_key=KEY)
    got: list[str] = []
    with pytest.raises(xcs.ProviderError, match="stream broke") as info:
        for chunk in claude.stream("count"):
            got.append(chunk)
    assert got == ["one", " two"]
    assert info.value.partial == "one two"
    assert server.count == 1
