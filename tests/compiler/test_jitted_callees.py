"""A jitted function called from compiled code: the caller runs what the jit wrapper
would run, without the wrapper's frame. Recursion through ``@xcs.jit`` goes as deep as
plain Python, and ``stacklevel`` finds the same frames; whatever the wrapper decides
(its first call, code replaced in place, a ``functools.wraps`` copy) still holds."""

from __future__ import annotations

import functools
import sys
import threading
import warnings
from typing import Any

import xcs

TIMEOUT = 10.0


def _deepest(fn: Any) -> int:
    """The largest n for which ``fn(n)`` returns (recursion one frame per level)."""
    low, high = 1, sys.getrecursionlimit() + 10
    while low < high:
        mid = (low + high + 1) // 2
        try:
            fn(mid)
            low = mid
        except RecursionError:
            high = mid - 1
    return low


def depth_plain(n: int) -> int:
    return 0 if n == 0 else 1 + depth_plain(n - 1)


@xcs.jit
def depth(n: int) -> int:
    return 0 if n == 0 else 1 + depth(n - 1)


@xcs.jit
def even(n: int) -> bool:
    return True if n == 0 else odd(n - 1)


@xcs.jit
def odd(n: int) -> bool:
    return False if n == 0 else even(n - 1)


def even_plain(n: int) -> bool:
    return True if n == 0 else odd_plain(n - 1)


def odd_plain(n: int) -> bool:
    return False if n == 0 else even_plain(n - 1)


def test_recursion_through_a_jitted_function_is_as_deep_as_plain_python() -> None:
    plain = _deepest(depth_plain)
    assert depth(3) == 3  # the first call: through the wrapper
    # Before: every level was the wrapper's frame and the function's, half as deep.
    assert _deepest(depth) >= plain - 8
    assert (
        _deepest(lambda n: even(n) if n % 2 else not odd(n))
        >= _deepest(lambda n: even_plain(n) if n % 2 else not odd_plain(n)) - 8
    )


def warns(x: int) -> int:
    warnings.warn("old", DeprecationWarning, stacklevel=2)
    return x


jitted_warns = xcs.jit(warns)


def calls_plain(xs: list[int]) -> list[int]:
    return [warns(x) for x in xs]  # the line the warning names


def calls_jitted(xs: list[int]) -> list[int]:
    return [jitted_warns(x) for x in xs]  # the line the warning names


def test_a_jitted_callee_warns_at_its_callers_line_as_plain_python() -> None:
    def lines(fn: Any) -> list[tuple[str, int]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn([1, 2])
        return [(w.filename, w.lineno) for w in caught]

    def line_in(fn: Any) -> list[tuple[str, int]]:
        return [(__file__, fn.__code__.co_firstlineno + 1)] * 2

    assert lines(calls_plain) == line_in(calls_plain)
    lines(lambda xs: jitted_warns(xs[0]))  # its first call, installed through the wrapper
    # Called from compiled code, no wrapper frame stands between (from plain code it
    # does: docs/jit.md, Limits).
    assert lines(xcs.jit(calls_jitted)) == line_in(calls_jitted)


class Model:
    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.lock = threading.Lock()

    def __call__(self, x: Any) -> Any:
        with self.lock:
            self.calls.append(x)
        return x


model = Model()


def first(x: int) -> int:
    return model(x) + 1


def second(x: int) -> int:
    return model(x) + 2


jitted_first = xcs.jit(first)


@xcs.jit
def caller(xs: list[int]) -> list[int]:
    return [jitted_first(x) for x in xs]


def test_a_jitted_callee_whose_code_is_replaced_runs_its_new_code() -> None:
    original = first.__code__
    try:
        assert caller([1, 2]) == [2, 3]
        assert caller([1, 2]) == [2, 3]  # warm: the compiled caller reaches first directly
        first.__code__ = second.__code__
        assert caller([1, 2]) == [3, 4]
    finally:
        first.__code__ = original
    assert caller([1]) == [2]


def test_a_functools_wraps_copy_of_a_jitted_function_runs_its_own_body() -> None:
    seen: list[int] = []

    @functools.wraps(jitted_first)
    def logged(x: int) -> int:
        seen.append(x)
        return jitted_first(x) * 10

    @xcs.jit
    def uses(xs: list[int]) -> list[int]:
        return [logged(x) for x in xs]

    assert uses([1, 2]) == [20, 30]
    assert uses([3]) == [40]
    assert sorted(seen) == [1, 2, 3]


def test_a_jitted_method_called_from_compiled_code_is_bound_to_its_object() -> None:
    class Agent:
        def __init__(self, tag: str) -> None:
            self.tag = tag

        @xcs.jit
        def answer(self, q: str) -> str:
            return model(f"{self.tag}:{q}")

        def run(self, qs: list[str]) -> list[str]:
            return [self.answer(q) for q in qs]

    agents = [Agent("a"), Agent("b")]

    @xcs.jit
    def team(qs: list[str]) -> list[list[str]]:
        return [agent.run(qs) for agent in agents]

    expected = [["a:x", "a:y"], ["b:x", "b:y"]]
    assert team(["x", "y"]) == expected
    assert team(["x", "y"]) == expected


def test_explain_lists_a_jitted_callee_as_jitted() -> None:
    caller([5])
    assert "    first: jitted (xcs.explain shows its plan)" in xcs.explain(caller)


def step_plain(n: int) -> int:
    return 0 if n == 0 else 1 + via_plain(n - 1)


def via_plain(n: int) -> int:
    return step_plain(n)


@xcs.jit
def step(n: int) -> int:
    return 0 if n == 0 else 1 + via(n - 1)


def via(n: int) -> int:  # a plain helper between two calls of a jitted function
    return step(n)


def test_a_helper_that_only_calls_a_jitted_function_adds_no_frame() -> None:
    assert step(2) == 2
    assert _deepest(step) >= _deepest(step_plain) - 8
