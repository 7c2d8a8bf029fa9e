"""``@xcs.jit`` on ``async def``: overlap per pattern, windows, errors, cancellation,
deadlines, adaptivity, sync calls and fallbacks (DESIGN §1, point 10).

Overlap is proven with ``asyncio.Barrier``: N calls that each wait at a barrier for N
parties can only all return if they run at the same time (in order, the first would
wait forever; a timeout turns that into a failure). Every test runs its coroutine in
asyncio debug mode, with an exception handler that records anything the loop reports
(a task exception never retrieved, a task destroyed while pending) and a check that
no task is left when the jitted call returns.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import xcs

BARRIER_TIMEOUT = 30.0  # generous: the machine may be very busy


def run_checked(main: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``main()`` in a new loop in debug mode; fail on anything the loop reports
    and on tasks left behind."""
    reported: list[dict[str, Any]] = []

    async def checked() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: reported.append(ctx))
        try:
            return await main()
        finally:
            left = asyncio.all_tasks() - {asyncio.current_task()}
            assert not left, f"tasks left pending: {left}"
            gc.collect()
            await asyncio.sleep(0)

    result = asyncio.run(checked(), debug=True)
    gc.collect()
    assert not reported, f"the event loop reported: {reported}"
    return result


class Calls:
    """Async callees that record what started, what finished, what was cancelled,
    and how many ran at once."""

    def __init__(self, parties: int = 0) -> None:
        self.barrier = asyncio.Barrier(parties) if parties else None
        self.started: list[Any] = []
        self.finished: list[Any] = []
        self.cancelled: list[Any] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail: dict[Any, float] = {}  # item -> seconds before it raises
        self.delay = 0.002
        self.gate: asyncio.Event | None = None

    async def __call__(self, x: Any) -> Any:
        self.started.append(x)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if x in self.fail:
                await asyncio.sleep(self.fail[x])
                raise ValueError(x)
            await asyncio.sleep(self.delay)  # waits: the region is worth overlapping
            if self.gate is not None:
                await self.gate.wait()
            if self.barrier is not None:
                async with asyncio.timeout(BARRIER_TIMEOUT):
                    await self.barrier.wait()
            self.finished.append(x)
            return x * 10
        except asyncio.CancelledError:
            self.cancelled.append(x)
            raise
        finally:
            self.in_flight -= 1


# ---------------------------------------------------------------------------
# Overlap, per pattern


def test_list_comprehension_overlaps() -> None:
    call = Calls(parties=5)

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        return [await call(x) for x in xs]

    async def main() -> None:
        for _ in range(3):  # every call overlaps, not only the first
            assert await prog(list(range(5))) == [0, 10, 20, 30, 40]

    run_checked(main)
    assert "overlap: an await waits" in xcs.explain(prog)


def test_set_and_dict_comprehensions_overlap() -> None:
    call = Calls(parties=4)

    @xcs.jit
    async def prog(xs: list[int]) -> tuple[set[int], dict[int, int]]:
        s = {await call(x) for x in xs[:2]}
        d = {x: await call(x) for x in xs[2:]}
        return s, d

    async def main() -> Any:
        return await prog([1, 2, 3, 4])

    # The two statements overlap too (a fork), so all four calls meet.
    assert run_checked(main) == ({10, 20}, {3: 30, 4: 40})


def test_async_for_clause_reads_the_iterator_in_order_and_overlaps_the_items() -> None:
    call = Calls(parties=4)
    read: list[int] = []

    async def source(n: int) -> AsyncIterator[int]:
        for i in range(n):
            read.append(i)
            yield i

    @xcs.jit
    async def prog(n: int) -> list[int]:
        return [await call(x) async for x in source(n)]

    assert run_checked(lambda: prog(4)) == [0, 10, 20, 30]
    assert read == [0, 1, 2, 3]


