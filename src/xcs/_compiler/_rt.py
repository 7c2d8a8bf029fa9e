"""What compiled code calls at run time: regions, sites, and their adaptive decisions.

The compiler rewrites each parallel region of a function into two paths::

    if __xcs_rt__.original(3):        # site 3 runs in order: the user's own code,
        <the original statement>      # untouched, at no cost
    else:
        <the region, through this module: overlapped or instrumented in order>

``__xcs_rt__`` is a ``FunctionRuntime``, one per compiled function, reached by the
compiled code through a closure cell (see ``_codegen``). Regions are numbered; a
``Site`` holds what was measured for one region and its current decision.

NOTE: [Deciding by probes]
A region overlaps its calls only where they block (DESIGN §1.7). Its first execution
overlaps and judges the tasks themselves (NOTE: [The first execution overlaps]). A
region in order is looked at again by a *probe*: its first item run alone, inline,
timed twice (wall and thread CPU; see ``_runtime._measure``); timing items while
others run would mislead, since threads that compute queue for the GIL, and waiting
for the GIL looks like blocking. Probes come at exponentially spaced executions (2,
4, 8, ... up to every 1024th), so a site that changes behaviour is noticed and the
cost of looking vanishes. Between probes an in-order region runs the original code,
untouched (the overhead is one attribute check); an overlapping region spawns every
item at once and checks, at its end, that overlapping still pays.
"""

from __future__ import annotations

import ast
import builtins
import collections
import contextlib
import contextvars
import enum
import inspect
import io
import itertools
import operator
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from xcs._compiler._analysis import ADVANCING_METHODS, positional_arguments
from xcs._observe import _counters, _stats
from xcs._runtime._deadline import current_deadline
from xcs._runtime._measure import (
    BLOCKED_SECONDS_MIN,
    Stopwatch,
    _forced,
    forced,
    get_profile,
    worth_overlapping,
)
from xcs._runtime._pool import get_pool
from xcs._runtime._scheduler import Task, TaskGroup, drive_window, helping, ordered_imap

__all__ = ["SKIP", "UNBOUND", "FunctionRuntime", "Mode", "Site", "live_runtimes"]


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name


_MISSING = _Sentinel("MISSING")
SKIP = _Sentinel("SKIP")  # a comprehension item whose condition was false
UNBOUND = _Sentinel("UNBOUND")  # a name the loop body did not assign

_EWMA = 0.3
_MAX_PROBE_INTERVAL = 1024

# NOTE: [Deep on one thread, in order]
# A thread that waits for a region's item may run it itself (NOTE: [Waiting threads
# help] in _scheduler), under the region's frames: about a dozen frames of XCS's per
# level, where the original comprehension costs one. A recursion through a region
# (a tree walk: ``[size(k) for k in node.kids]``) then met the recursion limit about
# 85 levels down, where plain Python goes 450 (findings F6, and tomllib's nesting
# tests in the real-code suite), and raised a RecursionError the program does not.
# So once the tasks a thread runs inline, one inside another, hold an eighth of the
# recursion limit in XCS's frames, the regions it starts run their original code, in
# order: that is always the sequential program, and costs what it costs there.
# Other threads are not affected: a worker starts each task on a fresh stack.
_FRAMES_PER_HELP = 12
_MIN_DEEP = 4  # below this no thread is deep: the limit is not even read


class Mode(enum.Enum):
    OVERLAP = "overlap"  # spawn the region's items as tasks
    IN_ORDER = "in order"  # run the original code


class Site:
    """One parallel region of a compiled function: what it is, what was measured,
    and whether it overlaps. Shown by ``xcs.explain``.

    Thread safety: decisions are single attribute writes; counters may lose an
    update under concurrent calls, which only shifts when the next probe happens.
    """

    __slots__ = (
        "_countdown",
        "_interval",
        "_source",
        "blocked_s",
        "callees",
        "executions",
        "fraction",
        "index",
        "kind",
        "label",
        "line",
        "local_roots",
        "mode",
        "overlapped",
        "probes",
        "reason",
        "shared_args",
        "shares_iterable",
    )

    def __init__(
        self,
        index: int,
        kind: str,
        line: int,
        source: str | Callable[[], str],
        callees: tuple[tuple[str, tuple[str, ...]], ...] = (),
        local_roots: tuple[str, ...] = (),
    ) -> None:
        self.index = index
        self.kind = kind  # "comprehension", "consume", "loop", "statements"
        self.line = line
        self._source = source  # text, or a function that makes it when first asked
        # What it calls, as (name, attribute path), checked for @xcs.sequential; the
        # names among them that are the function's locals come from the frame.
        self.callees = callees
        self.local_roots = local_roots
        self.shares_iterable = False  # a loop whose body reads its iterable's names
        # callee -> the arguments every item passes the same object as (by name)
        self.shared_args: dict[tuple[str, tuple[str, ...]], frozenset[int | str]] = {}
        # Optimistic until measured: an I/O-bound region overlaps from the first call.
        self.mode = Mode.OVERLAP
        self.reason = "not run yet: its first execution overlaps, measured"
        self.executions = 0
        self.overlapped = 0  # executions that ran their items as concurrent tasks
        self.label = f"{kind}@{line}"  # names its task groups (traces, timeouts)
        self.probes = 0
        self.blocked_s = 0.0  # EWMA of a probe's blocked time
        self.fraction = 0.0  # EWMA of a probe's blocked share of its wall time
        self._interval = 1
        self._countdown = 0  # in order: executions left before the next probe

    @property
    def source(self) -> str:
        """The region's source, shortened (computed when first asked: compiling is
        on the first call's path, explaining is not)."""
        if callable(self._source):
            self._source = self._source()
        return self._source

    @source.setter
    def source(self, text: str | Callable[[], str]) -> None:
        self._source = text

    # -- the decision ---------------------------------------------------------------------

    def original(self) -> bool:
        """Called by compiled code at each execution: True runs the original code."""
        self.executions += 1
        if self.mode is Mode.IN_ORDER and self._countdown > 0 and not _forced[0]:
            self._countdown -= 1
            return True
        depth = helping.depth
        # NOTE: [Deep on one thread, in order]
        return depth >= _MIN_DEEP and depth * _FRAMES_PER_HELP * 8 >= sys.getrecursionlimit()

    def wants_probe(self) -> bool:
        """True if this execution should start with a probe (never on the first
        execution, NOTE: [The first execution overlaps]; never under a deadline,
        which a probe running inline on the caller's thread could overrun)."""
        if self.probes == 0:
            return False
        if self.mode is Mode.IN_ORDER and self._countdown <= 0:
            if current_deadline() is not None:
                return False
            self._interval = min(self._interval * 2, _MAX_PROBE_INTERVAL)
            self._countdown = self._interval - 1
            return True
        return False

    def record_probe(self, wall_s: float, cpu_s: float) -> None:
        blocked = max(wall_s - cpu_s, 0.0)
        fraction = blocked / wall_s if wall_s > 0 else 0.0
        if self.probes == 0:
            self.blocked_s, self.fraction = blocked, fraction
        else:
            self.blocked_s += _EWMA * (blocked - self.blocked_s)
            self.fraction += _EWMA * (fraction - self.fraction)
        self.probes += 1
        get_profile().record(("site", id(self), self.line), wall_s, cpu_s)
        blocks = worth_overlapping(self.blocked_s, self.fraction)
        if not blocks and self.mode is Mode.OVERLAP:
            self._countdown = self._interval = 1
        self.mode = Mode.OVERLAP if blocks else Mode.IN_ORDER
        self.reason = (
            f"a call blocks {_duration(self.blocked_s)} "
            f"({self.fraction:.0%} of its time) on average over {self.probes} probe"
            f"{'s' * (self.probes != 1)}: "
            + ("overlapping pays" if blocks else "it computes; overlapping would not pay")
        )

    def settle(self, measure: Measure) -> None:
        """After an overlapping execution: decide what the next one does.

        The first execution decides (NOTE: [The first execution overlaps]). Later, if
        the calls have become quick (a warm cache, a local model) or the region
        computes, overlapping no longer pays: go in order. Tasks running beside each
        other share the GIL, so a task's own CPU time says little; what says it is
        a short wall time, or the region's CPU time filling its whole duration.
        """
        count, wall = measure.n, measure.wall
        computes = count and measure.computes(2)
        cpu = measure.cpu
        elapsed = time.perf_counter() - measure.started
        if self.mode is not Mode.OVERLAP or count == 0 or forced():
            return
        if measure.first:
            self.probes = max(self.probes, 1)
            if computes:
                self.mode = Mode.IN_ORDER
                self._countdown = self._interval = 1
                self.reason = (
                    f"its calls compute ({cpu / max(elapsed, 1e-9):.0%} of the time "
                    "was CPU) on its first execution: overlapping would not pay"
                )
            else:
                self.reason = (
                    f"its first execution overlapped: its calls waited (CPU "
                    f"{cpu / max(elapsed, 1e-9):.0%} of the time): overlapping pays"
                )
            return
        if measure.nested:
            return  # NOTE: a recursion's inner execution does not decide for the site
        mean = wall / count
        if mean < BLOCKED_SECONDS_MIN:
            self.mode = Mode.IN_ORDER
            self._countdown = self._interval = 1
            self.reason = f"its calls now take {mean * 1e6:.0f} µs: overlapping no longer pays"
        elif computes:
            self.mode = Mode.IN_ORDER
            self._countdown = self._interval = 1
            self.reason = "its calls now compute: overlapping no longer pays"

    def note(self, index: int) -> str:
        """What the note of an exception raised by item ``index`` says (DESIGN §1.11)."""
        function = self.label.rsplit(":", 1)[0]
        item = "statement" if self.kind == "statements" else "item"
        where = "statements" if self.kind == "statements" else self.kind
        return f"{item} {index} of the {where} at line {self.line} of {function}"

    def force_in_order(self, reason: str) -> None:
        self.mode = Mode.IN_ORDER
        self.reason = reason

    def __repr__(self) -> str:
        return f"<Site {self.index} {self.kind} line {self.line}: {self.mode.value}>"


