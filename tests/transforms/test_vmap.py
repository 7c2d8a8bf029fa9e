"""xcs.vmap against a plain loop: structures, axes, errors, call counts, streaming."""

from __future__ import annotations

import collections
import re
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

import xcs

# ---------------------------------------------------------------------------
# The reference: a plain loop over items built by hand, results stacked by hand


class Batch(BaseModel):
    xs: list[int]
    tags: list[str]


class Pair(NamedTuple):
    left: Any
    right: Any


def _arg(kind: str, n: int, seed: int) -> tuple[Any, Any, Any]:
    """(argument, its in_axes entry, item i -> the argument of call i)."""
    ints = [seed * 100 + i for i in range(n)]
    if kind == "list":
        return ints, 0, lambda i: ints[i]
    if kind == "tuple":
        return tuple(ints), 0, lambda i: ints[i]
    if kind == "range":
        r = range(seed, seed + n)
        return r, 0, lambda i: r[i]
    if kind == "dict":
        tags = [f"t{seed}.{i}" for i in range(n)]
        return {"a": ints, "b": tags}, 0, lambda i: {"a": ints[i], "b": tags[i]}
    if kind == "dict_partial":
        value = {"a": ints, "const": [seed, seed]}
        return value, {"a": 0}, lambda i: {"a": ints[i], "const": [seed, seed]}
    if kind == "nested":
        value = {"outer": {"inner": ints}, "same": seed}
        axes = {"outer": 0, "same": None}
        return value, axes, lambda i: {"outer": {"inner": ints[i]}, "same": seed}
    if kind == "model":
        tags = [f"m{i}" for i in range(n)]
        return Batch(xs=ints, tags=tags), 0, lambda i: {"xs": ints[i], "tags": tags[i]}
    if kind == "pair":
        return (ints, seed), (0, None), lambda i: (ints[i], seed)
    assert kind == "broadcast"
    value = [seed, "whole"]
    return value, None, lambda i: value


MAPPED = ["list", "tuple", "range", "dict", "dict_partial", "nested", "model", "pair"]


def _stack(results: list[Any]) -> Any:
    if not results:
        return []
    first = results[0]
    if isinstance(first, dict):
        return {k: _stack([r[k] for r in results]) for k in first}
    if isinstance(first, tuple):
        parts = [_stack([r[j] for r in results]) for j in range(len(first))]
        return type(first)(*parts) if hasattr(first, "_fields") else tuple(parts)
    return list(results)


def _make_fn(shape: str) -> Any:
    def fn(*args: Any) -> Any:
        text = repr(args)
        if shape == "plain":
            return text
        if shape == "dict":
            return {"text": text, "n": len(args), "nested": {"first": args[0]}}
        if shape == "tuple":
            return (text, len(args))
        if shape == "named":
            return Pair(text, {"k": len(args)})
        return [text, text]  # a list result is a leaf: a list of lists

    return fn


@given(
    n=st.integers(0, 12),
    kinds=st.lists(st.sampled_from([*MAPPED, "broadcast"]), min_size=1, max_size=4).filter(
        lambda ks: any(k != "broadcast" for k in ks)
    ),
    shape=st.sampled_from(["plain", "dict", "tuple", "named", "list"]),
    max_workers=st.sampled_from([None, 1, 3, 100]),
)
def test_vmap_equals_a_plain_loop(n: int, kinds: list[str], shape: str, max_workers: int) -> None:
    parts = [_arg(kind, n, seed) for seed, kind in enumerate(kinds)]
    args = [p[0] for p in parts]
    in_axes = tuple(p[1] for p in parts)
    fn = _make_fn(shape)
    expected = _stack([fn(*(p[2](i) for p in parts)) for i in range(n)])
    got = xcs.vmap(fn, in_axes=in_axes, max_workers=max_workers)(*args)
    assert got == expected
    assert type(got) is type(expected)


