"""Batch axes: ``in_axes`` checked, arguments split into items, results stacked.

NOTE: [What vmap maps over]
``in_axes`` says, per positional argument, what is a batch:

- ``0``: the argument's leading axis is the batch. A list, tuple, range or any other
  sized iterable gives its items; a lazy iterable (a generator, a file, an iterator)
  gives its items as they are read. A dict or a pydantic model is a *structure of
  batches* (JAX's "pytree"): each of its values (fields) is mapped over its own
  leading axis, and item ``i`` is a dict of the ``i``-th values. A pydantic model gives
  a plain dict per item, because the per-item values do not have the model's own
  field types (``questions: list[str]`` holds one ``str`` per item). Any mapping
  (an ``OrderedDict``, a ``defaultdict``) gives a plain dict per item too.
- ``None``: the argument is passed whole to every call (broadcast).
- a tuple, list or dict: the argument is a container of that shape, and each entry of
  ``in_axes`` applies to the matching entry of the argument (a dict ``in_axes`` may
  name a subset of the keys or fields: the others are broadcast).

Strings and bytes are never batches (mapping over characters is almost never
meant): at axis 0 they are an error that says to pass ``None``. Keyword arguments
are always broadcast.

Results: a function returning a dict gives a dict of lists, a tuple (or named
tuple) gives a tuple of lists, recursively; anything else (a str, a list, a
pydantic model) gives a list. That is JAX's ``out_axes=0`` with lists in place of
stacked arrays.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any

from pydantic import BaseModel

from xcs.errors import ValidationError

__all__ = ["Failed", "ItemPlan", "plan_items", "stack_results"]


class Failed:
    """A failed item in ``errors="collect"`` mode, as results travel (also across
    processes). Internal: users see the exception object itself."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        return (Failed, (self.error,))


# ---------------------------------------------------------------------------
# Checking in_axes


def _check_axis(spec: Any, where: str) -> None:
    if spec is None or (type(spec) is int and spec == 0):
        return
    if isinstance(spec, int):  # 1, -1, True: no such axis
        raise ValidationError(
            f"xcs.vmap: {where} is {spec!r}; an axis is 0 (map over the leading axis) "
            "or None (broadcast). Python objects have one axis: transpose nested "
            "lists yourself to map over an inner one"
        )
    if isinstance(spec, tuple | list):
        for i, sub in enumerate(spec):
            _check_axis(sub, f"{where}[{i}]")
        return
    if isinstance(spec, dict):
        for key, sub in spec.items():
            _check_axis(sub, f"{where}[{key!r}]")
        return
    raise ValidationError(
        f"xcs.vmap: {where} is {spec!r}; in_axes takes 0, None, or a tuple, list or dict of them"
    )


def check_in_axes(in_axes: Any) -> None:
    """Reject a malformed ``in_axes`` when the transform is made, not at its call."""
    _check_axis(in_axes, "in_axes")


def _arg_names(fn: Callable[..., Any], count: int) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names: list[str] = []
    for i in range(count):
        if i < len(params) and params[i].kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            names.append(params[i].name)
        else:
            names.append(f"args[{i}]")
    return names


# ---------------------------------------------------------------------------
# Splitting the arguments into items
#
# The arguments become a tree of nodes: a leaf that is a batch (an iterator and,
# when known, its length), a broadcast value, or a container of nodes. Item i is
# the tree rebuilt with the i-th value of every batch.


class _Batch:
    __slots__ = ("index", "length", "name")

    def __init__(self, index: int, name: str, length: int | None) -> None:
        self.index = index  # position in ItemPlan.sources
        self.name = name
        self.length = length


class _Same:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Dict:
    __slots__ = ("entries",)

    def __init__(self, entries: dict[Any, Any]) -> None:
        self.entries = entries


class _Seq:
    __slots__ = ("entries", "kind")

    def __init__(self, kind: type, entries: list[Any]) -> None:
        self.kind = kind
        self.entries = entries


def _build(node: Any, values: Sequence[Any]) -> Any:
    if isinstance(node, _Batch):
        return values[node.index]
    if isinstance(node, _Same):
        return node.value
    if isinstance(node, _Dict):
        return {key: _build(sub, values) for key, sub in node.entries.items()}
    assert isinstance(node, _Seq)
    parts = [_build(sub, values) for sub in node.entries]
    if node.kind is list:
        return parts
    if node.kind is tuple:
        return tuple(parts)
    if hasattr(node.kind, "_fields"):  # a named tuple
        return node.kind(*parts)
    return node.kind(parts)


