"""Forked statements run in dataflow order (DESIGN §1.11, issue 15).

A statement that reads the value of an earlier forked statement starts when that
statement is done, not when every earlier one is; a later independent statement is
not held back by it. Barriers prove the overlap: each test below deadlocks (its
barrier times out) if the owner waits for a statement's inputs before spawning on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import xcs
import xcs.testing

TIMEOUT = 10.0
MODES = ["as shipped", "forced"]


def _run(mode: str, fn: Any, *args: Any) -> Any:
    if mode == "forced":
        with xcs.testing.force_overlap():
            return fn(*args)
    return fn(*args)


@pytest.mark.parametrize("mode", MODES)
def test_a_statement_starts_when_its_own_inputs_are_ready(mode: str) -> None:
    meet = threading.Barrier(2, timeout=TIMEOUT)
    calls: list[str] = []

    def slow(x: int) -> int:
        calls.append("slow")
        meet.wait()  # returns only once h is in flight too
        return x * 2

    def f(x: int) -> int:
        calls.append("f")
        return x + 1

    def h(a: int) -> int:
        calls.append("h")
        meet.wait()
        return a * 10

    @xcs.jit
    def run(x: int) -> tuple[int, int, int]:
        b = slow(x)  # still running when c starts: c needs only a
        a = f(x)
        c = h(a)
        return a, b, c

    assert _run(mode, run, 1) == (2, 2, 20)
    assert sorted(calls) == ["f", "h", "slow"]


@pytest.mark.parametrize("mode", MODES)
def test_a_later_independent_statement_is_not_held_back(mode: str) -> None:
    meet = threading.Barrier(2, timeout=TIMEOUT)

    def f(x: int) -> int:
        meet.wait()  # returns only once k is in flight: k must not wait for h's input
        return x + 1

    def h(a: int) -> int:
        return a * 10

    def k(x: int) -> int:
        meet.wait()
        return -x

    @xcs.jit
    def run(x: int) -> tuple[int, int, int]:
        a = f(x)
        c = h(a)
        d = k(x)
        return a, c, d

    assert _run(mode, run, 1) == (2, 20, -1)
    assert "r0.1 = line" in xcs.explain(run)  # c, in the wave after a


@pytest.mark.parametrize("mode", MODES)
def test_a_statement_whose_input_failed_never_starts(mode: str) -> None:
    calls: list[str] = []

    def f(x: int) -> int:
        calls.append("f")
        raise ValueError("f", x)

    def h(a: int) -> int:
        calls.append("h")
        return a

    def k(x: int) -> int:
        calls.append("k")
        return x

    def run(x: int) -> tuple[int, int, int]:
        a = f(x)
        c = h(a)
        d = k(x)
        return a, c, d

    with pytest.raises(ValueError) as plain:
        run(1)
    plain_calls, calls[:] = list(calls), []
    with pytest.raises(ValueError) as jitted:
        _run(mode, xcs.jit(run), 1)
    assert jitted.value.args == plain.value.args == ("f", 1)
    assert "h" not in calls  # its input failed: it never starts
    assert plain_calls == ["f"]


@pytest.mark.parametrize("mode", MODES)
def test_a_statement_after_a_known_failure_never_starts(mode: str) -> None:
    failed = threading.Event()
    calls: list[str] = []

    def boom(x: int) -> int:
        calls.append("boom")
        failed.set()
        raise KeyError(x)

    def f(x: int) -> int:
        calls.append("f")
        failed.wait(TIMEOUT)
        time.sleep(0.05)  # the failure is recorded by then
        return x

    def h(a: int) -> int:
        calls.append("h")
        return a

    @xcs.jit
    def run(x: int) -> tuple[int, int, int]:
        b = boom(x)
        a = f(x)
        c = h(a)  # after boom in program order: never starts once boom failed
        return a, b, c

    with pytest.raises(KeyError) as caught:
        _run(mode, run, 7)
    assert caught.value.args == (7,)
    assert "h" not in calls


@pytest.mark.parametrize("mode", MODES)
def test_unpacked_and_rebound_names_keep_their_values(mode: str) -> None:
    def f(x: int) -> tuple[int, int]:
        time.sleep(0.002)
        return x, x + 1

    def g(x: int) -> int:
        time.sleep(0.001)
        return x * 3

    def run(x: int) -> tuple[int, ...]:
        a, b = f(x)
        c = g(a)
        a = g(x)
        d = g(a + c)
        e = g(b)
        return a, b, c, d, e

    assert _run(mode, xcs.jit(run), 2) == run(2)


@pytest.mark.parametrize("mode", MODES)
def test_async_statements_run_in_dataflow_order(mode: str) -> None:
    async def main() -> tuple[int, int, int]:
        meet = asyncio.Barrier(2)

        async def f(x: int) -> int:
            await asyncio.wait_for(meet.wait(), TIMEOUT)
            return x + 1

        async def h(a: int) -> int:
            return a * 10

        async def k(x: int) -> int:
            await asyncio.wait_for(meet.wait(), TIMEOUT)
            return -x

        @xcs.jit
        async def run(x: int) -> tuple[int, int, int]:
            a = await f(x)
            c = await h(a)
            d = await k(x)
            return a, c, d

        result: tuple[int, int, int] = await run(1)
        return result

    assert _run(mode, asyncio.run, main()) == (2, 20, -1)
