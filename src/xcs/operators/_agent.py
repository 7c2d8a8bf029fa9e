"""``Agent``: a model that calls tools, turn after turn, until it answers.

One turn is one model call with the tools offered. When the reply calls tools, the
calls of that turn run **concurrently** on the scheduler (an ordered map, as a
comprehension under ``@xcs.jit`` would), their results go back to the model in the
order the model wrote the calls, and the next turn starts. The loop ends at a reply
without tool calls (the agent's answer) or at ``max_turns`` (``MaxTurnsError``).

NOTE: [Agent errors]
The tool calls of one turn are the iterations of one parallel region, so a failure
follows DESIGN §1.2: the first failing call *in the model's order* raises, the
original exception object (a note names the tool and turn), calls after it that had
not started never start, and the results of the others are dropped. Arguments that do
not fit a tool's signature raise ``xcs.ValidationError`` for that call, in its turn
of the order, before the tool runs. Nothing is fed back to the model as an error
message: a program that wants the model to see failures catches them in the tool.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pydantic

from xcs._observe import _spans
from xcs._runtime._scheduler import ordered_map
from xcs.errors import MaxTurnsError, ValidationError
from xcs.models._api import ModelBinding, bind
from xcs.models._tools import ToolSpec, tool_specs
from xcs.models._types import Message, Response, ToolCall
from xcs.operators._base import Operator

__all__ = ["Agent", "tool_result_text"]


class Agent(Operator):
    """A model with tools: ``agent(task) -> Response``, the model's final answer.

    Args:
        model: a model id (``"openai:gpt-4o-mini"``), an ``xcs.models.bind(...)``
            binding (its parameters, ``system=`` say, apply to every turn), or a
            callable ``(messages, tools=[ToolSpec, ...]) -> Response``.
        tools: plain functions or pydantic model classes (see ``xcs.models``,
            ``tools=``); a function's result goes back to the model as text (a
            ``str`` as it is, anything else as JSON).
        max_turns: the most model calls (default 8).

    Raises (from a call):
        MaxTurnsError: the model still called tools at turn ``max_turns``.
        ValidationError: the model called a tool that was not offered, or with
            arguments that do not fit its signature.
        BaseException: the first tool (in the model's order) that raised, the
            original exception (NOTE: [Agent errors]); any error of the model call.

    Example::

        def population(city: str) -> int:
            "How many people live in a city."
            return CENSUS[city]

        agent = Agent("openai:gpt-4o-mini", tools=[population], max_turns=4)
        agent("Which is bigger, Lyon or Lille?")
    """

    def __init__(self, model: Any, tools: Sequence[Any], *, max_turns: int = 8) -> None:
        if isinstance(model, str):
            model = bind(model)
        if not callable(model):
            raise ValidationError(
                "Agent: model must be a model id such as 'sim:echo', an xcs.models.bind(...) "
                f"binding or a callable (messages, tools=...) -> Response; got "
                f"{type(model).__name__}",
                operator="Agent",
            )
        if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
            raise ValidationError(
                f"Agent: max_turns must be an int >= 1, got {max_turns!r}", operator="Agent"
            )
        try:
            self.tools: tuple[ToolSpec, ...] = tool_specs(list(tools))
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"Agent: tools: {exc}", operator="Agent") from None
        if not self.tools:
            raise ValidationError("Agent: give at least one tool", operator="Agent")
        self.model: Callable[..., Any] = model
        self.max_turns = max_turns
        self._by_name = {tool.name: tool for tool in self.tools}

    # The specs hold pydantic models made at run time, which do not pickle; the
    # functions and model classes they came from do (by reference), so an Agent
    # travels to process pools and Ray workers as those and rebuilds its specs.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["tools"] = [tool.source for tool in self.tools]
        del state["_by_name"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["tools"] = tool_specs(state["tools"])
        state["_by_name"] = {tool.name: tool for tool in state["tools"]}
        self.__dict__.update(state)

    def forward(self, task: str) -> str:
        messages: list[Message] = [Message("user", task)]
        for turn in range(1, self.max_turns + 1):
            with _spans.span("span", f"Agent turn {turn}", turn=turn):
                reply = self.model(messages, tools=self.tools)
                calls = tuple(getattr(reply, "tool_calls", ()))
                if not calls:
                    return reply  # type: ignore[no-any-return]
                if turn == self.max_turns:
                    raise MaxTurnsError(
                        f"Agent: the model still called tools ({', '.join(c.name for c in calls)}) "
                        f"at its last turn (max_turns={self.max_turns}); their calls were not run",
                        turns=turn,
                        tool_calls=calls,
                        messages=tuple(messages),
                    )
                messages.append(Message("assistant", str(reply), tool_calls=calls))
                results = self._run_tools(calls, turn)
                messages.extend(
                    Message("tool", text, tool_call_id=call.id)
                    for call, text in zip(calls, results, strict=True)
                )
        raise AssertionError("unreachable: the last turn returns or raises")  # pragma: no cover

    def _run_tools(self, calls: tuple[ToolCall, ...], turn: int) -> list[str]:
        """Run one turn's calls concurrently; results in the model's order."""

        def run(call: ToolCall) -> str:
            tool = self._by_name.get(call.name)
            with _spans.span("span", f"tool {call.name}", tool=call.name, turn=turn) as span:
                try:
                    if tool is None:
                        raise ValidationError(
                            f"Agent: the model called {call.name!r}, which is not one of its "
                            f"tools ({', '.join(self._by_name)})",
                            operator="Agent",
                            tool=call.name,
                        )
                    text = tool_result_text(tool.run(call.arguments))
                    if span is not None:  # what the model is told (shortened)
                        span.attrs["result"] = text[:200]
                    return text
                except BaseException as exc:
                    exc.add_note(f"in tool {call.name!r} (call {call.id}) of Agent turn {turn}")
                    raise

        return ordered_map(run, calls, name=f"Agent turn {turn} tools")

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        return [
            (None, self.model),
            ("tools", [tool.name for tool in self.tools]),
            ("max_turns", self.max_turns),
        ]


def tool_result_text(value: Any) -> str:
    """A tool's result as the text sent back to the model: a ``str`` as it is, a
    pydantic model as its JSON, anything else as JSON (``str()`` where JSON fails)."""
    if isinstance(value, str):
        return value
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


# ModelBinding is accepted as the model (it takes tools=); referenced for readers.
_ = (ModelBinding, Response)
