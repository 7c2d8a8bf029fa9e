"""response_model=: a validated instance from every provider; invalid replies retried,
then xcs.ValidationError; the schema in the cache key."""

from __future__ import annotations

import json
from typing import Literal

import pydantic
import pytest
from _fake_openai import (
    FakeOpenAIServer,
    Reply,
    anthropic_reply,
    anthropic_tool_reply,
    chat_reply,
)

import xcs
from xcs.models import Cache, FakeClock, MockProvider, bind, models
from xcs.models._structured import example_value, output_schema, strict_schema

KEY = "sk-test-0123456789abcdef"


class City(pydantic.BaseModel):
    """A city and how many people live there."""

    name: str
    population: int = pydantic.Field(ge=0)
    tags: list[str] = []
    nickname: str | None = None


class Verdict(pydantic.BaseModel):
    passed: bool
    score: float = pydantic.Field(ge=0, le=1)


class Counts(pydantic.BaseModel):
    counts: dict[str, int]


VALID = '{"name": "Paris", "population": 2100000, "tags": ["capital"], "nickname": null}'


# ---------------------------------------------------------------------------
# sim: and the schema machinery


def test_sim_returns_a_valid_instance_deterministically() -> None:
    first = models("sim:echo", "a city please", response_model=City)
    assert isinstance(first, City)
    assert first.population >= 0
    assert models("sim:echo", "a city please", response_model=City) == first
    assert isinstance(models("sim:chat", "q", response_model=Verdict), Verdict)
    binding = bind("sim:chat", response_model=Verdict)
    assert isinstance(binding("q"), Verdict)
    assert isinstance(binding.bind(temperature=0)("q"), Verdict)


def test_example_values_fit_many_schemas() -> None:
    import random

    class Inner(pydantic.BaseModel):
        x: int = pydantic.Field(gt=3, lt=6)

    class Big(pydantic.BaseModel):
        kind: str = pydantic.Field(pattern=None, min_length=5, max_length=12)
        choice: int | str
        lit: Literal["a", "b"] | None = None
        inner: Inner
        inners: list[Inner] = pydantic.Field(min_length=2, max_length=3)
        ratio: float = pydantic.Field(ge=0.5, le=0.75)
        flag: bool
        when: str = pydantic.Field(json_schema_extra={"format": "date"})

    for seed in range(30):
        value = example_value(Big.model_json_schema(), random.Random(seed))
        Big.model_validate(value)


def test_the_strict_schema_requires_everything_and_forbids_extras() -> None:
    strict = output_schema(City).strict
    assert strict is not None
    assert strict["additionalProperties"] is False
    assert strict["required"] == ["name", "population", "tags", "nickname"]
    assert "default" not in json.dumps(strict)
    assert strict_schema(Counts.model_json_schema()) is None  # free-form keys


def test_a_bad_response_model_is_a_validation_error_naming_it() -> None:
    with pytest.raises(xcs.ValidationError, match="response_model") as info:
        models("sim:echo", "q", response_model=dict)
    assert "response_model" in info.value.parameters

    def lookup(city: str) -> str:
        return city

    with pytest.raises(xcs.ValidationError, match="not both"):
        models("sim:echo", "q", response_model=City, tools=[lookup])


def test_jit_matches_plain() -> None:
    def program(topics: list[str]) -> list[City]:
        return [models("sim:chat", t, response_model=City) for t in topics]

    topics = ["rivers", "bridges", "towers"]
    assert xcs.jit(program)(topics) == program(topics)


def test_an_invalid_reply_is_retried_then_a_validation_error(clock: FakeClock) -> None:
    replies = iter(['{"name": "Paris"}', "sure! here it is", VALID])
    provider = MockProvider(lambda request: next(replies))
    models.register_provider("mock", provider)
    city = models("mock:m", "q", response_model=City)
    assert city == City.model_validate_json(VALID)
    assert len(provider.requests) == 3
    assert provider.requests[0].output is not None

    bad = MockProvider(lambda request: '{"name": 3, "population": -1}')
    models.register_provider("bad", bad)
    with pytest.raises(xcs.ValidationError) as info:
        models("bad:m", "q", response_model=City, max_attempts=2)
    err = info.value
    assert len(bad.requests) == 2
    assert err.attempts == 2
    assert set(err.fields) == {"name", "population"}
    assert err.reply == '{"name": 3, "population": -1}'
    assert '{"name": 3, "population": -1}' in str(err)
    assert "City" in str(err)
    assert "gave up after 2 attempts" in str(err)
    assert not isinstance(err, xcs.ProviderError)