# NOTE: [The first execution overlaps]
# A region that has never run overlaps at once: a batch job or a notebook calls its
# pipeline once, and a first item run alone as a probe would serialize it (and would
# pay, alone, the one-time costs of the first call: an SDK import, a client, a
# connection). Whether overlapping paid is judged from the tasks themselves. They
# share the GIL, so one task's CPU time says little; the region's does: calls that
# compute keep some thread computing all the time (their CPU time fills the
# region's duration), calls that wait leave it idle. The most expensive task is left
# out of the sum (a one-time cost is paid by one task). The rule errs one way only: on
# a machine so busy that the region's threads wait for a CPU, calls that compute may
# look idle and keep overlapping (a small cost), but calls that wait never look busy
# (which would serialize them: a large cost). As soon as _GATE_SAMPLES
# tasks have finished and show computing, no more items are started: the tasks in
# flight finish and the rest runs in order, so a region that computes pays at most
# one window of overhead, once. Later executions are judged the same way, at their
# end (``settle``), and a region in order is probed again now and then.
# Calls so short (under BLOCKED_SECONDS_MIN each, the longest left out) that handing
# them to threads costs more than it could save are judged the same way, from
# _SHORT_SAMPLES finished tasks: fewer could be a few cache hits before the misses.
_COMPUTING_SHARE = 0.9
_GATE_SAMPLES = 2
_SHORT_SAMPLES = 8


# The sites whose overlapping executions the current task belongs to (contexts are
# copied into tasks, so a recursion's inner executions see their outer ones).
_running_sites: contextvars.ContextVar[frozenset[Site]] = contextvars.ContextVar(
    "xcs_running_sites", default=frozenset()
)


class Measure:
    """The tasks of one overlapping execution of a site, measured (``settle`` judges
    them). One per execution: executions of a site that run at once (a function called
    from several threads, or made per call) must not mix their figures."""

    __slots__ = ("cpu", "cpu_max", "first", "n", "nested", "site", "started", "wall", "wall_max")

    def __init__(self, site: Site) -> None:
        # Started before any execution of the site was judged: judged as a first one.
        self.first = site.probes == 0
        # Run by a task of an execution of the same site (recursion: the leaves'
        # executions are quick, their parents' wait on them): it does not decide.
        self.site = site
        self.nested = site in _running_sites.get()
        self.started = time.perf_counter()
        self.n = 0
        self.wall = 0.0  # wall time of the finished tasks
        self.cpu = 0.0  # ... their thread CPU time
        self.cpu_max = 0.0  # ... the most CPU one task took (a one-time cost)
        self.wall_max = 0.0  # ... the longest one task took

    def timed(self, fn: Callable[..., Any], gate: _Gate | None = None) -> Callable[..., Any]:
        """``fn``, timed as a task of this execution. On a first execution, ``gate`` is
        closed as soon as the finished tasks show that the region does not pay: the
        rest of it then runs in order."""

        site = self.site

        def task(*args: Any) -> Any:
            start = time.perf_counter()
            cpu = time.thread_time()
            running = _running_sites.get()
            token = _running_sites.set(running | {site}) if site not in running else None
            try:
                return fn(*args)
            finally:
                if token is not None:
                    _running_sites.reset(token)
                used = time.thread_time() - cpu
                took = time.perf_counter() - start
                self.wall += took
                self.wall_max = max(self.wall_max, took)
                self.cpu += used
                self.cpu_max = max(self.cpu_max, used)
                self.n += 1
                if gate is not None and not gate.closed and self.computes(_GATE_SAMPLES):
                    gate.closed = True

        return task

    def computes(self, at_least: int) -> bool:
        """Do the tasks finished so far show a region that computes, or whose calls
        are too quick to pay? (NOTE: [The first execution overlaps])"""
        count = self.n
        if count < at_least or forced():
            return False
        if count >= _SHORT_SAMPLES:
            # Calls this short cost less than handing them to a thread does.
            mean = (self.wall - self.wall_max) / (count - 1)
            if mean < BLOCKED_SECONDS_MIN:
                return True
        # The costliest task is left out, with the time it held the CPU: a one-time
        # cost (an import, a client) is paid by one task.
        elapsed = time.perf_counter() - self.started - self.cpu_max
        busy = self.cpu - self.cpu_max
        return elapsed > 0 and busy >= _COMPUTING_SHARE * elapsed


class _Gate:
    """An iterator that stops yielding (without reading its source) once closed."""

    __slots__ = ("closed", "source")

    def __init__(self, source: Iterator[Any]) -> None:
        self.source = source
        self.closed = False

    def __iter__(self) -> _Gate:
        return self

    def __next__(self) -> Any:
        if self.closed:
            raise StopIteration
        return next(self.source)