@given(
    n=st.integers(0, 12),
    kinds=st.lists(st.sampled_from(["list", "broadcast"]), min_size=1, max_size=3).filter(
        lambda ks: "list" in ks
    ),
    lazy=st.lists(st.booleans(), min_size=3, max_size=3),
    shape=st.sampled_from(["plain", "dict", "tuple"]),
)
def test_lazy_batches_yield_what_a_plain_loop_returns(
    n: int, kinds: list[str], lazy: list[bool], shape: str
) -> None:
    parts = [_arg(kind, n, seed) for seed, kind in enumerate(kinds)]
    args = [
        iter(p[0]) if kind == "list" and is_lazy else p[0]
        for p, kind, is_lazy in zip(parts, kinds, lazy, strict=False)
    ]
    in_axes = tuple(p[1] for p in parts)
    fn = _make_fn(shape)
    expected = [fn(*(p[2](i) for p in parts)) for i in range(n)]
    got = xcs.vmap(fn, in_axes=in_axes, max_workers=3)(*args)
    if any(isinstance(a, Iterator) for a in args):
        assert not isinstance(got, list)
        assert list(got) == expected  # per-item results, not stacked
    else:
        assert got == _stack(expected)


@given(n=st.integers(0, 30), kind=st.sampled_from(["list", "dict", "model"]))
def test_one_axis_for_every_argument(n: int, kind: str) -> None:
    arg, _, item = _arg(kind, n, 1)
    fn = _make_fn("plain")
    assert xcs.vmap(fn)(arg) == [fn(item(i)) for i in range(n)]


def test_any_mapping_gives_a_plain_dict_per_item() -> None:
    batch = collections.defaultdict(list, {"a": [1, 2], "b": [3, 4]})
    assert xcs.vmap(lambda d: d)(batch) == {"a": [1, 2], "b": [3, 4]}
    assert xcs.vmap(lambda d: type(d).__name__)(batch) == ["dict", "dict"]


def test_keyword_arguments_are_broadcast() -> None:
    def fn(x: int, *, scale: int) -> int:
        return x * scale

    assert xcs.vmap(fn)([1, 2, 3], scale=10) == [10, 20, 30]


def test_the_mapped_function_keeps_its_name_and_doc() -> None:
    def grade(x: int) -> int:
        """Grade one answer."""
        return x

    mapped = xcs.vmap(grade)
    assert mapped.__name__ == "grade"
    assert mapped.__doc__ == "Grade one answer."
    assert "grade" in repr(mapped)


# ---------------------------------------------------------------------------
# Errors: as the plain loop, with call counts


class ItemError(Exception):
    pass


@given(
    n=st.integers(1, 25),
    failing=st.sets(st.integers(0, 24), max_size=4),
    max_workers=st.sampled_from([1, 2, 8]),
)
def test_strict_errors_raise_the_first_failure_in_input_order(
    n: int, failing: set[int], max_workers: int
) -> None:
    calls: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def fn(i: int) -> int:
        with lock:
            calls[i] += 1
        if i in failing:
            raise ItemError("item", i)
        return i * i

    first = min((i for i in failing if i < n), default=None)
    mapped = xcs.vmap(fn, max_workers=max_workers)
    if first is None:
        assert mapped(list(range(n))) == [i * i for i in range(n)]
        assert calls == collections.Counter(range(n))
        return
    with pytest.raises(ItemError) as info:
        mapped(list(range(n)))
    assert info.value.args == ("item", first)
    assert f"item {first} of the batch" in "\n".join(info.value.__notes__)
    # Every item before the failure ran exactly once; nothing ran twice; items after
    # it may have started (at most a window's worth) and their results were dropped.
    assert all(calls[i] == 1 for i in range(first + 1))
    assert max(calls.values()) == 1
    assert sum(1 for i in calls if i > first) <= max_workers


@given(n=st.integers(0, 25), failing=st.sets(st.integers(0, 24), max_size=6))
def test_collect_mode_puts_each_exception_in_its_place(n: int, failing: set[int]) -> None:
    calls: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def fn(i: int) -> dict[str, int]:
        with lock:
            calls[i] += 1
        if i in failing:
            raise ItemError("item", i)
        return {"sq": i * i, "i": i}

    got = xcs.vmap(fn, errors="collect", max_workers=4)(list(range(n)))
    assert calls == collections.Counter(range(n))
    if n == 0:
        assert got == []
        return
    if all(i in failing for i in range(n)):
        assert [type(e) for e in got] == [ItemError] * n
        return
    for i in range(n):
        for key, value in (("sq", i * i), ("i", i)):
            cell = got[key][i]
            if i in failing:
                assert isinstance(cell, ItemError)
                assert cell.args == ("item", i)
            else:
                assert cell == value


