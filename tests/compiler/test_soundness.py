"""Shapes of real code that once gave wrong answers under ``@xcs.jit`` (issue 14).

Each program runs plain, jitted as shipped (first call, fresh function) and jitted
under ``xcs.testing.force_overlap()``, where every region takes its concurrent path:
the three must agree on the value, the exception and the calls made.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import xcs
import xcs.testing

MODES = ["as shipped", "forced"]


def _mode(mode: str) -> contextlib.AbstractContextManager[None]:
    return xcs.testing.force_overlap() if mode == "forced" else contextlib.nullcontext()


def fetch(x: Any) -> Any:
    """A call that blocks (so that XCS would overlap it), returning its argument."""
    time.sleep(0.002)
    return x


def same(fn: Callable[..., Any], *args: Any, mode: str) -> Any:
    """``fn(*args)`` plain and, on a fresh copy, jitted: equal values or equal errors."""
    try:
        expected: Any = ("value", fn(*args))
    except Exception as exc:
        expected = ("error", type(exc), exc.args)
    fresh = type(fn)(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    fresh.__qualname__ = fn.__qualname__
    with _mode(mode):
        try:
            got: Any = ("value", xcs.jit(fresh)(*args))
        except Exception as exc:
            got = ("error", type(exc), exc.args)
    assert got == expected
    return expected


# -- 1. the function's own name and its class's name --------------------------------------


# Module-level functions: their own names are globals (a nested function's would be
# a closure cell, which never showed the bug).
@xcs.jit
def depth(tree: list[Any]) -> int:
    return 1 + max([depth(child) for child in tree], default=0)


@xcs.jit
def fact(n: int) -> int:
    if n <= 1:
        return 1
    a = fetch(n)
    b = fetch(n)
    return a * fact(n - 1) + b - n


@xcs.jit
def named(n: int) -> tuple[str, list[int]]:
    out = []
    for i in range(n):
        out.append(fetch(i))
    return named.__name__, out


@pytest.mark.parametrize("mode", MODES)
def test_recursion_and_the_function_s_own_name(mode: str) -> None:
    with _mode(mode):
        assert depth([[], [[]]]) == 3
        assert fact(5) == 120
        assert named(3) == ("named", [0, 1, 2])


class _Base:
    def parts(self) -> list[str]:
        return ["base"]


class _Child(_Base):
    tag = "child"

    @xcs.jit
    def parts(self) -> list[str]:
        xs = [fetch(i) for i in range(3)]
        return [*super(_Child, self).parts(), *map(str, xs), _Child.tag]  # noqa: UP008


@pytest.mark.parametrize("mode", MODES)
def test_a_method_reads_its_class_by_name(mode: str) -> None:
    with _mode(mode):
        assert _Child().parts() == ["base", "0", "1", "2", "child"]


# -- 2. accumulators reached through an alias ----------------------------------------------


def tally(groups: list[list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    get = counts.get
    for group in groups:
        for key in group:
            counts[key] = get(key, 0) + fetch(1)
    return counts


def pushes(data: list[int]) -> list[int]:
    cur: list[int] = []
    push = cur.append
    for x in data:
        push(fetch(x))
        push(len(cur))
    return cur


def escaped(data: list[int]) -> tuple[list[int], list[int]]:
    out: list[int] = []
    seen = out  # an alias read in the loop
    for x in data:
        out.append(fetch(x) + len(seen))
    return out, seen


@pytest.mark.parametrize("mode", MODES)
def test_an_accumulator_read_through_an_alias(mode: str) -> None:
    assert same(tally, [["a", "a", "b"], ["a"]], mode=mode) == ("value", {"a": 3, "b": 1})
    same(pushes, list(range(6)), mode=mode)
    same(escaped, list(range(6)), mode=mode)


def test_statistics_mean_is_exact_under_jit() -> None:
    import statistics

    data = [1.5, 2.25, 3.0, 4.125, 10.0]
    fresh = xcs.jit(statistics._sum)  # the shape of issue 14: groupby + an alias
    with xcs.testing.force_overlap():
        assert fresh(data) == statistics._sum(data)


# -- 3. groupby: groups must not be read ahead ---------------------------------------------


def _upload(key: str, group: Iterator[tuple[str, int]]) -> tuple[str, list[int]]:
    time.sleep(0.002)  # reads the group after it blocks
    return key, [value for _, value in group]


ROWS = [("a", 1), ("a", 2), ("b", 3), ("c", 4), ("c", 5), ("d", 6)]


def grouped_loop(rows: list[tuple[str, int]]) -> list[tuple[str, list[int]]]:
    out = []
    for key, group in itertools.groupby(rows, key=lambda r: r[0]):
        out.append(_upload(key, group))
    return out


def grouped_by_name(rows: list[tuple[str, int]]) -> Any:
    groups = itertools.groupby(rows, key=lambda r: r[0])
    out = []
    for key, group in groups:
        out.append(_upload(key, group))
    again = itertools.groupby(rows, key=lambda r: r[0])
    return out, [_upload(k, g) for k, g in again]


def grouped_comprehension(rows: list[tuple[str, int]]) -> Any:
    return [_upload(k, g) for k, g in itertools.groupby(rows, key=lambda r: r[0])]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("program", [grouped_loop, grouped_by_name, grouped_comprehension])
def test_groupby_groups_are_not_read_ahead(mode: str, program: Callable[..., Any]) -> None:
    kind, _ = same(program, ROWS, mode=mode)
    assert kind == "value"


# -- 4. effect-only calls and order-sensitive receivers ------------------------------------


class SlowStream(io.StringIO):
    """A stream whose writes block, as a socket's or a pipe's do."""

    def write(self, text: str) -> int:
        time.sleep(0.0005)
        return super().write(text)


@pytest.mark.parametrize("mode", MODES)
def test_json_dump_to_a_slow_stream_is_not_scrambled(mode: str) -> None:
    obj = {"a": [1, 2, 3], "b": {"c": "d"}, "e": list(range(30)), "f": "x" * 5}
    plain = SlowStream()
    json.dump(obj, plain)
    jitted = SlowStream()
    with _mode(mode):
        xcs.jit(json.dump)(obj, jitted)
    assert jitted.getvalue() == plain.getvalue()


def write_all(chunks: list[str], stream: Any) -> None:
    for chunk in chunks:
        stream.write(fetch(chunk))


def write_values(chunks: list[str], stream: Any) -> list[int]:
    return [stream.write(fetch(chunk)) for chunk in chunks]


def draws(n: int, rng: random.Random) -> list[float]:
    return [rng.random() + fetch(0) for _ in range(n)]


def aliased_push(data: list[int]) -> list[int]:
    cur: list[int] = []
    push = cur.append
    [push(fetch(x)) for x in data]
    return cur


def popped(stack: list[int]) -> list[int]:
    return [stack.pop() + fetch(0) for _ in range(len(stack))]


@pytest.mark.parametrize("mode", MODES)
def test_calls_on_order_sensitive_receivers_stay_in_order(mode: str) -> None:
    chunks = [f"<{i}>" for i in range(12)]
    for program in (write_all, write_values):
        plain, jitted = SlowStream(), SlowStream()
        program(chunks, plain)
        with _mode(mode):
            xcs.jit(program)(chunks, jitted)
        assert jitted.getvalue() == plain.getvalue()
    with _mode(mode):
        assert xcs.jit(draws)(8, random.Random(7)) == draws(8, random.Random(7))
    same(aliased_push, list(range(10)), mode=mode)
    with _mode(mode):
        assert xcs.jit(popped)(list(range(10))) == list(range(9, -1, -1))


@pytest.mark.parametrize("mode", MODES)
def test_explain_says_why_an_effect_only_call_keeps_a_loop_in_order(mode: str) -> None:
    jitted = xcs.jit(write_all)
    with _mode(mode):
        jitted(["a"], SlowStream())
    assert "stream.write() only for its effect" in xcs.explain(jitted)


# -- 5. attribute read-modify-write --------------------------------------------------------


class Box:
    def __init__(self) -> None:
        self.v = 0
        self.items: list[int] = []


def attribute_sum(xs: list[int]) -> int:
    box = Box()
    for x in xs:
        box.v = box.v + fetch(x)
    return box.v


def attribute_concat(xs: list[int]) -> list[int]:
    box = Box()
    for x in xs:
        box.items = box.items + [fetch(x)]  # noqa: RUF005 - the shape under test
    return box.items


def last_writer(xs: list[int]) -> int:
    box = Box()
    for x in xs:
        box.v = fetch(x)
    return box.v


@pytest.mark.parametrize("mode", MODES)
def test_attribute_read_modify_write_keeps_every_update(mode: str) -> None:
    xs = list(range(8))
    assert same(attribute_sum, xs, mode=mode) == ("value", 28)
    assert same(attribute_concat, xs, mode=mode) == ("value", xs)
    assert same(last_writer, xs, mode=mode) == ("value", 7)
    assert "stores into box.v" in xcs.explain(xcs.jit(attribute_sum))


# -- 6. one iterator, two statements -------------------------------------------------------


def two_readers(xs: Any) -> tuple[list[Any], Any]:
    it = iter(xs)
    a = [fetch(x) for x in it]
    b = fetch(sum(1 for _ in it))
    return a, b


def halves(xs: Any) -> tuple[list[Any], list[Any]]:
    it = iter(xs)
    a = fetch([next(it) for _ in range(3)])
    b = fetch(list(it))
    return a, b


@pytest.mark.parametrize("mode", MODES)
def test_two_statements_reading_one_iterator_take_turns(mode: str) -> None:
    assert same(two_readers, range(10), mode=mode) == ("value", (list(range(10)), 0))
    assert same(halves, range(7), mode=mode) == ("value", ([0, 1, 2], [3, 4, 5, 6]))


# -- still parallel: the fixes must not cost the cases that are safe -----------------------


def test_a_fresh_accumulator_still_overlaps_from_the_first_call() -> None:
    barrier = threading.Barrier(4, timeout=10)

    def call(x: int) -> int:
        barrier.wait()
        return x * 2

    @xcs.jit
    def collect(xs: list[int]) -> tuple[list[int], dict[int, int], int]:
        out, by, total = [], {}, 0
        for x in xs:
            y = call(x)
            out.append(y)
            by[x] = y
            total += y
        return out, by, total

    with xcs.testing.force_overlap():
        assert collect([1, 2, 3, 4]) == ([2, 4, 6, 8], {1: 2, 2: 4, 3: 6, 4: 8}, 20)


# -- 14. the wrapper's frame -------------------------------------------------------------


def test_the_wrapper_frame_belongs_to_the_function_s_module_and_file() -> None:
    import collections
    import sys
    import warnings

    point = xcs.jit(collections.namedtuple)("Point", "x y")
    assert point.__module__ != "xcs._compiler._jit"
    assert point(1, 2).x == 1

    @xcs.jit
    def careful(x: int) -> int:
        warnings.warn("careful", stacklevel=2)
        return x

    for call in (1, 2):  # the first call compiles; both name this file
        with pytest.warns(UserWarning, match="careful") as caught:
            careful(call)
        assert [w.filename for w in caught] == [__file__]

    @xcs.jit
    def caller_module() -> str:
        return str(sys._getframe(1).f_globals["__name__"])

    assert caller_module() == __name__