def _duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def _probe(site: Site, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Run one item inline, timed; record it on ``site`` even if it raises."""
    watch = Stopwatch()
    try:
        return fn(*args)
    finally:
        site.record_probe(*watch.stop())


def _unbound_messages(probe: str) -> tuple[str, str]:
    """This Python's messages for reading an unbound free variable and an unbound
    local called ``probe`` (taken from the interpreter, so they match exactly)."""
    source = (
        f"def outer():\n"
        f"    def inner():\n"
        f"        return {probe}\n"
        f"    try:\n"
        f"        inner()\n"
        f"    except NameError as error:\n"
        f"        free = error.args[0]\n"
        f"    try:\n"
        f"        {probe}\n"
        f"    except NameError as error:\n"
        f"        local = error.args[0]\n"
        f"    return free, local\n"
        f"    {probe} = None\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "<xcs>", "exec"), namespace)
    free, local = namespace["outer"]()
    return free, local


_PROBE = "__xcs_probe_name__"
_FREE_MESSAGE, _LOCAL_MESSAGE = _unbound_messages(_PROBE)

#: Python 3.12 inlines list, set and dict comprehensions (PEP 709): reading an unbound
#: local of the function in one raises UnboundLocalError, where the region's item
#: function, a closure, raises NameError ("free variable").
INLINED_COMPREHENSIONS = sys.version_info >= (3, 12)


def _as_unbound_local(error: BaseException) -> UnboundLocalError | None:
    """UnboundLocalError for ``error`` if it is the NameError of reading an unbound
    free variable; else None."""
    if type(error) is not NameError:
        return None
    name = getattr(error, "name", None)
    if not isinstance(name, str) or error.args != (_FREE_MESSAGE.replace(_PROBE, name),):
        return None
    return UnboundLocalError(_LOCAL_MESSAGE.replace(_PROBE, name))


def comprehension_unbound(error: BaseException, *parts: Any) -> UnboundLocalError | None:
    """On Python 3.12+, the inlined comprehension's UnboundLocalError for ``error``
    when a region's own item function or item generator (``parts``) raised it by
    reading an unbound local of the function; else None."""
    if not INLINED_COMPREHENSIONS or type(error) is not NameError:
        return None
    traceback = error.__traceback__
    if traceback is None:
        return None
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    codes = [
        getattr(part, "__code__", None)
        or getattr(part, "gi_code", None)
        or getattr(part, "ag_code", None)
        for part in parts
    ]
    if traceback.tb_frame.f_code not in codes:
        return None
    return _as_unbound_local(error)


class _LoopRecord:
    """What one iteration of a parallel loop produced, applied by the owner in order.

    ``effects`` are ``(kind, payload)`` pairs: kind 0 is a deferred call
    ``payload[0](*payload[1])`` (``out.append(x)``, ``d[k] = v``, ``print(...)``);
    kind k > 0 is the k-th augmented assignment of the loop (``total += x``), which
    the compiled code applies to its own local. ``bindings`` are the final values of
    the names the body assigns (UNBOUND where it did not).
    """

    __slots__ = ("bindings", "effects")

    def __init__(self) -> None:
        self.effects: list[tuple[int, Any]] = []
        self.bindings: tuple[Any, ...] = ()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.effects.append((0, (fn, args, kwargs)))

    def aug(self, kind: int, value: Any) -> None:
        self.effects.append((kind, value))


class FunctionRuntime:
    """The run-time half of one compiled function. Not constructed by users."""

    # Names compiled code reads through ``__xcs_rt__.<name>``: a user's own global
    # called ``list`` or ``locals`` cannot shadow them.
    SKIP = SKIP
    UNBOUND = UNBOUND
    LOCALS = staticmethod(builtins.locals)
    setitem = staticmethod(operator.setitem)

    @staticmethod
    def capture(frame_locals: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
        """The values of ``names`` in a loop body's frame (UNBOUND where unassigned)."""
        return tuple(frame_locals.get(name, UNBOUND) for name in names)

    @staticmethod
    def unbound_local(error: NameError) -> UnboundLocalError | None:
        """The sequential program's error for a loop body's read of an unbound local
        of the function (the body reads it as a free variable), or None when
        ``error`` is anything else: raised deeper, or not about a free variable."""
        traceback = error.__traceback__
        if traceback is None or traceback.tb_next is not None:
            return None
        return _as_unbound_local(error)

    @staticmethod
    def materialize(values: Iterable[Any]) -> list[Any]:
        """``out.extend(x)`` in a loop body: read ``x`` now, in the iteration."""
        return list(values)

    def __init__(self, original: types.FunctionType, sites: list[Site], window: int | None) -> None:
        self.qualname = original.__qualname__
        self.sites = sites
        self.window = window
        self._globals = original.__globals__
        self._cells = dict(
            zip(original.__code__.co_freevars, original.__closure__ or (), strict=True)
        )
        for site in sites:
            site.label = f"{self.qualname}:{site.kind}@{site.line}"
        _runtimes.add(self)

    # -- shared -------------------------------------------------------------------------

    def original(self, index: int) -> bool:
        return self.sites[index].original()

    def _window(self) -> int:
        return self.window if self.window is not None else get_pool().max_workers

    def _lookup(self, name: str) -> Any:
        cell = self._cells.get(name)
        if cell is not None:
            try:
                return cell.cell_contents
            except ValueError:
                return _MISSING
        if name in self._globals:
            return self._globals[name]
        return builtins_of(self._globals).get(name, _MISSING)

    def _ordered_callee(
        self, site: Site, roots: Callable[[], tuple[Any, ...]] | None
    ) -> str | None:
        """Why the region's calls must stay in program order, judged by what they
        call, or None: a callee marked ``@xcs.sequential``, or a call on a receiver
        whose order matters by nature (NOTE: [Ordered receivers]).

        Attribute chains are resolved statically (``inspect.getattr_static``): looking
        must not run a property or ``__getattr__`` that the program would not run.
        """
        if not site.callees:
            return None
        local: dict[str, Any] = {}
        if roots is not None:
            try:
                local = dict(zip(site.local_roots, roots(), strict=True))
            except NameError:  # a local not bound yet: the call would fail anyway
                local = {}
        for root, path in site.callees:
            target = local[root] if root in local else self._lookup(root)
            receiver: Any = _MISSING
            for attribute in path:
                if target is _MISSING:
                    break
                receiver = target
                target = inspect.getattr_static(target, attribute, _MISSING)
            if target is _MISSING:
                continue
            name = ".".join((root, *path))
            if _is_sequential(target):
                return f"calls {name}, which is marked @xcs.sequential"
            inner = _sequential_within(target, receiver)
            if inner is not None:
                return f"calls {name}, which calls {inner}, marked @xcs.sequential"
            shared = site.shared_args.get((root, path))
            if shared:
                changed = _changed_argument(target, receiver, shared)
                if changed is not None:
                    return (
                        f"calls {name}, which changes its argument {changed}, one object "
                        "passed to every call: the changes must land in program order"
                    )
            kind = _ordered_receiver(receiver, path[-1] if path else None, target)
            if kind is not None:
                return f"calls {name} on {kind}, whose calls must stay in program order"
        return None

    def _plan(self, site: Site, roots: Callable[[], tuple[Any, ...]] | None) -> tuple[bool, bool]:
        """(probe first?, overlap after the probe?) for one execution of ``site``."""
        ordered = self._ordered_callee(site, roots)
        if ordered is not None:
            site.force_in_order(ordered)
            return False, False
        if forced():  # NOTE: [Forced overlap]
            return False, True
        probe = site.wants_probe()
        return probe, site.mode is Mode.OVERLAP

    # -- comprehensions and consumed generator expressions --------------------------------

    def iterate(
        self,
        index: int,
        roots: Callable[[], tuple[Any, ...]] | None,
        body: Callable[..., Any],
        items: Iterable[Any],
    ) -> Iterator[Any]:
        """The results of ``body(*item)`` for each item, in order, SKIPs dropped.

        ``items`` yields argument tuples (the names the comprehension's targets bind).
        """
        site = self.sites[index]
        probe, overlap = self._plan(site, roots)
        source = iter(items)
        if probe:
            for first in source:
                result = _probe(site, body, first)
                if result is not SKIP:
                    yield result
                overlap = site.mode is Mode.OVERLAP
                break
        if overlap:
            source, overlap = _unless_groups(site, source)
        if overlap:
            site.overlapped += 1
            gate = _Gate(source) if site.probes == 0 else None
            measure = Measure(site)
            try:
                for result in _ordered(
                    measure.timed(body, gate), gate or source, self._window(), site
                ):
                    if result is not SKIP:
                        yield result
            finally:
                site.settle(measure)
            if gate is None or not gate.closed:
                return
        for args in source:  # in order (or the rest of a first execution that computes)
            result = body(*args)
            if result is not SKIP:
                yield result

    def comp(
        self,
        index: int,
        roots: Callable[[], tuple[Any, ...]] | None,
        kind: int,
        body: Callable[..., Any],
        items: Iterable[Any],
    ) -> Any:
        """A list (kind 0), set (1) or dict (2) comprehension."""
        results = self.iterate(index, roots, body, items)
        try:
            return _BUILDERS[kind](results)
        except NameError as error:
            unbound = comprehension_unbound(error, body, items)
            if unbound is None:
                raise
            raise unbound from None
        finally:
            results.close()  # type: ignore[attr-defined]

    def consume(
        self,
        index: int,
        roots: Callable[[], tuple[Any, ...]] | None,
        consumer: Callable[..., Any],
        body: Callable[..., Any],
        items: Iterable[Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """``consumer(<generator expression>, *args, **kwargs)`` for a consumer that reads
        its argument whole (list, sum, max, str.join...); any other consumer gets a
        plain lazy generator, exactly as the original code would.
        """
        if not _consumes_whole(consumer):
            return consumer(_lazy(body, items), *args, **kwargs)
        results = self.iterate(index, roots, body, items)
        try:
            return consumer(results, *args, **kwargs)
        finally:
            results.close()  # type: ignore[attr-defined]

    # -- loops ----------------------------------------------------------------------------

    def loop(
        self,
        index: int,
        roots: Callable[[], tuple[Any, ...]] | None,
        body: Callable[[_LoopRecord, Any], None],
        items: Iterable[Any],
    ) -> Iterator[_LoopRecord]:
        """Run ``body(record, item)`` per item; yield the records in order.

        The compiled code applies each record (effects, then bindings) before asking
        for the next. If an iteration failed, its record (the effects it made before
        failing) is yielded first and the failure raised at the next step, so the
        effects of the failing iteration happen, as they did in the sequential run.
        """
        site = self.sites[index]
        probe, overlap = self._plan(site, roots)
        source = iter(items)
        if site.shares_iterable and source is items:
            # The body may advance the very iterator the loop reads: in order, now.
            probe = overlap = False
        if probe:
            for item in source:
                record = _LoopRecord()
                try:
                    _probe(site, body, (record, item))
                except BaseException:
                    yield record  # the effects made before the failure still happen
                    raise
                yield record
                overlap = site.mode is Mode.OVERLAP
                break
        if overlap:
            source, overlap = _unless_groups(site, source)
        if overlap:
            site.overlapped += 1
            gate = _Gate(source) if site.probes == 0 else None
            measure = Measure(site)
            try:
                yield from _ordered_loop(
                    measure.timed(body, gate), gate or source, self._window(), site
                )
            finally:
                site.settle(measure)
            if gate is None or not gate.closed:
                return
        for item in source:  # in order (or the rest of a first execution that computes)
            record = _LoopRecord()
            try:
                body(record, item)
            except BaseException:
                yield record
                raise
            yield record

    # -- independent statements -----------------------------------------------------------

    def fork(self, index: int, roots: Callable[[], tuple[Any, ...]] | None) -> Fork:
        """A group for the independent statements of region ``index``."""
        site = self.sites[index]
        probe, overlap = self._plan(site, roots)
        return Fork(site, probe, overlap)


_BUILDERS: tuple[Callable[[Iterable[Any]], Any], ...] = (list, set, dict)

# ---------------------------------------------------------------------------
# The call tree (NOTE: [Call tree] in _codegen)

#: Where a function's dispatch target is cached, on the function itself, as
#: ``(the function, its code, target)``. NOTE: [Cached on the function]
#: ``functools.wraps`` copies a function's ``__dict__`` into its wrapper: an entry
#: whose first item is not the function it was found on was copied, and is ignored
#: (the wrapper's own code must run). An entry whose code is not the function's
#: ``__code__`` was made before the code was replaced in place (IPython's autoreload
#: does that to every function of a module it reloads), and is stale. The compiled
#: forms (``_jit._CACHE_KEY``) and the analyses below are kept the same way.
DISPATCH_KEY = "__xcs_callee__"
#: Set by ``_jit``: compiles a function (or falls back) and returns what to call.
compile_callee: Callable[[types.FunctionType], Callable[..., Any]] | None = None
#: Set by ``_jit``: a jit wrapper's state, or None for any other function (a copy of
#: a wrapper made by ``functools.wraps`` included): NOTE: [Jitted callees].
jit_state: Callable[[types.FunctionType], Any] | None = None
#: Set by ``_jit``: a function's syntax tree, parsed safely from any thread.
parse_function: Callable[[types.FunctionType], ast.AST] | None = None
_library_files: dict[str, bool] = {}
_LIBRARY_DIRS: tuple[str, ...] = ()
_NOT_COMPILED = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR


def _library_dirs() -> tuple[str, ...]:
    global _LIBRARY_DIRS
    if not _LIBRARY_DIRS:
        import os
        import sysconfig

        paths = sysconfig.get_paths()
        dirs = {
            paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths
        }
        dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # xcs itself
        _LIBRARY_DIRS = tuple(os.path.join(d, "") for d in sorted(dirs))
    return _LIBRARY_DIRS


def is_user_code(code: types.CodeType) -> bool:
    """True if ``code`` is the user's own: not the standard library's, site-packages'
    or xcs's, and not frozen or built-in."""
    return is_user_file(code.co_filename)


def is_user_file(filename: str) -> bool:
    """True if ``filename`` (a code object's, or a module's ``__file__``) is the
    user's own (as ``is_user_code``)."""
    known = _library_files.get(filename)
    if known is None:
        known = not filename.startswith(("<frozen", *_library_dirs()))
        if len(_library_files) < 65536:
            _library_files[filename] = known
    return known


def builtins_of(namespace: dict[str, Any]) -> dict[str, Any]:
    """The builtins that code run with the globals ``namespace`` sees."""
    found = namespace.get("__builtins__", builtins)
    return found if isinstance(found, dict) else vars(found)


def nested_codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and the code of every function, class and comprehension in it."""
    codes = [code]
    while codes:
        current = codes.pop()
        yield current
        codes.extend(c for c in current.co_consts if isinstance(c, types.CodeType))


def callee(fn: Any) -> Any:
    """What compiled code calls for ``fn``: its compiled form if it is the user's
    own Python function or method, else ``fn`` itself (NOTE: [Call tree])."""
    kind = type(fn)
    if kind is types.FunctionType:
        try:
            owner, code, target = fn.__dict__[DISPATCH_KEY]
        except KeyError:
            return _new_callee(fn)
        # NOTE: [Cached on the function] a copied entry belongs to another function,
        # and one made for other code is stale
        if owner is fn:
            if code is fn.__code__:
                return target
            if code is None:  # a jit wrapper; target is its state (NOTE: [Jitted callees])
                # (_wrapped_target, inline: a recursion's deepest call has no frame to spare)
                if target.call is not None and target.code is getattr(
                    target.original, "__code__", None
                ):
                    return target.call
                return fn
        return _new_callee(fn)
    if kind is types.MethodType:
        function = fn.__func__
        if type(function) is types.FunctionType:
            entry = function.__dict__.get(DISPATCH_KEY)
            target = None
            if entry is not None and entry[0] is function:
                if entry[1] is function.__code__:
                    target = entry[2]
                elif entry[1] is None:  # a jit wrapper
                    target = _wrapped_target(function, entry[2])
            if target is None:
                target = _new_callee(function)
            if target is not function:
                return types.MethodType(target, fn.__self__)
        return fn
    # An object may say what compiled callers run for it (an xcs.Operator: itself,
    # with its forward compiled). Looked up once per type.
    try:
        hook = _hooks[kind]
    except KeyError:
        hook = getattr(kind, "__xcs_callee__", None)
        if len(_hooks) < 4096:  # types made per call (rare) are not remembered
            _hooks[kind] = hook
    return fn if hook is None else hook(fn)


# type -> its ``__xcs_callee__`` or None.
_hooks: dict[type, Any] = {}


def note_callee(fn: Any, caller: types.CodeType) -> None:
    """Record that compiled ``caller`` calls ``fn`` (for ``xcs.explain``)."""
    callers = callees_of.get(caller)
    if callers is None:
        callers = callees_of.setdefault(caller, weakref.WeakSet())
    if fn not in callers:
        callers.add(fn)


# Which functions each compiled function was first seen to call (by its code), for
# ``xcs.explain``'s call tree. Recorded when a callee is first dispatched, weakly.
callees_of: weakref.WeakKeyDictionary[types.CodeType, weakref.WeakSet[Any]] = (
    weakref.WeakKeyDictionary()
)


#: Code objects of functions made per call whose compiled form would have no region:
#: each new function object made from one runs as written, at no cost (NOTE:
#: [Functions made per call] in _jit).
as_written: dict[types.CodeType, bool] = {}


#: Code objects of functions made per call that have regions -> [their sites (shared
#: by every object made from the code), objects seen since].
per_call_sites: dict[types.CodeType, list[Any]] = {}


def _wrapped_target(wrapper: types.FunctionType, state: Any) -> Any:
    """What jit ``wrapper`` calls now (NOTE: [Jitted callees]): its target once it has
    one, made for its original's code as it is now; else the wrapper, which makes it."""
    if state.call is not None and state.code is getattr(state.original, "__code__", None):
        return state.call
    return wrapper


def _new_callee(fn: types.FunctionType) -> Any:
    state = jit_state(fn) if jit_state is not None else None
    if state is not None:
        # NOTE: [Jitted callees] A jit wrapper called from compiled code: its target is
        # called directly, without the wrapper's frame, so a recursion through
        # @xcs.jit functions goes as deep as in plain Python (and ``stacklevel`` finds
        # the caller). The entry holds the wrapper's state, not a target: its code
        # slot (None) never matches, and ``callee`` asks the state at each call, as
        # the wrapper would (the original's code may have been replaced since).
        fn.__dict__[DISPATCH_KEY] = (fn, None, state)
        with contextlib.suppress(ValueError, TypeError):
            note_callee(fn, sys._getframe(2).f_code)
        return _wrapped_target(fn, state)
    code = fn.__code__
    if code in as_written:
        return fn
    known = per_call_sites.get(code)
    if known is not None and all(site.mode is not Mode.OVERLAP for site in known[0]):
        # Its regions were measured in order: this new object runs as written, saving
        # the per-object setup; one in 64 still runs compiled, so that its regions
        # are probed again now and then.
        known[1] += 1
        if known[1] % 64:
            return fn
    with contextlib.suppress(ValueError, TypeError):  # no such frame
        note_callee(fn, sys._getframe(2).f_code)  # the compiled code that made the call
    target: Any = fn
    if compile_callee is not None and compiles(fn):
        target = compile_callee(fn)
    fn.__dict__[DISPATCH_KEY] = (fn, fn.__code__, target)
    return target


def compiles(fn: types.FunctionType) -> bool:
    """Whether compiled callers would run a compiled form of ``fn`` (if it has one):
    the user's own function, not a jit wrapper, ``@xcs.sequential``, generator or
    lambda."""
    attributes = fn.__dict__
    code = fn.__code__
    return (
        "__xcs_jit__" not in attributes  # already a jit wrapper
        and not attributes.get("__xcs_sequential__")
        and not code.co_flags & _NOT_COMPILED
        and code.co_name != "<lambda>"
        and is_user_code(code)
    )


def dispatch_target(fn: types.FunctionType) -> Any:
    """What compiled callers run for ``fn`` so far (None: not called from one yet)."""
    return owned(fn, DISPATCH_KEY)


def owned(fn: types.FunctionType, key: str) -> Any:
    """The value cached on ``fn`` under ``key`` (NOTE: [Cached on the function]), or
    None: absent, copied from another function, or made for code since replaced."""
    entry = fn.__dict__.get(key)
    return entry[2] if entry is not None and entry[0] is fn and entry[1] is fn.__code__ else None


FunctionRuntime.callee = staticmethod(callee)  # type: ignore[attr-defined]

# The type of the groups ``itertools.groupby`` yields: each is emptied when the
# groupby moves on, so items holding one must not be read ahead (DESIGN §1.6).
_GROUP_TYPE = type(next(itertools.groupby([0]))[1])


def _holds_group(item: Any, depth: int = 0) -> bool:
    if type(item) is _GROUP_TYPE:
        return True
    return type(item) is tuple and depth < 3 and any(_holds_group(part, depth + 1) for part in item)


def _unless_groups(site: Site, source: Iterator[Any]) -> tuple[Iterator[Any], bool]:
    """(the items, overlap?): look at the next item before any is read ahead; if it
    holds a ``groupby`` group, the region runs in order."""
    try:
        first = next(source)
    except StopIteration:
        return iter(()), True
    rest = itertools.chain((first,), source)
    if _holds_group(first):
        site.force_in_order(
            "its items hold groupby() groups, which are emptied when the iterator moves "
            "on: they must not be read ahead"
        )
        return rest, False
    return rest, True


# Every compiled function's runtime, weakly: ``xcs.stats`` reads their sites.
_runtimes: _counters.LiveSet[FunctionRuntime] = _counters.LiveSet()


def live_runtimes() -> list[FunctionRuntime]:
    """The runtimes of the compiled functions still alive (for ``xcs.stats``)."""
    return _runtimes.snapshot()


_counters.register("regions", _stats.region_counters(live_runtimes))


# NOTE: [Ordered receivers]
# Some objects give different results when their calls are reordered, whatever the
# program does with the values: a stream's reads and writes, a socket, a database
# connection, a queue's gets, a logger's records, a random number generator's draws,
# an iterator's next item, and the mutating methods of the built-in containers
# (reached through an alias: ``push = items.append``). A region that calls a method
# of one runs in order (DESIGN §1.6). They are recognised by type when the region
# runs; modules that were never imported can have made no such object, so they are
# looked up in ``sys.modules`` rather than imported.
_MUTATING_METHODS = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "extendleft",
        "insert",
        "pop",
        "popleft",
        "popitem",
        "remove",
        "discard",
        "add",
        "clear",
        "sort",
        "reverse",
        "rotate",
        "update",
        "setdefault",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
        "__setitem__",
        "__delitem__",
        "__iadd__",
    }
)
_CONTAINERS: tuple[type, ...] = (list, dict, set, bytearray, collections.deque)
_ORDERED_TYPES: tuple[tuple[str, str, str], ...] = (
    ("socket", "socket", "a socket"),
    ("sqlite3", "Connection", "a sqlite3 connection"),
    ("sqlite3", "Cursor", "a sqlite3 cursor"),
    ("queue", "Queue", "a queue"),
    ("queue", "SimpleQueue", "a queue"),
    ("asyncio", "Queue", "a queue"),
    ("multiprocessing.queues", "Queue", "a queue"),
    ("logging", "Logger", "a logger"),
    ("logging", "LoggerAdapter", "a logger"),
    ("random", "Random", "a random number generator"),
)


def _ordered_receiver(receiver: Any, method: str | None, target: Any) -> str | None:
    """What kind of order-sensitive object a call goes to, or None."""
    if receiver is _MISSING or isinstance(receiver, types.ModuleType | type):
        # A plain callee: a bound method stands for its object (``push = out.append``,
        # ``random.random``).
        bound = getattr(target, "__self__", None)
        if bound is None or isinstance(bound, types.ModuleType | type):
            return None
        receiver, method = bound, getattr(target, "__name__", None)
    if isinstance(receiver, io.IOBase):
        return "a stream"
    if isinstance(receiver, _CONTAINERS):
        if method in _MUTATING_METHODS:
            return f"a {type(receiver).__name__} (it changes it)"
        return None
    if method in ADVANCING_METHODS and hasattr(type(receiver), "__next__"):
        return "an iterator"
    for module_name, class_name, kind in _ORDERED_TYPES:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type) and isinstance(receiver, cls):
            return kind
    return None


