"""Agent: one turn's tool calls run concurrently, results in the model's order, the
first failing tool in that order raises, max_turns ends the loop; traced."""

from __future__ import annotations

import json
import threading
from typing import Any

import pydantic
import pytest

import xcs
from xcs.errors import MaxTurnsError
from xcs.models import Completion, MockProvider, Request, ToolCall, bind, models
from xcs.operators import Agent


def scripted(*turns: list[tuple[str, dict[str, Any]]]) -> MockProvider:
    """A model that makes the i-th list of calls at turn i, then answers with the
    tool results it got last (joined by ' | ')."""

    def handler(request: Request) -> Completion:
        turn = sum(1 for m in request.messages if m.role == "assistant")
        if turn < len(turns):
            calls = tuple(
                ToolCall(f"call_{turn}_{i}", name, args)
                for i, (name, args) in enumerate(turns[turn])
            )
            return Completion("", tool_calls=calls, finish_reason="tool_calls")
        results = [m.content for m in request.messages if m.role == "tool"]
        return Completion("done: " + " | ".join(results[-len(turns[-1]) :]))

    provider = MockProvider(handler)
    models.register_provider("mock", provider)
    return provider


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


def test_on_sim_the_tools_run_and_the_answer_echoes_them() -> None:
    agent = Agent("sim:echo", tools=[add, shout], max_turns=3)
    answer = agent("go")
    reply = models("sim:echo", "go", tools=[add, shout])
    a, s = reply.tool_calls
    assert answer == f"{add(**a.arguments)}\n{shout(**s.arguments)}"
    assert answer.model == "sim:echo"
    assert xcs.jit(lambda task: Agent("sim:echo", tools=[add, shout])(task))("go") == answer


def test_one_turns_tool_calls_run_concurrently() -> None:
    barrier = threading.Barrier(3, timeout=10)
    lock = threading.Lock()
    in_flight = peak = 0

    def meet(name: str) -> str:
        """Wait for the others."""
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            barrier.wait()  # passes only if the three calls overlap
        finally:
            with lock:
                in_flight -= 1
        return name

    scripted([("meet", {"name": n}) for n in "abc"])
    assert Agent("mock:m", tools=[meet])("go") == "done: a | b | c"
    assert peak == 3


def test_results_go_back_in_the_models_order() -> None:
    first_may_finish = threading.Event()

    def slow(x: int) -> int:
        """Finishes last."""
        assert first_may_finish.wait(10)
        return x

    def fast(x: int) -> int:
        """Finishes first."""
        first_may_finish.set()
        return x * 10

    provider = scripted([("slow", {"x": 1}), ("fast", {"x": 2})])
    assert Agent("mock:m", tools=[slow, fast])("go") == "done: 1 | 20"
    last = provider.requests[-1].messages
    assert [(m.role, m.tool_call_id, m.content) for m in last[-2:]] == [
        ("tool", "call_0_0", "1"),
        ("tool", "call_0_1", "20"),
    ]
    assert [c.name for c in last[1].tool_calls] == ["slow", "fast"]


def test_the_first_failing_tool_in_the_models_order_decides() -> None:
    second_failed = threading.Event()
    first_error = KeyError("first")
    ran: list[str] = []

    def one(x: int) -> int:
        """Fails, after the later tool has failed."""
        assert second_failed.wait(10)
        ran.append("one")
        raise first_error

    def two(x: int) -> int:
        """Fails first in time."""
        ran.append("two")
        second_failed.set()
        raise ValueError("second")

    scripted([("one", {"x": 1}), ("two", {"x": 2})])
    with pytest.raises(KeyError) as info:
        Agent("mock:m", tools=[one, two])("go")
    assert info.value is first_error  # the original object, not wrapped
    assert any("tool 'one'" in note for note in info.value.__notes__)
    assert sorted(ran) == ["one", "two"]

    def plain() -> None:  # the sequential program raises the same exception type
        for tool, args in [(one, {"x": 1}), (two, {"x": 2})]:
            tool(**args)

    with pytest.raises(KeyError):
        plain()


