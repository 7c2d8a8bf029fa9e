"""The scheduler: ordered task groups and the ordered parallel map on the shared pool.

Everything in XCS that runs work concurrently goes through here: the compiled regions
of ``@xcs.jit``, ``xcs.Graph``, ``xcs.vmap``. The unit is a ``TaskGroup``: tasks are
spawned in *program order* (each gets the next index) and joined in that order, so
the caller sees exactly what the sequential program would have seen:

- results in spawn order;
- the first error in program order: when tasks fail, the one raised is the failure
  of the smallest index, the original exception object, never wrapped;
- once a failure at index k is known, no task after k starts (it is cancelled when a
  worker or a waiter would have claimed it);
- when the group exits early (an error, a deadline, a consumer that stops reading),
  tasks that have not started are cancelled and the group waits for the running ones,
  so no work of the group outlives it.

NOTE: [Waiting threads help]
A thread that waits for a task of its group first tries to *claim* it; if the claim
succeeds the task had not started, and the waiting thread runs it itself. A pool
worker whose task is running elsewhere also runs other unstarted tasks of its group
meanwhile, so a task waiting on its children never holds a pool thread idle while
work nobody has taken is queued. A waiter blocks only on a task that some thread is
running, and there is no deadlock whatever the pool size or the nesting depth: a
thread's stack of tasks it runs is a path down the tree of groups, and it only ever
blocks on a task deeper in that tree, which is running.

A thread outside the pool (the caller of a jitted function, say) runs only the task
it waits for, never later ones: it must stay free to refill its window promptly, and
blocking it costs the pool nothing. Under an ``xcs.deadline`` it does not run tasks
inline at all; it blocks with a timeout instead, so that the deadline is honoured to
the moment even where a task it could have run would overrun it. Pool threads always
help, so progress does not depend on it.

NOTE: [No start after the deadline]
No task starts once the deadline in force for it has expired: neither the deadline
it was spawned under (a pool worker that takes it from the queue checks it) nor
that of the thread that would run it inline (a waiter checks its own before it
helps). A task whose own deadline expired before it started finishes at once with
``ExecutionTimeout``, in its place in program order; a waiter whose deadline expired
raises it and cancels what has not started. Without this a pool thread that owns a
group under a deadline would run the group's queued calls one after another, long
after the deadline, since it helps instead of blocking with a timeout.

NOTE: [Interrupts inside tasks]
A ``KeyboardInterrupt`` or ``SystemExit`` raised *inside a task* is that task's
error, like any other: it takes the task's place in program order (an earlier task's
error still wins, and tasks after it do not start). Only pool threads run tasks
other than the one their owner waits for, and signals are delivered to the main
thread alone, so an interrupt met by a thread that was helping is never a Ctrl-C
aimed at it. One delivered to the waiting thread itself while it blocks stops the
wait at once. Either way, once one is raised out of a group, the group does not wait
for running tasks: the program is stopping.

NOTE: [Tasks that start after others]
A task may be spawned ``after`` earlier tasks of its group (the forked statement
``c = h(a)`` after the one that computes ``a``): it is queued only when the last of
them finishes, so it starts as soon as its inputs are ready and not when every
earlier task is done. It keeps its place in program order: its error counts where it
stands, and if a task it starts after fails, it never starts (its index is past the
failure, so the claim cancels it). Nobody may claim it before it is ready, and a
thread that waits for it waits for those tasks first, so a waiter still blocks only
on a task that is running.
NOTE: [A task that ends at the recursion limit]
A task run inline by a waiter whose stack is deep (a recursion through regions) may
end, by returning or by raising ``RecursionError``, with no room left for one more
Python call, and then ``_finish`` itself raises ``RecursionError``. The task is then
finished by statements that call no Python function (a C lock, attribute stores,
``next``): its outcome stands in its place in program order and its waiters wake;
tasks that start after it are left for their waiters to run. Before this, the task
stayed "running" forever and its group's owner waited for it forever (findings of
the real-code suite: tomllib under forced overlap, 1 run in 2).

NOTE: [Where a task's error came from]
When a task's exception is raised to the owner, it gets one note (``add_note``)
naming the group and the task's index, e.g. ``xcs: raised by item 3 of f:12
comprehension``; ``xcs.vmap`` words it as the item of the batch. The object, its
type, args and traceback are untouched. An exception that passes through nested
groups keeps the innermost note only (the one that says which call failed), and an
exception whose ``__notes__`` is not a list gets none: a note is never worth
replacing the user's exception with a ``TypeError``.
"""

