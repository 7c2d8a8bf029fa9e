"""Runs a ``Graph`` on the scheduler as a dataflow, with sequential error semantics."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from xcs._compiler._ir import Graph, Node
from xcs._observe import _spans
from xcs._runtime._deadline import Deadline, current_deadline
from xcs._runtime._pool import in_worker_thread
from xcs._runtime._scheduler import Task, TaskGroup, TaskState, _add_origin_note
from xcs.errors import ValidationError

__all__ = ["Interpreter"]

# Moments that matter for ordering within a run: a node starting, the run learning of
# a failure. Both are taken under the run's lock, so comparing them says which came
# first (``Interpreter.start_seq`` and ``failure_seq``, read by tests).
_sequence = itertools.count()


class Interpreter:
    """Executes a graph: one method per op, named after it (``call`` for ``"call"``).

    Subclass and override an op's method to change how nodes of that op run.

    NOTE: [Graph dataflow]
    A node starts as soon as its own dependencies are done: there is no wave barrier.
    The thread that calls ``run`` owns one ``TaskGroup``; it spawns every node whose
    dependencies have succeeded, then waits for *any* node to finish (a condition
    variable the nodes signal), and spawns what that finish made ready. Waiting never
    holds a pool thread idle: an owner that is itself a pool worker (a graph run
    inside a jitted region or another graph's node) runs its own unstarted nodes while
    it waits, as NOTE: [Waiting threads help] in ``_scheduler`` asks; an owner outside
    the pool only blocks, so that it spawns newly ready nodes at once.

    Error semantics, in terms of program order (``Graph.order``): a node that fails at
    position k makes every node after k unnecessary, and none of them starts once the
    failure is known (one already running finishes; its result and error are
    dropped). Nodes before k still run: their dependencies all come before them, so
    all succeeded, and one of them might fail, in which case *its* error is the one the
    sequential program raises. The run ends by raising the failure with the smallest
    position, the original exception object, with one note naming the node
    (NOTE: [Where a task's error came from] in ``_scheduler``). A ``KeyboardInterrupt``
    or ``SystemExit`` raised inside a node is that node's failure like any other
    (NOTE: [Interrupts inside tasks]).

    The group never sees a node's exception (the node's task stores it here), because
    the group's own rule stops tasks spawned after a failure, and dataflow spawns in
    readiness order, not program order.

    Attributes (of the last run; for tests and debugging):
        start_seq: node name -> the moment it started.
        failure_seq: the moment the run learned of its current first failure (-1: none).
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.start_seq: dict[str, int] = {}
        self.failure_seq = -1

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run every node; return ``{node name: value}`` (see ``Graph.run``)."""
        graph = self.graph
        order = graph.order()  # lints: unknown dependencies, cycles
        declared = graph.inputs
        missing = [name for name in declared if name not in inputs]
        if missing:
            raise ValidationError(
                f"graph {graph.name!r} is missing input{'s' * (len(missing) > 1)} "
                f"{', '.join(map(repr, missing))}",
                nodes=tuple(missing),
            )
        unknown = [name for name in inputs if name not in declared]
        if unknown:
            raise ValidationError(
                f"graph {graph.name!r} has no input{'s' * (len(unknown) > 1)} "
                f"{', '.join(map(repr, unknown))} (its inputs: {', '.join(declared) or 'none'})",
                nodes=tuple(unknown),
            )
        run = _Run(self, order, dict(inputs))
        self.start_seq = run.start_seq
        try:
            run.drive()
        finally:
            self.failure_seq = run.failure_seq
        if run.failures:
            first = min(run.failures)
            error = run.failures[first]
            run.failures.clear()
            run.note(error, order[first])
            try:
                raise error
            finally:
                del error, run
        return {name: run.values[name] for name in order}

    # -- one method per op -------------------------------------------------------------

    def call(self, node: Node, values: Mapping[str, Any]) -> Any:
        """Run a ``call`` node: ``target(*args, **kwargs)`` with dependency values."""
        target = node.target
        if not callable(target):
            raise ValidationError(
                f"node {node.name!r} of graph {self.graph.name!r} has no callable target",
                nodes=(node.name,),
            )
        args = tuple(values[dep] for dep in node.args)
        kwargs = {param: values[dep] for param, dep in node.kwargs.items()}
        return target(*args, **kwargs)

    def input(self, node: Node, values: Mapping[str, Any]) -> Any:  # pragma: no cover
        return values[node.name]

    def region(self, node: Node, values: Mapping[str, Any]) -> Any:
        raise ValidationError(
            f"node {node.name!r} is a compiler plan region; plans are shown, not run",
            nodes=(node.name,),
        )

    site = region


class _Run:
    """The state of one ``Interpreter.run``: see NOTE: [Graph dataflow]."""

    def __init__(self, interpreter: Interpreter, order: list[str], values: dict[str, Any]) -> None:
        self.interpreter = interpreter
        self.graph = interpreter.graph
        self.order = order
        self.nodes = self.graph.nodes
        self.position = {name: i for i, name in enumerate(order)}
        # Written by a node's task before it reports done; read by the nodes that
        # depend on it, which are spawned only after that report.
        self.values = values
        self.cond = threading.Condition(threading.Lock())
        # Everything below is guarded by ``cond``.
        self.finished: list[str] = []  # nodes done (ran, failed or skipped), not yet seen
        self.failures: dict[int, BaseException] = {}  # position -> error
        self.stop = len(order)  # position of the first known failure; -1: abandon
        self.start_seq: dict[str, int] = {}
        self.failure_seq = -1
        # Inside a traced task the current span is the task's own; anywhere else it
        # is the one the caller had, which a node's failure must not be noted on.
        self.outer_span = _spans.current_span()
        # The owner's: the group, and the node of each task index.
        self.group: TaskGroup | None = None
        self.spawned: list[str] = []

    # -- the nodes' side (pool workers, or the owner while it helps) --------------------

    def execute(self, node: Node) -> None:
        name = node.name
        position = self.position[name]
        with self.cond:
            if position > self.stop:
                # An earlier node failed (or the run was abandoned): the sequential
                # program never gets here.
                self.finished.append(name)
                self.cond.notify()
                return
            self.start_seq[name] = next(_sequence)
        span = _spans.current_span() if _spans.active else None
        if span is self.outer_span:
            span = None
        if span is not None:
            span.attrs["node"] = name
        try:
            value = getattr(self.interpreter, node.op)(node, self.values)
        except BaseException as exc:
            if span is not None:
                span.fail(exc)
            with self.cond:
                if position < self.stop:
                    self.failures[position] = exc
                    self.stop = position
                    self.failure_seq = next(_sequence)
                # else: a node the sequential program would not have reached, which
                # started before the failure was known: its error is dropped.
                self.finished.append(name)
                self.cond.notify()
            del exc
            return
        with self.cond:
            self.values[name] = value
            self.finished.append(name)
            self.cond.notify()

    # -- the owner's side -------------------------------------------------------------

    def describe(self, index: int) -> str:
        """What a node's error note says after ``xcs: raised by ``."""
        return f"node {self.spawned[index]!r} of graph {self.graph.name!r}"

    def note(self, error: BaseException, name: str) -> None:
        """Note on ``error`` the node it came from (NOTE: [Where a task's error came from])."""
        if self.group is not None:
            _add_origin_note(error, self.spawned.index(name), self.group)

    def drive(self) -> None:
        """Spawn nodes as they become ready until none is running; raise a deadline's
        expiry or an interrupt (node failures are left in ``failures``)."""
        nodes, position, order = self.nodes, self.position, self.order
        waiting = dict.fromkeys(order, 0)
        users: dict[str, list[str]] = {name: [] for name in order}
        for name in order:
            for dep in nodes[name].deps:
                if dep in position:
                    waiting[name] += 1
                    users[dep].append(name)
        ready = [position[name] for name in order if waiting[name] == 0]
        heapq.heapify(ready)
        tasks: dict[str, Task[None]] = {}
        # Spawned tasks that may still be unclaimed, in spawn order (program order
        # within each batch), for a helping owner; claimed ones are dropped lazily.
        unclaimed: deque[Task[None]] = deque()
        running = 0  # spawned and not yet seen finished
        helps = in_worker_thread()
        with TaskGroup(name=self.graph.name, note=self.describe) as group:
            self.group = group
            try:
                while True:
                    active = current_deadline()
                    while ready:
                        at = heapq.heappop(ready)
                        if at > self.stop:  # after a known failure: never needed
                            continue
                        if active is not None and active.expired():
                            raise self.expire(active, tasks)
                        name = order[at]
                        tasks[name] = group.spawn(self.execute, nodes[name], name=name)
                        self.spawned.append(name)
                        if helps:
                            unclaimed.append(tasks[name])
                        running += 1
                    if not running:
                        break
                    for name in self.wait(group, tasks, unclaimed, active):
                        running -= 1
                        if name in self.values:
                            for user in users[name]:
                                waiting[user] -= 1
                                if not waiting[user]:
                                    heapq.heappush(ready, position[user])
            except BaseException:
                with self.cond:
                    self.stop = -1  # nothing starts from now on
                raise

    def wait(
        self,
        group: TaskGroup,
        tasks: Mapping[str, Task[None]],
        unclaimed: deque[Task[None]],
        active: Deadline | None,
    ) -> list[str]:
        """Block until some node finishes; return the nodes finished since last time."""
        while True:
            with self.cond:
                if self.finished:
                    done, self.finished = self.finished, []
                    return done
                if active is not None and active.expired():
                    raise self.expire(active, tasks, locked=True)
                unstarted = None
                # NOTE: [Waiting threads help]: a pool thread runs our own earliest
                # unstarted node rather than idle while it sits in the queue.
                while unclaimed:
                    head = unclaimed.popleft()
                    if head.state is TaskState.PENDING:
                        unstarted = head
                        break
                if unstarted is None:
                    self.cond.wait(None if active is None else max(active.remaining(), 0.0))
                    continue
            # Claims and runs it here (or, if a worker claimed it a moment ago, helps
            # with the group's other unstarted tasks and waits for it).
            group.wait(unstarted)

    def expire(
        self, active: Deadline, tasks: Mapping[str, Task[None]], *, locked: bool = False
    ) -> BaseException:
        """Stop the run for an expired deadline; the error lists the nodes still running."""
        if not locked:
            with self.cond:
                return self.expire(active, tasks, locked=True)
        stop, self.stop = self.stop, -1
        running = tuple(name for name in self.start_seq if tasks[name].state is TaskState.RUNNING)
        cancelled = sum(
            1 for name in self.order if self.position[name] <= stop and name not in self.start_seq
        )
        return active.timeout_error(running=running, cancelled=cancelled, where=self.graph.name)
