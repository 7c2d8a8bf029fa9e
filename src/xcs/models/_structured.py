"""Structured output: ``xcs.models(..., response_model=M)`` returns a validated ``M``.

The pydantic model ``M`` becomes an ``OutputSchema``: its JSON schema, the strict
form OpenAI's ``json_schema`` mode needs, and the check a reply must pass. Providers
send the schema in their own form (OpenAI: ``response_format`` ``json_schema`` with
``strict``; Anthropic: a forced tool whose input is the schema; ``local:``: llama.cpp's
``json_schema``, compiled to a grammar; ``sim:``: a deterministic valid instance).

NOTE: [Invalid replies are retried]
The engine checks every reply against the schema inside its attempt loop. A reply
that does not validate raises ``InvalidReply``, a retryable ``ProviderError`` that is
no server fault (the breaker does not count it), so it is retried within
``max_attempts`` like a malformed answer, and is never cached: only a reply that
validates is stored. When the attempts are used up, ``finish`` turns the last one
into ``xcs.ValidationError`` quoting the reply and naming the fields.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic

from xcs.errors import ProviderError, ValidationError
from xcs.models._base import mark

__all__ = [
    "InvalidReply",
    "OutputSchema",
    "afinish",
    "example_value",
    "finish",
    "output_schema",
    "strict_schema",
]

_NAME = re.compile(r"[^a-zA-Z0-9_-]")
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?```\s*$", re.S)
_QUOTED = 300  # characters of a reply quoted in an error


class InvalidReply(ProviderError):
    """Raised inside the model layer when a reply does not validate against the
    ``response_model``; retried, then raised to the caller as ``xcs.ValidationError``
    (NOTE: [Invalid replies are retried]). Never reaches user code itself."""


@dataclasses.dataclass(frozen=True, eq=False)
class OutputSchema:
    """What ``response_model=M`` asks of a reply. Not constructed by users:
    ``output_schema(M)`` makes (and keeps) one per model class.

    Attributes:
        model: the pydantic model class.
        name: a name providers accept (``[a-zA-Z0-9_-]``, at most 64 characters).
        description: the class docstring, if any.
        schema: ``M.model_json_schema()``.
        strict: the schema in OpenAI's strict form, or None when ``M`` cannot be
            expressed strictly (a ``dict[str, X]`` field, say); then it is sent
            without ``strict``.
        key: a canonical JSON text of the schema, for the cache key.
    """

    model: type[pydantic.BaseModel]
    name: str
    description: str | None
    schema: dict[str, Any]
    strict: dict[str, Any] | None
    key: str

    def parse(self, text: str) -> pydantic.BaseModel:
        """The reply as an instance of ``model``.

        Raises:
            pydantic.ValidationError: the reply does not validate.
        """
        match = _FENCE.match(text)
        return self.model.model_validate_json(match.group(1) if match else text)

    def check(self, text: str) -> None:
        """Raise ``InvalidReply`` (retryable) if ``text`` does not validate."""
        try:
            self.parse(text)
        except pydantic.ValidationError as exc:
            raise invalid_reply(self, text, exc) from None

    def __repr__(self) -> str:
        return f"<OutputSchema {self.name}>"


def invalid_reply(output: OutputSchema, text: str, exc: pydantic.ValidationError) -> InvalidReply:
    fields: list[str] = []
    problems: list[str] = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "json_invalid":
            problems.append(f"not valid JSON ({err['msg']})")
            continue
        fields.append(loc or "(the whole reply)")
        problems.append(f"{loc or 'value'}: {err['msg']}")
    quoted = text if len(text) <= _QUOTED else text[: _QUOTED - 1] + "…"
    error = InvalidReply(
        f"the reply does not validate against {output.model.__name__}: "
        f"{'; '.join(problems)}; the reply was {quoted!r}",
        reply=text,
        fields=tuple(fields),
    )
    # Retryable, but no server fault: the breaker does not count it (NOTE: [Failure classes]).
    return mark(error, retryable=True, server_fault=False)  # type: ignore[return-value]


@functools.lru_cache(maxsize=256)
def output_schema(model: type[pydantic.BaseModel]) -> OutputSchema:
    """The ``OutputSchema`` of a pydantic model class (computed once per class).

    Raises:
        ValidationError: ``model`` is not a pydantic model class, or pydantic cannot
            make a JSON schema of it.
    """
    if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
        raise ValidationError(
            f"response_model must be a pydantic model class (a subclass of "
            f"pydantic.BaseModel), got {model!r}",
            parameters=("response_model",),
        )
    try:
        schema = model.model_json_schema()
    except pydantic.PydanticUserError as exc:  # e.g. a field type with no JSON schema
        raise ValidationError(
            f"response_model {model.__name__}: no JSON schema: {exc}",
            parameters=("response_model",),
        ) from None
    doc = model.__dict__.get("__doc__")
    return OutputSchema(
        model=model,
        name=_NAME.sub("_", model.__name__)[:64] or "Output",
        description=doc.strip() if isinstance(doc, str) and doc.strip() else None,
        schema=schema,
        strict=strict_schema(schema),
        key=json.dumps(schema, sort_keys=True, separators=(",", ":")),
    )


def finish(output: OutputSchema | None, call: Callable[[], Any]) -> Any:
    """Run ``call`` (one model call); with an ``output``, return the reply parsed into
    its model and turn an ``InvalidReply`` into ``xcs.ValidationError``.

    Raises:
        ValidationError: the last reply did not validate (attributes ``reply``,
            ``fields``, ``attempts``).
    """
    if output is None:
        return call()
    try:
        response = call()
    except InvalidReply as exc:
        raise _validation_error(exc) from exc
    return output.parse(response)  # the engine checked it; a cache hit was checked when stored


async def afinish(output: OutputSchema | None, call: Callable[[], Awaitable[Any]]) -> Any:
    """``finish`` for ``acall``: ``call`` returns the awaitable of one model call."""
    if output is None:
        return await call()
    try:
        response = await call()
    except InvalidReply as exc:
        raise _validation_error(exc) from exc
    return output.parse(response)


def _validation_error(exc: InvalidReply) -> ValidationError:
    drop = ("message", "__notes__", "retryable", "server_fault")
    return ValidationError(exc.message, **{k: v for k, v in vars(exc).items() if k not in drop})


# ---------------------------------------------------------------------------
# The strict form (OpenAI structured outputs)


def strict_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """``schema`` in the form OpenAI's ``strict: true`` requires, or None if it has
    none: every object lists all its properties as required and forbids others, and
    no ``default`` is given (the model writes every value; validation still applies
    pydantic's rules). An object with free-form keys (``dict[str, X]``) cannot be
    strict.
    """
    out = copy.deepcopy(schema)
    return out if _make_strict(out) else None


def _make_strict(node: Any) -> bool:
    if not isinstance(node, dict):
        return True
    node.pop("default", None)
    if node.get("type") == "object" or "properties" in node:
        extra = node.get("additionalProperties")
        if extra not in (None, False):
            return False
        props = node.setdefault("properties", {})
        node["additionalProperties"] = False
        node["required"] = list(props)
        if not all(_make_strict(p) for p in props.values()):
            return False
    for key in ("items", "not"):
        if key in node and not _make_strict(node[key]):
            return False
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if not all(_make_strict(sub) for sub in node.get(key, ())):
            return False
    return all(_make_strict(sub) for sub in node.get("$defs", {}).values())


# ---------------------------------------------------------------------------
# A valid instance, made up (the simulator's answer)

_WORDS = ("alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta")


def example_value(schema: dict[str, Any], rng: random.Random) -> Any:
    """A value valid for ``schema`` (pydantic's JSON schemas), drawn from ``rng``:
    the simulator's answer to ``response_model=`` and its tool arguments.

    Covers types, ``enum``/``const``, ``anyOf``/``oneOf``, ``$ref``, numeric bounds,
    string lengths, array lengths and common string formats; a ``pattern`` is not
    followed (such a field may not validate).
    """
    return _value(schema, rng, schema.get("$defs", {}), 0)


def _value(node: dict[str, Any], rng: random.Random, defs: dict[str, Any], depth: int) -> Any:
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        return _value(defs.get(name, {}), rng, defs, depth + 1)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return rng.choice(node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = [o for o in node[key] if o.get("type") != "null"] or node[key]
            # Deep in a recursive model, prefer null (where allowed) to end the recursion.
            if depth > 4 and len(options) < len(node[key]):
                return None
            return _value(rng.choice(options), rng, defs, depth + 1)
    if node.get("allOf"):
        return _value(node["allOf"][0], rng, defs, depth + 1)
    kind = node.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = node.get("properties", {})
        out = {name: _value(sub, rng, defs, depth + 1) for name, sub in props.items()}
        extra = node.get("additionalProperties")
        if not props and isinstance(extra, dict):
            out = {rng.choice(_WORDS): _value(extra, rng, defs, depth + 1)}
        return out
    if kind == "array":
        low = int(node.get("minItems", 1 if depth < 4 else 0))
        high = int(node.get("maxItems", low + 2))
        count = rng.randint(low, max(low, high))
        items = node.get("items", {})
        prefix = node.get("prefixItems")
        if prefix:
            return [_value(sub, rng, defs, depth + 1) for sub in prefix]
        return [_value(items, rng, defs, depth + 1) for _ in range(count)]
    if kind == "integer":
        bottom, top = _bounds(node, integer=True)
        return rng.randint(int(bottom), int(top))
    if kind == "number":
        bottom, top = _bounds(node, integer=False)
        return round(rng.uniform(bottom, top), 3)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string(node, rng)


def _bounds(node: dict[str, Any], *, integer: bool) -> tuple[float, float]:
    step = 1 if integer else 1e-3
    low: float = node.get("minimum", -(10**9))
    high: float = node.get("maximum", 10**9)
    if "exclusiveMinimum" in node:
        low = node["exclusiveMinimum"] + step
    if "exclusiveMaximum" in node:
        high = node["exclusiveMaximum"] - step
    if "minimum" not in node and "exclusiveMinimum" not in node:
        low = max(low, min(0, high - 100))
    if "maximum" not in node and "exclusiveMaximum" not in node:
        high = min(high, low + 100)
    if integer:
        low, high = math.ceil(low), math.floor(high)
    return low, max(low, high)


def _string(node: dict[str, Any], rng: random.Random) -> str:
    fmt = node.get("format")
    if fmt == "date-time":
        return f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T12:00:00Z"
    if fmt == "date":
        return f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
    if fmt == "email":
        return f"{rng.choice(_WORDS)}@example.com"
    if fmt in ("uri", "url"):
        return f"https://example.com/{rng.choice(_WORDS)}"
    if fmt == "uuid":
        return "00000000-0000-4000-8000-" + "".join(
            rng.choice("0123456789abcdef") for _ in range(12)
        )
    low = int(node.get("minLength", 0))
    high = int(node.get("maxLength", max(low, 40)))
    text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4)))
    while len(text) < low:
        text += " " + rng.choice(_WORDS)
    return text[:high] if high >= low else text