from __future__ import annotations

import contextvars
import enum
import functools
import itertools
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, NoReturn, TypeVar

from xcs._observe import _spans
from xcs._runtime._deadline import Deadline, current_deadline
from xcs._runtime._pool import WorkerPool, current_pool, get_pool

__all__ = [
    "TaskGroup",
    "TaskState",
    "drive_window",
    "ordered_imap",
    "ordered_map",
]

logger = logging.getLogger("xcs")

T = TypeVar("T")
R = TypeVar("R")

_INFINITY = float("inf")

# One global sequence for the moments that matter for ordering: a task starting, a
# group learning of a failure. Both are taken under the group's lock, so comparing
# them says which happened first (used by tests and by tracing).
_sequence = itertools.count()


class _Helping(threading.local):
    """How many tasks this thread is running inline, one inside another (NOTE:
    [Waiting threads help]): each costs the thread's stack about a dozen frames."""

    depth = 0


helping = _Helping()


class TaskState(enum.Enum):
    PENDING = "pending"  # spawned, not started; may be claimed by a worker or a waiter
    RUNNING = "running"  # claimed: a thread is running it
    FINISHED = "finished"  # ran to completion, with a value or an exception
    CANCELLED = "cancelled"  # never started and never will


_PENDING = TaskState.PENDING
_RUNNING = TaskState.RUNNING
_FINISHED = TaskState.FINISHED
_CANCELLED = TaskState.CANCELLED


class Task(Generic[R]):
    """One call spawned in a ``TaskGroup``. Not constructed directly: use ``spawn``.

    States: PENDING -> RUNNING -> FINISHED, or PENDING -> CANCELLED. Every transition
    happens under the group's lock; ``_done`` is a lock held from creation until the
    task is FINISHED or CANCELLED, which is the cheapest thing to block on.
    """

    __slots__ = (
        "_args",
        "_ctx",
        "_done",
        "_fn",
        "abandoned",
        "after",
        "blockers",
        "deadline",
        "dependents",
        "error",
        "group",
        "index",
        "name",
        "runner",
        "start_seq",
        "state",
        "value",
    )

    def __init__(
        self,
        group: TaskGroup,
        index: int,
        name: str,
        fn: Callable[..., R],
        args: tuple[Any, ...],
    ) -> None:
        self.group = group
        self.index = index
        self.name = name
        self._fn: Callable[..., R] | None = fn
        self._args = args
        # The task runs in a copy of the spawning context: deadlines, tracing and
        # other context variables follow the work onto the worker thread.
        self._ctx = contextvars.copy_context()
        # The deadline in force where it was spawned (NOTE: [No start after the deadline]).
        self.deadline = current_deadline()
        # The pool whose thread runs it (None: a thread outside any pool), and whether
        # its group stopped waiting for it (NOTE: [Stranded threads are replaced]).
        self.runner: WorkerPool | None = None
        self.abandoned = False
        self._done = threading.Lock()
        self._done.acquire()
        self.state = _PENDING
        self.value: R | None = None
        self.error: BaseException | None = None
        self.start_seq = -1
        # NOTE: [Tasks that start after others] The tasks this one starts after, how
        # many of them are not done yet, and the tasks that start after this one.
        self.after: tuple[Task[Any], ...] = ()
        self.blockers = 0
        self.dependents: list[Task[Any]] | None = None

    def run_from_pool(self) -> None:
        """Entry point for pool workers: run unless a waiter claimed it or it was cancelled."""
        if self.state is _PENDING and self.group._claim(self, current_pool()):
            self._execute()

    def _execute(self) -> None:
        fn, args = self._fn, self._args
        assert fn is not None
        error: BaseException | None = None
        value: Any = None
        try:
            value = self._ctx.run(fn, *args)
        except BaseException as exc:
            # Even KeyboardInterrupt and SystemExit: NOTE: [Interrupts inside tasks].
            error = exc
        # Break references early: a finished task kept for its value must not keep its
        # function, arguments and context alive too.
        self._fn = None
        self._args = ()
        del fn, args
        try:
            self.group._finish(self, value, error)
        except RecursionError:
            # NOTE: [A task that ends at the recursion limit]
            if self.state is _FINISHED:
                return  # recorded and released (a dependent not queued: its waiter runs it)
            group = self.group
            with group._lock:
                self.value = value
                self.error = error
                self.state = _FINISHED
                if error is not None and self.index < group._stop:
                    group._stop = self.index
                    group.failure_seq = next(_sequence)
                for dependent in self.dependents or ():
                    dependent.blockers -= 1  # not queued: its waiter runs it
                self.dependents = None
            self._done.release()
        finally:
            # No cycle error -> its traceback -> this frame -> error.
            del value, error

    @property
    def done(self) -> bool:
        return self.state is _FINISHED or self.state is _CANCELLED

    def __repr__(self) -> str:
        return f"<Task {self.name} #{self.index} {self.state.value}>"