# NOTE: [Arguments a callee changes]
# ``[ask(x, log) for x in xs]`` where ``ask`` does ``log.append(x)``: every item's call
# changes the one ``log``, and overlapped, the appends would land in completion order.
# A region that passes a name it does not bind to a function of yours that changes
# that parameter (calls a mutating method of it, stores into an item or attribute of
# it, deletes one) runs in order. Judged from the callee's source, once per function;
# a parameter the function rebinds is its own object from then on, and the method's
# own receiver (``self``) is the user's side (DESIGN §1.6: calls to one stateful
# object). Changes made deeper (``ask`` passing ``log`` on to another function of
# yours) are followed, four calls down, through cycles of calls too (NOTE: [Changes
# through a cycle]); past that, ``xcs.testing.force_overlap()`` shows them.
_CHANGED_PARAMETERS = "__xcs_changed_parameters__"


def _as_function(target: Any, receiver: Any) -> tuple[types.FunctionType | None, int]:
    """The Python function a call of ``target`` runs (found on ``receiver``, or
    _MISSING), and how many of its positional parameters the call does not pass
    (``self``, ``cls``): a function, a method, a class or static method, an
    ``xcs.Operator`` (its ``forward``), an object with a ``__call__``."""
    fn: Any = target
    skip = 0
    if isinstance(fn, classmethod | types.MethodType):
        fn, skip = fn.__func__, 1
    elif isinstance(fn, staticmethod):
        fn = fn.__func__
    elif isinstance(fn, types.FunctionType):
        if receiver is not _MISSING and not isinstance(receiver, types.ModuleType | type):
            skip = 1  # a function found on an instance: a method
    elif hasattr(type(fn), "__xcs_callee__") and hasattr(fn, "_forward_function"):
        try:  # an xcs.Operator: its forward
            fn, takes_self = fn._forward_function()
        except Exception:
            return None, 0
        skip = 1 if takes_self else 0
    elif not isinstance(fn, type):
        fn, skip = inspect.getattr_static(type(fn), "__call__", None), 1
    if type(fn) is not types.FunctionType:
        return None, 0
    for _ in range(4):
        wrapped = fn.__dict__.get("__wrapped__")
        if type(wrapped) is not types.FunctionType or not fn.__code__.co_flags & _PASSES_ON:
            break
        fn = wrapped  # a decorator's ``wrapper(*args, **kwargs)``: what it wraps
    return fn, skip


