"""``xcs.models.acall`` and ``binding.acall``: the sync call's core driven by asyncio.

Limits, cache, breaker, retries, statistics and the deadline are the sync path's own
objects; concurrency is proven by barriers and by the fake server's in-flight counts.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

import xcs
from xcs.errors import CircuitOpenError
from xcs.models import Completion, FakeClock, MockProvider, Provider, Request, bind, models

openai = pytest.importorskip("openai")

from _fake_openai import FakeOpenAIServer, Reply, chat_reply, error_body, prompt_of  # noqa: E402

KEY = "sk-test-0123456789abcdef"


def test_acall_answers_as_call_does() -> None:
    sync = models("sim:chat?seed=3", "hello", temperature=0.5, sample=2)
    answer = asyncio.run(models.acall("sim:chat?seed=3", "hello", temperature=0.5, sample=2))
    assert answer == sync
    assert answer.usage == sync.usage
    binding = bind("sim:echo", max_tokens=2)
    assert asyncio.run(binding.acall("one two three")) == binding("one two three") == "one two"
    assert models.statistics()["models"]["sim:chat"].calls == 2


def test_acall_checks_its_arguments_before_sending() -> None:
    with pytest.raises(xcs.ValidationError, match="temperature"):
        asyncio.run(models.acall("sim:echo", "hi", temperature="hot"))
    with pytest.raises(xcs.ValidationError, match="unknown model provider"):
        asyncio.run(models.acall("nope:x", "hi"))


class BarrierProvider(Provider):
    """An async provider whose attempts meet at an ``asyncio.Barrier``: they can only
    pass it if ``parties`` of them are in flight in the event loop together."""

    name = "barrier"

    def __init__(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)
        self.in_flight = 0
        self.most = 0

    def complete(self, request: Request) -> Completion:
        raise AssertionError("acall must not use the sync method")

    async def acomplete(self, request: Request) -> Completion:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            async with asyncio.timeout(10):
                await self.barrier.wait()
            return Completion(request.messages[-1].content)
        finally:
            self.in_flight -= 1


def test_sixteen_acalls_are_in_flight_together_under_gather() -> None:
    async def main() -> list[str]:
        provider = BarrierProvider(16)
        models.register_provider("barrier", provider)
        out = await asyncio.gather(*(models.acall("barrier:m", f"q{i}") for i in range(16)))
        assert provider.most == 16
        return [str(a) for a in out]

    assert asyncio.run(main()) == [f"q{i}" for i in range(16)]


def test_sixteen_acalls_reach_the_server_together(server: FakeOpenAIServer) -> None:
    # Through the SDK's async client: the server holds each request until 16 are in
    # flight at once (or 5 s pass); it saw 16.
    server.behaviour = lambda body, i: Reply(
        body=chat_reply(prompt_of(body)), wait_for_in_flight=16
    )
    ask = bind("openai:fake-model", base_url=server.base_url, api_key=KEY)

    async def main() -> list[str]:
        return [str(a) for a in await asyncio.gather(*(ask.acall(f"q{i}") for i in range(16)))]

    assert asyncio.run(main()) == [f"q{i}" for i in range(16)]
    assert server.max_in_flight == 16


def test_a_concurrency_limit_holds_across_threads_and_tasks_at_once(
    server: FakeOpenAIServer,
) -> None:
    # Eight threads call the sync path and eight tasks the async path, against one
    # limit of 4. The server holds requests until 4 are in flight: it saw exactly 4.
    # Two threads go first and are held; the tasks then take the other two slots
    # (so both kinds are in flight together), and six more threads queue behind.
    server.behaviour = lambda body, i: Reply(
        body=chat_reply(prompt_of(body)), wait_for_in_flight=4, delay=0.02
    )
    models.configure("openai", concurrency=4)
    ask = bind("openai:fake-model", base_url=server.base_url, api_key=KEY)
    results: dict[str, str] = {}

    def thread(i: int) -> None:
        results[f"sync {i}"] = ask(f"sync {i}")

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(8)]
    for t in threads[:2]:
        t.start()
    assert server.wait_for(lambda: server.in_flight == 2)

    def more_threads() -> None:
        assert server.wait_for(lambda: server.in_flight == 4)
        for t in threads[2:]:
            t.start()

    async def main() -> None:
        starter = asyncio.create_task(asyncio.to_thread(more_threads))
        out = await asyncio.gather(*(ask.acall(f"async {i}") for i in range(8)))
        results.update({str(a): str(a) for a in out})
        await starter

    asyncio.run(main())
    for t in threads:
        t.join(30)
    assert sorted(results) == sorted(
        [f"sync {i}" for i in range(8)] + [f"async {i}" for i in range(8)]
    )
    assert all(results[k] == k for k in results)
    assert server.max_in_flight == 4
    limiter = models.statistics()["limiters"]["openai"]
    assert limiter.max_in_flight == 4
    assert limiter.in_flight == 0
    # Both kinds overlapped: some sync request's interval met some async one's.
    sync_spans = [(e.arrived, e.answered) for e in server.log if e.prompt.startswith("sync")]
    async_spans = [(e.arrived, e.answered) for e in server.log if e.prompt.startswith("async")]
    assert any(a0 < s1 and s0 < a1 for s0, s1 in sync_spans for a0, a1 in async_spans)


def test_a_task_waiting_for_a_slot_does_not_block_the_loop() -> None:
    # One call holds the only slot until released; a second acall waits for the slot.
    # Meanwhile a ticker task keeps running: the wait is awaited, not blocking.
    release = threading.Event()

    def handler(request: Request) -> str:
        if request.messages[-1].content == "hold":
            assert release.wait(10)
        return request.messages[-1].content

    models.register_provider("mock", MockProvider(handler))
    models.configure("mock", concurrency=1)

    async def main() -> tuple[str, str, int]:
        ticks = 0
        holder = asyncio.create_task(models.acall("mock:m", "hold"))
        while "mock" not in models.statistics()["limiters"]:
            await asyncio.sleep(0.001)
        while models.statistics()["limiters"]["mock"].in_flight == 0:
            await asyncio.sleep(0.001)
        waiter = asyncio.create_task(models.acall("mock:m", "wait"))
        while ticks < 20:  # the loop runs while the waiter waits for the slot
            await asyncio.sleep(0.001)
            ticks += 1
        assert not waiter.done()
        assert models.statistics()["adaptive"]["mock:m@default"].waited == 1
        release.set()
        return str(await holder), str(await waiter), ticks

    assert asyncio.run(main()) == ("hold", "wait", 20)


def test_cancelling_an_acall_releases_its_slot(server: FakeOpenAIServer) -> None:
    server.behaviour = lambda body, i: Reply(body=chat_reply(prompt_of(body)), delay=30)
    models.configure("openai", concurrency=1)
    ask = bind("openai:fake-model", base_url=server.base_url, api_key=KEY)

    async def main() -> None:
        task = asyncio.create_task(ask.acall("slow"))
        waiting = asyncio.create_task(ask.acall("queued"))
        assert await asyncio.to_thread(server.wait_for, lambda: server.in_flight == 1)
        await asyncio.sleep(0.05)
        task.cancel()
        waiting.cancel()
        for t in (task, waiting):
            with pytest.raises(asyncio.CancelledError):
                await t

    asyncio.run(main())
    stats = models.statistics()
    assert stats["limiters"]["openai"].in_flight == 0
    assert stats["adaptive"]["openai:fake-model@" + server.base_url].in_flight == 0
    server.behaviour = lambda body, i: Reply(body=chat_reply(prompt_of(body)))
    assert asyncio.run(ask.acall("after")) == "after"  # the slot is free again


def test_acall_retries_with_the_sync_paths_settings(clock: FakeClock) -> None:
    with pytest.raises(xcs.RateLimitError, match="gave up after 3 attempts"):
        asyncio.run(models.acall("sim:echo?rate_limit_rate=1&retry_after=2", "hi", max_attempts=3))
    assert len(clock.sleeps) == 2
    assert all(2.0 <= s <= 2.4 for s in clock.sleeps)
    assert models.statistics()["models"]["sim:echo"].rate_limited == 3


def test_acall_shares_the_breaker(server: FakeOpenAIServer, clock: FakeClock) -> None:
    server.behaviour = lambda body, i: Reply(500, error_body("down"))
    models.configure("openai", failure_threshold=2, reset_after=60)
    ask = bind("openai:fake-model", base_url=server.base_url, api_key=KEY, max_attempts=1)
    for _ in range(2):
        with pytest.raises(xcs.ProviderError, match="HTTP 500"):
            ask("q")  # the sync path opens the breaker...
    with pytest.raises(CircuitOpenError):
        asyncio.run(ask.acall("q"))  # ...and the async path fails fast on it
    assert server.count == 2


def test_acall_shares_the_cache_and_coalesces() -> None:
    calls: list[str] = []

    def handler(request: Request) -> str:
        calls.append(request.messages[-1].content)
        return request.messages[-1].content.upper()

    models.register_provider("mock", MockProvider(handler))
    with models.Cache():
        assert models("mock:m", "a", temperature=0) == "A"

        async def main() -> list[str]:
            out = await asyncio.gather(
                models.acall("mock:m", "a", temperature=0),  # cached by the sync call
                *(models.acall("mock:m", "b", temperature=0) for _ in range(4)),
            )
            return [str(x) for x in out]

        assert asyncio.run(main()) == ["A", "B", "B", "B", "B"]
        assert models.current_cache().statistics().hits >= 1  # type: ignore[union-attr]
    assert calls == ["a", "b"]  # four identical acalls: one request


def test_acall_honours_the_deadline() -> None:
    async def main() -> None:
        with xcs.deadline(0.05):
            await models.acall("sim:chat?latency=5", "slow", timeout=10)

    with pytest.raises(xcs.ExecutionTimeout):
        asyncio.run(main())


def test_acall_inside_a_trace_is_a_model_span() -> None:
    async def main() -> str:
        return str(await models.acall("sim:echo", "traced"))

    with xcs.trace() as t:
        assert asyncio.run(main()) == "traced"
    (span,) = [s for s in t.spans if s.kind == "model"]
    assert span.name == "sim:echo"


def test_anthropic_acall_uses_the_async_client(server: FakeOpenAIServer) -> None:
    pytest.importorskip("anthropic")
    from _fake_openai import anthropic_reply

    server.behaviour = lambda body, i: Reply(
        body=anthropic_reply(prompt_of(body)), wait_for_in_flight=4
    )
    claude = bind("anthropic:fake-claude", base_url=server.root_url, api_key=KEY)

    async def main() -> list[str]:
        return [str(a) for a in await asyncio.gather(*(claude.acall(f"q{i}") for i in range(4)))]

    assert asyncio.run(main()) == [f"q{i}" for i in range(4)]
    assert server.max_in_flight == 4  # four requests at once from one event loop
    assert all(path.endswith("/v1/messages") for path in server.paths)
