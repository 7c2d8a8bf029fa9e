"""Model calls under @xcs.jit: the sequential program's values, first error, and calls."""

from __future__ import annotations

import threading

import pytest

import xcs
from xcs.models import MockProvider, Request, Response, bind, mark, models


def ensemble_and_judge(question: str) -> str:
    answers = [
        models("sim:chat?latency=0.01", question, temperature=0.9, sample=i) for i in range(6)
    ]
    return models("sim:echo", " | ".join(answers), max_tokens=12)


def test_jit_gives_the_sequential_answer() -> None:
    expected = ensemble_and_judge("why?")
    fast = xcs.jit(ensemble_and_judge)
    for _ in range(3):
        got = fast("why?")
        assert got == expected
        assert isinstance(got, Response)


def test_the_first_error_in_program_order_is_raised() -> None:
    # Items 2 and 4 fail; under jit they run concurrently, and item 4 may fail first
    # in time, but the caller sees item 2's error, as the sequential program would.
    gate = threading.Event()

    def handler(request: Request) -> str:
        text = request.messages[-1].content
        if text == "4":
            gate.set()
            raise mark(xcs.ProviderError("item 4 failed"), retryable=False)
        if text == "2":
            gate.wait(1)  # under jit, item 4 fails first in time
            raise mark(xcs.ProviderError("item 2 failed"), retryable=False)
        return text

    models.register_provider("mock", MockProvider(handler))
    ask = bind("mock:m")

    def program() -> list[str]:
        return [ask(str(i)) for i in range(6)]

    gate.set()  # in order, item 4 never runs: nothing to wait for
    with pytest.raises(xcs.ProviderError, match="item 2 failed"):
        program()
    gate.clear()
    fast = xcs.jit(program)
    for _ in range(2):
        with pytest.raises(xcs.ProviderError, match="item 2 failed"):
            fast()
        gate.clear()


def test_every_call_is_made_once() -> None:
    mock = MockProvider(lambda r: r.messages[-1].content)
    models.register_provider("mock", mock)

    @xcs.jit
    def fan_out(n: int) -> list[str]:
        return [models("mock:m", f"q{i}") for i in range(n)]

    assert fan_out(20) == [f"q{i}" for i in range(20)]
    assert sorted(r.messages[-1].content for r in mock.requests) == sorted(
        f"q{i}" for i in range(20)
    )


def test_a_binding_travels_to_another_process() -> None:
    import concurrent.futures
    import multiprocessing

    judge = bind("sim:echo", max_tokens=2)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        answer = pool.submit(judge, "a b c").result(timeout=60)
    assert answer == "a b"
    assert isinstance(answer, Response)
    assert answer.finish_reason == "length"


# ---------------------------------------------------------------------------
# async def under @xcs.jit: [await m.acall(q) for q in qs]


class AsyncBarrier(xcs.models.Provider):
    """Async attempts that pass an ``asyncio.Barrier`` only when ``parties`` of them
    are in flight together; prompts starting with "fail" raise after it."""

    name = "abarrier"

    def __init__(self, parties: int) -> None:
        import asyncio

        self.barrier = asyncio.Barrier(parties)
        self.prompts: list[str] = []

    def complete(self, request: Request) -> xcs.models.Completion:
        raise AssertionError("acall must not use the sync method")

    async def acomplete(self, request: Request) -> xcs.models.Completion:
        import asyncio

        prompt = request.messages[-1].content
        self.prompts.append(prompt)
        async with asyncio.timeout(10):
            await self.barrier.wait()
        if prompt.startswith("fail"):
            raise mark(xcs.ProviderError(f"refused {prompt}"), retryable=False)
        return xcs.models.Completion(prompt.upper())


def test_awaited_acalls_in_a_jitted_comprehension_overlap() -> None:
    import asyncio

    models.register_provider("abarrier", AsyncBarrier(16))
    m = bind("abarrier:m", max_attempts=1)

    @xcs.jit
    async def ask_all(qs: list[str]) -> list[str]:
        return [str(await m.acall(q)) for q in qs]

    # Sixteen awaits that can only finish together: the first call overlaps them.
    assert asyncio.run(ask_all([f"q{i}" for i in range(16)])) == [f"Q{i}" for i in range(16)]


def test_a_jitted_async_function_matches_plain() -> None:
    import asyncio

    async def ask_all(qs: list[str]) -> list[Response]:
        m = bind("sim:chat?latency=0.01", temperature=0.7)
        return [await m.acall(q) for q in qs]

    qs = [f"question {i}" for i in range(6)]
    plain = asyncio.run(ask_all(qs))
    calls = models.statistics()["models"]["sim:chat"].calls
    jitted = asyncio.run(xcs.jit(ask_all)(qs))
    assert jitted == plain
    assert [a.usage for a in jitted] == [a.usage for a in plain]
    assert models.statistics()["models"]["sim:chat"].calls == 2 * calls == 12

    # The first error in program order: items 1 and 3 fail, together with the rest.
    async def failing(qs: list[str]) -> list[str]:
        m = bind("abarrier:m", max_attempts=1)
        return [str(await m.acall(q)) for q in qs]

    async def run_jitted() -> None:
        models.register_provider("abarrier", AsyncBarrier(4))
        await xcs.jit(failing)(["a", "fail 1", "b", "fail 3"])

    with pytest.raises(xcs.ProviderError, match="refused fail 1"):
        asyncio.run(run_jitted())