_PASSES_ON = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS


def _changed_argument(target: Any, receiver: Any, shared: frozenset[int | str]) -> str | None:
    """How ``target`` changes one of the ``shared`` arguments of its call, or None."""
    changed, skip, code = _changed_by(target, receiver, -1)
    if not changed or code is None:
        return None
    positional = code.co_varnames[: code.co_argcount][skip:]
    for key in shared:
        parameter = positional[key] if isinstance(key, int) and key < len(positional) else key
        if isinstance(parameter, str) and parameter in changed:
            return f"{parameter} ({changed[parameter]})"
    return None


def _changed_by(
    fn: Any, receiver: Any, depth: int
) -> tuple[dict[str, str], int, types.CodeType | None]:
    """(parameter -> how, positional parameters to skip, the code of the function)
    of a callee found by name (``receiver``: the object it was found on, or _MISSING)."""
    fn, skip = _as_function(fn, receiver)
    if fn is None or not is_user_code(fn.__code__):
        return {}, 0, None
    with analysing:
        known = owned(fn, _CHANGED_PARAMETERS)  # NOTE: [Cached on the function]
        if known is not None:
            if type(known) is _Assumed:  # being analysed further up: a cycle
                _consulted[-1].add(fn)
            return known, skip, fn.__code__
        if depth > 4:
            return {}, 0, None
        return _analyse_changes(fn, depth), skip, fn.__code__


