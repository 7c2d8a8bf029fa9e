"""What compiled ``async def`` functions call at run time: regions as asyncio tasks.

The compiler (``_async``) rewrites each region of an async function into two paths,
as for sync functions (see ``_rt``)::

    results = ([await ask(q) for q in qs] if __xcs_rt__.original(0)
               else await __xcs_rt__.acomp(0, None, 0, __xcs_item1__, ((q,) for q in qs)))

where ``__xcs_item1__`` is ``async def __xcs_item1__(q): return await ask(q)``. Here
the region's items become tasks on the *running* event loop: no thread, no new loop.

NOTE: [Async regions in program order]
A region is an ordered window of tasks: at most ``window`` items in flight, results
taken in program order. The iterable (sync or async) is read in order by the region
itself, never by two tasks at once; only the bodies overlap. When a task fails, no
item after it starts and the tasks after it are cancelled at once; the tasks before
it run on, since one of them may fail first in program order. The error raised is
the first in program order, the original object. When the region ends, however it
ends (an error, the caller's cancellation, an expired ``xcs.deadline``), every task
still open is cancelled *and awaited*, and every task's outcome is retrieved, so no
task outlives its region and asyncio never warns of a lost exception.

NOTE: [Deciding async regions]
An await either suspends (waits on I/O, a timer, another task) or it does not (a
cache hit, a coroutine that only computes). Only awaits that wait gain from tasks,
but a task costs little (about 10-20 µs) and can never change a result, so the first
execution of a region overlaps at once, with no inline probe in front of it (a
probe would serialize the first item). Every task is timed step by step: the CPU
time of its own steps, and the time it spent suspended between them (preemption of
the thread during a step counts as neither, so a busy machine does not fake waiting).
After each overlapping execution the means are recorded on
the site, by the same rule as sync regions (``worth_overlapping``): a region whose
awaits do not wait goes in order and from then on runs the original code, at the
cost of one attribute check; it is probed again (its first item awaited alone,
timed) at exponentially spaced executions, like a sync region, and overlaps again if
its awaits start to wait.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from typing import Any

from xcs._compiler._rt import (
    _BUILDERS,
    SKIP,
    FunctionRuntime,
    Mode,
    Site,
    _duration,
    _LoopRecord,
    comprehension_unbound,
)
from xcs._observe import _spans
from xcs._runtime._deadline import current_deadline
from xcs._runtime._measure import forced, worth_overlapping
from xcs._runtime._scheduler import raise_with_its_chain

__all__ = ["AsyncFork", "AsyncFunctionRuntime"]

_MISSING: Any = object()
_INFINITY = float("inf")


# ---------------------------------------------------------------------------
# Measurement


class _Meter:
    """Sums of the timed tasks of one execution of a region."""

    __slots__ = ("count", "cpu", "wall")

    def __init__(self) -> None:
        self.count = 0
        self.wall = 0.0
        self.cpu = 0.0


class _Timed:
    """Awaits ``coro`` while timing it: the CPU time of its own steps, and the time it
    spent suspended between them (waiting on a timer, a socket, another task). The
    meter gets ``wall = suspended + cpu``, so that ``wall - cpu`` is exactly the time
    suspended: a coroutine that never suspends waits 0 s, however busy the machine
    (being preempted during a step adds to neither). A task that is cancelled is not
    counted: it did not finish."""

    __slots__ = ("_coro", "_meter")

    def __init__(self, coro: Coroutine[Any, Any, Any], meter: _Meter) -> None:
        self._coro = coro
        self._meter = meter

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, clock, cpu_clock = self._coro, time.perf_counter, time.thread_time
        send, throw = coro.send, coro.throw
        cpu = suspended = 0.0
        value: Any = None
        error: BaseException | None = None
        finished = True
        try:
            while True:
                step = cpu_clock()
                try:
                    yielded = send(value) if error is None else throw(error)
                except StopIteration as stop:
                    return stop.value
                except asyncio.CancelledError:
                    finished = False
                    raise
                finally:
                    cpu += cpu_clock() - step
                paused = clock()
                try:
                    value, error = (yield yielded), None
                except BaseException as exc:  # delivered to the coroutine, as await would
                    value, error = None, exc
                suspended += clock() - paused
        finally:
            if finished:
                meter = self._meter
                meter.count += 1
                meter.wall += suspended + cpu
                meter.cpu += cpu


async def _run_timed(meter: _Meter, fn: Callable[..., Any], *args: Any) -> Any:
    # The coroutine is made inside the task: a task cancelled before it starts makes
    # no call, and leaves no coroutine that was never awaited.
    return await _Timed(fn(*args), meter)


async def _run_traced(
    group: _spans.Span, name: str, meter: _Meter, fn: Callable[..., Any], *args: Any
) -> Any:
    """``_run_timed`` inside a ``task`` span of ``group``, current while it runs (so
    the model calls it makes are its children). The task runs in its own copy of
    the context: setting the current span here does not leak to the caller."""
    opened = _spans.begin("task", name, parent=group)
    if opened is None:  # pragma: no cover - the trace ended before the task started
        return await _run_timed(meter, fn, *args)
    token = _spans._current.set(opened)
    try:
        return await _run_timed(meter, fn, *args)
    except BaseException as exc:
        opened.fail(exc)
        raise
    finally:
        _spans._current.reset(token)
        opened.finish()


def _start(
    span: _spans.Span | None,
    name: str,
    index: int,
    meter: _Meter,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> asyncio.Task[Any]:
    """Start one item of a region as a task on the running loop."""
    task_name = f"{name} #{index}"
    coro = (
        _run_timed(meter, fn, *args)
        if span is None
        else _run_traced(span, task_name, meter, fn, *args)
    )
    return asyncio.get_running_loop().create_task(coro, name=f"xcs {task_name}")


def _open_span(name: str) -> _spans.Span | None:
    """The ``region`` span of an overlapping execution (inside ``xcs.trace()`` only)."""
    if not _spans.active:  # NOTE: [Tracing costs nothing when off]
        return None
    return _spans.begin("region", name, mode="overlap")


def _record(site: Site, meter: _Meter) -> None:
    """Record the mean of ``meter``'s tasks on ``site`` and say it in async terms."""
    if meter.count == 0:
        return
    site.record_probe(meter.wall / meter.count, meter.cpu / meter.count)
    plural = "s" * (site.probes != 1)
    verdict = (
        "overlapping pays"
        if site.mode is Mode.OVERLAP
        else "its awaits hardly wait; tasks would not pay, it runs in order"
    )
    site.reason = (
        f"an await waits {_duration(site.blocked_s)} ({site.fraction:.0%} of its time) "
        f"on average over {site.probes} measured execution{plural}: {verdict}"
    )