def test_for_loop_iterations_overlap_and_replay_in_order() -> None:
    call = Calls(parties=4)

    @xcs.jit
    async def prog(xs: list[int]) -> tuple[list[int], dict[int, int], int, int]:
        out, by, total = [], {}, 0
        for x in xs:
            y = await call(x)
            out.append(y)
            by[x] = y
            total += y
        return out, by, total, y

    assert run_checked(lambda: prog([3, 1, 2, 0])) == (
        [30, 10, 20, 0],
        {3: 30, 1: 10, 2: 20, 0: 0},
        60,
        0,
    )


def test_async_for_loop_bodies_overlap() -> None:
    call = Calls(parties=3)
    read: list[int] = []

    async def source(n: int) -> AsyncIterator[int]:
        for i in range(n):
            read.append(i)
            await asyncio.sleep(0)
            yield i

    @xcs.jit
    async def prog(n: int) -> list[int]:
        out = []
        async for x in source(n):
            out.append(await call(x))
        return out

    assert run_checked(lambda: prog(3)) == [0, 10, 20]
    assert read == [0, 1, 2]
    assert "async for x in source(n)" in xcs.explain(prog)


def test_independent_awaits_overlap_and_join_at_first_use() -> None:
    call = Calls(parties=2)

    @xcs.jit
    async def prog(n: int) -> int:
        a = await call(n)
        b = await call(n + 1)
        return a + b

    assert run_checked(lambda: prog(1)) == 30
    assert "statements, line" in xcs.explain(prog)


def test_nested_comprehension_runs_all_items_at_once() -> None:
    call = Calls(parties=6)

    @xcs.jit
    async def prog(xs: list[int], ys: list[int]) -> list[list[int]]:
        return [[await call(x * 10 + y) for y in ys] for x in xs]

    assert run_checked(lambda: prog([1, 2], [1, 2, 3])) == [
        [110, 120, 130],
        [210, 220, 230],
    ]


# ---------------------------------------------------------------------------
# The window


@pytest.mark.parametrize("window", [1, 3])
def test_max_workers_bounds_the_tasks_in_flight(window: int) -> None:
    call = Calls()

    @xcs.jit(max_workers=window)
    async def prog(xs: list[int]) -> list[int]:
        return [await call(x) for x in xs]

    assert run_checked(lambda: prog(list(range(10)))) == [x * 10 for x in range(10)]
    assert call.max_in_flight == window


def test_default_window_is_the_sync_default() -> None:
    call = Calls()
    from xcs._runtime._pool import get_pool

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        return [await call(x) for x in xs]

    size = get_pool().max_workers
    run_checked(lambda: prog(list(range(size + 20))))
    assert call.max_in_flight == size


# ---------------------------------------------------------------------------
# Errors


def test_first_error_in_program_order_is_raised_and_later_items_cancelled() -> None:
    call = Calls()
    call.fail = {2: 0.05, 5: 0.0}  # 5 fails first in time, 2 first in program order
    call.delay = 1.0  # successful items take far longer than both, even on a busy machine

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        return [await call(x) for x in xs]

    async def main() -> None:
        with pytest.raises(ValueError, match="2") as caught:
            await prog(list(range(8)))
        assert caught.value.args == (2,)

    run_checked(main)
    # Items after the failure at 5 were cancelled as soon as it failed; those before
    # it ran on (2 could still fail first); when 2 failed, 3 and 4 were cancelled,
    # and 0 and 1 still ran to the end (either could have been the first error).
    assert sorted(call.started) == list(range(8))
    assert sorted(call.cancelled) == [3, 4, 6, 7]
    assert sorted(call.finished) == [0, 1]


def test_the_original_exception_object_is_raised() -> None:
    errors: list[BaseException] = []

    async def boom(x: int) -> int:
        await asyncio.sleep(0.001)
        error = KeyError(x)
        errors.append(error)
        raise error

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        return [await boom(x) for x in xs]

    async def main() -> None:
        with pytest.raises(KeyError) as caught:
            await prog([7, 8])
        assert caught.value is errors[0]

    run_checked(main)


def test_no_item_beyond_the_window_starts_after_a_failure() -> None:
    call = Calls()
    call.fail = {1: 0.0}

    @xcs.jit(max_workers=2)
    async def prog(xs: list[int]) -> list[int]:
        return [await call(x) for x in xs]

    async def main() -> None:
        with pytest.raises(ValueError):
            await prog(list(range(20)))

    run_checked(main)
    assert max(call.started) <= 2  # the window: 0 and 1, then at most one more


