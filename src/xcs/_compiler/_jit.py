"""``xcs.jit``, ``xcs.explain``, ``xcs.sequential``: the compiler's public face.

The pass, per function object, once (then cached, weakly)::

    fn --_source--> AST --_codegen.rewrite_function--> AST + sites
       --_codegen.build_function--> function (same globals, cells, defaults)

Functions XCS knows it cannot compile run as written, permanently, with the reason
in ``xcs.explain`` and one log record (DESIGN §1.8). Anything unexpected while
compiling raises ``xcs.CompilationError``.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import functools
import gc
import inspect
import logging
import operator
import os
import sys
import threading
import time
import types
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from xcs._compiler import _rt
from xcs._compiler._analysis import code_parameter_names
from xcs._compiler._async import rewrite_async_function
from xcs._compiler._async_rt import AsyncFunctionRuntime
from xcs._compiler._codegen import (
    Rewrite,
    add_dispatch,
    compile_rewrite,
    instantiate,
    rewrite_function,
)
from xcs._compiler._ir import Graph, Node
from xcs._compiler._leaf import runs_as_written
from xcs._compiler._rt import FunctionRuntime
from xcs._compiler._source import NoSource, function_node
from xcs._observe import _counters, _stats
from xcs.errors import CompilationError, JitWarning, ValidationError

__all__ = ["explain", "jit", "sequential"]

logger = logging.getLogger("xcs")

F = TypeVar("F", bound=Callable[..., Any])


class _Fallback(Exception):
    """A function XCS knows it cannot compile; ``args[0]`` says why."""


@dataclass
class Compiled:
    """One function object, compiled (or fallen back) for one window size.

    It must not refer to the function object itself: the cache holds it under that
    object as a weak key, and a strong reference back would keep both alive forever.
    """

    target: Callable[..., Any] | None  # the compiled function; None: run the original
    runtime: FunctionRuntime | None = None
    rewrite: Rewrite | None = None
    fallback: str | None = None
    compile_s: float = 0.0


# NOTE: [Where compiled forms live]
# A Python function's compiled forms are stored on the function object itself, in its
# __dict__ under _CACHE_KEY: they live exactly as long as it does. A global
# WeakKeyDictionary cannot hold them: the compiled function shares the original's
# globals and closure cells, and a function that sits in its own globals (anything
# exec'd, or at module level) or refers to itself through a cell (recursion) would
# be kept alive through the value, forever. On the function the same references
# form a cycle the garbage collector frees. Other callables (which only ever fall
# back and refer to nothing) are cached weakly where they can be.
_CACHE_KEY = "__xcs_compiled__"
_other_cache: weakref.WeakKeyDictionary[Callable[..., Any], dict[int | None, Compiled]] = (
    weakref.WeakKeyDictionary()
)
# Compiling takes a few milliseconds and calls no user code, so one lock is enough
# to make "two threads call a new function at once" compile it once.
_compile_lock = threading.RLock()


def _cached(fn: types.FunctionType) -> dict[int | None, Compiled] | None:
    """``fn``'s own compiled forms (NOTE: [Cached on the function] in _rt)."""
    store: dict[int | None, Compiled] | None = _rt.owned(fn, _CACHE_KEY)
    return store


def _store_of(fn: Callable[..., Any]) -> dict[int | None, Compiled] | None:
    if isinstance(fn, types.FunctionType):
        store = _cached(fn)
        if store is None:
            store = {}
            fn.__dict__[_CACHE_KEY] = (fn, fn.__code__, store)
        return store
    try:
        return _other_cache.setdefault(fn, {})
    except TypeError:  # neither a function nor weak-referenceable
        return None


def is_cached(fn: Callable[..., Any]) -> bool:
    """True if ``fn`` has been compiled (for tests and ``xcs.stats``)."""
    if isinstance(fn, types.FunctionType):
        return bool(_cached(fn))
    try:
        return fn in _other_cache
    except TypeError:
        return False


