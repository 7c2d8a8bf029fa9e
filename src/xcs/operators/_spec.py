"""Operator specs: the pydantic models of an operator's input and output, checked per call.

A spec is declared (class attributes ``input_model`` / ``output_model``, pydantic
models) or inferred from ``forward``'s type hints. Either way it is built once per
operator class (per function for ``@xcs.op``) and used by ``Operator.__call__``:

- ``check_input`` binds the call's arguments to ``forward``'s parameters, validates
  them with the input model and returns the arguments to call ``forward`` with;
- ``check_output`` validates what ``forward`` returned.

Pydantic's exceptions never leave this module: they become ``xcs.ValidationError``
naming the operator, the direction and the field.

NOTE: [Values that pass unchanged]
Pydantic hands back a converted copy of some values: a ``str`` subclass such as the
model layer's ``Response`` comes back as a plain ``str`` (losing ``.usage``), a list
subclass as a plain ``list``. An operator must not lose what its caller gave it just
by checking it, so a value that validates to something *equal and of a base type of
the original* is passed on as the original object. A value pydantic really converted
(the string ``"3"`` for an ``int`` parameter, a dict for a model) is passed on
converted.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from xcs.errors import ValidationError

__all__ = ["Spec", "build_spec", "describe_errors"]

_EMPTY = inspect.Parameter.empty
_VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD
_POSITIONAL_OR_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD
_POSITIONAL_ONLY = inspect.Parameter.POSITIONAL_ONLY
_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY

# Types the hints of forward may name that pydantic has no schema for (a
# ModelBinding, an Operator) are checked with isinstance.
_CONFIG = pydantic.ConfigDict(arbitrary_types_allowed=True)


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the validation error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_errors(
    operator: str,
    direction: str,
    errors: list[tuple[str | None, str]],
) -> ValidationError:
    """One ``ValidationError`` for a list of ``(field, message)``; the first is named."""
    field, message = errors[0]
    where = f"{direction} {field!r}" if field else direction
    text = f"{operator}: {where}: {message}"
    if len(errors) > 1:
        others = ", ".join(repr(f) if f else direction for f, _ in errors[1:4])
        more = "" if len(errors) <= 4 else ", ..."
        text += f" (and {len(errors) - 1} more: {others}{more})"
    return ValidationError(
        text, operator=operator, direction=direction, field=field, errors=tuple(errors)
    )


def _from_pydantic(
    operator: str, direction: str, exc: pydantic.ValidationError, *, drop_root: bool = False
) -> ValidationError:
    found: list[tuple[str | None, str]] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if drop_root:
            loc = loc[1:]
        message = str(error["msg"])
        if error["type"] != "missing":
            message += f" (got {_short(error.get('input'))})"
        found.append((_path(loc) or None, message))
    return describe_errors(operator, direction, found)


def _unchanged(original: Any, checked: Any) -> bool:
    # NOTE: [Values that pass unchanged]
    if original is checked:
        return True
    if not isinstance(original, type(checked)):
        return False
    try:
        return bool(original == checked)
    except Exception:  # arrays and other values whose == is not a bool
        return False


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


@dataclass(eq=False)
class Spec:
    """The checked interface of one operator (class, or function for ``@xcs.op``).

    Not constructed directly; ``Operator.spec()`` returns it.

    Attributes:
        signature: ``forward``'s signature, without ``self``.
        input_model: the pydantic model of the input (declared, or built from the
            hints, one field per named parameter), or None when nothing is checked.
        output_model: the pydantic model of the output: the declared one, the
            return annotation when it is a model, or a model with one field
            ``output``; None when the output is not checked.
        declared: which of ``"input"``, ``"output"`` were declared, not inferred.
    """

    signature: inspect.Signature
    input_model: type[pydantic.BaseModel] | None
    output_model: type[pydantic.BaseModel] | None
    declared: frozenset[str]
    _wrapped_output: bool = False  # output_model is the one-field wrapper
    _checked: frozenset[str] = frozenset()  # parameters the input model checks
    _unpack: bool = False  # one instance of the declared input model may stand for all

    def __post_init__(self) -> None:
        # The parameter kinds, precomputed: binding by hand costs a fifth of
        # inspect.Signature.bind, which dominated the cost of a call.
        params = self.signature.parameters.values()
        self._pos = tuple(
            p.name for p in params if p.kind in (_POSITIONAL_ONLY, _POSITIONAL_OR_KEYWORD)
        )
        self._by_keyword = frozenset(
            p.name for p in params if p.kind in (_POSITIONAL_OR_KEYWORD, _KEYWORD_ONLY)
        )
        self._var_pos = next((p.name for p in params if p.kind is _VAR_POSITIONAL), None)
        self._var_kw = next((p.name for p in params if p.kind is _VAR_KEYWORD), None)
        self._required = tuple(
            p.name
            for p in params
            if p.default is _EMPTY and p.kind not in (_VAR_POSITIONAL, _VAR_KEYWORD)
        )

    # -- the call -----------------------------------------------------------------

    def check_input(
        self, operator: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments to call ``forward`` with, checked.

        Raises:
            ValidationError: an argument forward does not take, a missing one, or
                one the input model rejects.
        """
        model = self.input_model
        if model is None:
            self._bind(operator, args, kwargs, check_missing=True)
            return args, kwargs
        if self._unpack and len(args) == 1 and not kwargs and isinstance(args[0], model):
            instance = args[0]
            return self._call_form(
                {name: getattr(instance, name) for name in type(instance).model_fields}
            )
        given = self._bind(operator, args, kwargs, check_missing=False)
        data = {name: value for name, value in given.items() if name in self._checked}
        try:
            instance = model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise _from_pydantic(operator, "input", exc) from None
        arguments = dict(given)
        for name in type(instance).model_fields:
            checked = getattr(instance, name)
            if name in data and _unchanged(data[name], checked):
                arguments[name] = data[name]
            else:
                arguments[name] = checked
        return self._call_form(arguments)

    def _call_form(self, arguments: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Bound arguments back to ``(args, kwargs)``: the leading positional
        parameters that are present by position, the rest by name."""
        call_args: list[Any] = []
        taken = 0
        for name in self._pos:
            if name not in arguments:
                break
            call_args.append(arguments[name])
            taken += 1
        if self._var_pos is not None and self._var_pos in arguments:
            call_args.extend(arguments[self._var_pos])
        positional = self._pos[:taken]
        call_kwargs = {
            name: value
            for name, value in arguments.items()
            if name not in positional and name != self._var_pos and name != self._var_kw
        }
        if self._var_kw is not None and self._var_kw in arguments:
            call_kwargs.update(arguments[self._var_kw])
        return tuple(call_args), call_kwargs

    def check_output(self, operator: str, value: Any) -> Any:
        """``value`` checked against the output model (the original object when it
        passes unchanged).

        Raises:
            ValidationError: the output model rejects ``value``.
        """
        model = self.output_model
        if model is None:
            return value
        try:
            if self._wrapped_output:
                checked = model.model_validate({"output": value}).output  # type: ignore[attr-defined]
            else:
                checked = model.model_validate(value)
        except pydantic.ValidationError as exc:
            raise _from_pydantic(operator, "output", exc, drop_root=self._wrapped_output) from None
        return value if _unchanged(value, checked) else checked

    def _bind(
        self,
        operator: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        check_missing: bool,
    ) -> dict[str, Any]:
        """``{parameter: value}`` for this call (``*args`` as a tuple, ``**kwargs``
        as a dict), without defaults."""
        pos = self._pos
        arguments = dict(zip(pos, args, strict=False))
        if len(args) > len(pos):
            if self._var_pos is None:
                raise self._binding_error(operator, args, kwargs)
            arguments[self._var_pos] = args[len(pos) :]
        extra: dict[str, Any] = {}
        for name, value in kwargs.items():
            if name in self._by_keyword:
                if name in arguments:
                    raise self._binding_error(operator, args, kwargs)
                arguments[name] = value
            elif self._var_kw is not None:
                extra[name] = value
            else:
                raise self._binding_error(operator, args, kwargs)
        if extra:
            assert self._var_kw is not None
            arguments[self._var_kw] = extra
        if check_missing:
            missing = [(name, "Field required") for name in self._required if name not in arguments]
            if missing:
                raise describe_errors(operator, "input", list[tuple[str | None, str]](missing))
        return arguments

    def _binding_error(
        self, operator: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> ValidationError:
        params = self.signature.parameters
        takes = f"forward takes {show_signature(self.signature)}"
        kinds = {p.kind for p in params.values()}
        if _VAR_KEYWORD not in kinds:
            for name in kwargs:
                if name not in params or params[name].kind is inspect.Parameter.POSITIONAL_ONLY:
                    return describe_errors(
                        operator, "input", [(name, f"unexpected argument; {takes}")]
                    )
        positional = [
            p
            for p in params.values()
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, _POSITIONAL_OR_KEYWORD)
        ]
        if _VAR_POSITIONAL not in kinds and len(args) > len(positional):
            return describe_errors(
                operator,
                "input",
                [(None, f"{len(args)} positional arguments, at most {len(positional)}; {takes}")],
            )
        for p, _ in zip(positional, args, strict=False):
            if p.name in kwargs:
                return describe_errors(
                    operator, "input", [(p.name, f"given twice, by position and by name; {takes}")]
                )
        return describe_errors(operator, "input", [(None, f"arguments do not fit; {takes}")])


# ---------------------------------------------------------------------------
# Building a spec


def _hints(operator: str, fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ValidationError(
            f"{operator}: cannot resolve the type hints of {getattr(fn, '__qualname__', fn)} "
            f"({type(exc).__name__}: {exc}); define the types they name at module level, "
            "or declare input_model / output_model",
            operator=operator,
        ) from None


def _make_model(name: str, fields: Mapping[str, tuple[Any, Any]]) -> type[pydantic.BaseModel]:
    try:
        return pydantic.create_model(name, __config__=_CONFIG, **fields)  # type: ignore[call-overload,no-any-return]
    except Exception as exc:  # pydantic cannot build a schema for a hint
        raise ValidationError(
            f"{name}: pydantic cannot check these types ({type(exc).__name__}: {exc}); "
            "use other hints or declare the spec",
            operator=name,
        ) from None


def show_signature(sig: inspect.Signature) -> str:
    """``(question: str, sample: int = 0)``: the parameters, hints unquoted."""
    parts = []
    for p in sig.parameters.values():
        ann = p.annotation
        text = p.name
        if p.kind is _VAR_POSITIONAL:
            text = "*" + text
        elif p.kind is _VAR_KEYWORD:
            text = "**" + text
        if ann is not _EMPTY:
            text += f": {ann if isinstance(ann, str) else inspect.formatannotation(ann)}"
        if p.default is not _EMPTY:
            text += f" = {p.default!r}" if ann is not _EMPTY else f"={p.default!r}"
        parts.append(text)
    return f"({', '.join(parts)})"


def signature_of(fn: Callable[..., Any], *, drop_self: bool) -> inspect.Signature:
    sig = inspect.signature(fn)
    if drop_self:
        params = list(sig.parameters.values())[1:]
        sig = sig.replace(parameters=params)
    return sig


def build_spec(
    operator: str,
    forward: Callable[..., Any],
    *,
    drop_self: bool,
    input_model: Any = None,
    output_model: Any = None,
) -> Spec:
    """The spec of an operator whose ``forward`` is ``forward``.

    Raises:
        ValidationError: a declared model is not a pydantic model, names fields that
            ``forward`` does not take, or the hints cannot be resolved.
    """
    sig = signature_of(forward, drop_self=drop_self)
    params = sig.parameters
    declared: set[str] = set()
    hints: dict[str, Any] | None = None

    def hint(name: str) -> Any:
        nonlocal hints
        if hints is None:
            hints = _hints(operator, forward)
        return hints.get(name, _EMPTY)

    # -- input
    unpack = False
    if input_model is not None:
        check_declared(operator, "input_model", input_model, sig)
        declared.add("input")
        model_in: type[pydantic.BaseModel] | None = input_model
        checked = frozenset(input_model.model_fields)
        first = next(iter(params.values()), None)
        unpack = first is None or hint(first.name) is not input_model
    else:
        fields: dict[str, tuple[Any, Any]] = {}
        typed = False
        for name, p in params.items():
            ann = hint(name)
            if p.kind is _VAR_POSITIONAL:
                if ann is _EMPTY:
                    continue
                fields[name] = (tuple[ann, ...], ())  # type: ignore[valid-type]
            elif p.kind is _VAR_KEYWORD:
                if ann is _EMPTY:
                    continue
                fields[name] = (dict[str, ann], {})  # type: ignore[valid-type]
            else:
                default = ... if p.default is _EMPTY else p.default
                fields[name] = (Any if ann is _EMPTY else ann, default)
            typed = typed or ann is not _EMPTY
        model_in = _make_model(f"{operator}Input", fields) if typed else None
        checked = frozenset(fields)

    # -- output
    wrapped = False
    if output_model is not None:
        if not _is_model(output_model):
            raise ValidationError(
                f"{operator}: output_model must be a pydantic BaseModel subclass, "
                f"got {output_model!r}",
                operator=operator,
            )
        declared.add("output")
        model_out: type[pydantic.BaseModel] | None = output_model
    else:
        ann = hint("return")
        if ann is _EMPTY or ann is Any:
            model_out = None
        elif _is_model(ann):
            model_out = ann
        else:
            model_out = _make_model(f"{operator}Output", {"output": (ann, ...)})
            wrapped = True
    return Spec(sig, model_in, model_out, frozenset(declared), wrapped, checked, unpack)


def check_declared(operator: str, attribute: str, model: Any, sig: inspect.Signature) -> None:
    """A declared input model must be a pydantic model whose fields ``forward`` takes."""
    if not _is_model(model):
        raise ValidationError(
            f"{operator}: {attribute} must be a pydantic BaseModel subclass, got {model!r}",
            operator=operator,
        )
    params = sig.parameters
    if any(p.kind is _VAR_KEYWORD for p in params.values()):
        return
    unknown = [name for name in model.model_fields if name not in params]
    if unknown:
        raise ValidationError(
            f"{operator}: {attribute} {model.__name__} has fields that forward does not take: "
            f"{', '.join(unknown)}; forward takes {show_signature(sig)}",
            operator=operator,
            field=unknown[0],
        )
