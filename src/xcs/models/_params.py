"""Checking what a caller passes: model ids, messages and parameters.

Pydantic does the checking; its errors never reach the caller. They become one
``xcs.ValidationError`` whose message names every offending parameter, so a typo
(``temprature=0.2``) fails loudly before anything is sent, instead of being ignored
by a provider that does not know the name.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from xcs.errors import ValidationError
from xcs.models._types import Message, ToolCall

__all__ = [
    "CALL_OPTIONS",
    "ENDPOINT_OPTIONS",
    "MODEL_PARAMS",
    "OUTPUT_PARAMS",
    "TOOL_CHOICES",
    "ModelId",
    "Params",
    "check_params",
    "parse_messages",
    "parse_model_id",
    "translate",
]

# What a parameter changes decides where it goes:
# - MODEL_PARAMS are sent to the provider and are part of the cache key;
# - "sample" is part of the cache key but never sent (NOTE: [Sample indices]);
# - CALL_OPTIONS change how XCS makes the call, never the answer: not in the key;
# - ENDPOINT_OPTIONS choose the server (base_url is in the key, the api key is not).
# - OUTPUT_PARAMS (response_model, tools, tool_choice) are sent, in each provider's
#   form, and are part of the key (their schemas); every provider takes them.
MODEL_PARAMS = ("system", "temperature", "max_tokens", "stop", "seed")
OUTPUT_PARAMS = ("response_model", "tools", "tool_choice")
# tool_choice=: whether the model may (auto), must (required) or must not (none) call
# a tool, or must call the one named.
TOOL_CHOICES = ("auto", "required", "none")
CALL_OPTIONS = ("timeout", "max_attempts", "cache")
ENDPOINT_OPTIONS = ("base_url", "api_key")


class Params(BaseModel):
    """Every parameter a model call accepts. Frozen; unknown names are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    system: str | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    sample: int = Field(default=0, ge=0)
    timeout: float | None = Field(default=None, gt=0.0)
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    cache: bool = True
    base_url: str | None = None
    api_key: SecretStr | None = None
    # Checked and converted by the validators below (OutputSchema, ToolSpecs).
    response_model: Any = None
    tools: tuple[Any, ...] = ()
    tool_choice: str | None = None

    @field_validator("response_model", mode="before")
    @classmethod
    def _output_schema(cls, value: Any) -> Any:
        from xcs.models._structured import OutputSchema, output_schema

        if value is None or isinstance(value, OutputSchema):
            return value
        if not (isinstance(value, type) and issubclass(value, BaseModel)):
            raise ValueError(
                "must be a pydantic model class (a subclass of pydantic.BaseModel), "
                f"got {value!r:.80}"
            )
        try:
            return output_schema(value)
        except ValidationError as exc:
            raise ValueError(exc.message) from None

    @field_validator("tools", mode="before")
    @classmethod
    def _tool_specs(cls, value: Any) -> Any:
        from xcs.models._tools import tool_specs

        return () if value is None else tool_specs(value)

    @model_validator(mode="after")
    def _output_or_tools(self) -> Params:
        if self.response_model is not None and self.tools:
            raise ValueError(
                "give response_model= or tools=, not both (a reply is either a typed "
                "value or tool calls)"
            )
        if self.tool_choice is not None:
            names = [tool.name for tool in self.tools]
            if not names:
                raise ValueError("tool_choice= needs tools= (the tools to choose from)")
            if self.tool_choice not in TOOL_CHOICES and self.tool_choice not in names:
                raise ValueError(
                    f"tool_choice must be one of {', '.join(map(repr, TOOL_CHOICES))} or the "
                    f"name of a tool given ({', '.join(names)}), got {self.tool_choice!r}"
                )
        return self

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_tuple(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list):
            return tuple(value)
        if value is None:
            return ()
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _key_as_secret(cls, value: Any) -> Any:
        return SecretStr(value) if isinstance(value, str) else value

    @field_validator("stop")
    @classmethod
    def _stop_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(s == "" for s in value):
            raise ValueError("stop sequences must be non-empty strings")
        if len(value) > 16:
            raise ValueError("at most 16 stop sequences")
        return value


_KNOWN = tuple(Params.model_fields)


