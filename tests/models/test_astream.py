"""xcs.models.astream and binding.astream, the async twin of stream: chunks that join
to the non-streamed answer, .response with usage and cost, retries only before the
first chunk, a dropped connection mid-stream is a ProviderError, time to first token
on the span, and the sync path's limits, breaker, cache and statistics."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from _fake_openai import (
    FakeOpenAIServer,
    Reply,
    anthropic_stream_events,
    chat_reply,
    error_body,
    prompt_of,
    stream_events,
)

import xcs
from xcs.errors import CircuitOpenError
from xcs.models import (
    AsyncStream,
    Cache,
    Completion,
    FakeClock,
    MockProvider,
    Provider,
    Request,
    bind,
    mark,
    models,
)

KEY = "sk-test-0123456789abcdef"


async def read(stream: AsyncStream) -> list[str]:
    return [chunk async for chunk in stream]


def test_sim_chunks_join_to_the_answer(clock: FakeClock) -> None:
    model_id = "sim:chat?per_token=0.01&latency=0.5&price_in=1&price_out=2"
    stream = models.astream(model_id, "tell me", temperature=0.7, sample=2)
    assert isinstance(stream, AsyncStream)
    with pytest.raises(xcs.ValidationError, match="once the stream has ended"):
        stream.response
    chunks = asyncio.run(read(stream))
    answer = models(model_id, "tell me", temperature=0.7, sample=2)
    assert len(chunks) == len(answer.split(" ")) > 1
    assert "".join(chunks) == answer == stream.response
    assert stream.response.usage == answer.usage
    assert stream.response.cost_usd == answer.cost_usd > 0
    assert stream.response.finish_reason == answer.finish_reason
    # The same simulated time as the sync stream: latency - per-token time, then words.
    assert sum(clock.sleeps[: len(chunks)]) == pytest.approx(sum(clock.sleeps[len(chunks) :]))
    assert models.statistics()["models"]["sim:chat"].calls == 2
    assert repr(stream) == "<AsyncStream sim:chat: ended>"


def test_binding_astream_and_what_it_does_not_take() -> None:
    echo = bind("sim:echo", max_tokens=3)
    stream = echo.astream("one two three four")
    assert asyncio.run(read(stream)) == ["one", " two", " three"]
    assert stream.response.finish_reason == "length"

    import pydantic

    class City(pydantic.BaseModel):
        name: str

    with pytest.raises(xcs.ValidationError, match="cannot be streamed"):
        models.astream("sim:echo", "q", response_model=City)
    with pytest.raises(xcs.ValidationError, match="temprature"):
        models.astream("sim:echo", "q", temprature=1)


def test_a_failure_before_the_first_chunk_is_retried(clock: FakeClock) -> None:
    def handler(request: Request) -> str:
        if request.attempt == 0:
            raise mark(xcs.ProviderError("HTTP 503"), retryable=True, status=503)
        return "fine now"

    provider = MockProvider(handler)
    models.register_provider("mock", provider)
    stream = models.astream("mock:m", "q")
    # A provider that does not stream: one acomplete, its text as one chunk.
    assert asyncio.run(read(stream)) == ["fine now"]
    assert len(provider.requests) == 2
    assert models.statistics()["models"]["mock:m"].retries == 1


def test_the_span_records_time_to_first_token() -> None:
    with xcs.trace() as t:
        asyncio.run(read(models.astream("sim:echo", "a b c")))
    (span,) = [s for s in t.spans if s.kind == "model"]
    assert span.attrs["streamed"] is True
    assert span.attrs["ttft_s"] >= 0
    assert span.attrs["completion_tokens"] == 3


def test_a_finished_astream_is_cached_and_a_hit_is_one_chunk() -> None:
    with Cache():
        streamed = models.astream("sim:chat", "q", temperature=0)
        text = "".join(asyncio.run(read(streamed)))
        hit = models("sim:chat", "q", temperature=0)
        assert hit.cached
        assert hit == text
        again = models.astream("sim:chat", "q", temperature=0)
        assert asyncio.run(read(again)) == [text]
        assert again.response.cached


def test_astream_honours_the_deadline() -> None:
    async def main() -> None:
        with xcs.deadline(0.05):
            await read(models.astream("sim:chat?latency=5", "slow", timeout=10))

    with pytest.raises(xcs.ExecutionTimeout):
        asyncio.run(main())


def test_astream_shares_the_breaker_with_the_sync_path(clock: FakeClock) -> None:
    def down(request: Request) -> str:
        raise mark(xcs.ProviderError("HTTP 500"), retryable=True, status=500)

    models.register_provider("mock", MockProvider(down))
    models.configure("mock", failure_threshold=2, reset_after=60)
    for _ in range(2):
        with pytest.raises(xcs.ProviderError, match="500"):
            models("mock:m", "q", max_attempts=1)
    with pytest.raises(CircuitOpenError):
        asyncio.run(read(models.astream("mock:m", "q")))


class Dripping(Provider):
    """Streams "a" natively async, then each further chunk once ``more`` is set;
    records its generator's closing."""

    name = "drip"

    def __init__(self, endpoint: object = None) -> None:
        self.more = asyncio.Event()
        self.closed = False

    def complete(self, request: Request) -> Completion:
        return Completion("a b c")

    async def astream(self, request: Request) -> AsyncIterator[str | Completion]:
        try:
            yield "a"
            for chunk in (" b", " c"):
                await asyncio.wait_for(self.more.wait(), 10)
                yield chunk
            yield Completion("a b c")
        finally:
            self.closed = True