class CompileStatistics:
    """Counters of the compiler (read by ``xcs.stats``)."""

    def __init__(self) -> None:
        self.compiled = 0
        self.fallbacks = 0
        self.seconds = 0.0
        # function -> why it runs as written (the most recent _MAX_REASONS)
        self.reasons: dict[str, str] = {}

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


statistics = CompileStatistics()
_counters.register("compile", _stats.compile_counters(statistics, _compile_lock))
_MAX_REASONS = 100


def compiled_for(fn: Callable[..., Any], window: int | None) -> Compiled:
    """The compiled form of ``fn`` for ``window`` (compiling it on first use)."""
    cached = _cached(fn) if isinstance(fn, types.FunctionType) else None
    if cached is not None and window in cached:
        return cached[window]
    with _compile_lock:
        store = _store_of(fn)
        entry = store.get(window) if store is not None else None
        if entry is None:
            entry = _compile(fn, window)
            if store is not None:
                store[window] = entry
        return entry


def _compile(fn: Callable[..., Any], window: int | None) -> Compiled:
    with _collections_off():
        return _compile_timed(fn, window)


@contextlib.contextmanager
def _collections_off() -> Iterator[None]:
    # Compiling allocates thousands of short-lived AST nodes and no garbage cycles:
    # collections triggered meanwhile would only scan the program's whole heap,
    # which in a large program costs more than the compile itself.
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _compile_timed(fn: Callable[..., Any], window: int | None) -> Compiled:
    start = time.perf_counter()
    try:
        entry = _try_compile(fn, window)
    except _Fallback as fallback:
        reason = str(fallback)
        name = getattr(fn, "__qualname__", repr(fn))
        logger.info("xcs.jit: %s runs as written: %s", name, reason)
        statistics.fallbacks += 1
        statistics.reasons.pop(name, None)
        statistics.reasons[name] = reason
        if len(statistics.reasons) > _MAX_REASONS:
            del statistics.reasons[next(iter(statistics.reasons))]
        return Compiled(None, fallback=reason)
    except CompilationError:
        raise
    except Exception as exc:
        name = getattr(fn, "__qualname__", repr(fn))
        raise CompilationError(
            f"xcs.jit failed to compile {name}: {type(exc).__name__}: {exc}. This is a bug "
            "in XCS; please report it with the function's source.",
            function=name,
        ) from exc
    return _counted(entry, start)


def _counted(entry: Compiled, start: float) -> Compiled:
    entry.compile_s = time.perf_counter() - start
    statistics.compiled += 1
    statistics.seconds += entry.compile_s
    return entry


def _try_compile(fn: Callable[..., Any], window: int | None) -> Compiled:
    if isinstance(fn, functools.partial):
        raise _Fallback("it is a functools.partial; jit the function it wraps instead")
    if not isinstance(fn, types.FunctionType):
        kind = "a builtin or C function" if inspect.isbuiltin(fn) else f"a {type(fn).__name__}"
        raise _Fallback(f"it is {kind}, not a Python function, so it has no source to compile")
    code = fn.__code__
    if code.co_flags & inspect.CO_ASYNC_GENERATOR:
        raise _Fallback(
            "it is an async generator function (its awaits interleave with its consumer)"
        )
    if code.co_flags & inspect.CO_GENERATOR:
        raise _Fallback("it is a generator function (its calls interleave with its consumer)")
    # NOTE: [Functions made per call] A function defined inside another is made anew
    # at each call of that one, from one code object: it is compiled once per code
    # object (and globals), and each new function object gets its own closure cells
    # and runtime around the one compiled code. Its regions' measurements are shared.
    nested = "<locals>" in code.co_qualname  # (wraps may have renamed the function)
    known = _by_code.get(code) if nested else None
    if known is not None and known[0] is fn.__globals__:
        _, rewrite, new_code = known
    else:
        try:
            node = function_node(fn)
        except NoSource as missing:
            raise _Fallback(str(missing)) from None
        is_async = isinstance(node, ast.AsyncFunctionDef)
        if is_async != bool(code.co_flags & inspect.CO_COROUTINE):  # pragma: no cover
            raise _Fallback("its source does not match its code (async def or not)")
        if isinstance(node, ast.AsyncFunctionDef):
            rewrite = rewrite_async_function(node, code)
        else:
            rewrite = rewrite_function(node, code)
        rewrite = add_dispatch(rewrite, _builtin_only(fn))
        new_code = None
    if nested and known is None:
        _by_code[code] = (fn.__globals__, rewrite, None)
    if not rewrite.sites and not rewrite.dispatches:
        # Nothing to overlap, no call to compile: the original is the fastest.
        return Compiled(None, rewrite=rewrite)
    is_async = bool(code.co_flags & inspect.CO_COROUTINE)
    sites = [info.site for info in rewrite.sites]
    runtime = (
        AsyncFunctionRuntime(fn, sites, window) if is_async else FunctionRuntime(fn, sites, window)
    )
    if new_code is None:
        new_code = compile_rewrite(fn, rewrite)
        if nested:
            _by_code[code] = (fn.__globals__, rewrite, new_code)
            if len(_rt.per_call_sites) < 65536:
                _rt.per_call_sites[code] = [sites, 0]
    function = instantiate(fn, new_code, runtime)
    function.__dict__[_rt.DISPATCH_KEY] = (function, function.__code__, function)  # itself
    return Compiled(function, runtime, rewrite)