class ItemPlan:
    """The arguments of one vmap call, split into items. Not constructed directly:
    use ``plan_items``."""

    def __init__(self) -> None:
        self.sources: list[Iterator[Any]] = []
        self.batches: list[_Batch] = []
        self.args: list[Any] = []

    @property
    def length(self) -> int | None:
        """The number of items, when every batch is sized; else None (lazy)."""
        if any(b.length is None for b in self.batches):
            return None
        return self.batches[0].length

    def _leaf(self, value: Any, name: str) -> _Batch:
        if isinstance(value, str | bytes | bytearray):
            raise ValidationError(
                f"xcs.vmap: {name} is a {type(value).__name__}, and strings are not "
                "mapped over (their characters are rarely meant); give it in_axes=None "
                "to pass it whole to every call, or put it in a list",
                arguments=(name,),
            )
        if isinstance(value, set | frozenset):
            raise ValidationError(
                f"xcs.vmap: {name} is a {type(value).__name__}, which has no order; "
                "map over sorted(...) or a list",
                arguments=(name,),
            )
        if not isinstance(value, Iterable):
            raise ValidationError(
                f"xcs.vmap: {name} is a {type(value).__name__}, which has no leading axis "
                "to map over; give it in_axes=None to pass it whole to every call",
                arguments=(name,),
            )
        length = len(value) if isinstance(value, Sized) else None
        batch = _Batch(len(self.sources), name, length)
        self.sources.append(iter(value))
        self.batches.append(batch)
        return batch

    def _node(self, value: Any, spec: Any, name: str) -> Any:
        if spec is None:
            return _Same(value)
        if isinstance(spec, dict):
            return self._container_dict(value, spec, name, explicit=True)
        if isinstance(spec, tuple | list):
            if not isinstance(value, tuple | list) or len(value) != len(spec):
                raise ValidationError(
                    f"xcs.vmap: in_axes for {name} is a {type(spec).__name__} of "
                    f"{len(spec)}, but {name} is {_describe(value)}; the structure of "
                    "in_axes must match the argument's",
                    arguments=(name,),
                )
            entries = [
                self._node(v, s, f"{name}[{i}]")
                for i, (v, s) in enumerate(zip(value, spec, strict=True))
            ]
            return _Seq(type(value), entries)
        # axis 0
        if isinstance(value, Mapping | BaseModel):
            return self._container_dict(value, {}, name, explicit=False)
        return self._leaf(value, name)

    def _container_dict(
        self, value: Any, spec: dict[Any, Any], name: str, *, explicit: bool
    ) -> _Dict:
        # Every item is a plain dict, whatever the mapping's class: a subclass may
        # not be constructible from a dict (defaultdict), and a model's per-item
        # values do not have its field types (NOTE: [What vmap maps over]).
        if isinstance(value, BaseModel):
            fields = {key: getattr(value, key) for key in type(value).model_fields}
        elif isinstance(value, Mapping):
            fields = dict(value)
        else:
            raise ValidationError(
                f"xcs.vmap: in_axes for {name} is a dict, but {name} is {_describe(value)}; "
                "a dict of axes fits a dict or a pydantic model",
                arguments=(name,),
            )
        unknown = [key for key in spec if key not in fields]
        if unknown:
            raise ValidationError(
                f"xcs.vmap: in_axes for {name} names {unknown!r}, which {name} does not "
                f"have (it has {list(fields)!r})",
                arguments=(name,),
            )
        entries = {
            key: self._node(v, spec.get(key) if explicit else 0, f"{name}[{key!r}]")
            for key, v in fields.items()
        }
        return _Dict(entries)

    def items(self) -> Iterator[tuple[Any, ...]]:
        """The positional arguments of each call, in order, read lazily."""
        sources = self.sources
        count = 0
        while True:
            values: list[Any] = []
            for batch, source in zip(self.batches, sources, strict=True):
                try:
                    values.append(next(source))
                except StopIteration:
                    self._check_ended(batch, count, len(values))
                    return
            yield tuple(_build(node, values) for node in self.args)
            count += 1

    def _check_ended(self, ended: _Batch, count: int, position: int) -> None:
        """``ended`` ran out after ``count`` items: every other batch must too."""
        longer = []
        for i, (batch, source) in enumerate(zip(self.batches, self.sources, strict=True)):
            if batch is ended:
                continue
            if i < position:
                # Already read one item more than ``ended`` had.
                longer.append(batch)
                continue
            if batch.length is not None:
                if batch.length != count:
                    longer.append(batch)
                continue
            if next(source, _END) is not _END:
                longer.append(batch)
        if longer:
            others = ", ".join(f"{b.name} has more" for b in longer)
            raise ValidationError(
                f"xcs.vmap: mapped arguments differ in length: {ended.name} ended after "
                f"{count} items, {others}",
                arguments=(ended.name, *(b.name for b in longer)),
            )