class TaskGroup:
    """Tasks spawned in program order and joined in program order.

    A group belongs to the thread that created it: only that thread spawns and joins
    (workers only run tasks). Use it as a context manager; on exit it joins what is
    left (raising the first error in program order) or, when the block raised,
    cancels what has not started and waits for what is running.

    Args:
        name: a label for the tasks, shown in errors and traces.
        pool: the pool to run on (default: the process-wide pool).
        note: given a task's index, what its exception's note says after
            ``xcs: raised by `` when it is raised to the owner (default:
            ``item <index> of <name>``); NOTE: [Where a task's error came from].

    Example::

        with TaskGroup(name="ensemble") as group:
            a = group.spawn(call_model, "q1")
            b = group.spawn(call_model, "q2")
            answer = combine(group.result(a), group.result(b))
    """

    def __init__(
        self,
        *,
        name: str = "task",
        pool: WorkerPool | None = None,
        note: Callable[[int], str] | None = None,
    ) -> None:
        self.name = name
        self._pool = pool if pool is not None else get_pool()
        self._note = note
        self._lock = threading.Lock()
        # Spawned tasks not yet joined, in index order. Only the owner touches it.
        self._open: deque[Task[Any]] = deque()
        self._next_index = 0
        # Smallest index known to have failed; tasks after it must not start.
        self._stop: float = _INFINITY
        self.failure_seq = -1
        self._closed = False
        self._raised: BaseException | None = None  # the task error result() raised
        self._settling = False
        self._cancelled = 0  # tasks cancelled before they started
        # The group's "region" span, opened at the first spawn inside a trace.
        self._span: _spans.Span | None = None

    # -- used by tasks (any thread) -----------------------------------------------

    def _claim(self, task: Task[Any], runner: WorkerPool | None) -> bool:
        """PENDING -> RUNNING on a thread of ``runner`` (None: outside any pool).

        False when the task is not to be run: another thread has it, its group
        stopped before it, or its deadline expired (it then finishes at once with
        ``ExecutionTimeout``: NOTE: [No start after the deadline]).
        """
        with self._lock:
            if task.state is not _PENDING:
                return False
            if task.index > self._stop:
                task.state = _CANCELLED
                task._done.release()
                return False
            if task.blockers:
                return False  # a task it starts after is not done yet
            limit = task.deadline
            if limit is None or not limit.expired():
                task.state = _RUNNING
                task.runner = runner
                task.start_seq = next(_sequence)
                return True
            task.state = _RUNNING  # for the one transition _finish makes
        late = limit.timeout_error(where=f"{self.name} (item {task.index} not started)")
        self._finish(task, None, late)
        return False

    def _finish(self, task: Task[Any], value: Any, error: BaseException | None) -> None:
        ready: list[Task[Any]] = []
        with self._lock:
            task.value = value
            task.error = error
            task.state = _FINISHED
            discarded = error is not None and task.index > self._stop
            if error is not None and task.index < self._stop:
                self._stop = task.index
                self.failure_seq = next(_sequence)
            stranded = task.runner if task.abandoned else None
            if task.dependents is not None:
                for dependent in task.dependents:
                    dependent.blockers -= 1
                    if not dependent.blockers and dependent.state is _PENDING:
                        ready.append(dependent)
                task.dependents = None
        task._done.release()
        for dependent in ready:
            # After a failure before it, a worker's claim cancels it.
            self._pool.submit(dependent)
        if stranded is not None:
            stranded.unstrand()
        if discarded:
            # The sequential program would not have reached this failure, so it is
            # never raised; it is not lost either.
            logger.debug(
                "xcs: discarded the error of task %s #%d (an earlier task failed first): %r",
                task.name,
                task.index,
                error,
            )

    # -- the owner's API ----------------------------------------------------------

    def spawn(
        self,
        fn: Callable[..., R],
        *args: Any,
        name: str | None = None,
        after: tuple[Task[Any], ...] = (),
    ) -> Task[R]:
        """Start ``fn(*args)`` as the next task in program order.

        Returns at once. A task spawned after an earlier task failed is created
        cancelled and never runs: the sequential program would not have reached it.
        With ``after`` (earlier tasks of this group), it starts only once they are
        all done, and never if one of them failed (NOTE: [Tasks that start after
        others]).

        Raises:
            ExecutionTimeout: the deadline in force has expired.
            RuntimeError: the group has exited.
        """
        if self._closed:
            raise RuntimeError(f"task group {self.name!r} has exited; spawn in a new group")
        active = current_deadline()
        if active is not None and active.expired():
            raise self._expire(active)
        index = self._next_index
        self._next_index = index + 1
        task: Task[R] = Task(self, index, name or self.name, fn, args)
        self._open.append(task)
        if after:
            task.after = after
            with self._lock:
                for earlier in after:
                    if earlier.state is _PENDING or earlier.state is _RUNNING:
                        if earlier.dependents is None:
                            earlier.dependents = []
                        earlier.dependents.append(task)
                        task.blockers += 1
        if index > self._stop:
            with self._lock:
                task.state = _CANCELLED
                task._done.release()
        else:
            if _spans.active:  # NOTE: [Tracing costs nothing when off]
                self._trace_task(task)
            if not task.blockers:
                self._pool.submit(task)
        return task

    # What shows in a trace as this group's "mode" (owners that run tasks one at a
    # time, like the in-order path of a compiled fork, say so).
    span_mode = "overlap"

    def _trace_task(self, task: Task[Any]) -> None:
        if self._span is None:
            self._span = _spans.begin("region", self.name, mode=self.span_mode)
            if self._span is None:  # a trace is open elsewhere, not around this code
                return
        assert task._fn is not None
        task._fn = _spans.wrap_task(task._fn, self._span, self.name, task.index)

    def end_span(self) -> None:
        """Close the group's span (if traced). ``__exit__`` does; owners that do not
        use the group as a context manager call it when they are done with it."""
        if self._span is not None:
            self._span.finish()

    def result(self, task: Task[R]) -> R:
        """Wait for ``task`` and every task spawned before it; return its value.

        Raises:
            BaseException: the first exception in program order among ``task`` and
                the tasks spawned before it, the original object.
            ExecutionTimeout: the deadline in force expired while waiting.
        """
        if task.group is not self:
            raise ValueError(f"{task!r} belongs to another task group")
        while self._open and self._open[0].index <= task.index:
            head = self._open[0]
            self._join(head)
            self._open.popleft()
            error = head.error
            if error is not None:
                self._raised = error
                _add_origin_note(error, head.index, self)
                # NOTE: [The chain an error brought] raised here, inside an ``except``
                # block of the caller's, an error would lose the ``__context__`` it was
                # raised with (the exception it was handling): it is put back, and the
                # exception the caller handles goes at the end of its chain, where the
                # sequential program (which raised it inside that block) has it.
                context = error.__context__
                if context is not None and not self._settling:
                    _extend_chain(error, sys.exc_info()[1])
                try:
                    raise error
                finally:
                    if context is not None:
                        error.__context__ = context
                    # Break the cycle error -> traceback -> this frame -> error.
                    del error, head, context
        if task.state is not _FINISHED:
            raise RuntimeError(f"{task!r} never ran: its group stopped before it started")
        if task.error is not None:
            raise task.error  # joined before, asked again
        return task.value  # type: ignore[return-value]

    def next_result(self) -> Any:
        """Join the oldest task not yet joined and return its value (or raise)."""
        if not self._open:
            raise IndexError(f"task group {self.name!r} has no task left to join")
        return self.result(self._open[0])

    # -- waiting ------------------------------------------------------------------

    def wait(self, task: Task[Any]) -> None:
        """Block until ``task`` is done (running it here if it has not started),
        without raising its error: ``result`` raises it, in program order.

        Raises:
            ExecutionTimeout: the deadline in force expired while waiting.
        """
        if task.group is not self:
            raise ValueError(f"{task!r} belongs to another task group")
        self._join(task)

    def _join(self, task: Task[Any]) -> None:
        """Block until ``task`` is done, helping with the group's unstarted tasks."""
        if task.state is _FINISHED or task.state is _CANCELLED:
            return
        for earlier in task.after:
            # It can start only after these: waiting for them first keeps "a thread
            # blocks only on a running task" (NOTE: [Waiting threads help]).
            self._join(earlier)
        active = current_deadline()
        if active is not None and active.expired():
            # NOTE: [No start after the deadline]
            raise self._expire(active)
        worker = current_pool()
        # NOTE: [Waiting threads help]. The depth is counted here, inline: a helper
        # would add a frame to each level, the very cost it counts (_rt: NOTE: [Deep
        # on one thread, in order]).
        here = helping
        if (active is None or worker is not None) and self._claim(task, worker):
            here.depth += 1
            try:
                task._execute()
            finally:
                here.depth -= 1
            return
        if worker is not None:
            for other in list(self._open):
                if task.done:
                    return
                if active is not None and active.expired():
                    break
                if other.state is _PENDING and self._claim(other, worker):
                    here.depth += 1
                    try:
                        other._execute()
                    finally:
                        here.depth -= 1
        if active is None:
            task._done.acquire()
            task._done.release()
            return
        if task._done.acquire(timeout=max(active.remaining(), 0.0)):
            task._done.release()
            return
        # The deadline expired while we waited.
        raise self._expire(active)

    def _expire(self, active: Deadline) -> BaseException:
        """Cancel what has not started; the timeout error lists what still runs."""
        running = tuple(f"{t.name}[{t.index}]" for t in self._open if t.state is _RUNNING)
        self._abandon(wait=False)
        return active.timeout_error(running=running, cancelled=self._cancelled, where=self.name)

    # -- exiting ------------------------------------------------------------------

    def settle(self, exc: BaseException) -> BaseException:
        """Decide what the sequential program would raise, given that the owner's code
        raised ``exc`` after every task spawned so far; leave nothing running.

        - ``exc`` is a task's error that ``result`` raised: tasks after it are
          cancelled (or waited for, if running), and ``exc`` stands.
        - ``exc`` is the owner's own exception: every open task preceded it in program
          order, so they are joined in order and the first of their errors wins;
          ``exc`` stands only if they all succeed.
        - ``KeyboardInterrupt``, ``SystemExit``, an expired deadline: unstarted tasks are
          cancelled, running ones are not waited for, and ``exc`` stands.
        - ``GeneratorExit`` (a consumer stopped reading an ordered map): unstarted tasks
          are cancelled, running ones waited for, and ``exc`` stands.

        Raise the returned exception *outside* any ``except`` block, so that Python
        does not chain ``exc`` to it as ``__context__`` (see ``__exit__``).
        """
        active = current_deadline()
        if isinstance(exc, KeyboardInterrupt | SystemExit) or (
            active is not None and active.expired()
        ):
            # NOTE: [Interrupts inside tasks]: whether a task raised it or not.
            self._abandon(wait=False)
            return exc
        if exc is self._raised or isinstance(exc, GeneratorExit):
            self._abandon(wait=True)
            return exc
        self._settling = True  # the exception handled now is the owner's own
        try:
            while self._open:
                self.next_result()
        except BaseException as first:
            self._abandon(wait=not isinstance(first, KeyboardInterrupt | SystemExit))
            return first
        return exc

    def _abandon(self, *, wait: bool) -> None:
        """Cancel every unstarted task; with ``wait``, wait for the running ones.

        Tasks left running (not waited for, or past the deadline) are abandoned: their
        pool may replace the threads they hold (NOTE: [Stranded threads are replaced]).
        """
        cancelled = 0
        with self._lock:
            self._stop = -1  # nothing may start from now on
            for task in self._open:
                if task.state is _PENDING:
                    task.state = _CANCELLED
                    task._done.release()
                    cancelled += 1
        self._cancelled += cancelled
        if wait:
            active = current_deadline()
            for task in self._open:
                if task.state is _RUNNING:
                    timeout = -1.0 if active is None else max(active.remaining(), 0.0)
                    if not task._done.acquire(timeout=timeout):
                        break  # deadline: leave the rest running in the background
                    task._done.release()
        stranded: list[WorkerPool] = []
        with self._lock:
            for task in self._open:
                if task.state is _RUNNING and not task.abandoned:
                    task.abandoned = True
                    if task.runner is not None:
                        stranded.append(task.runner)
        for pool in stranded:
            pool.strand()
        self._open.clear()

    def __enter__(self) -> TaskGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        try:
            self._exit(exc)
        finally:
            if self._span is not None:
                self._span.finish()

    def _exit(self, exc: BaseException | None) -> None:
        if exc is None:
            if self._raised is not None:
                # The owner met a task's failure and handled it; tasks after that one
                # in program order are not needed.
                self._abandon(wait=True)
                return
            # Tasks whose results nobody asked for still ran in the sequential
            # program: their errors count, in program order.
            try:
                while self._open:
                    self.next_result()
            except BaseException as first:
                self._abandon(wait=not isinstance(first, KeyboardInterrupt | SystemExit))
                raise
            return
        outcome = self.settle(exc)
        if outcome is not exc:
            # A task that ran before the block's own exception failed first. Raised
            # from here it gets the block's exception as __context__; code generated
            # by the compiler calls settle() itself and raises outside the handler.
            raise outcome

    def __repr__(self) -> str:
        return f"<TaskGroup {self.name!r} open={len(self._open)}>"