# code object of a function made per call -> (its globals, its rewrite, compiled code)
_by_code: weakref.WeakKeyDictionary[
    types.CodeType, tuple[dict[str, Any], Rewrite, types.CodeType | None]
] = weakref.WeakKeyDictionary()


def _builtin_only(fn: types.FunctionType) -> frozenset[str]:
    """The names ``fn`` reads that only the builtins bind (NOTE: [Call tree])."""
    code = fn.__code__
    namespace = _rt.builtins_of(fn.__globals__)
    names = _names_read(code)
    bound = set(code.co_varnames) | set(code.co_cellvars) | set(code.co_freevars)
    return frozenset(
        name
        for name in names
        if name in namespace and name not in fn.__globals__ and name not in bound
    )


def _names_read(code: types.CodeType) -> set[str]:
    """The global and attribute names ``code`` and the code nested in it read."""
    names: set[str] = set()
    for current in _rt.nested_codes(code):
        names.update(current.co_names)
    return names


def _compile_callee(fn: types.FunctionType) -> Callable[..., Any]:
    """What a compiled caller runs for ``fn`` (NOTE: [Call tree])."""
    if runs_as_written(fn):  # NOTE: [Leaves run as written]
        return fn
    entry = compiled_for(fn, None)
    if (
        "<locals>" in fn.__code__.co_qualname
        and (entry.rewrite is None or not entry.rewrite.sites)
        and len(_rt.as_written) < 65536
    ):
        # Made per call, with nothing to overlap: compiling each new object would cost
        # more than its calls could gain; it runs as written (NOTE: [Functions made
        # per call]), and so do its callees.
        _rt.as_written[fn.__code__] = True
        return fn
    if entry.target is None:
        return fn
    _queue_callees(fn)
    return entry.target


# NOTE: [Compiled ahead]
# On a first call each compiled function compiles its callees as it reaches them
# (NOTE: [Call tree]). One called after a region (a vote over drafts, a synthesizer
# after its researchers) would be compiled when the region's calls are done, on the
# critical path, while the threads coming back from those calls wait for the
# interpreter lock. So when a function is first compiled for a call, the functions it
# names (its globals, methods of the classes it names and of its own class, read from
# its code's names without running anything) are compiled ahead by one background
# thread, each _AHEAD_DELAY_S after it was queued: by then the calls the function
# started first are in flight, and a thread that compiles holds up no one. What is
# compiled and never called costs that thread's time only. A compile ahead that falls
# back or fails stores nothing and reports nothing: the call that needs the function
# compiles it again and reports, as before.

_MAX_AHEAD = 32  # functions queued per compiled function
_AHEAD_DELAY_S = 0.005