def test_collect_mode_on_a_lazy_batch_yields_exceptions_in_place() -> None:
    def fn(i: int) -> int:
        if i % 3 == 0:
            raise ItemError(i)
        return i

    out = list(xcs.vmap(fn, errors="collect")(iter(range(7))))
    assert [type(x) if isinstance(x, Exception) else x for x in out] == [
        ItemError,
        1,
        2,
        ItemError,
        4,
        5,
        ItemError,
    ]


def test_keyboard_interrupt_stops_even_a_collecting_batch() -> None:
    def fn(i: int) -> int:
        if i == 3:
            raise KeyboardInterrupt
        return i

    with pytest.raises(KeyboardInterrupt):
        xcs.vmap(fn, errors="collect", max_workers=1)(list(range(10)))


def test_a_deadline_bounds_a_batch() -> None:
    release = threading.Event()

    def fn(i: int) -> int:
        release.wait(30)
        return i

    try:
        with pytest.raises(xcs.ExecutionTimeout), xcs.deadline(0.2):
            xcs.vmap(fn, max_workers=4)(list(range(100)))
    finally:
        release.set()


# ---------------------------------------------------------------------------
# Bad input: clear errors naming the problem


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: xcs.vmap(lambda x, y: x)([1, 2], [1, 2, 3]), "x has 2, y has 3"),
        (lambda: xcs.vmap(lambda x: x)("abc"), "strings are not mapped"),
        (lambda: xcs.vmap(lambda x: x)(5), "int, which has no leading axis"),
        (lambda: xcs.vmap(lambda x: x)({1, 2}), "no order"),
        (lambda: xcs.vmap(lambda x: x, in_axes=None)([1]), "no argument is mapped"),
        (lambda: xcs.vmap(lambda x: x)(), "no argument is mapped"),
        (lambda: xcs.vmap(lambda x, y: x, in_axes=(0,))([1], [2]), "1 entries for 2"),
        (lambda: xcs.vmap(lambda x: x, in_axes=1), "an axis is 0"),
        (lambda: xcs.vmap(lambda x: x, in_axes="rows"), "in_axes takes 0, None"),
        (lambda: xcs.vmap(lambda x: x, in_axes=((0, 0),))([1, 2, 3]), "structure of in_axes"),
        (lambda: xcs.vmap(lambda x: x, in_axes=({"z": 0},))({"a": [1]}), "names ['z']"),
        (lambda: xcs.vmap(lambda d: d)({"a": [1, 2], "b": [1]}), "d['a'] has 2, d['b'] has 1"),
        (lambda: xcs.vmap(lambda x: x, errors="ignore"), "errors='ignore'"),
        (lambda: xcs.vmap(lambda x: x, max_workers=0), "max_workers must be"),
        (lambda: xcs.vmap(42), "takes a callable"),
        (
            lambda: xcs.vmap(lambda x: {"a": 1} if x else (1,))([True, False]),
            "item 1 returned a tuple of 1",
        ),
    ],
)
def test_bad_input_is_a_validation_error_naming_it(call: Any, message: str) -> None:
    with pytest.raises(xcs.ValidationError, match=re.escape(message)):
        call()


def test_lazy_batches_of_different_lengths_fail_after_the_common_items() -> None:
    def fn(x: int, y: int) -> int:
        return x + y

    out = xcs.vmap(fn)(iter(range(3)), iter(range(5)))
    assert next(out) == 0
    with pytest.raises(xcs.ValidationError, match="x ended after 3 items, y has more"):
        list(out)
    with pytest.raises(xcs.ValidationError, match="ended after 2 items"):
        list(xcs.vmap(fn)([1, 2, 3], iter(range(2))))


# ---------------------------------------------------------------------------
# Concurrency and streaming


def test_max_workers_items_run_at_once_and_never_more() -> None:
    width = 6
    barrier = threading.Barrier(width, timeout=60)
    lock = threading.Lock()
    in_flight = peak = 0

    def fn(i: int) -> int:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            if i < width:
                barrier.wait()  # only passes if `width` items are in flight together
            return i
        finally:
            with lock:
                in_flight -= 1

    assert xcs.vmap(fn, max_workers=width)(list(range(40))) == list(range(40))
    assert peak == width


