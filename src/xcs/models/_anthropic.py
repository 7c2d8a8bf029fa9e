"""``anthropic:`` — Anthropic's Messages API through the official ``anthropic`` SDK.

The ``anthropic`` extra; imported on the first call. As for ``openai:`` (``_sdk``): one client
per endpoint, shared by every thread, the SDK's own retries off, SDK exceptions
mapped at the boundary (``map_error``). The Messages API takes the system prompt
apart from the messages and requires ``max_tokens``: XCS sends 1024 when the call
sets none. It has no ``seed``, so ``seed=`` is a ValidationError here, and its
temperature goes from 0 to 1 (a higher one is a ValidationError, not clamped).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from xcs.errors import (
    ProviderError,
    ProviderNotInstalledError,
    ValidationError,
)
from xcs.models._base import mark
from xcs.models._http import (
    malformed,
    map_sdk_error,
    token_count,
)
from xcs.models._params import Params
from xcs.models._sdk import SDKProvider
from xcs.models._types import Completion, Request, ToolCall, Usage

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicProvider", "import_anthropic", "map_error"]

DEFAULT_MAX_TOKENS = 1024


def import_anthropic() -> Any:
    """The ``anthropic`` module, or ``ProviderNotInstalledError`` naming the extra."""
    try:
        import anthropic
    except ImportError as exc:
        raise ProviderNotInstalledError(
            "the anthropic: provider needs the anthropic package: pip install 'xcs-jit[anthropic]'",
            provider="anthropic",
        ) from exc
    return anthropic


# USD per million (prompt, completion) tokens on api.anthropic.com, from Anthropic's
# price list of 2025; used only when no base_url is set.
_PRICES: Mapping[str, tuple[float, float]] = {
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-opus": (15.00, 75.00),
    "claude-opus-4": (15.00, 75.00),
}

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


def anthropic_messages(request: Request) -> list[dict[str, Any]]:
    """The messages in the Messages API form: no system messages (sent apart); an
    assistant message's tool calls as ``tool_use`` blocks; tool results as
    ``tool_result`` blocks of one user message per run of consecutive results."""
    out: list[dict[str, Any]] = []
    for m in request.messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            last = out[-1] if out else None
            if last is not None and last["role"] == "user" and isinstance(last["content"], list):
                last["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.tool_calls:
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": m.content}] if m.content else []
            )
            blocks.extend(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in m.tool_calls
            )
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


class AnthropicProvider(SDKProvider):
    """One Anthropic endpoint. Not constructed by users."""

    name = "anthropic"
    env_key = "ANTHROPIC_API_KEY"
    params: ClassVar[frozenset[str]] = frozenset({"system", "temperature", "max_tokens", "stop"})
    prices: ClassVar[Mapping[str, tuple[float, float]]] = _PRICES
    default_completion_tokens = DEFAULT_MAX_TOKENS
    client_classes = ("Anthropic", "AsyncAnthropic")
    error_class = "AnthropicError"

    import_sdk = staticmethod(import_anthropic)

    @staticmethod
    def create(client: Any, kwargs: dict[str, Any]) -> Any:
        return client.messages.create(**kwargs)

    def events(self, request: Request) -> _MessageEvents:
        """The Messages API's events: text deltas as chunks, usage from
        ``message_start`` and ``message_delta``."""
        return _MessageEvents(request.model)

    @classmethod
    def check_params(cls, model: str, params: Params) -> None:
        if params.temperature is not None and params.temperature > 1.0:
            raise ValidationError(
                f"temperature: the anthropic provider takes 0 to 1, got {params.temperature}",
                parameters=("temperature",),
                provider="anthropic",
            )

    def request_kwargs(self, request: Request) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for ``request``."""
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": anthropic_messages(request),
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "timeout": request.timeout,
        }
        system = [m.content for m in request.messages if m.role == "system"]
        if system:
            kwargs["system"] = "\n\n".join(system)
        if request.temperature is not None:
            # Sent through extra_body: recent SDKs dropped the keyword argument, and
            # every version merges extra_body into the request JSON.
            kwargs["extra_body"] = {"temperature": request.temperature}
        if request.stop:
            kwargs["stop_sequences"] = list(request.stop)
        if request.output is not None:
            # Structured output in Anthropic's tool-use form: one tool whose input is the
            # schema, and the model made to call it; its input is the reply.
            output = request.output
            kwargs["tools"] = [
                {
                    "name": output.name,
                    "description": output.description or f"Reply with a {output.name}.",
                    "input_schema": output.schema,
                }
            ]
            kwargs["tool_choice"] = {"type": "tool", "name": output.name}
        elif request.tools:
            kwargs["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
            choice = request.tool_choice
            if choice is not None:
                # The Messages API's words: "any" for required, "tool" for a name.
                kwargs["tool_choice"] = (
                    {"type": "any" if choice == "required" else choice}
                    if choice in ("auto", "required", "none")
                    else {"type": "tool", "name": choice}
                )
        return kwargs

    def read_completion(self, out: Any, request: Request) -> Completion:
        model = request.model
        blocks = None if isinstance(out, str) else getattr(out, "content", None)
        if not isinstance(blocks, list):
            raise malformed("anthropic", model, f"no content in {str(out)[:200]!r}", self._key)
        texts = [getattr(b, "text", None) for b in blocks if getattr(b, "type", "") == "text"]
        if not all(isinstance(t, str) for t in texts):
            raise malformed(
                "anthropic", model, f"a text block without text in {str(out)[:200]!r}", self._key
            )
        usage = getattr(out, "usage", None)
        counts = [token_count(usage, "input_tokens"), token_count(usage, "output_tokens")]
        if None in counts:
            raise malformed("anthropic", model, f"bad token counts in {usage!r}"[:300], self._key)
        stop = getattr(out, "stop_reason", None)
        calls = []
        for block in blocks:
            if getattr(block, "type", "") != "tool_use":
                continue
            call_id, name = getattr(block, "id", None), getattr(block, "name", None)
            arguments = getattr(block, "input", None)
            if not (isinstance(call_id, str) and isinstance(name, str)):
                raise malformed(
                    "anthropic", model, f"a malformed tool_use {block!r:.200}", self._key
                )
            if not isinstance(arguments, dict):
                arguments = {} if arguments is None else arguments
            calls.append(ToolCall(call_id, name, arguments))
        text = "".join(texts)  # type: ignore[arg-type]  # all str, checked above
        finish = _FINISH.get(stop, stop) if isinstance(stop, str) else None
        if request.output is not None:
            # The forced tool's input is the reply; text around it is commentary. No
            # such call leaves the text, which then fails validation and is retried.
            forced = [c for c in calls if c.name == request.output.name]
            if forced:
                text, calls, finish = json.dumps(forced[0].arguments), [], "stop"
        return Completion(
            text=text,
            usage=Usage(counts[0] or 0, counts[1] or 0),
            finish_reason=finish,
            tool_calls=tuple(calls),
        )


class _MessageEvents:
    """What the events of one streamed Messages reply add up to: the text chunks
    each event adds, then the ``Completion`` (shared by ``stream`` and ``astream``)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.parts: list[str] = []
        self.stop: Any = None
        self.prompt_tokens = self.completion_tokens = 0

    def feed(self, event: Any) -> list[str]:
        kind = getattr(event, "type", "")
        if kind == "message_start":
            usage = getattr(getattr(event, "message", None), "usage", None)
            self.prompt_tokens = token_count(usage, "input_tokens") or 0
        elif kind == "content_block_delta":
            text = getattr(getattr(event, "delta", None), "text", None)
            if isinstance(text, str) and text:
                self.parts.append(text)
                return [text]
        elif kind == "message_delta":
            self.stop = getattr(getattr(event, "delta", None), "stop_reason", None)
            usage = getattr(event, "usage", None)
            self.completion_tokens = token_count(usage, "output_tokens") or 0
        return []

    def completion(self) -> Completion:
        if not isinstance(self.stop, str):
            raise mark(
                ProviderError(f"anthropic:{self.model}: the stream ended without a stop reason"),
                retryable=True,
            )
        return Completion(
            "".join(self.parts),
            usage=Usage(self.prompt_tokens, self.completion_tokens),
            finish_reason=_FINISH.get(self.stop, self.stop),
        )


def map_error(
    exc: BaseException, model: str, key: str | None = None, *, timeout: float | None = None
) -> ProviderError:
    """The XCS error for an ``anthropic`` SDK exception (see ``_http.map_sdk_error``)."""
    return map_sdk_error(import_anthropic(), "anthropic", exc, model, key, timeout=timeout)