class _Ahead:
    """The queue of functions to compile ahead and its thread (started when first
    needed, again after a fork)."""

    def __init__(self) -> None:
        self._ready = threading.Condition(threading.Lock())
        self._queue: collections.deque[tuple[float, weakref.ref[types.FunctionType]]] = (
            collections.deque(maxlen=1024)
        )
        self._thread: threading.Thread | None = None
        self._busy = False

    def submit(self, functions: list[types.FunctionType]) -> None:
        due = time.monotonic() + _AHEAD_DELAY_S
        with self._ready:
            self._queue.extend((due, weakref.ref(fn)) for fn in functions)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="xcs-compile-ahead", daemon=True
                )
                self._thread.start()
            self._ready.notify_all()  # the thread, not only a drain() waiting

    def drain(self, timeout: float) -> bool:
        """Wait until nothing is queued or compiling; False if ``timeout`` passed
        first. (Tests: a compile ahead must not land in the next test's counters.)"""
        deadline = time.monotonic() + timeout
        with self._ready:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._ready.wait(left)
        return True

    def _run(self) -> None:
        while True:
            with self._ready:
                self._busy = False
                while not self._queue:
                    self._ready.notify_all()  # idle: wake drain()
                    self._ready.wait()
                due, ref = self._queue.popleft()
                self._busy = True
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            fn = ref()
            if fn is not None:
                try:
                    _compile_ahead(fn)
                except Exception:
                    logger.debug("xcs.jit: compiling ahead failed", exc_info=True)
            del fn

    def forget_thread(self) -> None:
        """In a forked child: the thread did not come along."""
        self._ready = threading.Condition(threading.Lock())
        self._thread = None
        self._busy = False


_ahead = _Ahead()


def _before_fork() -> None:
    # In the order the runtime takes them: an analysis parses under the compile lock.
    _rt.analysing.acquire()
    _compile_lock.acquire()


def _after_fork_in_parent() -> None:
    _compile_lock.release()
    _rt.analysing.release()


def _after_fork_in_child() -> None:
    _compile_lock._at_fork_reinit()  # type: ignore[attr-defined]
    _rt.analysing._at_fork_reinit()  # type: ignore[attr-defined]
    _ahead.forget_thread()


if hasattr(os, "register_at_fork"):
    # A fork waits for a compile, or an analysis of callees, in progress: a child forked
    # mid-way would inherit a lock held by a thread it does not have, the collector
    # that compile had turned off, or an analysis's assumptions left as answers (NOTE:
    # [Changes through a cycle] in _rt). The ahead thread compiles at any moment.
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


def _queue_callees(fn: types.FunctionType) -> None:
    found = _named_functions(fn)[:_MAX_AHEAD]
    if found:
        _ahead.submit(found)


def _named_functions(fn: types.FunctionType) -> list[types.FunctionType]:
    """The user's functions ``fn``'s code names that no compiled caller has called
    yet: globals, and methods (by name) of the classes it names and of its own."""
    names = _names_read(fn.__code__)
    namespace = fn.__globals__
    classes = [value for name in names if isinstance(value := namespace.get(name), type)]
    own = _rt._defining_class(fn)
    if own is not None:
        classes.append(own)
    found: dict[int, types.FunctionType] = {}
    for name in sorted(names):
        candidates = [namespace.get(name)]
        candidates.extend(
            inspect.getattr_static(cls, name, None) for cls in classes if _user_class(cls)
        )
        for candidate in candidates:
            if isinstance(candidate, staticmethod | classmethod):
                candidate = candidate.__func__
            if (
                type(candidate) is types.FunctionType
                and candidate is not fn
                and _rt.dispatch_target(candidate) is None
                and _rt.is_user_code(candidate.__code__)
            ):
                found[id(candidate)] = candidate
    return list(found.values())


def _user_class(cls: type) -> bool:
    file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return file is not None and _rt.is_user_file(file)


