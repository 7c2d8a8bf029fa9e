"""``openai:`` — OpenAI, or any OpenAI-compatible server (vLLM, Ollama, llama.cpp) via ``base_url``.

Uses the official ``openai`` SDK (the ``openai`` extra), imported on the first call
(or at ``bind``): ``openai.OpenAI`` and ``openai.AsyncOpenAI`` clients as ``_sdk``
makes them for every SDK provider. SDK exceptions become XCS errors at the boundary
(``map_error``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from xcs.errors import ProviderError, ProviderNotInstalledError
from xcs.models._base import mark
from xcs.models._http import (
    malformed,
    map_sdk_error,
    retry_after_seconds,
    token_count,
)
from xcs.models._params import TOOL_CHOICES
from xcs.models._sdk import SDKProvider
from xcs.models._types import Completion, Request, ToolCall, Usage

__all__ = [
    "OpenAIProvider",
    "chat_messages",
    "import_openai",
    "map_error",
    "output_payload",
    "retry_after_seconds",
    "tool_call",
]


def import_openai() -> Any:
    """The ``openai`` module, or ``ProviderNotInstalledError`` naming the extra."""
    try:
        import openai
    except ImportError as exc:
        raise ProviderNotInstalledError(
            "the openai: provider needs the openai package: pip install 'xcs-jit[openai]'",
            provider="openai",
        ) from exc
    return openai


# USD per million (prompt, completion) tokens on api.openai.com, from OpenAI's price
# list of 2025. Only used when no base_url is set: another server's prices are unknown.
_PRICES: Mapping[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}

# Reasoning models take max_completion_tokens; OpenAI-compatible servers take max_tokens.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


class OpenAIProvider(SDKProvider):
    """One OpenAI (or OpenAI-compatible) endpoint. Not constructed by users."""

    name = "openai"
    env_key = "OPENAI_API_KEY"
    prices: ClassVar[Mapping[str, tuple[float, float]]] = _PRICES
    client_classes = ("OpenAI", "AsyncOpenAI")
    error_class = "OpenAIError"

    import_sdk = staticmethod(import_openai)

    @staticmethod
    def create(client: Any, kwargs: dict[str, Any]) -> Any:
        return client.chat.completions.create(**kwargs)

    def events(self, request: Request) -> _ChatEvents:
        return _ChatEvents(request.model)

    def stream_kwargs(self, request: Request) -> dict[str, Any]:
        """Server-sent events (``stream=True``), usage in the last event
        (``stream_options.include_usage``)."""
        return {**super().stream_kwargs(request), "stream_options": {"include_usage": True}}

    def request_kwargs(self, request: Request) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for ``request``."""
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": chat_messages(request),
            "timeout": request.timeout,
        }
        kwargs.update(output_payload(request))
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            reasoning = self.endpoint.base_url is None and request.model.startswith(
                _REASONING_PREFIXES
            )
            kwargs["max_completion_tokens" if reasoning else "max_tokens"] = request.max_tokens
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.seed is not None:
            kwargs["seed"] = request.seed
        return kwargs

    def read_completion(self, out: Any, request: Request) -> Completion:
        model = request.model
        choices = None if isinstance(out, str) else getattr(out, "choices", None)
        if not choices or not isinstance(choices, list):
            raise malformed("openai", model, f"no choices in {str(out)[:200]!r}", self._key)
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None)
        if text is not None and not isinstance(text, str):
            raise malformed(
                "openai", model, f"content is not text in {str(out)[:200]!r}", self._key
            )
        usage = getattr(out, "usage", None)
        counts = [token_count(usage, "prompt_tokens"), token_count(usage, "completion_tokens")]
        if None in counts:
            raise malformed("openai", model, f"bad token counts in {usage!r}"[:300], self._key)
        finish = getattr(choice, "finish_reason", None)
        raw_calls = getattr(message, "tool_calls", None) or []
        calls = []
        for raw in raw_calls if isinstance(raw_calls, list) else []:
            function = getattr(raw, "function", None)
            call = tool_call(
                getattr(raw, "id", None),
                getattr(function, "name", None),
                getattr(function, "arguments", None),
            )
            if call is None:
                raise malformed("openai", model, f"a malformed tool call {raw!r:.200}", self._key)
            calls.append(call)
        return Completion(
            # content is null when the model refused or only called tools: no text.
            text=text or "",
            usage=Usage(counts[0] or 0, counts[1] or 0),
            finish_reason=finish if isinstance(finish, str) else None,
            tool_calls=tuple(calls),
        )


class _ChatEvents:
    """What the events of one streamed chat completion add up to: the text chunks
    each event adds, then the ``Completion`` (shared by ``stream`` and ``astream``)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.parts: list[str] = []
        self.finish: str | None = None
        self.usage: Any = None

    def feed(self, event: Any) -> list[str]:
        self.usage = getattr(event, "usage", None) or self.usage
        texts = []
        for choice in getattr(event, "choices", None) or []:
            text = getattr(getattr(choice, "delta", None), "content", None)
            if isinstance(text, str) and text:
                texts.append(text)
            reason = getattr(choice, "finish_reason", None)
            if isinstance(reason, str):
                self.finish = reason
        self.parts += texts
        return texts

    def completion(self) -> Completion:
        if self.finish is None:
            raise mark(
                ProviderError(f"openai:{self.model}: the stream ended without a finish reason"),
                retryable=True,
            )
        prompt = token_count(self.usage, "prompt_tokens")
        completion = token_count(self.usage, "completion_tokens")
        return Completion(
            "".join(self.parts),
            usage=Usage(prompt or 0, completion or 0),
            finish_reason=self.finish,
        )


# ---------------------------------------------------------------------------
# Structured output and tools, in the chat completions form (shared with local:)


def chat_messages(request: Request) -> list[dict[str, Any]]:
    """The messages in the chat completions form (an assistant message that only
    called tools has null content, as the API writes it)."""
    out = []
    for m in request.messages:
        item = m.to_dict()
        if m.tool_calls and not m.content:
            item["content"] = None
        out.append(item)
    return out


def output_payload(request: Request) -> dict[str, Any]:
    """``response_format`` (a ``json_schema``, strict where the schema allows),
    ``tools`` and ``tool_choice``, as the chat completions API takes them."""
    payload: dict[str, Any] = {}
    output = request.output
    if output is not None:
        spec: dict[str, Any] = {"name": output.name, "schema": output.strict or output.schema}
        if output.description:
            spec["description"] = output.description
        spec["strict"] = output.strict is not None
        payload["response_format"] = {"type": "json_schema", "json_schema": spec}
    if request.tools:
        payload["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                },
            }
            for tool in request.tools
        ]
        choice = request.tool_choice
        if choice is not None:
            payload["tool_choice"] = (
                choice
                if choice in TOOL_CHOICES
                else {"type": "function", "function": {"name": choice}}
            )
    return payload


def tool_call(call_id: Any, name: Any, arguments: Any) -> ToolCall | None:
    """A ``ToolCall`` from the API's fields (``arguments``: JSON text of an object),
    or None if they are malformed."""
    if not isinstance(call_id, str) or not isinstance(name, str):
        return None
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(call_id, name, arguments)


# ---------------------------------------------------------------------------
# Errors at the boundary


def map_error(
    exc: BaseException, model: str, key: str | None = None, *, timeout: float | None = None
) -> ProviderError:
    """The XCS error for an ``openai`` SDK exception (see ``_http.map_sdk_error``)."""
    return map_sdk_error(import_openai(), "openai", exc, model, key, timeout=timeout)
