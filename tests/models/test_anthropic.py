"""anthropic: through the real anthropic SDK against the fake server; every SDK error mapped."""

from __future__ import annotations

import inspect
import types

import pytest

import xcs
from xcs.errors import InvalidRequestError, ProviderTimeoutError
from xcs.models import FakeClock, ModelBinding, bind, models

anthropic = pytest.importorskip("anthropic")

from _fake_openai import FakeOpenAIServer, Reply, anthropic_reply, error_body  # noqa: E402

from xcs.models._anthropic import map_error  # noqa: E402

KEY = "sk-ant-test-0123456789"


def claude(server: FakeOpenAIServer, **params: object) -> ModelBinding:
    return bind("anthropic:fake-claude", base_url=server.root_url, api_key=KEY, **params)


def test_a_normal_reply(server: FakeOpenAIServer) -> None:
    server.behaviour = lambda body, i: Reply(body=anthropic_reply("bonjour"))
    answer = claude(server)("hello", system="be brief", temperature=0.2, stop=["\n"])
    assert answer == "bonjour"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (9, 2)
    assert answer.finish_reason == "stop"
    assert answer.model == "anthropic:fake-claude"
    (body,) = server.requests
    assert server.paths == ["/v1/messages"]
    assert body["system"] == "be brief"
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert body["max_tokens"] == 1024  # required by the API: XCS's default
    assert (body["temperature"], body["stop_sequences"]) == (0.2, ["\n"])
    sent = server.headers[0]  # SDK versions send the key as x-api-key or a bearer token
    assert KEY in sent.get("x-api-key", "") + sent.get("authorization", "")


def test_seed_and_hot_temperatures_are_rejected_before_sending(server: FakeOpenAIServer) -> None:
    with pytest.raises(xcs.ValidationError, match="does not take seed"):
        claude(server)("q", seed=1)
    with pytest.raises(xcs.ValidationError, match="0 to 1"):
        claude(server)("q", temperature=1.5)
    assert server.count == 0


def test_overloaded_and_rate_limited_are_retried(
    server: FakeOpenAIServer, clock: FakeClock
) -> None:
    replies = [
        Reply(529, {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
        Reply(429, error_body("slow", "rate_limit_error"), headers={"retry-after": "2"}),
    ]
    server.behaviour = lambda body, i: replies[i] if i < 2 else Reply(body=anthropic_reply("ok"))
    assert claude(server)("q") == "ok"
    assert server.count == 3
    assert 2.0 <= clock.sleeps[1] <= 2.4  # the Retry-After, jittered up to 20% later


def test_a_refused_key(server: FakeOpenAIServer, clock: FakeClock) -> None:
    server.behaviour = lambda body, i: Reply(401, error_body("bad key", "authentication_error"))
    with pytest.raises(xcs.AuthenticationError, match="HTTP 401"):
        claude(server)("q")
    assert server.count == 1


def test_a_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(xcs.AuthenticationError, match="ANTHROPIC_API_KEY"):
        models("anthropic:claude-3-5-haiku-latest", "q")


# ---------------------------------------------------------------------------
# Every SDK exception class


# The classes that carry no HTTP status, mapped one by one. Status errors (the SDK has
# dozens: one per status and per cause) are mapped by their status, checked below.
EXPECTED: dict[str, tuple[type[xcs.ProviderError], bool]] = {
    "AnthropicError": (xcs.ProviderError, False),
    "APIError": (xcs.ProviderError, False),
    "APIConnectionError": (xcs.ProviderError, True),
    "APITimeoutError": (ProviderTimeoutError, True),
    "APIResponseValidationError": (xcs.ProviderError, True),
    "APIWebhookValidationError": (xcs.ProviderError, False),
    "RetryableError": (xcs.ProviderError, True),
    "CredentialsError": (xcs.AuthenticationError, False),
    "IdentityTokenFileError": (xcs.AuthenticationError, False),
    "WorkloadIdentityError": (xcs.ProviderError, False),
}


def expected_for_status(status: int) -> tuple[type[xcs.ProviderError], bool]:
    if status == 429:
        return xcs.RateLimitError, True
    if status in (401, 403):
        return xcs.AuthenticationError, False
    if status >= 500 or status in (408, 409, 499):
        return xcs.ProviderError, True
    if status == 402:
        return xcs.ProviderError, False
    return InvalidRequestError, False


def sdk_exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in (anthropic, anthropic._exceptions):
        for name, obj in list(vars(module).items()):
            public = not name.startswith("_")
            if public and inspect.isclass(obj) and issubclass(obj, anthropic.AnthropicError):
                found[name] = obj
    return found


def httpx_module() -> types.ModuleType:
    module = getattr(anthropic._exceptions, "httpx2", None) or getattr(
        anthropic._exceptions, "httpx", None
    )
    assert isinstance(module, types.ModuleType)
    return module


def build(cls: type[BaseException]) -> BaseException:
    httpx = httpx_module()
    request = httpx.Request("POST", "http://127.0.0.1/v1/messages")
    if issubclass(cls, anthropic.APIStatusError):
        status = getattr(cls, "status_code", None)
        status = status if isinstance(status, int) else 500
        response = httpx.Response(status, request=request, headers={"retry-after": "4"})
        return cls("failed", response=response, body=None)
    if issubclass(cls, anthropic.APIResponseValidationError):
        return cls(httpx.Response(200, request=request), None)
    if issubclass(cls, anthropic.APITimeoutError):
        return cls(request)
    if issubclass(cls, anthropic.APIConnectionError):
        return cls(request=request)
    if issubclass(cls, anthropic.APIError):
        return cls("failed", request, body=None)
    return cls("failed")


def status_of(cls: type[BaseException]) -> int | None:
    if not issubclass(cls, anthropic.APIStatusError):
        return None
    status = getattr(cls, "status_code", None)
    return status if isinstance(status, int) else 500


def test_every_sdk_exception_class_is_mapped() -> None:
    classes = sdk_exception_classes()
    unmapped = sorted(n for n, c in classes.items() if status_of(c) is None and n not in EXPECTED)
    assert not unmapped, f"anthropic exception classes with no expected mapping: {unmapped}"
    assert len(classes) > 20  # the status classes are all tested below


@pytest.mark.parametrize("name", sorted(sdk_exception_classes()))
def test_mapping(name: str) -> None:
    cls = sdk_exception_classes()[name]
    status = status_of(cls)
    mapped = map_error(build(cls), "claude-x", timeout=3.0)
    expected, retryable = EXPECTED[name] if status is None else expected_for_status(status)
    if status is not None:
        assert mapped.status == status  # type: ignore[attr-defined]
    assert type(mapped) is expected, (name, type(mapped))
    assert mapped.retryable is retryable  # type: ignore[attr-defined]
    assert (mapped.provider, mapped.model) == ("anthropic", "claude-x")  # type: ignore[attr-defined]
    if name == "RateLimitError":
        assert mapped.retry_after == 4.0  # type: ignore[attr-defined]