_NOTE_PREFIX = "xcs: raised by "


def _extend_chain(error: BaseException, handled: BaseException | None) -> None:
    if handled is None:
        return
    link: BaseException = error
    for _ in range(100):
        if link is handled:
            return
        following = link.__context__
        if following is None:
            link.__context__ = handled
            return
        link = following


def raise_with_its_chain(error: BaseException) -> NoReturn:
    """Raise ``error`` keeping the ``__context__`` it was raised with (NOTE: [The
    chain an error brought]); a plain ``raise`` inside an ``except`` block replaces it
    with the exception being handled there."""
    context = error.__context__
    try:
        raise error
    finally:
        if context is not None:
            error.__context__ = context
        del error, context


def _add_origin_note(error: BaseException, index: int, group: TaskGroup) -> None:
    """NOTE: [Where a task's error came from]."""
    try:
        notes = getattr(error, "__notes__", None)
        if notes is not None:
            if not isinstance(notes, list):
                return  # add_note would raise TypeError: keep the user's exception
            for note in notes:
                if isinstance(note, str) and note.startswith(_NOTE_PREFIX):
                    return  # an inner group already said where it came from
        what = group._note(index) if group._note is not None else None
        error.add_note(_NOTE_PREFIX + (what or f"item {index} of {group.name}"))
    except Exception:  # a hostile __notes__ or note function: no note, same error
        logger.debug("xcs: could not add a note to %r", error, exc_info=True)


