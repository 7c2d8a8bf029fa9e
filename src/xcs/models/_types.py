"""The values of the model layer: Usage, Response, Completion, Request, Message, ToolCall."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from xcs.models._structured import OutputSchema
    from xcs.models._tools import ToolSpec

__all__ = ["Completion", "Message", "Request", "Response", "ToolCall", "Usage"]

Role = Literal["system", "user", "assistant", "tool"]


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one model call used, as the provider counted them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclasses.dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for: ``name(**arguments)``, told apart by ``id``.

    ``arguments`` is the dict the model wrote (decoded from its JSON), not yet checked
    against the tool's signature: ``xcs.operators.Agent`` checks it when it runs the tool.
    """

    id: str
    name: str
    arguments: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolCall:
        return cls(str(data["id"]), str(data["name"]), dict(data["arguments"]))


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One chat message: a role (``system``, ``user``, ``assistant``, ``tool``) and its text.

    An ``assistant`` message may carry the ``tool_calls`` the model made; a ``tool``
    message answers one of them (``tool_call_id``) with the tool's result as text.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The message in the OpenAI chat format (what ``messages=`` lists accept)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


class Response(str):
    """The text a model answered: a ``str``, so ``"\\n".join(responses)`` just works,
    carrying what the call cost.

    Attributes:
        usage: a ``Usage`` (``prompt_tokens``, ``completion_tokens``, ``total_tokens``).
        model: the model id that answered, ``provider:model`` (``sim:`` for the simulator).
        latency_s: seconds this call took, retries and waits included (a cache hit
            takes next to nothing).
        cost_usd: what this call cost in US dollars where the model's price is known
            (``0.0`` for the local model and for a cache hit), else ``None`` (a
            model with no known price: its cache hits too, so ``None`` always
            means "unpriced").
        finish_reason: why generation stopped (``"stop"``, ``"length"``, ...), if known.
        cached: True when the answer came from the cache, not from the provider.
        tool_calls: the ``ToolCall``s the model made (``tools=``), in its order;
            ``()`` when it made none.

    Not constructed by users: model calls return it. It pickles with its attributes,
    and compares and hashes as the plain string.
    """

    # No __slots__: str is variable-sized, so its subclasses cannot have them.

    usage: Usage
    model: str
    latency_s: float
    cost_usd: float | None
    finish_reason: str | None
    cached: bool
    tool_calls: tuple[ToolCall, ...]

    def __new__(
        cls,
        text: str,
        *,
        usage: Usage | None = None,
        model: str = "",
        latency_s: float = 0.0,
        cost_usd: float | None = None,
        finish_reason: str | None = None,
        cached: bool = False,
        tool_calls: tuple[ToolCall, ...] = (),
    ) -> Response:
        self = super().__new__(cls, text)
        self.usage = usage if usage is not None else Usage()
        self.model = model
        self.latency_s = latency_s
        self.cost_usd = cost_usd
        self.finish_reason = finish_reason
        self.cached = cached
        self.tool_calls = tuple(tool_calls)
        return self

    @property
    def text(self) -> str:
        """The answer as a plain ``str``."""
        return str.__str__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_response, (self.text, self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "usage": self.usage,
            "model": self.model,
            "latency_s": self.latency_s,
            "cost_usd": self.cost_usd,
            "finish_reason": self.finish_reason,
            "cached": self.cached,
            "tool_calls": self.tool_calls,
        }

    def __repr__(self) -> str:
        cost = "?" if self.cost_usd is None else f"{self.cost_usd:.6f}"
        flags = ", cached" if self.cached else ""
        if self.tool_calls:
            flags += f", tool_calls=[{', '.join(c.name for c in self.tool_calls)}]"
        return (
            f"Response({self.text!r}, model={self.model!r}, tokens={self.usage.prompt_tokens}"
            f"+{self.usage.completion_tokens}, latency_s={self.latency_s:.3f}, "
            f"cost_usd={cost}{flags})"
        )


def _rebuild_response(text: str, fields: dict[str, Any]) -> Response:
    return Response(text, **fields)


@dataclasses.dataclass(frozen=True, slots=True)
class Completion:
    """What a provider returns for one attempt: the text and what the provider said
    about it. The model layer turns it into a ``Response`` (adding latency and cost).
    """

    text: str
    usage: Usage = dataclasses.field(default_factory=Usage)
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = {
            "text": self.text,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "finish_reason": self.finish_reason,
        }
        if self.tool_calls:
            out["tool_calls"] = [call.to_json() for call in self.tool_calls]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Completion:
        return cls(
            text=str(data["text"]),
            usage=Usage(int(data["prompt_tokens"]), int(data["completion_tokens"])),
            finish_reason=data.get("finish_reason"),
            tool_calls=tuple(ToolCall.from_json(c) for c in data.get("tool_calls") or ()),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """One attempt of a model call, as a provider sees it.

    ``messages`` already include the system prompt (first, role ``system``) when one
    was given; ``system`` repeats it for providers that take it apart (Anthropic).
    ``timeout`` is the time this attempt may take: the per-call timeout, shortened to
    what is left of the active ``xcs.deadline``. ``attempt`` counts from 0; the
    simulator draws its faults from it, real providers ignore it. ``sample`` only
    distinguishes requests (the cache key, the simulator's output); it is never sent.
    ``output`` asks for a reply in a JSON schema (``response_model=``), ``tools`` offers
    tools the model may call (``tools=``), ``tool_choice`` whether it must call one
    (``tool_choice=``); providers translate them to their API.

    Not constructed by users: the model layer builds one per attempt.
    """

    model: str  # the model name after "provider:" (without the simulator's options)
    messages: tuple[Message, ...]
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    sample: int = 0
    timeout: float = 60.0
    attempt: int = 0
    output: OutputSchema | None = None
    tools: tuple[ToolSpec, ...] = ()
    # "auto" (None: the same), "required", "none", or the name of one of ``tools``.
    tool_choice: str | None = None

    def prompt_chars(self) -> int:
        return sum(len(m.content) for m in self.messages)