def translate(
    exc: pydantic.ValidationError, where: str, noun: str = "parameter"
) -> ValidationError:
    """Turn pydantic's error into ours, naming every offending field."""
    unknown = sorted(str(err["loc"][0]) for err in exc.errors() if err["type"] == "extra_forbidden")
    problems = [
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
        + ("" if "input" not in err or _secret(err["loc"]) else f" (got {err['input']!r})")
        for err in exc.errors()
        if err["type"] != "extra_forbidden"
    ]
    parts = []
    if unknown:
        parts.append(f"unknown {noun}{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    parts.extend(problems)
    names = tuple(unknown) + tuple(
        str(err["loc"][0]) for err in exc.errors() if err["loc"] and err["loc"][0] not in unknown
    )
    return ValidationError(f"{where}: " + "; ".join(parts), parameters=names)


def _secret(loc: tuple[int | str, ...]) -> bool:
    return bool(loc) and loc[0] == "api_key"


def check_params(params: Mapping[str, Any], where: str) -> Params:
    """Validate ``params``; raise ``xcs.ValidationError`` naming what is wrong."""
    try:
        return Params(**params)
    except pydantic.ValidationError as exc:
        err = translate(exc, where)
        names = getattr(err, "parameters", ())
        if any(name not in _KNOWN for name in names):
            err = ValidationError(
                f"{err.message}. Known parameters: {', '.join(_KNOWN)}", parameters=names
            )
        raise err from None


# ---------------------------------------------------------------------------
# Model ids


@dataclasses.dataclass(frozen=True, slots=True)
class ModelId:
    """A parsed model id: ``provider:name`` and, for the simulator, ``?options``."""

    provider: str
    name: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def base(self) -> str:
        """``provider:name`` without options: the scope limits are set on."""
        return f"{self.provider}:{self.name}"

    def __str__(self) -> str:
        if not self.options:
            return self.base
        return self.base + "?" + "&".join(f"{k}={v}" for k, v in self.options)


def parse_model_id(model_id: object, known: Iterable[str]) -> ModelId:
    """Split ``provider:name[?key=value&...]``; unknown providers are errors."""
    known = sorted(known)
    if not isinstance(model_id, str):
        raise ValidationError(
            f"a model id is a string 'provider:model', got {type(model_id).__name__}"
        )
    provider, sep, rest = model_id.partition(":")
    name, qsep, query = rest.partition("?")
    if not sep or not provider or not name:
        raise ValidationError(
            f"model id {model_id!r} is not of the form 'provider:model' "
            f"(for example 'openai:gpt-4o-mini'); known providers: {', '.join(known)}"
        )
    if provider not in known:
        raise ValidationError(
            f"unknown model provider {provider!r} in {model_id!r}; "
            f"known providers: {', '.join(known)}",
            provider=provider,
        )
    options: list[tuple[str, str]] = []
    if qsep:
        try:
            options = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise ValidationError(
                f"model id {model_id!r}: options after '?' must be key=value pairs joined by '&'"
            ) from None
        keys = [k for k, _ in options]
        if len(set(keys)) != len(keys):
            raise ValidationError(f"model id {model_id!r} repeats an option")
    return ModelId(provider, name, tuple(sorted(options)))


# ---------------------------------------------------------------------------
# Messages


def parse_messages(prompt: object, system: str | None) -> tuple[Message, ...]:
    """A prompt string or a list of ``{"role", "content"}`` messages -> messages.

    ``system=`` becomes the first message. Giving it *and* a system message in the
    list is an error (which one should win is not ours to guess). Every error names
    what is at fault in attribute ``parameters`` (``("messages",)``), as a bad
    parameter's does.
    """
    if isinstance(prompt, str):
        messages: list[Message] = [Message("user", prompt)]
    elif isinstance(prompt, Sequence) and not isinstance(prompt, bytes | bytearray):
        messages = [_message(i, m) for i, m in enumerate(prompt)]
        if not messages:
            raise ValidationError(
                "messages: the list of messages is empty", parameters=("messages",)
            )
    else:
        raise ValidationError(
            "a model call takes a prompt string or a list of messages "
            f"({{'role': ..., 'content': ...}}), got {type(prompt).__name__}",
            parameters=("messages",),
        )
    if system is not None:
        if any(m.role == "system" for m in messages):
            raise ValidationError(
                "system= was given and the messages already hold a system message; "
                "give the system prompt one way",
                parameters=("system", "messages"),
            )
        messages.insert(0, Message("system", system))
    if all(m.role == "system" for m in messages):
        raise ValidationError(
            "messages: there is no user message to answer", parameters=("messages",)
        )
    return tuple(messages)


def _message(index: int, item: object) -> Message:
    if isinstance(item, Message):
        return item
    if isinstance(item, Mapping):
        role, content = item.get("role"), item.get("content")
        extra = set(item) - {"role", "content"}
        if role in ("system", "user", "assistant") and isinstance(content, str) and not extra:
            return Message(role, content)
        if role == "assistant" and extra == {"tool_calls"}:
            return Message("assistant", content or "", tool_calls=_tool_calls(index, item))
        if role == "tool" and extra == {"tool_call_id"} and isinstance(content, str):
            call_id = item["tool_call_id"]
            if isinstance(call_id, str) and call_id:
                return Message("tool", content, tool_call_id=call_id)
    raise ValidationError(
        f"messages[{index}]: expected {{'role': 'system'|'user'|'assistant', "
        "'content': str}, an assistant message with 'tool_calls' or "
        f"{{'role': 'tool', 'tool_call_id': str, 'content': str}}, got {item!r:.200}",
        parameters=("messages",),
    )


def _tool_calls(index: int, item: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """The tool calls of an assistant message: ``ToolCall``s, or dicts in the OpenAI
    form (``{"id", "function": {"name", "arguments": JSON text}}``) or ours
    (``{"id", "name", "arguments": dict}``)."""
    calls = item["tool_calls"]
    out: list[ToolCall] = []
    for call in calls if isinstance(calls, list | tuple) else [None]:
        if isinstance(call, ToolCall):
            out.append(call)
            continue
        if isinstance(call, Mapping):
            fn = call.get("function", call)
            args = fn.get("arguments") if isinstance(fn, Mapping) else None
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    args = None
            if isinstance(args, dict) and isinstance(fn.get("name"), str) and call.get("id"):
                out.append(ToolCall(str(call["id"]), fn["name"], args))
                continue
        raise ValidationError(
            f"messages[{index}]: a malformed tool call {call!r:.200}", parameters=("messages",)
        )
    return tuple(out)