# ---------------------------------------------------------------------------
# The ordered map


def ordered_imap(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    window: int | None = None,
    name: str | None = None,
    pool: WorkerPool | None = None,
    note: Callable[[int], str] | None = None,
) -> Iterator[R]:
    """Apply ``fn`` to each item concurrently; yield the results in input order.

    At most ``window`` items are in flight (spawned and not yet yielded). ``items`` may
    be any iterable, including an endless or lazy one: it is read only as the window
    moves, never materialised. Error semantics are those of ``TaskGroup``: the first
    failing item in input order raises its own exception, items after it do not start
    once the failure is known, and none of their results is yielded. Closing the
    iterator early cancels what has not started and waits for what is running.

    Args:
        fn: called once per item, on a pool thread or in the consuming thread.
        items: the inputs.
        window: the in-flight bound (default: the pool's size).
        name: a label for tasks in errors and traces (default: ``fn``'s name).
        pool: the pool to run on (default: the process-wide pool).
        note: given an item's index, what the note of its exception says after
            ``xcs: raised by `` (see ``TaskGroup``).

    Raises:
        BaseException: the exception of the first failing item, the original object.
        ExecutionTimeout: an ``xcs.deadline`` expired.
        ValueError: ``window`` < 1.
    """
    if window is not None and window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return _imap(fn, items, window, name or str(getattr(fn, "__name__", "task")), pool, note)


