"""Tools a model may call: ``xcs.models(..., tools=[fn, ...])``.

A tool is a plain Python function or a pydantic model class. Its ``ToolSpec`` holds
what providers send (a name, a description, a JSON schema of the arguments) and what
running it needs (the function and a pydantic model of its arguments):

- a function: the name is the function's, the description its docstring's text
  before an ``Args:`` section, the arguments its parameters (type annotations and
  defaults; a missing annotation accepts anything). Each line ``name: text`` of the
  ``Args:`` section describes that argument.
- a pydantic model class: the name is the class's, the description its docstring,
  the arguments its fields. "Running" it validates the arguments into an instance
  (a way to get typed data out of a tool-using model).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

import pydantic

from xcs.errors import ValidationError

__all__ = ["ToolSpec", "tool_spec", "tool_specs"]

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters)\s*:\s*$")
_ARG_LINE = re.compile(r"^\s+\**(\w+)\**\s*(?:\([^)]*\))?\s*:\s*(.+)$")
_SECTION = re.compile(r"^\s*[A-Z][A-Za-z ]*:\s*$")


@dataclasses.dataclass(frozen=True, eq=False)
class ToolSpec:
    """One tool, as offered to a model. Not constructed by users: ``tools=[fn, ...]``
    makes one per function or model class (``tool_spec``).

    Attributes:
        name: the name the model calls it by.
        description: what it does (the docstring), sent to the model.
        parameters: the JSON schema of its arguments.
        fn: the function, or None for a pydantic model tool.
        arguments: the pydantic model its arguments are checked with.
        source: the function or the model class it was made from.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any] | None
    arguments: type[pydantic.BaseModel]
    source: Any

    @property
    def key(self) -> str:
        """A canonical text of what the model sees of this tool (for the cache key)."""
        return json.dumps(
            [self.name, self.description, self.parameters], sort_keys=True, separators=(",", ":")
        )

    def run(self, arguments: Mapping[str, Any]) -> Any:
        """Check ``arguments`` and call the tool with them (a model tool: return the
        validated instance).

        Raises:
            ValidationError: the arguments do not fit the tool's signature (attribute
                ``fields``); nothing was called.
            BaseException: whatever the function raised, the original object.
        """
        try:
            checked = self.arguments.model_validate(dict(arguments))
        except pydantic.ValidationError as exc:
            fields = tuple(".".join(str(p) for p in e["loc"]) for e in exc.errors())
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ValidationError(
                f"tool {self.name!r}: the model's arguments {dict(arguments)!r:.200} do not "
                f"fit its signature: {problems}",
                tool=self.name,
                fields=fields,
            ) from None
        if self.fn is None:
            return checked
        return self.fn(**{name: getattr(checked, name) for name in type(checked).model_fields})

    def __repr__(self) -> str:
        return f"<ToolSpec {self.name}>"


def tool_specs(tools: Any) -> tuple[ToolSpec, ...]:
    """The specs of a list of tools; names must be unique.

    Raises:
        ValueError: not a list, a tool that is neither a function nor a model class,
            a bad or repeated name (pydantic reports it as a ``tools`` error).
    """
    if isinstance(tools, ToolSpec):
        tools = [tools]
    if not isinstance(tools, list | tuple):
        raise ValueError(
            "tools= takes a list of functions or pydantic model classes, "
            f"got {type(tools).__name__}"
        )
    specs = tuple(t if isinstance(t, ToolSpec) else tool_spec(t) for t in tools)
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"two tools are named {', '.join(map(repr, repeated))}; names must differ")
    return specs


def tool_spec(tool: Any) -> ToolSpec:
    """The ``ToolSpec`` of a function or pydantic model class (cached per object).

    Raises:
        ValueError: anything else, a name models do not accept (``[a-zA-Z0-9_-]``,
            at most 64 characters; a lambda has none), ``*args``/``**kwargs``.
    """
    try:
        return _cached_spec(tool)
    except TypeError:  # unhashable: make it each time
        return _make_spec(tool)


@functools.lru_cache(maxsize=512)
def _cached_spec(tool: Any) -> ToolSpec:
    return _make_spec(tool)


def _make_spec(tool: Any) -> ToolSpec:
    if isinstance(tool, type) and issubclass(tool, pydantic.BaseModel):
        doc = tool.__dict__.get("__doc__")
        name = tool.__name__
        _check_name(name, tool)
        return ToolSpec(
            name=name,
            description=inspect.cleandoc(doc) if isinstance(doc, str) else "",
            parameters=tool.model_json_schema(),
            fn=None,
            arguments=tool,
            source=tool,
        )
    if not callable(tool) or isinstance(tool, type):
        raise ValueError(
            f"a tool is a function or a pydantic model class, got {tool!r:.80} "
            f"({type(tool).__name__})"
        )
    found = getattr(tool, "__name__", None)
    if not isinstance(found, str):
        raise ValueError(f"tool {tool!r:.80} has no __name__; give a named function")
    name = found
    _check_name(name, tool)
    try:
        signature = inspect.signature(tool)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tool {name!r}: cannot read its signature ({exc})") from None
    try:
        hints = typing.get_type_hints(tool)
    except Exception:
        hints = {}
    summary, described = _read_docstring(inspect.getdoc(tool) or "")
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ValueError(
                f"tool {name!r}: *{param.name} cannot be described to a model; "
                "give every argument a name"
            )
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ValueError(f"tool {name!r}: argument {param.name!r} is positional-only")
        annotation = hints.get(param.name, param.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (
            annotation,
            pydantic.Field(default, description=described.get(param.name)),
        )
    try:
        arguments = pydantic.create_model(f"{name}_arguments", **fields)
        parameters = arguments.model_json_schema()
    except (pydantic.PydanticUserError, TypeError) as exc:
        raise ValueError(f"tool {name!r}: its arguments have no JSON schema: {exc}") from None
    parameters.pop("title", None)
    return ToolSpec(
        name=name,
        description=summary,
        parameters=parameters,
        fn=tool,
        arguments=arguments,
        source=tool,
    )


def _check_name(name: str, tool: Any) -> None:
    if not _NAME.match(name):
        raise ValueError(
            f"tool {tool!r:.80}: the name {name!r} is not one models accept "
            "(letters, digits, _ and -, at most 64); give a named function"
        )


def _read_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The text before an ``Args:`` section, and ``name -> description`` from it."""
    lines = doc.splitlines()
    summary: list[str] = []
    described: dict[str, str] = {}
    i = 0
    while i < len(lines) and not _ARGS_HEADER.match(lines[i]):
        summary.append(lines[i])
        i += 1
    i += 1
    last: str | None = None
    while i < len(lines):
        line = lines[i]
        if _SECTION.match(line) and not line.startswith((" ", "\t")):
            break
        match = _ARG_LINE.match(line)
        if match:
            last = match.group(1)
            described[last] = match.group(2).strip()
        elif last is not None and line.strip():
            described[last] += " " + line.strip()
        i += 1
    return "\n".join(summary).strip(), described
