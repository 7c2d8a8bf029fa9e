"""tool_choice=: auto, required, none or a tool's name, checked, sent in each
provider's form (openai, anthropic, local's grammar), obeyed by the simulator, and
part of the cache key."""

from __future__ import annotations

import importlib.util
import json

import pytest
from _fake_openai import FakeOpenAIServer, Reply, anthropic_reply, chat_reply, tool_calls_reply

import xcs
from xcs.models import Cache, EndpointConfig, Message, bind, models
from xcs.models._local import LocalProvider, local_messages
from xcs.models._tools import tool_specs
from xcs.models._types import Request, ToolCall

KEY = "sk-test-0123456789abcdef"


def weather(city: str) -> str:
    """The weather of a city."""
    return f"rain in {city}"


def population(city: str) -> int:
    """How many people live in a city."""
    return 1000


TOOLS = [weather, population]


def test_tool_choice_is_checked() -> None:
    with pytest.raises(xcs.ValidationError, match="tool_choice= needs tools="):
        models("sim:echo", "q", tool_choice="required")
    with pytest.raises(xcs.ValidationError, match=r"'auto', 'required', 'none' or the name"):
        models("sim:echo", "q", tools=TOOLS, tool_choice="sometimes")
    with pytest.raises(xcs.ValidationError, match="weather, population"):
        bind("sim:echo", tools=TOOLS, tool_choice="forecast")


def test_the_simulator_obeys_it() -> None:
    after = [
        Message("user", "q"),
        Message("assistant", "", tool_calls=(ToolCall("c1", "weather", {"city": "x"}),)),
        Message("tool", "rain", tool_call_id="c1"),
    ]
    assert not models("sim:echo", after, tools=TOOLS).tool_calls  # auto: answers now
    required = models("sim:echo", after, tools=TOOLS, tool_choice="required")
    assert [c.name for c in required.tool_calls] == ["weather", "population"]
    named = models("sim:echo", "q", tools=TOOLS, tool_choice="population")
    assert [c.name for c in named.tool_calls] == ["population"]
    none = models("sim:echo", "q", tools=TOOLS, tool_choice="none")
    assert not none.tool_calls
    assert none == "q"


def test_it_is_part_of_the_cache_key() -> None:
    with Cache() as cache:
        models("sim:echo", "q", tools=TOOLS, temperature=0)
        models("sim:echo", "q", tools=TOOLS, temperature=0, tool_choice="none")
        models("sim:echo", "q", tools=TOOLS, temperature=0, tool_choice="auto")
        stats = cache.statistics()
    assert (stats.misses, stats.hits) == (2, 1)  # "auto" is the default: the same key


def test_openai_sends_it(server: FakeOpenAIServer) -> None:
    pytest.importorskip("openai")
    server.behaviour = lambda body, i: Reply(
        body=tool_calls_reply([("c1", "weather", '{"city": "Oslo"}')])
    )
    llm = bind("openai:fake-model", base_url=server.base_url, api_key=KEY, tools=TOOLS)
    assert llm("q", tool_choice="required").tool_calls[0].name == "weather"
    llm("q", tool_choice="weather")
    server.behaviour = lambda body, i: Reply(body=chat_reply("fine"))
    assert llm("q", tool_choice="none") == "fine"
    llm("q")
    sent = [body.get("tool_choice") for body in server.requests]
    assert sent == [
        "required",
        {"type": "function", "function": {"name": "weather"}},
        "none",
        None,  # not given: the server's default (auto)
    ]


def test_anthropic_sends_it_in_its_own_words(server: FakeOpenAIServer) -> None:
    pytest.importorskip("anthropic")
    server.behaviour = lambda body, i: Reply(body=anthropic_reply("fine"))
    claude = bind("anthropic:fake-claude", base_url=server.root_url, api_key=KEY, tools=TOOLS)
    for choice in ("required", "population", "none", "auto"):
        claude("q", tool_choice=choice)
    claude("q")
    assert [body.get("tool_choice") for body in server.requests] == [
        {"type": "any"},
        {"type": "tool", "name": "population"},
        {"type": "none"},
        {"type": "auto"},
        None,
    ]


@pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="no local extra")
def test_local_narrows_its_grammar() -> None:
    provider = LocalProvider(EndpointConfig("local"))
    specs = tool_specs(TOOLS)

    def schema(choice: str | None) -> object:
        request = Request("smollm2", (Message("user", "q"),), tools=specs, tool_choice=choice)
        format_ = provider._body(request).get("response_format")
        return None if format_ is None else format_["json_schema"]["schema"]

    auto = schema(None)
    assert isinstance(auto, dict)
    assert len(auto["anyOf"]) == 2
    assert schema("auto") == auto
    required = schema("required")
    assert isinstance(required, dict)
    assert required["required"] == ["tool_calls"]
    items = required["properties"]["tool_calls"]["items"]["anyOf"]
    assert [i["properties"]["name"]["const"] for i in items] == ["weather", "population"]
    assert required["properties"]["tool_calls"]["maxItems"] == 2
    named = schema("population")
    assert isinstance(named, dict)
    items = named["properties"]["tool_calls"]["items"]["anyOf"]
    assert [i["properties"]["name"]["const"] for i in items] == ["population"]
    assert schema("none") is None  # a plain-text answer: no grammar


def test_local_writes_a_turns_calls_and_results_as_one_message() -> None:
    call = ToolCall("c1", "weather", {"city": "Oslo"})
    request = Request(
        "smollm2",
        (
            Message("user", "Is it wet in Oslo?"),
            Message("assistant", "", tool_calls=(call,)),
            Message("tool", "rain in Oslo", tool_call_id="c1"),
        ),
        tools=tuple(tool_specs(TOOLS)),
        tool_choice="none",
    )
    messages = local_messages(request)
    assert [m["role"] for m in messages] == ["system", "user", "user"]
    assert messages[2]["content"] == (
        'Results of the tools:\n- weather(city="Oslo"): rain in Oslo\n\n'
        "Use these results to answer: Is it wet in Oslo?"
    )
    assert json.dumps(messages).count("tool_calls") == 0  # no JSON for a small model to copy