def test_max_turns_ends_the_loop_without_running_the_last_calls() -> None:
    calls: list[int] = []

    def step(n: int) -> int:
        """One more step."""
        calls.append(n)
        return n

    provider = scripted(*[[("step", {"n": i})] for i in range(10)])
    with pytest.raises(MaxTurnsError, match="max_turns=3") as info:
        Agent("mock:m", tools=[step], max_turns=3)("go")
    assert calls == [0, 1]  # turns 1 and 2 ran their tools; turn 3's call was not run
    assert len(provider.requests) == 3
    assert info.value.turns == 3
    assert [c.name for c in info.value.tool_calls] == ["step"]
    assert isinstance(info.value, xcs.XCSError)


def test_unknown_tools_and_bad_arguments_are_validation_errors() -> None:
    scripted([("nope", {})])
    with pytest.raises(xcs.ValidationError, match="'nope', which is not one of its tools"):
        Agent("mock:m", tools=[add])("go")
    scripted([("add", {"a": "x", "b": 1})])
    with pytest.raises(xcs.ValidationError, match="tool 'add'") as info:
        Agent("mock:m", tools=[add])("go")
    assert info.value.fields == ("a",)


def test_a_pydantic_model_tool_returns_its_instance_as_json() -> None:
    class Note(pydantic.BaseModel):
        """Write a note."""

        title: str
        stars: int = 3

    provider = scripted([("Note", {"title": "hi"})])
    assert Agent("mock:m", tools=[Note])("go") == 'done: {"title":"hi","stars":3}'
    assert json.loads(provider.requests[-1].messages[-1].content) == {"title": "hi", "stars": 3}


def test_bad_configuration_is_a_validation_error() -> None:
    with pytest.raises(xcs.ValidationError, match="max_turns"):
        Agent("sim:echo", tools=[add], max_turns=0)
    with pytest.raises(xcs.ValidationError, match="at least one tool"):
        Agent("sim:echo", tools=[])
    with pytest.raises(xcs.ValidationError, match="named 'add'"):
        Agent("sim:echo", tools=[add, add])
    with pytest.raises(xcs.ValidationError, match="model must be"):
        Agent(42, tools=[add])
    with pytest.raises(xcs.ValidationError, match="name"):
        Agent("sim:echo", tools=[lambda x: x])


def test_each_turn_and_tool_is_a_span() -> None:
    scripted([("add", {"a": 1, "b": 2}), ("shout", {"text": "x"})])
    with xcs.trace() as t:
        Agent(bind("mock:m", temperature=0), tools=[add, shout])("go")
    names = [s.name for s in t.spans]
    assert "Agent turn 1" in names
    assert "Agent turn 2" in names
    tools = {s.name: s for s in t.spans if s.name.startswith("tool ")}
    assert set(tools) == {"tool add", "tool shout"}
    # What each tool told the model:
    assert (tools["tool add"].attrs["result"], tools["tool shout"].attrs["result"]) == ("3", "X")
    turn1 = next(s for s in t.spans if s.name == "Agent turn 1")
    by_id = {s.id: s for s in t.spans}

    def ancestors(span: Any) -> list[int]:
        out = []
        while span.parent is not None:
            out.append(span.parent)
            span = by_id[span.parent]
        return out

    assert all(turn1.id in ancestors(s) for s in tools.values())
    assert sum(1 for s in t.spans if s.kind == "model") == 2


def test_an_agent_pickles_with_its_tools() -> None:
    import pickle

    agent = Agent("sim:echo", tools=[add, shout], max_turns=2)
    back = pickle.loads(pickle.dumps(agent))
    assert [t.name for t in back.tools] == ["add", "shout"]
    assert back("go") == agent("go")
