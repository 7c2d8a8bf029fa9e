"""xcs.models(...) and bindings: ids, parameters, messages, Response, pickling."""

from __future__ import annotations

import pickle

import pytest

import xcs
from xcs.models import MockProvider, ModelBinding, Request, Response, Usage, bind, models


def test_a_call_returns_a_response_that_is_a_str() -> None:
    answer = models("sim:echo", "why is the sky blue?", temperature=0)
    assert isinstance(answer, str)
    assert answer == "why is the sky blue?"
    assert "\n".join([answer, answer]) == "why is the sky blue?\nwhy is the sky blue?"
    assert answer.model == "sim:echo"
    assert answer.usage == Usage(prompt_tokens=8, completion_tokens=5)
    assert answer.usage.total_tokens == 13
    assert answer.latency_s >= 0
    assert answer.cost_usd is None  # the simulator has no price unless given one
    assert answer.finish_reason == "stop"
    assert answer.cached is False


def test_response_pickles_with_its_attributes() -> None:
    answer = models("sim:chat?price_in=1&price_out=2", "hello", max_tokens=4)
    back = pickle.loads(pickle.dumps(answer))
    assert type(back) is Response
    assert back == answer
    assert (back.usage, back.model, back.latency_s, back.cost_usd, back.finish_reason) == (
        answer.usage,
        answer.model,
        answer.latency_s,
        answer.cost_usd,
        answer.finish_reason,
    )
    assert answer.usage == Usage(prompt_tokens=4, completion_tokens=4)  # 1 word + 3 per message
    assert back.cost_usd == pytest.approx((4 * 1 + 4 * 2) / 1e6)


def test_response_repr_and_plain_text() -> None:
    answer = Response("hi", usage=Usage(3, 1), model="sim:echo", latency_s=0.25, cost_usd=0.5)
    assert repr(answer) == (
        "Response('hi', model='sim:echo', tokens=3+1, latency_s=0.250, cost_usd=0.500000)"
    )
    assert type(answer.text) is str
    assert answer.replace("h", "H") == "Hi"  # str methods are str's
    assert hash(answer) == hash("hi")


def test_messages_and_system_prompt() -> None:
    seen: list[Request] = []

    def handler(request: Request) -> str:
        seen.append(request)
        return "ok"

    models.register_provider("mock", MockProvider(handler))
    models(
        "mock:m",
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ],
        system="be brief",
    )
    request = seen[0]
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "be brief"),
        ("user", "a"),
        ("assistant", "b"),
        ("user", "c"),
    ]
    assert request.system == "be brief"


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [
        (42, "prompt string or a list of messages"),
        ([], "empty"),
        ([{"role": "robot", "content": "x"}], r"messages\[0\]"),
        ([{"role": "user", "content": 3}], r"messages\[0\]"),
        ([{"role": "user", "content": "x", "name": "n"}], r"messages\[0\]"),
        ([{"role": "system", "content": "x"}], "no user message"),
    ],
)
def test_malformed_messages_are_validation_errors(prompt: object, fragment: str) -> None:
    with pytest.raises(xcs.ValidationError, match=fragment):
        models("sim:echo", prompt)  # type: ignore[arg-type]


def test_system_twice_is_an_error() -> None:
    with pytest.raises(xcs.ValidationError, match="system prompt one way"):
        models(
            "sim:echo",
            [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}],
            system="z",
        )