def test_a_loop_iteration_that_fails_keeps_the_effects_made_before_it() -> None:
    call = Calls()
    call.fail = {3: 0.0}

    @xcs.jit
    async def prog(xs: list[int], out: list[int]) -> None:
        for x in xs:
            out.append(x)
            out.append(await call(x))

    async def main() -> list[int]:
        out: list[int] = []
        with pytest.raises(ValueError):
            await prog([1, 2, 3, 4], out)
        return out

    assert run_checked(main) == [1, 10, 2, 20, 3]


def test_a_failing_statement_cancels_the_others() -> None:
    call = Calls()
    call.fail = {1: 0.0}
    call.gate = asyncio.Event()

    @xcs.jit
    async def prog() -> int:
        a = await call(1)
        b = await call(2)
        return a + b

    async def main() -> None:
        with pytest.raises(ValueError):
            await prog()

    run_checked(main)
    assert call.cancelled == [2]


# ---------------------------------------------------------------------------
# Cancellation by the caller


@pytest.mark.parametrize("pattern", ["comprehension", "loop", "async_for", "statements"])
def test_caller_cancellation_cancels_every_started_task(pattern: str) -> None:
    call = Calls()
    call.gate = asyncio.Event()  # nothing finishes until cancelled

    async def source(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    @xcs.jit
    async def comprehension(n: int) -> list[int]:
        return [await call(x) for x in range(n)]

    @xcs.jit
    async def loop(n: int) -> list[int]:
        out = []
        for x in range(n):
            out.append(await call(x))
        return out

    @xcs.jit
    async def async_for(n: int) -> list[int]:
        out = []
        async for x in source(n):
            out.append(await call(x))
        return out

    @xcs.jit
    async def statements(n: int) -> int:
        a = await call(0)
        b = await call(1)
        c = await call(2)
        return a + b + c

    prog = {
        "comprehension": comprehension,
        "loop": loop,
        "async_for": async_for,
        "statements": statements,
    }[pattern]

    async def main() -> None:
        task = asyncio.create_task(prog(3))
        while len(call.started) < 3:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_checked(main)
    assert sorted(call.started) == [0, 1, 2]
    assert sorted(call.cancelled) == [0, 1, 2]
    assert call.in_flight == 0


# ---------------------------------------------------------------------------
# Deadlines


def test_async_with_deadline_bounds_a_region_and_cancels_its_tasks() -> None:
    call = Calls()
    call.gate = asyncio.Event()  # never set: only the deadline ends the calls

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        async with xcs.deadline(0.2):
            return [await call(x) for x in xs]

    async def main() -> None:
        with pytest.raises(xcs.ExecutionTimeout) as caught:
            await prog([1, 2, 3])
        assert isinstance(caught.value, TimeoutError)

    run_checked(main)
    # Every call that started was cancelled (on a very busy machine the deadline may
    # expire before a task's first step: then it never starts, and makes no call).
    assert call.finished == []
    assert sorted(call.cancelled) == sorted(call.started)
    assert call.in_flight == 0


def test_a_deadline_around_the_call_bounds_statements_too() -> None:
    call = Calls()
    call.gate = asyncio.Event()

    @xcs.jit
    async def prog() -> int:
        a = await call(1)
        b = await call(2)
        return a + b

    async def main() -> None:
        with pytest.raises(xcs.ExecutionTimeout), xcs.deadline(0.2):
            await prog()

    run_checked(main)
    assert call.finished == []
    assert sorted(call.cancelled) == sorted(call.started)
    assert call.in_flight == 0


# ---------------------------------------------------------------------------
# Adaptivity: awaits that do not wait


def test_awaits_that_never_suspend_go_in_order_after_the_first_call() -> None:
    tasks_seen: list[asyncio.Task[Any] | None] = []

    async def cached(x: int) -> int:
        tasks_seen.append(asyncio.current_task())
        return x + 1

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        return [await cached(x) for x in xs]

    async def main() -> None:
        assert await prog([1, 2, 3]) == [2, 3, 4]  # measured, as tasks
        me = asyncio.current_task()
        assert all(t is not me for t in tasks_seen)
        for _ in range(5):
            tasks_seen.clear()
            assert await prog([1, 2, 3]) == [2, 3, 4]
            # In order: the original comprehension, in the caller's own task.
            assert all(t is me for t in tasks_seen)

    run_checked(main)
    report = xcs.explain(prog)
    assert "in order: an await waits" in report
    assert "tasks would not pay" in report


def test_an_in_order_region_is_probed_again_and_overlaps_when_its_awaits_wait() -> None:
    state = {"slow": False}
    in_flight = {"now": 0, "max": 0}

    async def sometimes_slow(x: int) -> int:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        try:
            if state["slow"]:
                await asyncio.sleep(0.005)
            return x
        finally:
            in_flight["now"] -= 1

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        return [await sometimes_slow(x) for x in xs]

    async def main() -> None:
        await prog([1, 2, 3])  # quick: goes in order
        state["slow"] = True
        for _ in range(8):  # probes come at exponentially spaced executions
            await prog(list(range(6)))

    run_checked(main)
    assert in_flight["max"] > 1
    assert "overlap: an await waits" in xcs.explain(prog)


# ---------------------------------------------------------------------------
# Sync calls, @xcs.sequential, nesting, fallbacks


def test_sync_calls_run_in_order_in_the_loop_thread_and_explain_says_so() -> None:
    seen: list[tuple[int, int]] = []

    def blocking(x: int) -> int:
        seen.append((x, threading.get_ident()))
        return x

    @xcs.jit
    async def prog(xs: list[int]) -> tuple[list[int], int]:
        a = [blocking(x) for x in xs]
        b = blocking(1)
        c = blocking(2)
        return a, b + c

    assert run_checked(lambda: prog([5, 6])) == ([5, 6], 3)
    assert [x for x, _ in seen] == [5, 6, 1, 2]
    assert {ident for _, ident in seen} == {threading.get_ident()}
    report = xcs.explain(prog)
    assert "comprehension runs in order: its calls are not awaited" in report
    assert "statements run in order: its calls are not awaited" in report


def test_sequential_async_callee_keeps_its_calls_in_order() -> None:
    call = Calls()

    @xcs.sequential
    async def one_at_a_time(x: int) -> int:
        return await call(x)

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        return [await one_at_a_time(x) for x in xs]

    assert run_checked(lambda: prog([1, 2, 3])) == [10, 20, 30]
    assert call.max_in_flight == 1
    assert "marked @xcs.sequential" in xcs.explain(prog)


def test_jitted_coroutines_nest() -> None:
    call = Calls(parties=6)

    @xcs.jit
    async def inner(x: int) -> list[int]:
        return [await call(x * 10 + y) for y in range(3)]

    @xcs.jit
    async def outer(xs: list[int]) -> list[list[int]]:
        return [await inner(x) for x in xs]

    assert run_checked(lambda: outer([1, 2])) == [[100, 110, 120], [200, 210, 220]]


def test_async_generators_run_as_written() -> None:
    @xcs.jit
    async def gen(xs: list[int]) -> AsyncIterator[int]:
        for x in xs:
            yield x

    async def main() -> list[int]:
        return [x async for x in gen([1, 2])]

    with pytest.warns(xcs.JitWarning, match="async generator function"):
        assert run_checked(main) == [1, 2]
    assert "runs as written: it is an async generator function" in xcs.explain(gen)


def test_calling_from_sync_code_starts_no_event_loop() -> None:
    call = Calls()

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        return [await call(x) for x in xs]

    coroutine = prog([1])
    assert asyncio.iscoroutine(coroutine)
    assert call.started == []  # nothing ran: running it is the caller's choice
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    assert asyncio.run(coroutine) == [10]


def test_a_later_call_with_different_arguments_gets_its_own_result() -> None:
    call = Calls()

    @xcs.jit
    async def prog(xs: list[int], k: int) -> list[int]:
        return [await call(x) + k for x in xs]

    async def main() -> tuple[list[int], list[int]]:
        return await prog([1, 2], 0), await prog([3], 5)

    assert run_checked(main) == ([10, 20], [35])


# ---------------------------------------------------------------------------
# More errors: the iterable's own, many at once, sequential callees under a deadline


def test_an_iterable_that_fails_raises_after_the_items_before_it() -> None:
    call = Calls()
    call.fail = {1: 0.02}  # fails after the iterable has already failed

    def numbers() -> Any:
        yield 0
        yield 1
        raise RuntimeError("the iterable broke")

    @xcs.jit
    async def prog() -> list[int]:
        return [await call(x) for x in numbers()]

    async def main() -> None:
        with pytest.raises(ValueError) as caught:  # item 1 comes first in program order
            await prog()
        assert caught.value.args == (1,)

    run_checked(main)
    call.fail = {}

    async def main_ok() -> None:
        with pytest.raises(RuntimeError, match="the iterable broke"):
            await prog()

    run_checked(main_ok)
    assert call.started[-2:] == [0, 1]


def test_an_async_iterator_that_fails_raises_after_the_bodies_before_it() -> None:
    call = Calls()

    async def source() -> AsyncIterator[int]:
        yield 0
        yield 1
        raise RuntimeError("the source broke")

    @xcs.jit
    async def prog(out: list[int]) -> None:
        async for x in source():
            out.append(await call(x))

    async def main() -> list[int]:
        out: list[int] = []
        with pytest.raises(RuntimeError, match="the source broke"):
            await prog(out)
        return out

    assert run_checked(main) == [0, 10]


def test_every_failure_is_retrieved_when_many_items_fail() -> None:
    call = Calls()
    call.fail = {x: 0.001 * (10 - x) for x in range(10)}  # all fail, the last first

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        return [await call(x) for x in xs]

    async def main() -> None:
        for _ in range(3):
            with pytest.raises(ValueError) as caught:
                await prog(list(range(10)))
            assert caught.value.args == (0,)

    run_checked(main)  # fails if the loop reports an exception never retrieved


def test_a_deadline_bounds_the_in_order_path_of_a_region_too() -> None:
    call = Calls()
    call.gate = asyncio.Event()

    @xcs.sequential
    async def one_at_a_time(x: int) -> int:
        return await call(x)

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        async with xcs.deadline(0.2):
            return [await one_at_a_time(x) for x in xs]

    async def main() -> None:
        with pytest.raises(xcs.ExecutionTimeout):
            await prog([1, 2, 3])

    run_checked(main)
    assert call.started in ([], [1])  # in order: the first call, at most
    assert call.cancelled == call.started


def test_loops_with_sync_calls_are_noted_in_order() -> None:
    def blocking(x: int) -> int:
        return x

    @xcs.jit
    async def prog(xs: list[int]) -> list[int]:
        out = []
        for x in xs:
            out.append(blocking(x))
        return out

    assert run_checked(lambda: prog([1, 2])) == [1, 2]
    assert "for loop runs in order: its calls are not awaited" in xcs.explain(prog)


def test_a_trace_shows_the_region_and_its_tasks() -> None:
    call = Calls()

    @xcs.jit
    async def prog(xs: list[int]) -> tuple[list[int], int]:
        a = [await call(x) for x in xs]
        b = await call(0)
        c = await call(1)
        return a, b + c

    async def main() -> Any:
        with xcs.trace() as trace:
            result = await prog([5, 6, 7])
        return result, trace

    result, trace = run_checked(main)
    assert result == ([50, 60, 70], 10)
    regions = [s for s in trace.spans if s.kind == "region"]
    tasks = [s for s in trace.spans if s.kind == "task"]
    comprehension = next(s for s in regions if s.name.startswith("comprehension@"))
    children = sorted(s.name for s in tasks if s.parent == comprehension.id)
    assert children == [f"{comprehension.name} #{i}" for i in range(3)]
    assert all(s.end is not None for s in trace.spans)