@pytest.mark.parametrize("how", ["aclose", "async with", "abandon"])
def test_an_astream_left_early_stops_and_frees_its_slot(how: str) -> None:
    async def main() -> None:
        provider = Dripping()
        models.register_provider("drip", provider)
        models.configure("drip", concurrency=1)
        stream = models.astream("drip:m", "q")
        assert await stream.__anext__() == "a"
        if how == "aclose":
            await stream.aclose()
        elif how == "async with":
            async with stream:
                pass
        else:
            del stream
            gc.collect()
        for _ in range(100):  # an abandoned stream's call is cancelled soon after
            if provider.closed:
                break
            await asyncio.sleep(0.01)
        assert provider.closed
        assert models.statistics()["limiters"]["drip"].in_flight == 0
        with xcs.deadline(10):
            provider.more.set()
            assert await models.acall("drip:m", "again") == "a b c"  # the slot is free

    asyncio.run(main())


class ThreadStreaming(Provider):
    """Streams with the sync method only: astream's default reads it in a worker."""

    name = "threads"

    def complete(self, request: Request) -> Completion:
        raise AssertionError("streamed, not completed")

    def stream(self, request: Request) -> Iterator[str | Completion]:
        yield "x"
        yield " y"
        yield Completion("x y")


def test_a_provider_that_streams_only_with_threads_streams_under_astream() -> None:
    models.register_provider("threads", ThreadStreaming())
    stream = models.astream("threads:m", "q")
    assert asyncio.run(read(stream)) == ["x", " y"]
    assert stream.response == "x y"


class BarrierStreams(Provider):
    """An async streaming provider whose attempts meet at an ``asyncio.Barrier``
    before their first chunk: they pass only if ``parties`` are in flight at once."""

    name = "barrier"

    def __init__(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)

    def complete(self, request: Request) -> Completion:
        raise AssertionError("astream must not use the sync method")

    async def astream(self, request: Request) -> AsyncIterator[str | Completion]:
        async with asyncio.timeout(10):
            await self.barrier.wait()
        text = request.messages[-1].content
        yield text
        yield Completion(text)


def test_eight_astreams_are_in_flight_together_under_gather() -> None:
    async def main() -> list[list[str]]:
        models.register_provider("barrier", BarrierStreams(8))
        return await asyncio.gather(*(read(models.astream("barrier:m", f"q{i}")) for i in range(8)))

    assert asyncio.run(main()) == [[f"q{i}"] for i in range(8)]


# ---------------------------------------------------------------------------
# openai: server-sent events through the SDK's async client


def llm(server: FakeOpenAIServer) -> xcs.models.ModelBinding:
    pytest.importorskip("openai")
    return bind("openai:fake-model", base_url=server.base_url, api_key=KEY)


def test_openai_astreams_events(server: FakeOpenAIServer) -> None:
    server.behaviour = lambda body, i: Reply(events=stream_events(["Hel", "lo", " there"]))
    stream = llm(server).astream("hi", temperature=0)
    assert asyncio.run(read(stream)) == ["Hel", "lo", " there"]
    response = stream.response
    assert response == "Hello there"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (7, 3)
    assert response.finish_reason == "stop"
    (body,) = server.requests
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    server.behaviour = lambda body, i: Reply(body=chat_reply("Hello there"))
    assert llm(server)("hi", temperature=0) == response  # the same answer, not streamed


