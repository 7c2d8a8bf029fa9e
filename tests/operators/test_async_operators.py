"""Async operators (``async def forward``): ``await op(x)``, specs checked, spans,
concurrency under gather (barrier-proven), @xcs.op on an async function, and under
xcs.jit the awaits of a region overlap."""

from __future__ import annotations

import asyncio

import pytest

import xcs
from xcs.models import Completion, Provider, Request, Response, bind, models


class Answer(xcs.Operator):
    def __init__(self, model: xcs.models.ModelBinding) -> None:
        self.model = model

    async def forward(self, question: str) -> str:
        return str(await self.model.acall(question))


def test_awaiting_an_async_operator_checks_its_input_and_output() -> None:
    answer = Answer(bind("sim:echo"))
    assert asyncio.run(answer("hello")) == "hello"
    with pytest.raises(xcs.ValidationError, match=r"Answer.*input.*question"):
        answer(3)  # checked at the call, before any coroutine exists

    class Broken(xcs.Operator):
        async def forward(self, x: int) -> int:
            return "not a number"  # type: ignore[return-value]

    with pytest.raises(xcs.ValidationError, match=r"Broken.*output"):
        asyncio.run(Broken()(1))


def test_an_async_op_function() -> None:
    @xcs.op
    async def shout(text: str) -> str:
        await asyncio.sleep(0)
        return text.upper()

    assert asyncio.run(shout("hi")) == "HI"


class Meeting(Provider):
    """Async attempts that pass only when ``parties`` are in flight together."""

    name = "meeting"

    def __init__(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)

    def complete(self, request: Request) -> Completion:
        raise AssertionError("acall must not use the sync method")

    async def acomplete(self, request: Request) -> Completion:
        async with asyncio.timeout(10):
            await self.barrier.wait()
        return Completion(request.messages[-1].content)


def test_async_operators_run_concurrently_under_gather() -> None:
    models.register_provider("meeting", Meeting(8))
    answer = Answer(bind("meeting:m"))

    async def main() -> list[str]:
        return list(await asyncio.gather(*(answer(f"q{i}") for i in range(8))))

    assert asyncio.run(main()) == [f"q{i}" for i in range(8)]


def test_a_jitted_async_operator_overlaps_its_awaits() -> None:
    class AskAll(xcs.Operator):
        def __init__(self, model: xcs.models.ModelBinding) -> None:
            self.model = model

        async def forward(self, questions: list[str]) -> list[Response]:
            return [await self.model.acall(q) for q in questions]

    models.register_provider("meeting", Meeting(6))
    ask_all = xcs.jit(AskAll(bind("meeting:m")))
    answers = asyncio.run(ask_all([f"q{i}" for i in range(6)]))
    assert answers == [f"q{i}" for i in range(6)]


def test_an_async_operator_is_a_span_around_its_await() -> None:
    answer = Answer(bind("sim:echo"))
    with xcs.trace() as t:
        assert asyncio.run(answer("traced")) == "traced"
    (op_span,) = [s for s in t.spans if s.kind == "operator"]
    (model_span,) = [s for s in t.spans if s.kind == "model"]
    assert op_span.name == "Answer"
    assert model_span.parent == op_span.id  # the model call ran inside it
