"""tools=: specs from functions and models; Response.tool_calls from every provider;
tool messages sent back in each provider's form; cached with the calls."""

from __future__ import annotations

import json

import pydantic
import pytest
from _fake_openai import (
    FakeOpenAIServer,
    Reply,
    anthropic_reply,
    anthropic_tool_reply,
    chat_reply,
    tool_calls_reply,
)

import xcs
from xcs.models import Cache, FakeClock, Message, ToolCall, bind, models
from xcs.models._tools import tool_spec

KEY = "sk-test-0123456789abcdef"


def get_weather(city: str, days: int = 1, unit: str = "celsius") -> str:
    """The weather forecast of a city.

    Args:
        city: the city's name,
            as people write it.
        days: how many days ahead.

    Returns:
        A sentence.
    """
    return f"sunny in {city} for {days} days ({unit})"


class Reminder(pydantic.BaseModel):
    """Set a reminder."""

    text: str
    minutes: int = pydantic.Field(ge=1)


def test_a_function_spec_comes_from_its_signature_and_docstring() -> None:
    spec = tool_spec(get_weather)
    assert spec.name == "get_weather"
    assert spec.description == "The weather forecast of a city."
    params = spec.parameters
    assert params["required"] == ["city"]
    assert params["properties"]["city"]["type"] == "string"
    assert params["properties"]["city"]["description"] == "the city's name, as people write it."
    assert params["properties"]["days"]["description"] == "how many days ahead."
    assert params["properties"]["days"]["default"] == 1
    assert spec.run({"city": "Oslo", "days": 2}) == get_weather("Oslo", 2)
    with pytest.raises(xcs.ValidationError, match="days") as info:
        spec.run({"city": "Oslo", "days": "many"})
    assert info.value.fields == ("days",)


def test_a_model_spec_and_bad_tools() -> None:
    spec = tool_spec(Reminder)
    assert (spec.name, spec.description) == ("Reminder", "Set a reminder.")
    assert spec.run({"text": "tea", "minutes": 4}) == Reminder(text="tea", minutes=4)

    def star(*args: int) -> int:
        return 0

    for bad, match in [
        (lambda x: x, "name"),
        (star, r"\*args"),
        (42, "function or a pydantic model class"),
        ([get_weather, get_weather], "named 'get_weather'"),
    ]:
        tools = bad if isinstance(bad, list) else [bad]
        with pytest.raises(xcs.ValidationError, match=match) as info:
            models("sim:echo", "q", tools=tools)
        assert "tools" in info.value.parameters


def test_sim_calls_every_tool_with_valid_arguments_then_answers() -> None:
    reply = models("sim:echo", "plan my day", tools=[get_weather, Reminder])
    assert reply == ""
    assert reply.finish_reason == "tool_calls"
    weather, reminder = reply.tool_calls
    assert (weather.name, reminder.name) == ("get_weather", "Reminder")
    tool_spec(get_weather).run(weather.arguments)
    tool_spec(Reminder).run(reminder.arguments)
    assert models("sim:echo", "plan my day", tools=[get_weather, Reminder]) == reply
    answer = models(
        "sim:echo",
        [
            {"role": "user", "content": "plan my day"},
            {"role": "assistant", "content": "", "tool_calls": reply.tool_calls},
            {"role": "tool", "tool_call_id": weather.id, "content": "rain"},
            Message("tool", "set", tool_call_id=reminder.id),
        ],
        tools=[get_weather, Reminder],
    )
    assert answer == "rain\nset"
    assert answer.tool_calls == ()