def _compile_ahead(fn: types.FunctionType) -> None:
    """Compile ``fn`` for a call to come, if nothing has (NOTE: [Compiled ahead])."""
    if (
        _rt.dispatch_target(fn) is not None
        or "<locals>" in fn.__code__.co_qualname  # made per call: compiled when called
        or not _rt.compiles(fn)
        or runs_as_written(fn)
    ):
        return
    with _compile_lock:
        store = _store_of(fn)
        if store is None or None in store:
            return
        start = time.perf_counter()
        with _collections_off():
            try:
                entry = _try_compile(fn, None)
            except Exception:
                return  # a fallback or a bug: the call that needs it reports it
        store[None] = _counted(entry, start)


# ---------------------------------------------------------------------------
# The decorator


def _check_window(max_workers: object) -> int | None:
    if max_workers is None:
        return None
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValidationError(
            f"xcs.jit(max_workers=...) takes a positive integer or None, got {max_workers!r}"
        )
    return max_workers


@overload
def jit(fn: F, *, max_workers: int | None = None) -> F: ...
@overload
def jit(fn: None = None, *, max_workers: int | None = None) -> Callable[[F], F]: ...


def jit(fn: Any = None, *, max_workers: int | None = None) -> Any:
    """Run the independent calls of ``fn`` concurrently, with ``fn``'s exact results.

    Use bare (``@xcs.jit``) or with arguments (``@xcs.jit(max_workers=8)``). The
    jitted function returns what ``fn`` returns and raises what ``fn`` raises first,
    in program order, the original exception object; every call ``fn`` makes is made
    once (DESIGN §1). What may overlap: the items of a comprehension or generator
    expression consumed whole, the iterations of a ``for`` loop that do not depend
    on each other, and consecutive assignments that do not use each other's results.
    A region overlaps only where its calls block; ``xcs.explain(fn)`` shows the plan.

    Args:
        fn: a function, method, ``staticmethod`` or ``classmethod``.
        max_workers: at most this many calls of one region in flight at once
            (default: the shared pool's size, 64).

    Returns:
        A function with ``fn``'s name, signature and docstring.

    Raises:
        ValidationError: ``fn`` is not callable, or ``max_workers`` is not a positive int.
        CompilationError: (at the first call) XCS failed internally while compiling.

    Functions XCS cannot compile (generators, builtins, no source) run as written;
    ``xcs.explain`` says why.
    """
    window = _check_window(max_workers)
    if fn is None:
        return functools.partial(jit, max_workers=window)
    if isinstance(fn, staticmethod):
        return staticmethod(jit(fn.__func__, max_workers=window))
    if isinstance(fn, classmethod):
        return classmethod(jit(fn.__func__, max_workers=window))
    if isinstance(fn, property):
        raise ValidationError("xcs.jit cannot compile a property; jit the getter function")
    if isinstance(fn, types.MethodType) and isinstance(fn.__func__, types.FunctionType):
        # A bound method (``xcs.jit(agent.run)``): its function, jitted, bound again.
        return types.MethodType(jit(fn.__func__, max_workers=window), fn.__self__)
    # An object may say how it is jitted: an xcs.Operator class or instance compiles
    # its forward (xcs.operators._base). Looked up before the class check below.
    apply = getattr(fn, "__xcs_jit_apply__", None)
    if apply is not None:
        return apply(fn, window)
    state = getattr(fn, "__xcs_jit__", None)
    if isinstance(state, _JitState) and getattr(fn, "__wrapped__", None) is state.original:
        # fn is a jit wrapper (a function wrapping one, made with functools.wraps,
        # carries a copy of its state but is not: it is jitted as itself)
        if state.window == window:
            return fn
        fn = state.original
    if inspect.isclass(fn):
        raise ValidationError(
            f"xcs.jit applies to functions and methods, not to the class {fn.__qualname__}"
        )
    if not callable(fn):
        raise ValidationError(f"xcs.jit needs a function, got {type(fn).__name__} {fn!r:.60}")
    return _make_wrapper(fn, window)


