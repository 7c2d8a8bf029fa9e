"""The IR of XCS: a DAG of named nodes with named dependencies.

One type serves two users. People build a ``Graph`` by hand (``xcs.Graph``) and run
it; the compiler builds the same type from a function's source to describe its plan,
which ``xcs.explain`` prints. A node's ``op`` names what it is, and the interpreter
has one method per op (``Interpreter.call`` runs ``op == "call"``).

Program order: a graph is read like the sequential program that calls its nodes one
after another in the order they were added (dependencies first, when a node was added
before one it depends on). That order decides which error is "first" when several
nodes fail, exactly as it would in the sequential program.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xcs.errors import ValidationError

__all__ = ["OPS", "Graph", "Node"]

# The ops a node may have. "call" runs ``target(*args, **kwargs)``; "input" is a value
# given to ``run``; the compiler's plans also use "region" (a parallel region of a
# function, whose ``target`` is its source text) and "site" (a call site in it).
OPS = ("input", "call", "region", "site")


@dataclass(eq=False)
class Node:
    """One node of a graph. Not constructed directly: use ``Graph.add``."""

    name: str
    op: str
    target: Callable[..., Any] | str | None
    args: tuple[str, ...] = ()
    kwargs: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def deps(self) -> tuple[str, ...]:
        """Names this node depends on, positional first, without repeats."""
        return tuple(dict.fromkeys((*self.args, *self.kwargs.values())))

    def format_call(self) -> str:
        """``target(arg, key=dep)`` as text."""
        target = self.target
        if callable(target):
            label = getattr(target, "__qualname__", None) or repr(target)
        else:
            label = str(target)
        params = [*self.args, *(f"{k}={v}" for k, v in self.kwargs.items())]
        return f"{label}({', '.join(params)})"

    def __repr__(self) -> str:
        return f"<Node {self.name}: {self.op} {self.format_call()}>"


class Graph:
    """An explicit DAG of callables with named dependencies, run concurrently.

    Execution is dataflow: a node starts on XCS's scheduler as soon as its own
    dependencies are done, beside whatever else is running, with no wave barrier.
    The result is what calling the nodes one after another would give, and so is the
    error: when nodes fail, the one raised is the failure the sequential program
    would have met first (the original exception), and nodes after it in program
    order that had not started never run. ``xcs.deadline`` bounds a run.

    Args:
        inputs: names of the values given to ``run``.
        name: a label for errors, traces and the rendering.

    Example::

        g = xcs.Graph(inputs=["question"], name="qa")
        g.add("fast", answer_fast, "question")
        g.add("careful", answer_careful, "question")
        g.add("judge", judge, "fast", "careful")
        g.run(question="Why is the sky blue?")["judge"]

    ``print(g)`` shows the nodes and their dependencies, grouped by depth into
    waves (a reading aid: execution does not wait for a wave to end)::

        graph qa: inputs (question), 3 nodes in 2 waves
          wave 1
            fast = answer_fast(question)
            careful = answer_careful(question)
          wave 2
            judge = judge(fast, careful)
    """

    def __init__(self, inputs: Iterable[str] = (), *, name: str = "graph") -> None:
        self.name = name
        self._nodes: dict[str, Node] = {}
        if isinstance(inputs, str):
            raise ValidationError(
                f"Graph(inputs=...) takes a list of names, got the string {inputs!r}; "
                f"write inputs=[{inputs!r}]"
            )
        for input_name in inputs:
            self._insert(Node(self._check_name(input_name), "input", None))

    # -- building ---------------------------------------------------------------

    def add(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: str,
        **kwargs: str,
    ) -> Node:
        """Add node ``name`` that computes ``fn(*args, **kwargs)`` from other nodes.

        Args:
            name: the node's unique name.
            fn: any callable.
            args: names of nodes or inputs whose values are passed positionally.
            kwargs: parameter name -> node or input name, passed by keyword.

        Returns:
            The new node.

        Raises:
            ValidationError: a duplicate or empty name, a non-callable ``fn``, or a
                dependency that is not a string. Dependencies that do not exist yet
                are allowed here and checked by ``lint`` (nodes may be added in any
                order).
        """
        self._check_name(name)
        if not callable(fn):
            raise ValidationError(
                f"node {name!r} of graph {self.name!r}: {fn!r} is not callable",
                nodes=(name,),
            )
        for dep in (*args, *kwargs.values()):
            if not isinstance(dep, str):
                raise ValidationError(
                    f"node {name!r} of graph {self.name!r}: dependencies are node names "
                    f"(strings), got {dep!r}",
                    nodes=(name,),
                )
        node = Node(name, "call", fn, tuple(args), dict(kwargs))
        self._insert(node)
        return node

    def add_node(self, node: Node) -> Node:
        """Add a prepared node (used by the compiler for its plans)."""
        self._check_name(node.name)
        if node.op not in OPS:
            raise ValidationError(f"unknown op {node.op!r} for node {node.name!r}")
        self._insert(node)
        return node

    def _check_name(self, name: object) -> str:
        if not isinstance(name, str) or not name:
            raise ValidationError(
                f"graph {self.name!r}: node names are non-empty strings, got {name!r}"
            )
        if name in self._nodes:
            kind = "an input" if self._nodes[name].op == "input" else "a node"
            raise ValidationError(
                f"graph {self.name!r} already has {kind} named {name!r}", nodes=(name,)
            )
        return name

    def _insert(self, node: Node) -> None:
        self._nodes[node.name] = node

    # -- reading ------------------------------------------------------------------

    @property
    def nodes(self) -> Mapping[str, Node]:
        """Every node, inputs included, in the order added."""
        return dict(self._nodes)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(n.name for n in self._nodes.values() if n.op == "input")

    def edges(self) -> list[tuple[str, str]]:
        """``(dependency, node)`` pairs, in program order."""
        return [(dep, name) for name in self.order() for dep in self._nodes[name].deps]

    def __len__(self) -> int:
        return sum(1 for n in self._nodes.values() if n.op != "input")

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    # -- checking -------------------------------------------------------------------

    def lint(self) -> None:
        """Check that every dependency exists and that there is no cycle.

        Raises:
            ValidationError: naming the node with an unknown dependency, or the nodes
                of a cycle in order (``a -> b -> a``); attribute ``nodes`` lists them.
        """
        self.order()

    def order(self) -> list[str]:
        """The nodes (not inputs) in program order: insertion order, except that a
        node comes after everything it depends on.

        Raises:
            ValidationError: an unknown dependency or a cycle (see ``lint``).
        """
        position = {name: i for i, name in enumerate(self._nodes)}
        missing = [
            (node.name, dep)
            for node in self._nodes.values()
            for dep in node.deps
            if dep not in self._nodes
        ]
        if missing:
            described = "; ".join(f"node {n!r} depends on unknown {d!r}" for n, d in missing)
            known_inputs = ", ".join(self.inputs) or "none"
            raise ValidationError(
                f"graph {self.name!r}: {described} (inputs: {known_inputs}; "
                f"declare inputs with Graph(inputs=[...]) or add the node)",
                nodes=tuple(dict.fromkeys(n for n, _ in missing)),
            )
        # Kahn's algorithm, always taking the earliest-added ready node.
        waiting = {name: len(node.deps) for name, node in self._nodes.items()}
        users: dict[str, list[str]] = {name: [] for name in self._nodes}
        for name, node in self._nodes.items():
            for dep in node.deps:
                users[dep].append(name)
        ready = [position[name] for name, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        names = list(self._nodes)
        ordered: list[str] = []
        while ready:
            name = names[heapq.heappop(ready)]
            if self._nodes[name].op != "input":
                ordered.append(name)
            for user in users[name]:
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(ready, position[user])
        if len(ordered) < len(self):
            cycle = self._find_cycle({n for n, c in waiting.items() if c > 0})
            raise ValidationError(
                f"graph {self.name!r} has a cycle: {' -> '.join(cycle)}",
                nodes=tuple(dict.fromkeys(cycle)),
            )
        return ordered

    def _find_cycle(self, stuck: set[str]) -> list[str]:
        # Every stuck node has a stuck dependency; walking dependencies from any of
        # them must come back to a node already seen.
        start = next(name for name in self._nodes if name in stuck)
        path: list[str] = []
        seen: dict[str, int] = {}
        name = start
        while name not in seen:
            seen[name] = len(path)
            path.append(name)
            name = next(dep for dep in self._nodes[name].deps if dep in stuck)
        cycle = path[seen[name] :]
        # Print in the direction data flows: a -> b means b depends on a.
        cycle.reverse()
        return [*cycle, cycle[0]]

    def waves(self) -> list[list[str]]:
        """Nodes grouped by depth: wave 1 needs only inputs, wave k needs wave k-1.

        Within a wave, nodes are in program order. A reading aid (``print(g)``): a run
        starts each node when its own dependencies are done, not wave by wave.
        """
        depth: dict[str, int] = {}
        waves: list[list[str]] = []
        for name in self.order():
            node = self._nodes[name]
            level = 1 + max(
                (depth.get(dep, 0) for dep in node.deps),
                default=0,
            )
            depth[name] = level
            if len(waves) < level:
                waves.extend([] for _ in range(level - len(waves)))
            waves[level - 1].append(name)
        return waves

    # -- running --------------------------------------------------------------------

    def run(self, **inputs: Any) -> dict[str, Any]:
        """Run every node; return ``{node name: value}`` for all nodes (not inputs).

        Raises:
            ValidationError: the graph is invalid (see ``lint``), an input is missing,
                or a value is given for a name that is not an input.
            ExecutionTimeout: an ``xcs.deadline`` expired.
            BaseException: the first node failure in program order, unwrapped.
        """
        from xcs._compiler._interpreter import Interpreter

        return Interpreter(self).run(inputs)

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        return self.run(**inputs)

    # -- rendering --------------------------------------------------------------------

    def render(self) -> str:
        """The readable text form shown by ``print(graph)``."""
        try:
            waves = self.waves()
        except ValidationError as exc:
            lines = [f"graph {self.name}: invalid ({exc.message})"]
            for node in self._nodes.values():
                if node.op != "input":
                    lines.append(f"  {node.name} = {node.format_call()}")
            return "\n".join(lines)
        count = len(self)
        lines = [
            f"graph {self.name}: inputs ({', '.join(self.inputs)}), "
            f"{count} node{'s' * (count != 1)} in {len(waves)} wave{'s' * (len(waves) != 1)}"
        ]
        for number, wave in enumerate(waves, 1):
            lines.append(f"  wave {number}")
            for name in wave:
                node = self._nodes[name]
                note = node.meta.get("note")
                suffix = f"  # {note}" if note else ""
                lines.append(f"    {name} = {node.format_call()}{suffix}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"<xcs.Graph {self.name!r}: {len(self.inputs)} inputs, {len(self)} nodes>"