class _Assumed(dict[str, str]):
    """What a function is assumed to change while its own analysis runs (NOTE:
    [Changes through a cycle])."""


# NOTE: [Changes through a cycle]
# In a cycle of calls (``p0`` passes ``log`` to ``q1``, which appends to it and passes
# it back to ``p0``), a function's analysis meets itself. It then reads what it is
# assumed to change so far (at first nothing), and the functions analysed on the way
# depend on that assumption. Before, those were cached as final: ``p0`` "changed
# nothing" (it was analysed inside ``q1``'s analysis, which was assumed to change
# nothing), and a loop calling ``p0(x, log)`` overlapped, its appends in completion
# order (call-tree suite, mutual recursion). Now a function whose analysis consulted
# its own assumption is analysed again with the result as the new assumption, until
# it stands (results only grow, so this ends); one that consulted the assumption of a
# function further up is not cached, and is analysed again when asked next, once that
# function is known. One lock for all analyses: an assumption must never be read by
# another thread as an answer (nor by a child forked mid-analysis: _jit's fork hooks).
analysing = threading.RLock()
_consulted: list[set[Any]] = [set()]  # per analysis on the stack


def _analyse_changes(fn: types.FunctionType, depth: int) -> dict[str, str]:
    code = fn.__code__
    assumed = _Assumed()
    while True:
        fn.__dict__[_CHANGED_PARAMETERS] = (fn, code, assumed)
        _consulted.append(set())
        try:
            changed = _changed_parameters(fn, depth + 1)
        except BaseException:
            del fn.__dict__[_CHANGED_PARAMETERS]  # no assumption left behind
            raise
        finally:
            consulted = _consulted.pop()
        if fn not in consulted or changed.keys() <= assumed.keys():
            break
        assumed = _Assumed(changed)
    consulted.discard(fn)
    if consulted:  # rests on an assumption about a function further up
        del fn.__dict__[_CHANGED_PARAMETERS]
        _consulted[-1].update(consulted)
    else:
        fn.__dict__[_CHANGED_PARAMETERS] = (fn, code, changed)
    return changed


_AN_INSTANCE = object()  # a receiver that is an instance (for method calls resolved)


def _defining_class(fn: types.FunctionType) -> type | None:
    """The module-level class whose body defined ``fn`` (by its qualified name)."""
    parts = fn.__qualname__.split(".")
    if len(parts) < 2 or "<locals>" in parts:
        return None
    owner: Any = fn.__globals__.get(parts[0])
    for part in parts[1:-1]:
        owner = inspect.getattr_static(owner, part, None)
    return owner if isinstance(owner, type) else None