def test_malformed_tool_messages_are_validation_errors() -> None:
    with pytest.raises(xcs.ValidationError, match="messages\\[1\\]"):
        models("sim:echo", [{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}])
    with pytest.raises(xcs.ValidationError, match="malformed tool call"):
        models(
            "sim:echo",
            [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": 1}]}],
        )


def test_tool_calls_are_cached_with_the_answer() -> None:
    with Cache() as cache:
        first = models("sim:echo", "q", tools=[get_weather])
        again = models("sim:echo", "q", tools=[get_weather])
        assert again.cached
        assert again.tool_calls == first.tool_calls
        assert cache.statistics().hits == 1
        other = models("sim:echo", "q", tools=[Reminder])  # other tools: another key
        assert not other.cached


# ---------------------------------------------------------------------------
# openai: scripted tool calls through the real SDK


def test_openai_tool_calls_and_results_round_trip(server: FakeOpenAIServer) -> None:
    pytest.importorskip("openai")

    def behaviour(body: dict[str, object], index: int) -> Reply:
        if index == 0:
            return Reply(
                body=tool_calls_reply(
                    [
                        ("call_a", "get_weather", '{"city": "Oslo", "days": 2}'),
                        ("call_b", "Reminder", '{"text": "umbrella", "minutes": 5}'),
                    ]
                )
            )
        return Reply(body=chat_reply("Take an umbrella."))

    server.behaviour = behaviour
    llm = bind("openai:fake-model", base_url=server.base_url, api_key=KEY)
    reply = llm("Oslo trip?", tools=[get_weather, Reminder])
    assert reply.tool_calls == (
        ToolCall("call_a", "get_weather", {"city": "Oslo", "days": 2}),
        ToolCall("call_b", "Reminder", {"text": "umbrella", "minutes": 5}),
    )
    assert reply.finish_reason == "tool_calls"
    sent = server.requests[0]["tools"]
    assert [t["function"]["name"] for t in sent] == ["get_weather", "Reminder"]
    assert sent[0]["type"] == "function"
    assert sent[0]["function"]["parameters"] == tool_spec(get_weather).parameters

    answer = llm(
        [
            {"role": "user", "content": "Oslo trip?"},
            {"role": "assistant", "content": "", "tool_calls": reply.tool_calls},
            {"role": "tool", "tool_call_id": "call_a", "content": "rain"},
            {"role": "tool", "tool_call_id": "call_b", "content": "ok"},
        ],
        tools=[get_weather, Reminder],
    )
    assert answer == "Take an umbrella."
    messages = server.requests[1]["messages"]
    assert messages[1]["content"] is None
    assert messages[1]["tool_calls"][0] == {
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps({"city": "Oslo", "days": 2})},
    }
    assert messages[2:] == [
        {"role": "tool", "content": "rain", "tool_call_id": "call_a"},
        {"role": "tool", "content": "ok", "tool_call_id": "call_b"},
    ]


def test_openai_malformed_arguments_are_retried(server: FakeOpenAIServer, clock: FakeClock) -> None:
    pytest.importorskip("openai")
    bad = tool_calls_reply([("call_a", "get_weather", "{not json")])
    good = tool_calls_reply([("call_a", "get_weather", '{"city": "Rome"}')])
    server.behaviour = lambda body, i: Reply(body=bad if i == 0 else good)
    llm = bind("openai:fake-model", base_url=server.base_url, api_key=KEY)
    assert llm("q", tools=[get_weather]).tool_calls[0].arguments == {"city": "Rome"}
    assert server.count == 2
    server.behaviour = lambda body, i: Reply(body=bad)
    with pytest.raises(xcs.ProviderError, match="malformed tool call"):
        llm("q2", tools=[get_weather], max_attempts=2)


# ---------------------------------------------------------------------------
# anthropic: tool_use and tool_result blocks


def test_anthropic_tool_use_and_results_round_trip(server: FakeOpenAIServer) -> None:
    pytest.importorskip("anthropic")

    def behaviour(body: dict[str, object], index: int) -> Reply:
        if index == 0:
            return Reply(
                body=anthropic_tool_reply(
                    [("toolu_1", "get_weather", {"city": "Oslo"}), ("toolu_2", "Reminder", {})],
                    text="Let me check.",
                )
            )
        return Reply(body=anthropic_reply("Bring a coat."))

    server.behaviour = behaviour
    claude = bind("anthropic:fake-claude", base_url=server.root_url, api_key=KEY)
    reply = claude("Oslo?", tools=[get_weather, Reminder], system="be brief")
    assert reply == "Let me check."
    assert reply.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("toolu_1", "get_weather", {"city": "Oslo"}),
        ("toolu_2", "Reminder", {}),
    ]
    sent = server.requests[0]["tools"]
    assert sent[0] == {
        "name": "get_weather",
        "description": "The weather forecast of a city.",
        "input_schema": tool_spec(get_weather).parameters,
    }
    assert "tool_choice" not in server.requests[0]

    answer = claude(
        [
            {"role": "user", "content": "Oslo?"},
            Message("assistant", "Let me check.", tool_calls=reply.tool_calls),
            Message("tool", "rain", tool_call_id="toolu_1"),
            Message("tool", "set", tool_call_id="toolu_2"),
        ],
        tools=[get_weather, Reminder],
        system="be brief",
    )
    assert answer == "Bring a coat."
    messages = server.requests[1]["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_2", "name": "Reminder", "input": {}},
        ],
    }
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "set"},
        ],
    }
