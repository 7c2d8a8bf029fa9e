"""``xcs.Operator`` and ``@xcs.op``: typed, composable, picklable callables.

An operator is a plain callable with a ``forward`` and a spec (pydantic models of its
input and output, declared or inferred from ``forward``'s hints; ``_spec``).
``__call__`` checks the input, runs ``forward`` and checks the output::

    class Answer(xcs.Operator):
        def __init__(self, model):
            self.model = model

        def forward(self, question: str) -> str:
            return self.model(f"Answer briefly: {question}")

    answer = Answer(xcs.models.bind("sim:chat", temperature=0.7))
    answer("Why is the sky blue?")      # a str (a Response)
    answer(42)                          # xcs.ValidationError:
                                        # Answer: input 'question': Input should be a
                                        # valid string (got 42)

NOTE: [Jitted operators]
``xcs.jit(op)`` and ``xcs.jit(OperatorClass)`` compile ``forward`` (``jit`` asks the
object through ``__xcs_jit_apply__``). Nothing is replaced: the operator records the
window in ``_xcs_jit_window_`` (on the instance for a jitted instance, which is a
shallow copy of the original; on the class for a jitted class, inherited by
subclasses) and ``__call__`` runs ``forward`` through ``xcs.jit`` of the function.
Compiled forms live on the function object (see ``_compiler._jit``), so every
instance of a class shares one compile, and a jitted operator still pickles: only
the window travels.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, overload

import pydantic

from xcs._compiler import _rt
from xcs._compiler._jit import jit
from xcs._observe import _spans
from xcs.errors import ValidationError
from xcs.operators._spec import Spec, build_spec, check_declared, signature_of

__all__ = ["FunctionOperator", "Operator", "op", "render"]

F = TypeVar("F", bound=Callable[..., Any])

_UNSET: Any = object()


# ---------------------------------------------------------------------------
# Jitted forwards, shared by every operator that runs the same function

_jitted: weakref.WeakKeyDictionary[Callable[..., Any], dict[int | None, Callable[..., Any]]] = (
    weakref.WeakKeyDictionary()
)
_jitted_lock = threading.Lock()


def _jitted_function(fn: Callable[..., Any], window: int | None) -> Callable[..., Any]:
    try:
        return _jitted[fn][window]
    except KeyError:
        pass
    with _jitted_lock:
        per_window = _jitted.setdefault(fn, {})
        if window not in per_window:
            per_window[window] = jit(fn, max_workers=window)
        return per_window[window]


# ---------------------------------------------------------------------------
# Operator


class Operator:
    """A typed, composable building block of a compound AI program.

    Subclass it and write ``forward``. Calling the operator checks its input against
    the input spec, runs ``forward`` and checks the output against the output spec.
    Specs are pydantic models, declared as class attributes or inferred from
    ``forward``'s type hints:

    - ``input_model``: a ``pydantic.BaseModel`` whose fields are parameters of
      ``forward``. Without it, the hints of ``forward``'s parameters make one
      (unannotated parameters are ``Any``; with no hint at all nothing is checked
      but the arguments' names and number).
    - ``output_model``: a ``pydantic.BaseModel``; ``forward`` may return an instance
      or a dict (the caller gets the instance). Without it, the return hint is the
      output spec (none: unchecked).

    A value that passes a check unchanged reaches ``forward`` (or the caller) as the
    same object: a ``Response`` keeps its ``usage``. A value pydantic converts (the
    string ``"3"`` for an ``int``) arrives converted.

    ``forward`` may be ``async def``: then calling the operator returns a coroutine
    (``await op(x)``), the input checked at the call, the output once it is awaited
    (NOTE: [Async operators]).

    Operators are plain callables, have a readable ``repr`` of their tree, and pickle
    when their attributes do (model bindings do). ``xcs.jit(op)`` or ``@xcs.jit`` on
    the class compiles ``forward``.

    Raises (from a call):
        ValidationError: the input or the output does not fit the spec; the message
            names the operator, ``input``/``output`` and the field (attributes
            ``operator``, ``direction``, ``field``, ``errors``).
        Anything ``forward`` raises, unchanged.
    """

    input_model: ClassVar[type[pydantic.BaseModel] | None] = None
    output_model: ClassVar[type[pydantic.BaseModel] | None] = None

    # NOTE: [Jitted operators]. A 1-tuple (window,) once jitted; () when not.
    _xcs_jit_window_: tuple[int | None, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Declared models are checked against forward's parameter names now, where
        # the class is written; hints are resolved at the first call (they may name
        # types defined after the class).
        forward = cls.__dict__.get("forward")
        declared = cls.__dict__.get("input_model")
        if declared is not None:
            fn = forward if forward is not None else cls.forward
            check_declared(cls.__name__, "input_model", declared, signature_of(fn, drop_self=True))
        out = cls.__dict__.get("output_model")
        if out is not None and not (isinstance(out, type) and issubclass(out, pydantic.BaseModel)):
            raise ValidationError(
                f"{cls.__name__}: output_model must be a pydantic BaseModel subclass, got {out!r}",
                operator=cls.__name__,
            )

    # -- what subclasses write ------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation. Subclasses override it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # -- the call -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name used in error messages, traces and the repr: the class name,
        unless set (``self.name = "drafter"``)."""
        return str(self.__dict__.get("_xcs_name_", type(self).__name__))

    @name.setter
    def name(self, value: str) -> None:
        self.__dict__["_xcs_name_"] = str(value)

    def spec(self) -> Spec:
        """The checked interface: ``signature``, ``input_model``, ``output_model``.

        Raises:
            ValidationError: the hints of ``forward`` cannot be resolved, or a
                declared model does not fit ``forward``.
        """
        cls = type(self)
        found = cls.__dict__.get("_xcs_spec_")
        if found is None:
            found = build_spec(
                cls.__name__,
                cls.forward,
                drop_self=True,
                input_model=cls.input_model,
                output_model=cls.output_model,
            )
            # A race builds two equal specs; either is fine.
            setattr(cls, "_xcs_spec_", found)  # noqa: B010 - set on this class only
        assert isinstance(found, Spec)
        return found

    def _forward_function(self) -> tuple[Callable[..., Any], bool]:
        """The function that computes, and whether it takes ``self`` first."""
        return type(self).forward, True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Check the input, run ``forward``, check the output.

        Raises:
            ValidationError: see the class docstring.
        """
        return self._run(args, kwargs, False)

    def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any], in_tree: bool) -> Any:
        spec = self.spec()
        name = self.name
        call_args, call_kwargs = spec.check_input(name, args, kwargs)
        fn, takes_self = self._forward_function()
        window = self._xcs_jit_window_
        if window:
            fn = _jitted_function(fn, window[0])
        elif in_tree:
            fn = _rt.callee(fn)  # its compiled form, if it is the user's own code
        if takes_self:
            call_args = (self, *call_args)
        if inspect.iscoroutinefunction(fn):
            # NOTE: [Async operators]
            site = _spans.call_site() if _spans.active else None
            return _acall(spec, name, fn, call_args, call_kwargs, bool(window), site)
        if _spans.active:  # inside xcs.trace(): an "operator" span around forward
            with _spans.span("operator", name, jitted=bool(window), site=_spans.call_site()):
                out = fn(*call_args, **call_kwargs)
        else:
            out = fn(*call_args, **call_kwargs)
        return spec.check_output(name, out)

    # -- xcs.jit --------------------------------------------------------------------

    def __xcs_callee__(self) -> Callable[..., Any]:
        """What a compiled caller runs for this operator (NOTE: [Call tree] in
        ``_compiler._codegen``): the operator with ``forward`` compiled as part of the
        caller's call tree. An operator whose class defines its own ``__call__`` runs
        as written."""
        if type(self).__call__ is not Operator.__call__:
            return self
        fn, _ = self._forward_function()
        if isinstance(fn, types.FunctionType):
            # Called by _rt.callee, called by the compiled code that calls the operator.
            with contextlib.suppress(ValueError):
                _rt.note_callee(fn, sys._getframe(2).f_code)
        return functools.partial(_call_in_tree, self)

    @staticmethod
    def __xcs_jit_apply__(target: Any, window: int | None) -> Any:
        """Called by ``xcs.jit`` on an operator class or instance. Should only be used
        by ``xcs.jit``. NOTE: [Jitted operators]"""
        if isinstance(target, type):
            setattr(target, "_xcs_jit_window_", (window,))  # noqa: B010
            return target
        if target._xcs_jit_window_ == (window,):
            return target
        # A shallow copy that shares the children; not copy.copy, which returns an
        # operator that pickles by reference (``@xcs.op`` at module level) itself.
        clone = object.__new__(type(target))
        if hasattr(target, "__dict__"):
            clone.__dict__.update(target.__dict__)
        clone._xcs_jit_window_ = (window,)
        return clone

    @property
    def __xcs_jit__(self) -> Any:
        # Lets xcs.explain(op) show the plan of the compiled forward.
        fn, _ = self._forward_function()
        if not isinstance(fn, types.FunctionType) and not hasattr(fn, "__xcs_jit__"):
            return None
        window = self._xcs_jit_window_
        return getattr(_jitted_function(fn, window[0] if window else None), "__xcs_jit__", None)

    # -- repr -----------------------------------------------------------------------

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        """The (name, value) pairs the repr shows; ``None`` names a positional one.
        Default: the public instance attributes."""
        return [(k, v) for k, v in vars(self).items() if not k.startswith("_")]

    def __repr__(self) -> str:
        return render(self)


def _call_in_tree(operator: Operator, /, *args: Any, **kwargs: Any) -> Any:
    return operator._run(args, kwargs, True)


# NOTE: [Async operators]
# An operator whose forward is ``async def`` is called like any other, and the call
# returns a coroutine: ``await op(x)``. The input is checked at the call (a bad
# argument fails where it is written, as for a sync operator); the output when
# forward's coroutine returns, against the return hint (the awaited value's type).
# Inside xcs.trace() the operator span covers the await; under xcs.jit the async
# forward is compiled as any async def is (its awaits overlap by region).


async def _acall(
    spec: Spec,
    name: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    jitted: bool,
    site: Any,
) -> Any:
    if site is not None and _spans.active:
        with _spans.span("operator", name, jitted=jitted, site=site):
            out = await fn(*args, **kwargs)
    else:
        out = await fn(*args, **kwargs)
    return spec.check_output(name, out)


def render(value: Any, indent: int = 0) -> str:
    """The repr of an operator tree: one line when short, else one child per line."""
    if isinstance(value, Operator) and type(value).__repr__ is not Operator.__repr__:
        return repr(value)  # an operator with a repr of its own
    if isinstance(value, Operator):
        head = value.name
        if value._xcs_jit_window_:  # a jitted instance, or any of a jitted class
            head = f"jit({head})"
        parts = [(k, v) for k, v in value._repr_fields()]
        rendered = [(k, render(v, indent + 2)) for k, v in parts]
        flat = ", ".join(f"{k}={r}" if k else r for k, r in rendered)
        if "\n" not in flat and len(flat) + len(head) + indent < 88:
            return f"{head}({flat})"
        pad = " " * (indent + 2)
        body = "".join(f"{pad}{k + '=' if k else ''}{r},\n" for k, r in rendered)
        return f"{head}(\n{body}{' ' * indent})"
    if isinstance(value, list | tuple) and any(isinstance(v, Operator) for v in value):
        open_, close = ("[", "]") if isinstance(value, list) else ("(", ")")
        pad = " " * (indent + 2)
        body = "".join(f"{pad}{render(v, indent + 2)},\n" for v in value)
        return f"{open_}\n{body}{' ' * indent}{close}"
    if isinstance(value, dict) and any(isinstance(v, Operator) for v in value.values()):
        pad = " " * (indent + 2)
        body = "".join(f"{pad}{k!r}: {render(v, indent + 2)},\n" for k, v in value.items())
        return f"{{\n{body}{' ' * indent}}}"
    if isinstance(value, types.FunctionType | types.BuiltinFunctionType):
        return value.__qualname__
    return repr(value)


# ---------------------------------------------------------------------------
# @xcs.op


class FunctionOperator(Operator):
    """A typed function as an operator; made by ``@xcs.op``, not constructed directly.

    The spec comes from the function's hints (or ``input_model=`` /
    ``output_model=`` given to ``xcs.op``). It pickles by reference to the module
    attribute it was defined as, like the function would.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        input_model: type[pydantic.BaseModel] | None = None,
        output_model: type[pydantic.BaseModel] | None = None,
    ) -> None:
        if not callable(fn) or isinstance(fn, type):
            raise ValidationError(f"xcs.op needs a function, got {type(fn).__name__} {fn!r:.60}")
        self.fn = fn
        self._input = input_model
        self._output = output_model
        self._spec: Spec | None = None
        functools.update_wrapper(self, fn, updated=())
        if input_model is not None:
            check_declared(self.name, "input_model", input_model, signature_of(fn, drop_self=False))

    @property
    def name(self) -> str:
        default = getattr(self.fn, "__name__", type(self.fn).__name__)
        return str(self.__dict__.get("_xcs_name_", default))

    @name.setter
    def name(self, value: str) -> None:
        self.__dict__["_xcs_name_"] = str(value)

    def spec(self) -> Spec:
        found = self._spec
        if found is None:
            found = build_spec(
                self.name,
                self.fn,
                drop_self=False,
                input_model=self._input,
                output_model=self._output,
            )
            self._spec = found
        return found

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def _forward_function(self) -> tuple[Callable[..., Any], bool]:
        return self.fn, False

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        return []

    def __repr__(self) -> str:
        jitted = "jit " if self._xcs_jit_window_ else ""
        return f"<{jitted}op {getattr(self.fn, '__qualname__', self.name)}>"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        state["_spec"] = None  # rebuilt on first use (specs hold generated models)
        for attr in ("__wrapped__", "__module__", "__name__", "__qualname__", "__doc__"):
            state.pop(attr, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        functools.update_wrapper(self, self.fn, updated=())

    def __reduce_ex__(self, protocol: Any) -> Any:
        module = getattr(self.fn, "__module__", None)
        qualname = getattr(self.fn, "__qualname__", None)
        if module and qualname and "<" not in qualname:
            import sys

            owner: Any = sys.modules.get(module)
            for part in qualname.split("."):
                owner = getattr(owner, part, None)
            if owner is self:
                # ``@xcs.op def f`` at module level: the module attribute is this
                # operator, so it pickles by reference, as functions do.
                return qualname
        return super().__reduce_ex__(protocol)


@overload
def op(fn: F, /) -> FunctionOperator: ...
@overload
def op(
    fn: None = None,
    /,
    *,
    input_model: type[pydantic.BaseModel] | None = None,
    output_model: type[pydantic.BaseModel] | None = None,
) -> Callable[[F], FunctionOperator]: ...


def op(
    fn: Any = None,
    /,
    *,
    input_model: type[pydantic.BaseModel] | None = None,
    output_model: type[pydantic.BaseModel] | None = None,
) -> Any:
    """Turn a typed function into an operator.

    Use bare (``@xcs.op``) or with declared specs
    (``@xcs.op(input_model=Q, output_model=A)``). The result is an ``xcs.Operator``:
    calling it checks the input against the function's hints (or ``input_model``)
    and the result against its return hint (or ``output_model``).

    Args:
        fn: the function.
        input_model: a pydantic model whose fields are parameters of ``fn``.
        output_model: a pydantic model for the result.

    Returns:
        A ``FunctionOperator``.

    Raises:
        ValidationError: ``fn`` is not a function, or ``input_model`` names a field
            ``fn`` does not take.

    Example::

        @xcs.op
        def shout(text: str, times: int = 1) -> str:
            return text.upper() * times

        shout("hi", times=2)      # 'HIHI'
        shout(["hi"])             # ValidationError: shout: input 'text': Input should
                                  # be a valid string (got ['hi'])
    """
    if fn is None:
        return functools.partial(op, input_model=input_model, output_model=output_model)
    if isinstance(fn, Operator):
        return fn
    return FunctionOperator(fn, input_model=input_model, output_model=output_model)