# ---------------------------------------------------------------------------
# Waiting, bounded by the deadline in force


async def _wait_for(
    task: asyncio.Task[Any], where: str, tasks: Iterable[asyncio.Task[Any]]
) -> None:
    """Wait until ``task`` is done, within the ``xcs.deadline`` in force (if any).

    On expiry, every task in ``tasks`` is cancelled (the caller awaits them when it
    closes) and ``ExecutionTimeout`` is raised.
    """
    if task.done():
        return
    active = current_deadline()
    if active is None:
        await asyncio.wait((task,))
        return
    remaining = active.remaining()
    if remaining > 0:
        done, _ = await asyncio.wait((task,), timeout=remaining)
        if done:
            return
    open_tasks = [t for t in tasks if not t.done()]
    for t in open_tasks:
        t.cancel()
    raise active.timeout_error(running=tuple(t.get_name() for t in open_tasks), where=where)


async def _bounded(awaitable: Awaitable[Any], where: str) -> Any:
    """``await awaitable`` inline, within the ``xcs.deadline`` in force (if any)."""
    active = current_deadline()
    if active is None:
        return await awaitable
    remaining = active.remaining()
    if remaining <= 0:
        if isinstance(awaitable, Coroutine):
            awaitable.close()
        raise active.timeout_error(where=where)
    scope = asyncio.timeout(remaining)
    try:
        async with scope:
            return await awaitable
    except TimeoutError:
        if scope.expired():
            raise active.timeout_error(where=where) from None
        raise