class _JitState:
    """The per-wrapper state: the original, the window, and what calls run."""

    __slots__ = ("call", "code", "original", "window")

    def __init__(self, original: Callable[..., Any], window: int | None) -> None:
        self.original = original
        self.window = window
        # None until the first call compiles; the wrapper installs and calls from its
        # own frame, so no second XCS frame stands in the way on the first call.
        self.call: Callable[..., Any] | None = None
        # The code ``call`` was made for (_UNSET before the first call): the
        # original's ``__code__`` replaced in place (IPython's autoreload does so)
        # makes ``call`` stale (NOTE: [Cached on the function]).
        self.code: Any = _UNSET

    def _install(self, warn: bool = True) -> Callable[..., Any]:
        code = _code_of(self.original)
        if self.code is not code:
            self.call = None  # first call, or the code was replaced: as a first call
        entry = compiled_for(self.original, self.window)
        if warn and entry.fallback is not None and self.call is None:
            # Called from the wrapper's frame: level 3 is the caller of the wrapper.
            name = getattr(self.original, "__qualname__", repr(self.original))
            warnings.warn(
                JitWarning(
                    f"xcs.jit cannot compile {name}, so it runs as written: {entry.fallback}"
                ),
                stacklevel=3,
            )
        if (
            self.call is None
            and entry.target is not None
            and type(self.original) is types.FunctionType
        ):
            _queue_callees(self.original)  # NOTE: [Compiled ahead]
        self.call = entry.target if entry.target is not None else self.original
        self.code = code
        return self.call

    def compiled(self) -> Compiled:
        self._install(warn=False)  # explain says why; no warning
        return compiled_for(self.original, self.window)


_UNSET = object()


def _jit_state(fn: types.FunctionType) -> _JitState | None:
    """``fn``'s state if it is a jit wrapper (not a ``functools.wraps`` copy of one)."""
    attributes = fn.__dict__
    state = attributes.get("__xcs_jit__")
    if type(state) is _JitState and attributes.get("__wrapped__") is state.original:
        return state
    return None


_rt.jit_state = _jit_state


def _code_of(fn: Any) -> Any:
    """``fn``'s code object (a function's or a bound method's), or None."""
    return getattr(fn, "__code__", None)


def _make_wrapper(fn: Callable[..., Any], window: int | None) -> Callable[..., Any]:
    state = _JitState(fn, window)
    # Read at each call: what was compiled is for this code (NOTE: [Cached on the
    # function]). The wrapper's body stays one line, and reads no global (it runs with
    # fn's globals, _in_callers_module).
    code_of: Callable[[Any], Any] = (
        operator.attrgetter("__code__") if hasattr(fn, "__code__") else _code_of
    )

    if inspect.iscoroutinefunction(fn):

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await (state.call if state.code is code_of(fn) else state._install())(*args, **kwargs)  # type: ignore[misc]  # fmt: skip  # noqa: E501

        wrapper: Callable[..., Any] = async_wrapper
    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return (state.call if state.code is code_of(fn) else state._install())(*args, **kwargs)  # type: ignore[misc]  # fmt: skip

    if isinstance(fn, types.FunctionType):
        wrapper = _in_callers_module(wrapper, fn)
    with contextlib.suppress(AttributeError, TypeError):  # exotic callables
        functools.update_wrapper(wrapper, fn)
    wrapper.__dict__.pop(_CACHE_KEY, None)  # compiled forms belong to the original
    wrapper.__dict__.pop(_rt.DISPATCH_KEY, None)
    wrapper.__xcs_jit__ = state  # type: ignore[attr-defined]
    return wrapper


def _in_callers_module(wrapper: Any, fn: types.FunctionType) -> Any:
    """``wrapper`` with ``fn``'s globals, file and ``def`` line.

    The wrapper's frame stands between the caller and ``fn`` (a frame of one line:
    ``xcs.jit`` compiles at the first call and looks up what to run at each call).
    Code that reads its caller's frame (``sys._getframe(1).f_globals['__name__']``,
    as ``typing``, ``enum`` and ``dataclasses`` helpers do for ``__module__``) then
    finds ``fn``'s module, not ``xcs._compiler._jit``; a traceback or a warning that
    names the frame shows ``fn``'s file and ``def`` line. What remains is documented
    in docs/jit.md (Limits): the frame is there, so ``stacklevel`` counts it.
    """
    code = wrapper.__code__
    last = max((line for _, _, line in code.co_lines() if line is not None), default=0)
    original = fn.__code__
    code = code.replace(
        co_filename=original.co_filename,
        co_firstlineno=max(original.co_firstlineno - (last - code.co_firstlineno), 1),
        co_name=original.co_name,
        co_qualname=original.co_qualname,
    )
    return types.FunctionType(code, fn.__globals__, fn.__name__, None, wrapper.__closure__)


