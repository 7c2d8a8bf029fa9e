"""Every exception class of the openai SDK maps to the right XCS error (httpx's pattern:
a test that fails when the SDK grows a class nobody mapped)."""

from __future__ import annotations

import inspect
import json
import types
from typing import Any

import pytest

import xcs
from xcs.errors import InvalidRequestError, ProviderTimeoutError

openai = pytest.importorskip("openai")

from xcs.models._openai import map_error, retry_after_seconds  # noqa: E402

# What each SDK class becomes: (XCS class, retryable). Status errors are built with
# the status their class stands for.
EXPECTED: dict[str, tuple[type[xcs.ProviderError], bool]] = {
    "OpenAIError": (xcs.ProviderError, False),
    "APIError": (xcs.ProviderError, False),
    "APIStatusError": (xcs.ProviderError, True),  # built with 500
    "APIConnectionError": (xcs.ProviderError, True),
    "APITimeoutError": (ProviderTimeoutError, True),
    "APIResponseValidationError": (xcs.ProviderError, True),
    "BadRequestError": (InvalidRequestError, False),
    "AuthenticationError": (xcs.AuthenticationError, False),
    "OAuthError": (xcs.AuthenticationError, False),
    "PermissionDeniedError": (xcs.AuthenticationError, False),
    "NotFoundError": (InvalidRequestError, False),
    "ConflictError": (xcs.ProviderError, True),
    "UnprocessableEntityError": (InvalidRequestError, False),
    "RateLimitError": (xcs.RateLimitError, True),
    "InternalServerError": (xcs.ProviderError, True),
    "LengthFinishReasonError": (xcs.ProviderError, False),
    "ContentFilterFinishReasonError": (xcs.ProviderError, False),
    "SubjectTokenProviderError": (xcs.ProviderError, False),
    "WebSocketConnectionClosedError": (xcs.ProviderError, False),
    "WebSocketQueueFullError": (xcs.ProviderError, False),
}

STATUS = {
    "APIStatusError": 500,
    "BadRequestError": 400,
    "AuthenticationError": 401,
    "OAuthError": 401,
    "PermissionDeniedError": 403,
    "NotFoundError": 404,
    "ConflictError": 409,
    "UnprocessableEntityError": 422,
    "RateLimitError": 429,
    "InternalServerError": 500,
}


def sdk_exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in (openai, openai._exceptions):
        for name, obj in list(vars(module).items()):
            public = not name.startswith("_")
            if public and inspect.isclass(obj) and issubclass(obj, openai.OpenAIError):
                found[name] = obj
    return found


def httpx_module() -> types.ModuleType:
    module = getattr(openai._exceptions, "httpx2", None) or getattr(
        openai._exceptions, "httpx", None
    )
    assert isinstance(module, types.ModuleType), "cannot find the SDK's HTTP library"
    return module


def build(name: str, cls: type[BaseException]) -> BaseException:
    httpx = httpx_module()
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    if name in STATUS:
        response = httpx.Response(STATUS[name], request=request, headers={"retry-after": "4"})
        if name == "OAuthError":
            return cls(response=response, body=None)  # type: ignore[call-arg]
        return cls("failed", response=response, body=None)  # type: ignore[call-arg]
    if name == "APIResponseValidationError":
        return cls(httpx.Response(200, request=request), None)  # type: ignore[call-arg]
    if name in ("APIConnectionError",):
        return cls(request=request)  # type: ignore[call-arg]
    if name == "APITimeoutError":
        return cls(request)  # type: ignore[call-arg]
    if name == "APIError":
        return cls("failed", request, body=None)  # type: ignore[call-arg]
    if name == "LengthFinishReasonError":
        return cls(completion=types.SimpleNamespace(usage=None))  # type: ignore[call-arg]
    if name == "ContentFilterFinishReasonError":
        return cls()
    if name == "WebSocketConnectionClosedError":
        return cls("closed", unsent_messages=[])  # type: ignore[call-arg]
    return cls("failed")


def test_every_sdk_exception_class_is_mapped() -> None:
    unmapped = sorted(set(sdk_exception_classes()) - set(EXPECTED))
    assert not unmapped, f"openai exception classes with no expected mapping: {unmapped}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mapping(name: str) -> None:
    classes = sdk_exception_classes()
    if name not in classes:
        pytest.skip(f"this openai version has no {name}")
    exc = build(name, classes[name])
    expected, retryable = EXPECTED[name]
    mapped = map_error(exc, "gpt-x", timeout=3.0)
    assert type(mapped) is expected, (name, type(mapped))
    assert mapped.retryable is retryable  # type: ignore[attr-defined]
    assert (mapped.provider, mapped.model) == ("openai", "gpt-x")  # type: ignore[attr-defined]
    assert str(mapped).startswith("openai:gpt-x: ")
    if name == "RateLimitError":
        assert mapped.retry_after == 4.0  # type: ignore[attr-defined]
        assert mapped.server_fault is False  # type: ignore[attr-defined]
    if name in STATUS:
        assert mapped.status == STATUS[name]  # type: ignore[attr-defined]


def test_json_decode_errors_are_malformed_responses() -> None:
    try:
        json.loads("{")
    except json.JSONDecodeError as exc:
        mapped = map_error(exc, "m")
    assert "malformed response" in str(mapped)
    assert mapped.retryable is True  # type: ignore[attr-defined]


def test_messages_are_redacted_of_the_key() -> None:
    httpx = httpx_module()
    key = "sk-live-abcdefghijklmnop"
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    exc = openai.AuthenticationError(
        f"Incorrect API key provided: {key}",
        response=httpx.Response(401, request=request),
        body=None,
    )
    mapped = map_error(exc, "m", key)
    assert key not in str(mapped)
    assert key not in repr(vars(mapped))
    assert "***" in str(mapped)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, 0.0),
    ],
)
def test_retry_after_headers(headers: dict[str, Any], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    import email.utils
    import time

    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = retry_after_seconds({"retry-after": when})
    assert seconds is not None
    assert 25 <= seconds <= 31