def test_a_reply_in_a_code_fence_is_read() -> None:
    models.register_provider("mock", MockProvider(lambda r: f"```json\n{VALID}\n```"))
    assert models("mock:m", "q", response_model=City).name == "Paris"


def test_the_schema_is_in_the_cache_key_and_invalid_replies_are_not_cached(
    clock: FakeClock,
) -> None:
    replies = iter(
        [VALID, '{"passed": true, "score": 2}', '{"passed": true, "score": 0.5}', "plain"]
    )
    provider = MockProvider(lambda request: next(replies))
    models.register_provider("mock", provider)
    with Cache():
        assert models("mock:m", "q", response_model=City).name == "Paris"
        assert models("mock:m", "q", response_model=City).name == "Paris"  # a hit
        assert len(provider.requests) == 1
        verdict = models("mock:m", "q", response_model=Verdict)  # another schema: a miss
        assert verdict == Verdict(passed=True, score=0.5)
        assert len(provider.requests) == 3  # the invalid reply was retried, not stored
        assert models("mock:m", "q", response_model=Verdict) == verdict
        assert models("mock:m", "q") == "plain"  # no schema: its own key
        assert len(provider.requests) == 4


# ---------------------------------------------------------------------------
# openai: (the real SDK against the fake server)


def test_openai_sends_a_strict_json_schema(server: FakeOpenAIServer) -> None:
    pytest.importorskip("openai")
    server.behaviour = lambda body, i: Reply(body=chat_reply(VALID))
    llm = bind("openai:fake-model", base_url=server.base_url, api_key=KEY)
    city = llm("a city", response_model=City)
    assert city == City(name="Paris", population=2100000, tags=["capital"])
    (body,) = server.requests
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    spec = fmt["json_schema"]
    assert (spec["name"], spec["strict"]) == ("City", True)
    assert spec["description"] == "A city and how many people live there."
    assert spec["schema"]["additionalProperties"] is False
    # A schema with free-form keys cannot be strict: sent as it is, strict off.
    server.behaviour = lambda body, i: Reply(body=chat_reply('{"counts": {"a": 1}}'))
    assert llm("count", response_model=Counts).counts == {"a": 1}
    spec = server.requests[-1]["response_format"]["json_schema"]
    assert spec["strict"] is False
    assert spec["schema"] == Counts.model_json_schema()


def test_openai_invalid_replies_then_validation_error(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    pytest.importorskip("openai")
    server.behaviour = lambda body, i: Reply(body=chat_reply('{"name": "Paris"}'))
    llm = bind("openai:fake-model", base_url=server.base_url, api_key=KEY)
    with pytest.raises(xcs.ValidationError, match="population") as info:
        llm("a city", response_model=City, max_attempts=3)
    assert server.count == 3
    assert info.value.fields == ("population",)
    assert '\'{"name": "Paris"}\'' in str(info.value)


# ---------------------------------------------------------------------------
# anthropic: its tool-use form


def test_anthropic_structured_output_through_a_forced_tool(server: FakeOpenAIServer) -> None:
    pytest.importorskip("anthropic")
    data = json.loads(VALID)
    server.behaviour = lambda body, i: Reply(
        body=anthropic_tool_reply([("toolu_1", "City", data)], text="Here you go.")
    )
    claude = bind("anthropic:fake-claude", base_url=server.root_url, api_key=KEY)
    assert claude("a city", response_model=City) == City.model_validate(data)
    (body,) = server.requests
    assert body["tool_choice"] == {"type": "tool", "name": "City"}
    (tool,) = body["tools"]
    assert tool["name"] == "City"
    assert tool["input_schema"] == City.model_json_schema()


def test_anthropic_a_reply_without_the_tool_is_retried(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    pytest.importorskip("anthropic")
    data = json.loads(VALID)
    server.behaviour = lambda body, i: Reply(
        body=anthropic_reply("I cannot") if i == 0 else anthropic_tool_reply([("t", "City", data)])
    )
    claude = bind("anthropic:fake-claude", base_url=server.root_url, api_key=KEY)
    assert claude("a city", response_model=City).name == "Paris"
    assert server.count == 2


def test_acall_returns_a_validated_instance_too(clock: FakeClock) -> None:
    import asyncio

    replies = iter(['{"name": "Paris"}', VALID])
    models.register_provider("mock", MockProvider(lambda request: next(replies)))
    city = asyncio.run(models.acall("mock:m", "q", response_model=City))
    assert city == City.model_validate_json(VALID)
    models.register_provider("bad", MockProvider(lambda request: "nope"))
    with pytest.raises(xcs.ValidationError, match="not valid JSON"):
        asyncio.run(bind("bad:m", response_model=City).acall("q", max_attempts=2))