async def _cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one is done, even if the caller is
    cancelled meanwhile (then its cancellation is raised at the end); retrieve every
    outcome, so asyncio has no exception to report as never retrieved."""
    pending = {t for t in tasks if not t.done()}
    for task in pending:
        task.cancel()
    interrupted = False
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError:
            interrupted = True
            for task in pending:
                task.cancel()
    for task in tasks:
        if not task.cancelled():
            task.exception()
    if interrupted:
        raise asyncio.CancelledError


# ---------------------------------------------------------------------------
# Regions: comprehensions and loops


class _Region:
    """An ordered window of tasks over an iterable (NOTE: [Async regions in program
    order]). An async iterator of results (comprehensions) or of loop records; used as
    ``async with region: async for result in region: ...``. Not constructed directly:
    see ``AsyncFunctionRuntime.acomp`` and ``.aloop``.
    """

    __slots__ = (
        "_aiter",
        "_body",
        "_closed",
        "_exhausted",
        "_failed_at",
        "_iter",
        "_loop",
        "_meter",
        "_next",
        "_overlap",
        "_own_items",
        "_pending_error",
        "_probing",
        "_site",
        "_source_error",
        "_span",
        "_tasks",
        "_where",
        "_window",
    )

    def __init__(
        self,
        site: Site,
        body: Callable[..., Coroutine[Any, Any, Any]],
        items: Any,
        window: int,
        probe: bool,
        overlap: bool,
        *,
        loop: bool,
        own_items: bool,
    ) -> None:
        self._site = site
        self._body = body
        self._loop = loop  # items are loop items and results _LoopRecords
        self._own_items = own_items  # items is the region's own async generator
        if hasattr(items, "__aiter__"):
            self._aiter: Any = items.__aiter__()
            self._iter: Any = None
        else:
            self._aiter = None
            self._iter = iter(items)
        self._window = window
        self._probing = probe
        self._overlap = overlap
        self._tasks: deque[tuple[int, asyncio.Task[Any], _LoopRecord | None]] = deque()
        self._next = 0  # index of the next item
        self._exhausted = False
        self._source_error: BaseException | None = None  # reading the next item failed
        self._pending_error: BaseException | None = None  # a loop item's, raised next
        self._failed_at: float = _INFINITY  # smallest index of a task seen to fail
        self._meter = _Meter()
        self._closed = False
        self._where = f"{site.kind} at line {site.line}"
        self._span: _spans.Span | None = None

    # -- async iteration -------------------------------------------------------------------

    async def __aenter__(self) -> _Region:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.aclose()

    def __aiter__(self) -> _Region:
        return self

    async def __anext__(self) -> Any:
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        if self._probing or not self._overlap:
            item = await self._pull()
            if item is _MISSING:
                return self._end()
            if not self._probing:
                return await self._inline(item, None)
            self._probing = False
            meter = _Meter()
            try:
                return await self._inline(item, meter)
            finally:
                _record(self._site, meter)
                self._overlap = self._site.mode is Mode.OVERLAP
        await self._fill()
        if not self._tasks:
            return self._end()
        _index, task, record = self._tasks[0]
        await _wait_for(task, self._where, (t for _, t, _ in self._tasks))
        self._tasks.popleft()
        if task.cancelled() or task.exception() is None or not self._loop:
            await self._fill()  # keep the window full while the caller uses this result
            return task.result() if record is None else record
        # A failing iteration's effects (made before it failed) happen first.
        self._pending_error = task.exception()
        return record

    def _end(self) -> Any:
        if self._source_error is not None:
            error, self._source_error = self._source_error, None
            raise error
        raise StopAsyncIteration

    async def _pull(self) -> Any:
        """The next item, read in order; _MISSING at the end or after a failure."""
        if self._exhausted:
            return _MISSING
        try:
            if self._aiter is not None:
                item = await self._aiter.__anext__()
            else:
                item = next(self._iter)
        except (StopIteration, StopAsyncIteration):
            self._exhausted = True
            return _MISSING
        except Exception as exc:
            # Raised in program order: after the items before it.
            self._exhausted = True
            self._source_error = exc
            return _MISSING
        self._next += 1
        return item

    def _call(self, item: Any) -> tuple[tuple[Any, ...], _LoopRecord | None]:
        """The body's arguments for ``item``, and the loop record it fills."""
        if self._loop:
            record = _LoopRecord()
            return (record, item), record
        return tuple(item), None

    async def _inline(self, item: Any, meter: _Meter | None) -> Any:
        args, record = self._call(item)
        coro = self._body(*args)
        awaitable: Awaitable[Any] = coro if meter is None else _Timed(coro, meter)
        if record is None:
            return await _bounded(awaitable, self._where)
        try:
            await _bounded(awaitable, self._where)
        except Exception as exc:
            self._pending_error = exc
            self._exhausted = True
        return record

    async def _fill(self) -> None:
        """Start items until the window is full, the items end, or a task failed."""
        while len(self._tasks) < self._window and self._next < self._failed_at:
            item = await self._pull()
            if item is _MISSING:
                return
            index = self._next - 1
            args, record = self._call(item)
            name = f"{self._site.kind}@{self._site.line}"
            if self._span is None:
                self._span = _open_span(name)
            task = _start(self._span, name, index, self._meter, self._body, args)
            task.add_done_callback(functools.partial(self._task_done, index))
            self._tasks.append((index, task, record))

    def _task_done(self, index: int, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is None or index >= self._failed_at:
            return
        # No item after the first known failure starts; those started are cancelled.
        self._failed_at = index
        for later, other, _ in self._tasks:
            if later > index:
                other.cancel()

    async def aclose(self) -> None:
        """Cancel and await every open task; record what was measured."""
        if self._closed:
            return
        self._closed = True
        tasks = [task for _, task, _ in self._tasks]
        self._tasks.clear()
        try:
            await _cancel_and_wait(tasks)
            if self._own_items and self._aiter is not None:
                await self._aiter.aclose()
        finally:
            _record(self._site, self._meter)
            if self._span is not None:
                self._span.finish()


# ---------------------------------------------------------------------------
# Independent statements


class _Done:
    """A statement run inline: its value or its exception."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error


_NOT_STARTED: Any = object()


class AsyncFork:
    """The tasks behind a run of independent statements (``a = await f(x); b = await
    g(x)``) of an async function. ``await spawn(fn, *args)`` starts a statement's value
    (``fn(*args)``, a coroutine) as a task; ``await result(n)`` returns it at its first
    use, in program order. Not constructed directly: see ``AsyncFunctionRuntime.afork``.

    In order (a probe, or a callee marked ``@xcs.sequential``), ``spawn`` awaits each
    statement inline, one after another; an error is kept and raised at the join, and
    no statement after a failed one starts. A probe times the statements one by one
    until one waits; from then on the rest overlap.
    """

    __slots__ = (
        "_failed_at",
        "_items",
        "_last",
        "_meter",
        "_overlap",
        "_probing",
        "_raised",
        "_readers",
        "_site",
        "_span",
    )

    def __init__(self, site: Site, probe: bool, overlap: bool) -> None:
        self._site = site
        # id(iterator) -> (the iterator, the task given it) (NOTE: [Shared iterators])
        self._readers: dict[int, tuple[Any, asyncio.Task[Any]]] = {}
        self._probing = probe
        self._overlap = overlap
        self._items: list[Any] = []  # per statement: a Task, a _Done or _NOT_STARTED
        self._failed_at: float = _INFINITY
        self._raised: BaseException | None = None
        self._meter = _Meter()
        self._last: _Meter | None = None  # the last probe, if none waited
        self._span: _spans.Span | None = None

    async def spawn(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        number = len(self._items)
        if number > self._failed_at:
            self._items.append(_NOT_STARTED)
            return
        if self._overlap and not self._probing:
            shared = [
                a for a in args if hasattr(type(a), "__next__") or hasattr(type(a), "__anext__")
            ]
            earlier = {
                id(r[1]): r[1] for a in shared if (r := self._readers.get(id(a))) is not None
            }
            if earlier:
                await asyncio.wait(earlier.values())  # its error is raised at the join
            name = f"statements@{self._site.line}"
            if self._span is None:
                self._span = _open_span(name)
            task = _start(self._span, name, number, self._meter, fn, args)
            task.add_done_callback(functools.partial(self._task_done, number))
            for iterator in shared:
                self._readers[id(iterator)] = (iterator, task)
            self._items.append(task)
            return
        meter = _Meter() if self._probing else None
        coro = fn(*args)
        try:
            value = await _bounded(coro if meter is None else _Timed(coro, meter), self._where)
        except Exception as exc:
            self._items.append(_Done(None, exc))
            self._failed_at = min(self._failed_at, number)
            return
        finally:
            if meter is not None and meter.count:
                self._last = meter
                if worth_overlapping(*_blocked(meter)):
                    _record(self._site, meter)
                    self._probing = False
                    self._overlap = True
                    self._last = None
        self._items.append(_Done(value, None))

    async def flow(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], inputs: tuple[int, ...], *args: Any
    ) -> None:
        """Start ``fn(<values of statements inputs>, *args)`` once those statements are
        done (NOTE: [Statements in dataflow order] in _codegen). A statement after a
        failed one never starts: ``spawn`` skips it, or the failure cancels its task."""
        items = [self._items[number] for number in inputs]
        if not any(isinstance(item, asyncio.Task) for item in items):
            # Run in order so far: the values are there (or ``spawn`` skips it).
            values = [item.value if isinstance(item, _Done) else None for item in items]
            await self.spawn(fn, *values, *args)
            return

        async def run(*rest: Any) -> Any:
            values = [
                await item if isinstance(item, asyncio.Task) else item.value for item in items
            ]
            return await fn(*values, *rest)

        await self.spawn(run, *args)

    @property
    def _where(self) -> str:
        return f"statements at line {self._site.line}"

    def _task_done(self, number: int, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is None or number >= self._failed_at:
            return
        self._failed_at = number
        for later, other in enumerate(self._items):
            if later > number and isinstance(other, asyncio.Task):
                other.cancel()

    def _tasks(self) -> list[asyncio.Task[Any]]:
        return [item for item in self._items if isinstance(item, asyncio.Task)]

    async def result(self, number: int) -> Any:
        """The value of statement ``number`` (joined in program order)."""
        item = self._items[number]
        if isinstance(item, _Done):
            if item.error is not None:
                self._raised = item.error
                raise_with_its_chain(item.error)
            value = item.value
        else:
            await _wait_for(item, self._where, self._tasks())
            error = None if item.cancelled() else item.exception()
            if error is not None:
                self._raised = error
                raise_with_its_chain(error)
            value = item.result()
        if number == len(self._items) - 1:
            self._finish()
        return value

    def _finish(self) -> None:
        if self._last is not None:
            _record(self._site, self._last)  # no statement waited
            self._last = None
        _record(self._site, self._meter)
        self._meter = _Meter()
        if self._span is not None:
            self._span.finish()

    async def settle(self, exc: BaseException) -> BaseException:
        """The exception to raise when the statements' own code raised ``exc``; leaves
        no task open. Raise it outside the ``except`` block (see ``_rt.Fork``)."""
        try:
            if exc is self._raised or not isinstance(exc, Exception):
                # A statement's own error (the first in program order, since results
                # are joined in order), or a cancellation, an interrupt.
                return exc
            # The owner's code failed after every statement spawned so far: the
            # first of their errors, in program order, comes before it.
            for item in self._items:
                if isinstance(item, _Done) and item.error is not None:
                    return item.error
                if isinstance(item, asyncio.Task):
                    try:
                        await _wait_for(item, self._where, self._tasks())
                    except BaseException as failure:
                        return failure
                    if not item.cancelled() and item.exception() is not None:
                        error = item.exception()
                        assert error is not None
                        return error
            return exc
        finally:
            self._finish()
            await _cancel_and_wait(self._tasks())

    def __repr__(self) -> str:
        return f"<AsyncFork site {self._site.index}: {len(self._items)} statements>"


def _blocked(meter: _Meter) -> tuple[float, float]:
    wall = meter.wall / meter.count
    blocked = max(wall - meter.cpu / meter.count, 0.0)
    return blocked, (blocked / wall if wall > 0 else 0.0)


# ---------------------------------------------------------------------------
# The runtime


class AsyncFunctionRuntime(FunctionRuntime):
    """The run-time half of one compiled ``async def``. Not constructed by users."""

    def _aplan(self, site: Site, roots: Callable[[], tuple[Any, ...]] | None) -> tuple[bool, bool]:
        """(probe first?, overlap?) for one execution (NOTE: [Deciding async regions])."""
        ordered = self._ordered_callee(site, roots)
        if ordered is not None:
            site.force_in_order(ordered)
            return False, False
        if site.probes == 0 or forced():  # not measured yet: overlap, measure the tasks
            return False, True
        probe = site.wants_probe()
        return probe, site.mode is Mode.OVERLAP

    async def acomp(
        self,
        index: int,
        roots: Callable[[], tuple[Any, ...]] | None,
        kind: int,
        body: Callable[..., Coroutine[Any, Any, Any]],
        items: Any,
    ) -> Any:
        """A list (kind 0), set (1) or dict (2) comprehension whose items await.

        ``items`` yields argument tuples (what the comprehension's targets bind); it is
        a generator, or an async generator when a clause is ``async for``.
        """
        site = self.sites[index]
        probe, overlap = self._aplan(site, roots)
        region = _Region(
            site, body, items, self._window(), probe, overlap, loop=False, own_items=True
        )
        results: list[Any] = []
        try:
            async with region:
                async for result in region:
                    if result is not SKIP:
                        results.append(result)
        except NameError as error:
            unbound = comprehension_unbound(error, body, items)
            if unbound is None:
                raise
            raise unbound from None
        return results if kind == 0 else _BUILDERS[kind](results)

    def aloop(
        self,
        index: int,
        roots: Callable[[], tuple[Any, ...]] | None,
        body: Callable[[_LoopRecord, Any], Coroutine[Any, Any, None]],
        items: Any,
    ) -> _Region:
        """The iterations of a ``for`` or ``async for`` loop whose body awaits: use as
        ``async with rt.aloop(...) as region: async for record in region: <replay>``.

        The compiled code applies each record (effects, then bindings) before asking
        for the next; a failed iteration's record comes first and its error next.
        """
        site = self.sites[index]
        probe, overlap = self._aplan(site, roots)
        if site.shares_iterable:
            probe = overlap = False  # the body may advance the iterator the loop reads
        return _Region(
            site, body, items, self._window(), probe, overlap, loop=True, own_items=False
        )

    def afork(self, index: int, roots: Callable[[], tuple[Any, ...]] | None) -> AsyncFork:
        """The tasks for the independent statements of region ``index``."""
        site = self.sites[index]
        probe, overlap = self._aplan(site, roots)
        return AsyncFork(site, probe, overlap)