def _imap(
    fn: Callable[[T], R],
    items: Iterable[T],
    window: int | None,
    name: str,
    pool: WorkerPool | None,
    note: Callable[[int], str] | None,
) -> Iterator[R]:
    group = TaskGroup(name=name, pool=pool, note=note)
    limit = window if window is not None else group._pool.max_workers
    with group:
        for task in drive_window(group, functools.partial(group.spawn, fn), iter(items), limit):
            yield group.result(task)


def drive_window(
    group: TaskGroup,
    spawn: Callable[[Any], Task[Any]],
    source: Iterator[Any],
    limit: int,
) -> Iterator[Task[Any]]:
    """The moving window of an ordered map: ``spawn(item)`` for the items of
    ``source``, at most ``limit`` in flight; yield each task, in order, once it is
    done (its error not raised: ``group.result(task)`` raises it, in program order).

    The window moves when a task is handed over, and the next item is spawned before
    the hand-over, so the pool stays busy while the consumer works. After a failure no
    more items are read. If reading ``source`` raises, the tasks spawned before still
    come first (their errors win); the source's error is raised after the last.
    """
    pending: deque[Task[Any]] = deque()
    source_error: BaseException | None = None

    def pull() -> bool:
        nonlocal source_error
        if source_error is not None:
            return False
        try:
            item = next(source)
        except StopIteration:
            return False
        except BaseException as exc:
            source_error = exc
            return False
        pending.append(spawn(item))
        return True

    while len(pending) < limit and pull():
        pass
    while pending:
        task = pending.popleft()
        group.wait(task)
        if task.error is None:
            pull()
        yield task
    if source_error is not None:
        try:
            raise source_error
        finally:
            del source_error


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    window: int | None = None,
    name: str | None = None,
    pool: WorkerPool | None = None,
    note: Callable[[int], str] | None = None,
) -> list[R]:
    """``list(ordered_imap(...))``: every result, in input order. Same errors."""
    return list(ordered_imap(fn, items, window=window, name=name, pool=pool, note=note))