def test_more_workers_than_the_shared_pool_get_a_pool_of_their_own() -> None:
    width = 80  # the shared pool has 64 threads
    barrier = threading.Barrier(width, timeout=60)

    def fn(i: int) -> int:
        barrier.wait()
        return i

    assert xcs.vmap(fn, max_workers=width)(list(range(width))) == list(range(width))


def test_a_million_item_generator_streams_in_a_bounded_window() -> None:
    window = 8
    pulled = 0

    def items() -> Iterator[int]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield i

    results = xcs.vmap(lambda x: x + 1, max_workers=window)(items())
    assert not isinstance(results, list)  # lazy in, lazy out
    consumed = ahead = 0
    total = 0
    for value in results:
        consumed += 1
        ahead = max(ahead, pulled - consumed)
        total += value
    assert consumed == 1_000_000
    assert total == sum(range(1, 1_000_001))
    assert ahead <= window


def test_streaming_memory_does_not_grow_with_the_input() -> None:
    def peak_for(n: int) -> int:
        tracemalloc.start()
        try:
            for _ in xcs.vmap(lambda x: str(x) * 10, max_workers=8)(iter(range(n))):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak_for(2_000), peak_for(100_000)
    # 50x the items; a collected result would take ~10 MB more. Allow slack for
    # allocator noise, not for growth.
    assert large < small + 512 * 1024, (small, large)


def test_closing_a_lazy_result_cancels_what_has_not_started() -> None:
    started: list[int] = []

    def fn(i: int) -> int:
        started.append(i)
        return i

    out = xcs.vmap(fn, max_workers=4)(iter(range(1_000)))
    assert [next(out) for _ in range(3)] == [0, 1, 2]
    out.close()
    assert len(started) <= 3 + 4 + 1


# ---------------------------------------------------------------------------
# Progress bars


def test_progress_is_quiet_when_not_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert xcs.vmap(lambda x: x, progress=True)([1, 2, 3]) == [1, 2, 3]
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_progress_bar_counts_every_item(monkeypatch: pytest.MonkeyPatch) -> None:
    import tqdm

    bars: list[Any] = []

    class Recording(tqdm.tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            assert kwargs["disable"] is None  # tqdm decides: quiet unless a TTY
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.counted = 0
            bars.append(self)

        def update(self, n: float | None = 1) -> bool | None:
            self.counted += int(n or 0)
            return super().update(n)

    monkeypatch.setattr(tqdm, "tqdm", Recording)
    xcs.vmap(lambda x: x, progress=True)(list(range(17)))
    assert bars[-1].total == 17
    assert bars[-1].counted == 17


def test_progress_without_tqdm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(xcs.ExtraNotInstalledError, match=r"xcs-jit\[progress\]") as info:
        xcs.vmap(lambda x: x, progress=True)
    assert info.value.extra == "progress"
    assert isinstance(info.value, ImportError)


def test_an_exception_whose_notes_are_not_a_list_is_raised_unchanged() -> None:
    class Frozen(Exception):
        def __init__(self, i: int) -> None:
            super().__init__(i)
            self.__notes__ = ("the user's",)  # add_note would raise TypeError

    errors: list[Frozen] = []

    def fn(i: int) -> int:
        if i == 3:
            errors.append(Frozen(i))
            raise errors[-1]
        return i

    with pytest.raises(Frozen) as caught:
        xcs.vmap(fn)(list(range(6)))
    assert caught.value is errors[0]
    assert caught.value.__notes__ == ("the user's",)


def test_a_failing_item_gets_one_note_and_nested_batches_the_innermost() -> None:
    def leaf(i: int) -> int:
        if i == 2:
            raise ValueError(i)
        return i

    with pytest.raises(ValueError) as caught:
        xcs.vmap(leaf)(list(range(4)))
    assert caught.value.__notes__ == ["xcs: raised by item 2 of the batch mapped over leaf"]

    def row(j: int) -> list[int]:
        return xcs.vmap(leaf)(list(range(4)))

    with pytest.raises(ValueError) as caught:
        xcs.vmap(row)(list(range(3)))
    assert caught.value.__notes__ == ["xcs: raised by item 2 of the batch mapped over leaf"]