def test_unknown_parameters_are_named() -> None:
    with pytest.raises(xcs.ValidationError) as info:
        models("sim:echo", "hi", temprature=0.2, top_k=3)
    message = str(info.value)
    assert "unknown parameters temprature, top_k" in message
    assert "Known parameters: system, temperature" in message
    assert info.value.parameters == ("temprature", "top_k")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"stop": [""]}, "stop"),
        ({"stop": 3}, "stop"),
        ({"seed": "one"}, "seed"),
        ({"sample": -1}, "sample"),
        ({"timeout": 0}, "timeout"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_invalid_parameter_values_name_the_parameter(params: dict[str, object], name: str) -> None:
    with pytest.raises(xcs.ValidationError, match=rf"{name}: ") as info:
        models("sim:echo", "hi", **params)
    assert not isinstance(info.value.__cause__, Exception)  # pydantic's error stays inside
    assert info.value.parameters == (name,)  # type: ignore[attr-defined]


def test_pydantic_errors_never_escape() -> None:
    import pydantic

    with pytest.raises(xcs.ValidationError) as info:
        models("sim:echo", "hi", temperature="x")
    assert not isinstance(info.value, pydantic.ValidationError)
    assert info.value.__suppress_context__


@pytest.mark.parametrize(
    ("model_id", "fragment"),
    [
        ("gpt-4o", "not of the form 'provider:model'"),
        ("openai:", "not of the form"),
        (":gpt", "not of the form"),
        ("nope:x", "unknown model provider 'nope'"),
        (3, "a model id is a string"),
        ("sim:echo?latency", "key=value"),
        ("sim:echo?latency=1&latency=2", "repeats an option"),
        ("sim:echo?speed=3", "unknown option speed"),
        ("sim:echo?latency=-1", "latency"),
        ("sim:echo?error_rate=0.6&timeout_rate=0.6", "must be <= 1"),
    ],
)
def test_bad_model_ids(model_id: object, fragment: str) -> None:
    with pytest.raises(xcs.ValidationError, match=fragment):
        models(model_id, "hi")  # type: ignore[arg-type]


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(xcs.ValidationError, match="known providers: anthropic, local, openai, sim"):
        models("opneai:gpt-4o", "hi")


def test_a_provider_rejects_parameters_it_does_not_take() -> None:
    with pytest.raises(xcs.ValidationError, match="does not take base_url, api_key"):
        models("sim:echo", "hi", base_url="http://x", api_key="k")


def test_only_sim_takes_options() -> None:
    models.register_provider("mock", MockProvider(lambda r: "x"))
    with pytest.raises(xcs.ValidationError, match="only sim: model ids take"):
        models("mock:m?latency=1", "hi")


# ---------------------------------------------------------------------------
# Bindings


def test_bind_then_call_with_overrides() -> None:
    echo = bind("sim:echo", temperature=0, max_tokens=2)
    assert echo("a b c") == "a b"
    assert echo("a b c", max_tokens=3) == "a b c"
    assert echo.bind(stop=" b")("a b c") == "a"
    assert models.bind is bind


def test_bind_checks_eagerly() -> None:
    with pytest.raises(xcs.ValidationError, match="unknown parameter temprature"):
        bind("sim:echo", temprature=1)
    with pytest.raises(xcs.ValidationError, match="unknown model provider"):
        bind("nope:x")
    with pytest.raises(xcs.ValidationError, match="does not take base_url"):
        bind("sim:echo", base_url="http://localhost")
    echo = bind("sim:echo")
    with pytest.raises(xcs.ValidationError, match="max_tokens"):
        echo.bind(max_tokens=-1)
    with pytest.raises(xcs.ValidationError, match="max_tokens"):
        echo("hi", max_tokens=-1)


def test_binding_pickles_and_compares() -> None:
    judge = bind("sim:chat?latency=0", temperature=0.5, stop=["\n"])
    back = pickle.loads(pickle.dumps(judge))
    assert isinstance(back, ModelBinding)
    assert back == judge
    assert hash(back) == hash(judge)
    assert back("q") == judge("q")
    assert judge != bind("sim:chat?latency=0", temperature=0.6, stop=["\n"])


def test_binding_repr_masks_the_key_and_labels_the_simulator() -> None:
    assert repr(bind("sim:echo", temperature=0)) == (
        "ModelBinding('sim:echo', temperature=0) [simulator]"
    )
    secret = bind("openai:gpt-4o-mini", api_key="sk-secret-123456")
    assert "sk-secret" not in repr(secret)
    assert "api_key=***" in repr(secret)
    assert not secret.simulated


def test_models_object() -> None:
    assert pickle.loads(pickle.dumps(models)) is models
    assert repr(models) == "<xcs.models: providers anthropic, local, openai, sim>"
    assert models.providers() == ["anthropic", "local", "openai", "sim"]
    assert models.Response is Response
    assert models.__doc__


def test_register_and_unregister_a_provider() -> None:
    mock = MockProvider(lambda r: r.messages[-1].content.upper())
    models.register_provider("mock", mock)
    assert models("mock:any", "hello") == "HELLO"
    assert mock.requests[0].model == "any"
    models.unregister_provider("mock")
    with pytest.raises(xcs.ValidationError, match="unknown model provider 'mock'"):
        models("mock:any", "hello")
    with pytest.raises(xcs.ValidationError, match="Provider subclass"):
        models.register_provider("bad", object())  # type: ignore[arg-type]
    with pytest.raises(xcs.ValidationError, match="identifier"):
        models.register_provider("not a name", mock)


def test_statistics_count_calls_and_tokens() -> None:
    models("sim:echo", "one two")
    models("sim:echo", "three")
    stats = models.statistics()["models"]["sim:echo"]
    assert (stats.calls, stats.attempts, stats.retries, stats.failures) == (2, 2, 0, 0)
    assert stats.completion_tokens == 3


def test_the_package_exports() -> None:
    import types

    # The package module (``xcs.models``, the attribute of ``xcs``, is the callable).
    package = __import__("xcs.models", fromlist=["_api"])
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert package.__all__ == sorted(package.__all__)
    assert set(package.__all__) == public


def test_the_package_docstring_examples_run() -> None:
    import doctest

    package = __import__("xcs.models", fromlist=["_api"])
    failures, tried = doctest.testmod(package, verbose=False)
    assert tried >= 5
    assert failures == 0