def _static_callee(func: ast.expr, fn: types.FunctionType, params: set[str]) -> tuple[Any, Any]:
    """(what ``func`` names, the object it was found on or _MISSING), resolved from
    ``fn``'s globals without running anything: ``helper``, ``module.helper``,
    ``instance.method``; (None, None) when it cannot be told."""
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "super"
        and not func.value.args
    ):
        # ``super().step(...)`` in a method: the next class after the method's own
        # (its ``__class__`` cell) that defines it, called on the same instance.
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True))
        with contextlib.suppress(KeyError, ValueError):
            owner = cells["__class__"].cell_contents
            for base in owner.__mro__[1:]:
                if func.attr in base.__dict__:
                    return base.__dict__[func.attr], _AN_INSTANCE
        return None, None
    code = fn.__code__
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and code.co_argcount
        and func.value.id == code.co_varnames[0]
    ):
        # ``self.helper(...)`` in a method: the helper of the class it is defined in.
        owner = _defining_class(fn)
        if owner is not None:
            member = inspect.getattr_static(owner, func.attr, _MISSING)
            if member is not _MISSING:
                return member, _AN_INSTANCE
        return None, None
    path: list[str] = []
    while isinstance(func, ast.Attribute):
        path.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name) or func.id in params or len(path) > 3:
        return None, None
    target = fn.__globals__.get(func.id, _MISSING)
    receiver: Any = _MISSING
    for attribute in reversed(path):
        if target is _MISSING:
            break
        receiver = target
        target = inspect.getattr_static(target, attribute, _MISSING)
    if target is _MISSING:
        return None, None
    return target, receiver


def _changed_parameters(fn: types.FunctionType, depth: int = 0) -> dict[str, str]:
    """Parameter -> how ``fn`` changes the object passed as it (``log.append``),
    itself or by passing it on to a function of the user's that does."""
    from xcs._compiler._leaf import changes_no_parameter

    if changes_no_parameter(fn.__code__):  # told from the bytecode: no parse
        return {}
    return _changed_parameters_read(fn, depth)


def _changed_parameters_read(fn: types.FunctionType, depth: int = 0) -> dict[str, str]:
    """``_changed_parameters``, always read from the source."""
    from xcs._compiler._source import NoSource

    if parse_function is None:
        return {}
    try:
        node = parse_function(fn)
    except (NoSource, SyntaxError, OSError):
        return {}
    code = fn.__code__
    count = code.co_argcount + code.co_kwonlyargcount
    params = set(code.co_varnames[:count])
    augmented = {
        n.target.id
        for n in ast.walk(node)
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)
    }
    rebound = {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
    }
    params -= rebound - augmented
    found: dict[str, str] = {}
    for param in sorted(params & augmented):
        found[param] = f"{param} += ..."  # in place, for a list or a dict

    def root(expr: ast.expr) -> str | None:
        while isinstance(expr, ast.Attribute | ast.Subscript):
            expr = expr.value  # ``p.seen.append(x)`` changes p too
        return expr.id if isinstance(expr, ast.Name) and expr.id in params else None

    for inner in ast.walk(node):
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):
            name = root(inner.func.value)
            if name is not None and inner.func.attr in _MUTATING_METHODS:
                found.setdefault(name, f"{ast.unparse(inner.func)}()")
        if isinstance(inner, ast.Call):
            passed: list[tuple[int | str, str]] = [
                (position, arg.id)
                for position, arg in enumerate(positional_arguments(inner))
                if isinstance(arg, ast.Name) and arg.id in params and arg.id not in found
            ]
            passed.extend(
                (keyword.arg, keyword.value.id)
                for keyword in inner.keywords
                if keyword.arg is not None
                and isinstance(keyword.value, ast.Name)
                and keyword.value.id in params
                and keyword.value.id not in found
            )
            callee, receiver = _static_callee(inner.func, fn, params) if passed else (None, None)
            if callee is not None:
                changed, skip, callee_code = _changed_by(callee, receiver, depth)
                if changed and callee_code is not None:
                    positional = callee_code.co_varnames[: callee_code.co_argcount][skip:]
                    for key, name in passed:
                        if isinstance(key, int):
                            key = positional[key] if key < len(positional) else ""
                        if key in changed:
                            found[name] = f"{ast.unparse(inner.func)}() {changed[key]}"
        targets: list[ast.expr] = []
        if isinstance(inner, ast.Assign | ast.Delete):
            targets = list(inner.targets)
        elif isinstance(inner, ast.AugAssign | ast.AnnAssign):
            targets = [inner.target]
        while targets:
            part = targets.pop()
            if isinstance(part, ast.Tuple | ast.List):
                targets.extend(part.elts)
            elif isinstance(part, ast.Starred):
                targets.append(part.value)
            elif isinstance(part, ast.Subscript | ast.Attribute):
                name = root(part.value)
                if name is not None:
                    shown = (
                        f"{name}[...]" if isinstance(part, ast.Subscript) else f"{name}.{part.attr}"
                    )
                    found.setdefault(name, shown)  # also ``p.items[k] = v``
    return found


_SEQUENTIAL_WITHIN = "__xcs_sequential_within__"


def _sequential_within(target: Any, receiver: Any, depth: int = 0) -> str | None:
    """The ``@xcs.sequential`` function that the user's function ``target`` calls,
    directly or through more of the user's functions, or None (cached per function
    and receiver type). A region that calls ``target`` must then keep its calls in
    order, as if it called the marked function itself.

    Judged from the names the code reads: its globals and closure, and, for a method
    (``receiver`` given), attributes of the receiver's class. Reading a name is taken
    as calling it: in doubt, in order.
    """
    fn = target
    if isinstance(fn, staticmethod | classmethod | types.MethodType):
        fn = fn.__func__
    elif hasattr(type(fn), "__xcs_callee__") and hasattr(fn, "_forward_function"):
        try:  # an xcs.Operator: what its forward calls, with the operator as self
            fn, _ = fn._forward_function()
        except Exception:
            return None
        receiver = target
    if type(fn) is not types.FunctionType or depth > 6:
        return None
    owner = (
        None
        if receiver is _MISSING or isinstance(receiver, type | types.ModuleType)
        else type(receiver)
    )
    with analysing:
        cache = owned(fn, _SEQUENTIAL_WITHIN)  # NOTE: [Cached on the function]
        if cache is not None and owner in cache:
            known = cache[owner]
            if known is _SEARCHING:  # further up this search: a cycle
                _consulted[-1].add((fn, owner))
                return None
            return known  # type: ignore[no-any-return]
        if not is_user_code(fn.__code__):
            return None
        if cache is None:
            cache = {}
            fn.__dict__[_SEQUENTIAL_WITHIN] = (fn, fn.__code__, cache)
        # NOTE: [Changes through a cycle], for reachability: a marked function found is
        # found for good; "none" rests on the searches it met further up, if any.
        cache[owner] = _SEARCHING
        _consulted.append(set())
        try:
            found = _find_sequential(fn, owner, receiver, depth)
        except BaseException:
            del cache[owner]
            raise
        finally:
            consulted = _consulted.pop()
        consulted.discard((fn, owner))
        if found is None and consulted:
            del cache[owner]
            _consulted[-1].update(consulted)
        else:
            cache[owner] = found
        return found


_SEARCHING = _Sentinel("SEARCHING")


