"""Recursion through parallel regions goes about as deep under jit as in plain Python
(NOTE: [Deep on one thread, in order] in ``xcs._compiler._rt``): a thread that runs
items inline, one inside another, stops stacking XCS's frames once they would hold an
eighth of the recursion limit, and runs the regions it starts in order. Findings F6."""

from __future__ import annotations

import linecache
import sys
import threading
from typing import Any

import pytest

import xcs
from xcs._runtime._scheduler import helping


class Node:
    def __init__(self, kids: list[Node]) -> None:
        self.kids = kids


def chain(depth: int) -> Node:
    """A tree ``depth`` levels deep: each node has a deep child and a leaf."""
    node = Node([])
    for _ in range(depth):
        node = Node([node, Node([])])
    return node


def size(node: Node) -> int:
    return 1 + sum([size(kid) for kid in node.kids])


def _deepest(walk: Any) -> int:
    low, high = 1, sys.getrecursionlimit()
    while low < high:
        mid = (low + high + 1) // 2
        try:
            walk(chain(mid))
            low = mid
        except RecursionError:
            high = mid - 1
    return low


def test_a_tree_walk_goes_nearly_as_deep_on_its_first_call_as_plain_python() -> None:
    plain = _deepest(size)

    made = iter(range(10**6))

    def first_call(tree: Node) -> int:
        # A fresh jitted function each time: every call is a first call, whose regions
        # overlap optimistically (and so run their items inline, one inside another).
        source = "def size(node):\n    return 1 + sum([size(k) for k in node.kids])\n"
        filename = f"<deep-recursion-{next(made)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace: dict[str, Any] = {"__name__": __name__}
        exec(compile(source, filename, "exec"), namespace)
        return int(xcs.jit(namespace["size"])(tree))

    # Before: about 82 levels, plain Python about 497 (the limit of 1000).
    assert _deepest(first_call) >= plain * 0.8
    assert _deepest(xcs.jit(size)) >= plain * 0.8
    assert helping.depth == 0


def test_a_recursion_that_plain_python_cannot_finish_raises_recursion_error() -> None:
    def forever(node: Node) -> int:
        return 1 + sum([forever(kid) for kid in [node, node]])

    with pytest.raises(RecursionError):
        xcs.jit(forever)(Node([]))
    assert helping.depth == 0


def test_regions_still_overlap_near_the_top_of_a_recursion() -> None:
    """Three levels of a recursion, each region's items meeting at a barrier: only
    possible if they overlap (the cap is far below)."""
    barrier = threading.Barrier(3, timeout=10)

    def ask(level: int, i: int) -> int:
        if level == 2:
            barrier.wait()
        return i

    def expand(level: int) -> list[Any]:
        if level == 2:
            return [ask(level, i) for i in range(3)]
        return [expand(level + 1) for _ in range(1)]

    assert xcs.jit(expand)(0) == [[[0, 1, 2]]]