def test_openai_a_dropped_connection_mid_astream_is_a_provider_error(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    server.behaviour = lambda body, i: Reply(
        events=stream_events(["one", " two", " three", " four"]), drop_after=3
    )
    got: list[str] = []

    async def main() -> None:
        async for chunk in llm(server).astream("count"):
            got.append(chunk)

    with pytest.raises(xcs.ProviderError, match="stream broke") as info:
        asyncio.run(main())
    assert got == ["one", " two"]
    assert info.value.partial == "one two"
    assert info.value.retryable is False
    assert server.count == 1  # delivered text is never sent twice: not retried
    assert models.statistics()["models"]["openai:fake-model"].failures == 1


def test_openai_a_drop_before_any_text_is_retried(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    events = stream_events(["ok"])
    server.behaviour = lambda body, i: Reply(events=events, drop_after=1 if i == 0 else None)
    assert asyncio.run(read(llm(server).astream("q"))) == ["ok"]
    assert server.count == 2
    assert models.statistics()["models"]["openai:fake-model"].retries == 1


def test_openai_an_error_status_before_the_stream_is_mapped(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    server.behaviour = lambda body, i: Reply(401, error_body("bad key", "invalid_api_key"))
    with pytest.raises(xcs.AuthenticationError):
        asyncio.run(read(llm(server).astream("q")))
    assert server.count == 1


def test_astreams_overlap_under_gather_while_a_limit_holds_across_sync_and_async(
    server: FakeOpenAIServer,
) -> None:
    # One limit of 4 for two sync streams (threads) and six astreams (tasks). The
    # server holds each request until 4 are in flight at once: the first four meet
    # there (so sync and async ones are in flight together), and it never saw 5.
    events = stream_events(["a", "b"])
    server.behaviour = lambda body, i: Reply(events=events, wait_for_in_flight=4, delay=0.02)
    models.configure("openai", concurrency=4)
    ask = llm(server)
    results: dict[str, str] = {}

    def sync(i: int) -> None:
        stream = ask.stream(f"sync {i}")
        results[f"sync {i}"] = "".join(stream)

    threads = [threading.Thread(target=sync, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    assert server.wait_for(lambda: server.in_flight == 2)

    async def main() -> list[list[str]]:
        return await asyncio.gather(*(read(ask.astream(f"async {i}")) for i in range(6)))

    out = asyncio.run(main())
    for t in threads:
        t.join(30)
    assert out == [["a", "b"]] * 6
    assert results == {"sync 0": "ab", "sync 1": "ab"}
    assert server.max_in_flight == 4
    limiter = models.statistics()["limiters"]["openai"]
    assert (limiter.max_in_flight, limiter.in_flight) == (4, 0)
    sync_spans = [(e.arrived, e.answered) for e in server.log if e.prompt.startswith("sync")]
    async_spans = [(e.arrived, e.answered) for e in server.log if e.prompt.startswith("async")]
    assert any(a0 < s1 and s0 < a1 for s0, s1 in sync_spans for a0, a1 in async_spans)


def test_sixteen_astreams_reach_the_server_together(server: FakeOpenAIServer) -> None:
    server.behaviour = lambda body, i: Reply(
        events=stream_events([prompt_of(body)]), wait_for_in_flight=16
    )
    ask = llm(server)

    async def main() -> list[list[str]]:
        return await asyncio.gather(*(read(ask.astream(f"q{i}")) for i in range(16)))

    assert asyncio.run(main()) == [[f"q{i}"] for i in range(16)]
    assert server.max_in_flight == 16


# ---------------------------------------------------------------------------
# anthropic: the Messages API's events through the SDK's async client


def claude(server: FakeOpenAIServer) -> xcs.models.ModelBinding:
    pytest.importorskip("anthropic")
    return bind("anthropic:fake-claude", base_url=server.root_url, api_key=KEY)


def test_anthropic_astreams_events(server: FakeOpenAIServer) -> None:
    server.behaviour = lambda body, i: Reply(
        events=anthropic_stream_events(["Bon", "jour"]), named_events=True
    )
    stream = claude(server).astream("hi", temperature=0.2)
    assert asyncio.run(read(stream)) == ["Bon", "jour"]
    assert stream.response == "Bonjour"
    assert (stream.response.usage.prompt_tokens, stream.response.usage.completion_tokens) == (9, 2)
    assert stream.response.finish_reason == "stop"
    assert server.requests[0]["stream"] is True


def test_anthropic_a_dropped_astream_is_a_provider_error(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    server.behaviour = lambda body, i: Reply(
        events=anthropic_stream_events(["one", " two", " three"]), named_events=True, drop_after=4
    )
    got: list[str] = []

    async def main() -> None:
        async for chunk in claude(server).astream("count"):
            got.append(chunk)

    with pytest.raises(xcs.ProviderError, match="stream broke") as info:
        asyncio.run(main())
    assert got == ["one", " two"]
    assert info.value.partial == "one two"
    assert server.count == 1
