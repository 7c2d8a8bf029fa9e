"""Runs a ``Graph`` on the scheduler, wave by wave, with sequential error semantics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xcs._compiler._ir import Graph, Node
from xcs._runtime._scheduler import TaskGroup
from xcs.errors import ValidationError

__all__ = ["Interpreter"]


class Interpreter:
    """Executes a graph: one method per op, named after it (``call`` for ``"call"``).

    Subclass and override an op's method to change how nodes of that op run (the
    batch transforms do).

    Error semantics, in terms of program order (``Graph.order``): a node that fails at
    position k makes every node after k that has not started unnecessary; nodes
    before k still run (in later waves too: their dependencies all come before them,
    so all succeeded), because one of them might fail and then *its* error is the one
    the sequential program raises. The run ends by raising the failure with the
    smallest position.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        graph = self.graph
        waves = graph.waves()  # lints: unknown dependencies, cycles
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
        position = {name: i for i, name in enumerate(graph.order())}
        values: dict[str, Any] = dict(inputs)
        first_failure: tuple[int, BaseException] | None = None
        for wave in waves:
            stop = first_failure[0] if first_failure else len(position)
            runnable = [graph.nodes[name] for name in wave if position[name] < stop]
            if not runnable:
                continue
            failure = self._run_wave(runnable, values)
            if failure is not None:
                node, error = failure
                if first_failure is None or position[node.name] < first_failure[0]:
                    first_failure = (position[node.name], error)
        if first_failure is not None:
            error = first_failure[1]
            try:
                raise error
            finally:
                del error, first_failure
        return {name: values[name] for name in position}

    def _run_wave(
        self, nodes: list[Node], values: dict[str, Any]
    ) -> tuple[Node, BaseException] | None:
        """Run one wave; store the values; return the first failing node, if any."""
        with TaskGroup(name=self.graph.name) as group:
            tasks = [(node, group.spawn(getattr(self, node.op), node, values)) for node in nodes]
            for node, task in tasks:
                try:
                    values[node.name] = group.result(task)
                except BaseException as exc:
                    if task.error is not exc:
                        raise  # a deadline or an interrupt, not the node's own failure
                    # Nodes after this one in the wave are not needed: the group
                    # cancels or waits for them as it exits.
                    return node, exc
        return None

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