# ---------------------------------------------------------------------------
# @xcs.sequential


def sequential(fn: F) -> F:
    """Keep the calls to ``fn`` in program order inside jitted functions.

    A region of a jitted function that calls ``fn`` directly runs in order, and
    ``xcs.explain`` says so. Use it for callees whose calls must not overlap (they
    share a connection that is not thread-safe, or depend on each other's effects).

    Args:
        fn: a function (or any callable that accepts attributes).

    Returns:
        ``fn`` itself, marked.

    Raises:
        ValidationError: ``fn`` is not callable.
    """
    if not callable(fn):
        raise ValidationError(f"xcs.sequential needs a callable, got {type(fn).__name__}")
    target: Any = getattr(fn, "__func__", fn)
    try:
        target.__xcs_sequential__ = True
    except (AttributeError, TypeError):

        @functools.wraps(fn)
        def marked(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        marked.__xcs_sequential__ = True  # type: ignore[attr-defined]
        return marked  # type: ignore[return-value]
    return fn


# ---------------------------------------------------------------------------
# xcs.explain


def explain(fn: Callable[..., Any]) -> str:
    """The plan of a jitted function: its regions, what overlaps and why, what runs in
    order and why, or why the function runs as written.

    Args:
        fn: a jitted function (or any function: it is compiled to show the plan,
            without changing it).

    Returns:
        A text report; its last part is the plan as an ``xcs.Graph``.

    Raises:
        ValidationError: ``fn`` is not callable.
        CompilationError: XCS failed internally while compiling ``fn``.
    """
    given: object = fn  # typed as a callable; checked, since callers pass anything
    if not callable(given) and not isinstance(given, classmethod | staticmethod):
        raise ValidationError(f"xcs.explain needs a function, got {type(fn).__name__} {fn!r:.60}")
    state = getattr(fn, "__xcs_jit__", None)
    if isinstance(state, _JitState):
        return _report(state.compiled(), state.original)
    target = getattr(fn, "__func__", fn)
    return _report(compiled_for(target, None), target)


def plan_of(entry: Compiled, fn: Callable[..., Any]) -> Graph:
    """The plan of a compiled function as the IR (inputs: its parameters)."""
    name = getattr(fn, "__qualname__", "function")
    params: list[str] = []
    if isinstance(fn, types.FunctionType):
        params = list(code_parameter_names(fn.__code__))
    graph = Graph(inputs=params, name=name)
    if entry.rewrite is None:
        return graph
    producer: dict[str, str] = {p: p for p in params}

    def deps(reads: set[str]) -> list[str]:
        return sorted({producer[n] for n in reads if n in producer})

    for info in entry.rewrite.sites:
        site = info.site
        note = site.mode.value
        if site.kind == "statements":
            for number, (describe, writes, reads, line) in enumerate(info.statements):
                text = describe()
                node_name = f"r{site.index}.{number}"
                graph.add_node(
                    Node(
                        node_name,
                        "site",
                        f"line {line}: {text}",
                        tuple(deps(reads)),
                        meta={"note": note},
                    )
                )
                for written in writes:
                    producer[written] = node_name
            continue
        node_name = f"r{site.index}"
        graph.add_node(
            Node(
                node_name,
                "region",
                f"{site.kind} line {site.line}: {site.source}",
                tuple(deps(info.reads)),
                meta={"note": note},
            )
        )
        for written in info.writes:
            producer[written] = node_name
    return graph


def _call_tree(entry: Compiled, depth: int, seen: set[int]) -> list[str]:
    """The callees compiled from ``entry``'s function (NOTE: [Call tree]), a tree."""
    target = entry.target
    if target is None or depth > 8:
        return []
    lines: list[str] = []
    # Calls made by a region's items come from the code the region runs them in,
    # nested in the compiled function's code.
    found: dict[int, Any] = {}
    codes = [target.__code__]
    while codes:
        code = codes.pop()
        for fn in _rt.callees_of.get(code, ()):
            found.setdefault(id(fn), fn)
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    for callee in sorted(found.values(), key=lambda f: f.__qualname__):
        compiled = _rt.dispatch_target(callee)
        indent = "    " * (depth + 1)
        if _jit_state(callee) is not None:
            lines.append(f"{indent}{callee.__qualname__}: jitted (xcs.explain shows its plan)")
            continue
        if compiled is None or compiled is callee or id(callee) in seen:
            why = "runs as written" if compiled is callee else "(above)"
            lines.append(f"{indent}{callee.__qualname__}: {why}")
            continue
        seen.add(id(callee))
        sub = compiled_for(callee, None)
        regions = len(sub.runtime.sites) if sub.runtime is not None else 0
        modes = (
            ", ".join(
                f"{site.kind} line {site.line}: {site.mode.value}" for site in sub.runtime.sites
            )
            if sub.runtime is not None
            else ""
        )
        lines.append(
            f"{indent}{callee.__qualname__}: compiled, {regions} region"
            f"{'s' * (regions != 1)}{' (' + modes + ')' if modes else ''}"
        )
        lines.extend(_call_tree(sub, depth + 1, seen))
    return lines


def _report(entry: Compiled, fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", repr(fn))
    where = ""
    code = getattr(fn, "__code__", None)
    if code is not None:
        where = f" ({code.co_filename}:{code.co_firstlineno})"
    lines = [f"xcs.jit {name}{where}"]
    if entry.fallback is not None:
        lines.append(f"  runs as written: {entry.fallback}")
        return "\n".join(lines)
    rewrite = entry.rewrite
    assert rewrite is not None
    lines[0] += f": compiled in {entry.compile_s * 1e3:.2f} ms"
    if isinstance(rewrite.node, ast.AsyncFunctionDef):
        lines.append(
            "  async def: regions that await run as tasks on the running event loop; "
            "sync calls run in order"
        )
    if not rewrite.sites:
        lines.append(
            "  no parallel region of its own"
            + (
                ": its calls run their compiled forms"
                if rewrite.dispatches
                else ": the function runs as written"
            )
        )
    else:
        lines.append("  regions:")
        for info in rewrite.sites:
            site = info.site
            lines.append(f"    [{site.index}] {site.kind}, line {site.line}: {site.source}")
            lines.append(f"        {site.mode.value}: {site.reason}")
            if site.executions:
                lines.append(
                    f"        ran {site.executions} time{'s' * (site.executions != 1)}, "
                    f"{site.probes} probe{'s' * (site.probes != 1)}"
                )
    if rewrite.notes:
        lines.append("  kept in order:")
        for note in rewrite.notes:
            lines.append(f"    line {note.line}: {note.what} {note.reason}")
    tree = _call_tree(entry, depth=0, seen=set())
    if tree:
        lines.append("  calls, compiled by xcs.jit (the user's own functions, first seen):")
        lines.extend(tree)
    if rewrite.sites:
        lines.append("  plan:")
        lines.extend("    " + line for line in str(plan_of(entry, fn)).splitlines())
    return "\n".join(lines)


_rt.compile_callee = _compile_callee


def _parse_locked(fn: types.FunctionType) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda:
    """``fn``'s syntax tree, parsed as compiling parses: one thread at a time, with the
    garbage collector off (CPython 3.11's parser keeps its recursion depth in
    interpreter-wide state, which a thread switch mid-parse, say to a gc callback,
    corrupts: ``SystemError: AST constructor recursion depth mismatch``)."""
    with _compile_lock:
        collecting = gc.isenabled()
        gc.disable()
        try:
            return function_node(fn)
        finally:
            if collecting:
                gc.enable()


_rt.parse_function = _parse_locked