def _find_sequential(
    fn: types.FunctionType, owner: type | None, receiver: Any, depth: int
) -> str | None:
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True))
    names: set[str] = set()
    for code in nested_codes(fn.__code__):
        names.update(code.co_names)
        names.update(code.co_freevars)
    for name in sorted(names):
        candidates: list[tuple[Any, Any]] = []
        cell = cells.get(name)
        if cell is not None:
            with contextlib.suppress(ValueError):
                candidates.append((cell.cell_contents, _MISSING))
        elif name in fn.__globals__:
            candidates.append((fn.__globals__[name], _MISSING))
        if owner is not None:
            member = inspect.getattr_static(owner, name, _MISSING)
            if member is not _MISSING:
                candidates.append((member, receiver))
        for value, through in candidates:
            if _is_sequential(value):
                return getattr(value, "__qualname__", name)
            inner = _sequential_within(value, through, depth + 1)
            if inner is not None:
                return inner
    return None


def _is_sequential(target: Any) -> bool:
    # getattr_static hands back staticmethod/classmethod objects; bound methods and
    # jit wrappers carry the function in __func__ / __wrapped__.
    for candidate in (
        target,
        getattr(target, "__func__", None),
        getattr(target, "__wrapped__", None),
    ):
        if candidate is not None and getattr(candidate, "__xcs_sequential__", False) is True:
            return True
    return False


_WHOLE_CONSUMERS: frozenset[Any] = frozenset(
    {list, tuple, set, frozenset, sorted, sum, min, max, dict}
)


def _consumes_whole(consumer: Any) -> bool:
    """True for consumers that read a generator to the end (unless it raises)."""
    try:
        if consumer in _WHOLE_CONSUMERS:
            return True
    except TypeError:  # unhashable consumer
        return False
    # "sep".join(...): a bound str.join
    return getattr(consumer, "__name__", None) == "join" and isinstance(
        getattr(consumer, "__self__", None), str | bytes
    )


def _lazy(body: Callable[..., Any], items: Iterable[Any]) -> Iterator[Any]:
    for args in items:
        result = body(*args)
        if result is not SKIP:
            yield result


def _ordered(
    body: Callable[..., Any], source: Iterator[tuple[Any, ...]], window: int, site: Site
) -> Iterator[Any]:
    """The ordered map of the scheduler, over argument tuples."""
    return ordered_imap(_star(body), source, window=window, name=site.label, note=site.note)


def _star(body: Callable[..., Any]) -> Callable[[tuple[Any, ...]], Any]:
    def call(args: tuple[Any, ...]) -> Any:
        return body(*args)

    return call


def _ordered_loop(
    body: Callable[[_LoopRecord, Any], None],
    source: Iterator[Any],
    window: int,
    site: Site,
) -> Iterator[_LoopRecord]:
    group = TaskGroup(name=site.label, note=site.note)
    records: dict[int, _LoopRecord] = {}

    def spawn(item: Any) -> Task[None]:
        record = _LoopRecord()
        task = group.spawn(body, record, item)
        records[task.index] = record
        return task

    with group:
        for task in drive_window(group, spawn, source, window):
            failed = task.error is not None
            # A failing iteration's effects (made before it failed) happen first.
            yield records.pop(task.index)
            if failed:
                group.result(task)  # raises its error, the original object


# ---------------------------------------------------------------------------
# Independent statements


class Fork:
    """The group behind a run of independent statements (``a = f(x); b = g(x)``).

    ``spawn`` starts a statement's value as a task; ``result`` returns it at the first
    use, after every statement spawned before it (program order). When the site runs
    in order, ``spawn`` waits for the task at once, so the calls happen one after
    another in program order; its error, if any, is still raised at the join, after
    the errors of earlier statements.

    Probing (NOTE: [Deciding by probes]) covers statements, not just the first: the
    statements of a run are different calls, so each is run alone and timed until one
    is seen to block; from then on the rest overlap. If none blocks, the site goes in
    order.
    """

    __slots__ = (
        "_done",
        "_group",
        "_items",
        "_last_probe",
        "_measure",
        "_overlap",
        "_probing",
        "_readers",
        "_site",
    )

    def __init__(self, site: Site, probe: bool, overlap: bool) -> None:
        self._site = site
        # id(iterator) -> (the iterator, the last task given it): two statements that
        # read one iterator take turns (NOTE: [Shared iterators]).
        self._readers: dict[int, tuple[Any, Task[Any]]] | None = None
        self._probing = probe
        self._overlap = overlap
        self._last_probe: tuple[float, float] | None = None
        self._group = TaskGroup(name=site.label, note=site.note)
        if probe or not overlap:
            self._group.span_mode = "probe" if probe else "in order"
        self._items: list[Task[Any]] = []
        self._done = False
        self._measure = Measure(site)

    def spawn(self, fn: Callable[..., Any], *args: Any) -> int:
        return self._start(fn, args, ())

    def flow(self, fn: Callable[..., Any], inputs: tuple[int, ...], *args: Any) -> int:
        """Start ``fn(<values of statements inputs>, *args)`` once those statements
        are done (NOTE: [Statements in dataflow order] in _codegen)."""
        after = tuple(self._items[number] for number in inputs)

        def run(*rest: Any) -> Any:
            return fn(*(task.value for task in after), *rest)

        return self._start(run, args, after)

    def _start(self, fn: Callable[..., Any], args: tuple[Any, ...], after: tuple[Any, ...]) -> int:
        group = self._group
        shared = [a for a in args if hasattr(type(a), "__next__")]
        if shared:
            # NOTE: [Shared iterators] A statement that reads an iterator (a generator,
            # a file, ``iter(xs)``) consumes it: one given the same iterator as an
            # earlier statement starts when that one is done, as in program order.
            readers = self._readers if self._readers is not None else {}
            self._readers = readers
            for iterator in shared:
                earlier = readers.get(id(iterator))
                if earlier is not None:
                    group.wait(earlier[1])
        if self._probing:
            timing: list[tuple[float, float]] = []
            task = group.spawn(_timing(fn, timing), *args, after=after)
            group.wait(task)
            if timing:
                took, cpu = self._last_probe = timing[0]
                if _blocks(took, cpu):
                    self._site.record_probe(took, cpu)
                    self._probing = False
                    self._overlap = True
        elif self._overlap:
            task = group.spawn(self._measure.timed(fn), *args, after=after)
        else:
            task = group.spawn(fn, *args, after=after)
            group.wait(task)
        if shared:
            assert self._readers is not None
            for iterator in shared:
                self._readers[id(iterator)] = (iterator, task)
        self._items.append(task)
        return len(self._items) - 1

    def _finish(self) -> None:
        if self._probing and self._last_probe is not None:
            self._probing = False
            self._site.record_probe(*self._last_probe)  # no statement blocked
        self._site.settle(self._measure)
        if not self._done:
            self._done = True
            if self._overlap:
                self._site.overlapped += 1
            self._group.end_span()

    def result(self, handle: int) -> Any:
        value = self._group.result(self._items[handle])
        if handle == len(self._items) - 1:
            self._finish()
        return value

    def settle(self, exc: BaseException) -> BaseException:
        """The exception to raise when the statements' own code raised ``exc``."""
        self._finish()
        return self._group.settle(exc)

    def __repr__(self) -> str:
        return f"<Fork site {self._site.index}: {len(self._items)} statements>"


def _blocks(wall_s: float, cpu_s: float) -> bool:
    blocked = max(wall_s - cpu_s, 0.0)
    return wall_s > 0 and worth_overlapping(blocked, blocked / wall_s)


def _timing(fn: Callable[..., Any], into: list[tuple[float, float]]) -> Callable[..., Any]:
    def timed(*args: Any) -> Any:
        watch = Stopwatch()
        try:
            return fn(*args)
        finally:
            into.append(watch.stop())

    return timed