_END = object()


def _describe(value: Any) -> str:
    if isinstance(value, Sized):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


def plan_items(
    fn: Callable[..., Any], args: tuple[Any, ...], in_axes: Any, *, what: str = "xcs.vmap"
) -> ItemPlan:
    """Split ``args`` into items according to ``in_axes`` (NOTE: [What vmap maps over]).

    Raises:
        ValidationError: ``in_axes`` does not fit the arguments, no argument is mapped,
            a mapped argument cannot be, or sized batches differ in length.
    """
    names = _arg_names(fn, len(args))
    if isinstance(in_axes, tuple | list):
        if len(in_axes) != len(args):
            raise ValidationError(
                f"{what}: in_axes has {len(in_axes)} entries for {len(args)} positional "
                f"arguments ({', '.join(names) or 'none'}); give one axis per argument"
            )
        specs = list(in_axes)
    else:
        specs = [in_axes] * len(args)
    plan = ItemPlan()
    plan.args = [plan._node(a, s, n) for a, s, n in zip(args, specs, names, strict=True)]
    if not plan.batches:
        raise ValidationError(
            f"{what}: no argument is mapped (every axis is None, or no positional "
            "arguments were given); pass the batch as a positional argument with axis 0"
        )
    lengths = {(b.name, b.length) for b in plan.batches if b.length is not None}
    if len({length for _, length in lengths}) > 1:
        shown = ", ".join(f"{n} has {length}" for n, length in sorted(lengths, key=str))
        raise ValidationError(
            f"{what}: mapped arguments differ in length: {shown}",
            arguments=tuple(n for n, _ in sorted(lengths, key=str)),
        )
    return plan


# ---------------------------------------------------------------------------
# Stacking the results


def stack_results(results: list[Any], what: str = "xcs.vmap") -> Any:
    """Per-item results -> one structure (NOTE: [What vmap maps over]).

    Failed items (``Failed``) become their exception object at every leaf.
    """
    model = next((r for r in results if not isinstance(r, Failed)), None)
    return _stack(results, model, what)


def _stack(results: list[Any], model: Any, what: str) -> Any:
    if isinstance(model, dict):
        keys = list(model)
        for i, r in enumerate(results):
            if not isinstance(r, Failed) and (not isinstance(r, dict) or list(r) != keys):
                raise _mismatch(what, i, r, model)
        return {
            key: _stack([r if isinstance(r, Failed) else r[key] for r in results], model[key], what)
            for key in keys
        }
    if isinstance(model, tuple):
        for i, r in enumerate(results):
            if not isinstance(r, Failed) and (type(r) is not type(model) or len(r) != len(model)):
                raise _mismatch(what, i, r, model)
        parts = [
            _stack([r if isinstance(r, Failed) else r[j] for r in results], model[j], what)
            for j in range(len(model))
        ]
        return type(model)(*parts) if hasattr(model, "_fields") else tuple(parts)
    return [r.error if isinstance(r, Failed) else r for r in results]


def _mismatch(what: str, index: int, got: Any, model: Any) -> ValidationError:
    def shape(x: Any) -> str:
        if isinstance(x, dict):
            return f"a dict with keys {list(x)!r}"
        if isinstance(x, tuple):
            return f"a {type(x).__name__} of {len(x)}"
        return f"a {type(x).__name__}"

    return ValidationError(
        f"{what}: item {index} returned {shape(got)} where the first item returned "
        f"{shape(model)}; return the same structure from every item (results that "
        "are dicts and tuples are stacked into dicts and tuples of lists)"
    )
