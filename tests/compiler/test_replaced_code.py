"""A function whose ``__code__`` is replaced in place (IPython's ``%autoreload`` does
that to every function of a module it reloads) runs its new code under jit, as plain
Python does: nothing compiled or learned for the old code is used for the new
(NOTE: [Cached on the function] in ``_rt``). Findings F8 of the call-tree suite:
jit kept running the old compiled form, a stale answer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import xcs

TIMEOUT = 10.0


class Model:
    """Counts the calls in flight; calls meet at a barrier when one is set."""

    def __init__(self, parties: int | None = None) -> None:
        self.barrier = threading.Barrier(parties, timeout=TIMEOUT) if parties else None
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def __call__(self, x: Any) -> Any:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.barrier is not None:
                self.barrier.wait()
            time.sleep(0.001)
            return x
        finally:
            with self.lock:
                self.now -= 1


model = Model()


def double(x: int) -> int:
    return model(x) * 2


def triple(x: int) -> int:
    return model(x) * 3


def by_two(xs: list[int]) -> list[int]:
    return [double(x) for x in xs]


def by_three(xs: list[int]) -> list[int]:
    return [triple(x) for x in xs]


def entry(xs: list[int]) -> list[int]:
    return helper(xs)


def helper(xs: list[int]) -> list[int]:
    return [double(x) for x in xs]


@pytest.fixture
def restore() -> Iterator[None]:
    saved = {fn: fn.__code__ for fn in (helper, entry, by_two)}
    yield
    for fn, code in saved.items():
        fn.__code__ = code


@pytest.mark.usefixtures("restore")
def test_a_callee_whose_code_is_replaced_runs_its_new_code() -> None:
    jitted = xcs.jit(entry)
    assert jitted([1, 2]) == entry([1, 2]) == [2, 4]
    helper.__code__ = by_three.__code__
    assert jitted([1, 2]) == entry([1, 2]) == [3, 6]
    helper.__code__ = by_two.__code__
    assert jitted([1, 2]) == entry([1, 2]) == [2, 4]


@pytest.mark.usefixtures("restore")
def test_a_jitted_function_whose_code_is_replaced_runs_its_new_code() -> None:
    jitted = xcs.jit(by_two)
    assert jitted([1, 2]) == [2, 4]
    by_two.__code__ = by_three.__code__
    assert jitted([1, 2]) == by_two([1, 2]) == [3, 6]


async def a_double(x: int) -> int:
    return x * 2


async def a_triple(x: int) -> int:
    return x * 3


async def async_entry(xs: list[int]) -> list[int]:
    return [await a_double(x) for x in xs]


async def async_by_three(xs: list[int]) -> list[int]:
    return [await a_triple(x) for x in xs]


def test_an_async_jitted_function_whose_code_is_replaced_runs_its_new_code() -> None:
    jitted = xcs.jit(async_entry)
    saved = async_entry.__code__
    try:
        assert asyncio.run(jitted([1, 2])) == [2, 4]
        async_entry.__code__ = async_by_three.__code__
        assert asyncio.run(jitted([1, 2])) == asyncio.run(async_entry([1, 2])) == [3, 6]
    finally:
        async_entry.__code__ = saved


@xcs.sequential
def save(x: int) -> int:
    return model(x)


def saves_each(xs: list[int]) -> list[int]:
    return [save(x) for x in xs]


def calls_through(xs: list[int]) -> list[int]:
    return worker(xs)


def worker(xs: list[int]) -> list[int]:
    return [model(x) for x in xs]


def test_what_was_learned_of_the_old_code_is_not_used_for_the_new() -> None:
    """The new code reaches an ``@xcs.sequential`` function: its region stays in
    order, though the old code's region overlapped."""
    global model
    saved = worker.__code__
    try:
        model = Model(4)  # 4 calls in flight at once, or no return
        with xcs.testing.force_overlap():
            jitted = xcs.jit(calls_through)
            assert jitted([1, 2, 3, 4]) == [1, 2, 3, 4]
        assert model.peak == 4
        worker.__code__ = saves_each.__code__
        model = Model()
        with xcs.testing.force_overlap():
            assert jitted([1, 2, 3, 4]) == [1, 2, 3, 4]
        assert model.peak == 1
    finally:
        worker.__code__ = saved
        model = Model()
