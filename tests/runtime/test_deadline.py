"""xcs.deadline: expiry, cancellation, what was running, nesting, bad input."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest

import xcs
from xcs._runtime._deadline import current_deadline, remaining
from xcs._runtime._scheduler import TaskGroup, ordered_map

FOREVER = 60.0  # a wait that would fail the test by pytest-timeout, never reached


def test_expiry_raises_execution_timeout_and_cancels_unstarted_work(make_pool) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(2)
    release = threading.Event()
    started: list[int] = []

    def stuck(i: int) -> int:
        started.append(i)
        release.wait(FOREVER)
        return i

    try:
        with pytest.raises(xcs.ExecutionTimeout) as caught, xcs.deadline(0.2):
            ordered_map(stuck, range(10), window=10, pool=pool, name="stuck")
    finally:
        release.set()
    err = caught.value
    assert isinstance(err, TimeoutError)
    assert isinstance(err, xcs.XCSError)
    assert err.seconds == pytest.approx(0.2)
    # Two workers were running calls; the caller does not run work inline under a
    # deadline, so exactly those two ran and the other eight never will.
    assert sorted(err.running) == ["stuck[0]", "stuck[1]"]
    assert err.cancelled == 8
    assert "still running" in str(err)
    assert "8 not started, cancelled" in str(err)
    pool.close()
    assert pool.join(timeout=30)
    assert sorted(started) == [0, 1]


def test_nested_deadlines_take_the_earliest() -> None:
    gate = threading.Event()
    with pytest.raises(xcs.ExecutionTimeout) as caught, xcs.deadline(0.1):  # noqa: SIM117
        with xcs.deadline(FOREVER):
            ordered_map(lambda _: gate.wait(FOREVER), range(2))
    gate.set()
    assert caught.value.seconds == pytest.approx(0.1)

    gate = threading.Event()
    with pytest.raises(xcs.ExecutionTimeout) as caught, xcs.deadline(FOREVER):  # noqa: SIM117
        with xcs.deadline(0.1):
            ordered_map(lambda _: gate.wait(FOREVER), range(2))
    gate.set()
    assert caught.value.seconds == pytest.approx(0.1)


def test_the_deadline_follows_work_into_tasks() -> None:
    with xcs.deadline(30) as scope:
        outer = current_deadline()
        seen = ordered_map(lambda _: current_deadline(), range(4))
        assert scope.remaining() <= 30
    assert outer is not None
    assert all(d is outer for d in seen)
    assert current_deadline() is None
    assert remaining() is None


def test_deadline_bounds_nested_waits_in_workers(make_pool) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(2)
    gate = threading.Event()

    def parent(_: int) -> list[object]:
        return ordered_map(lambda __: gate.wait(FOREVER), range(3), pool=pool)

    try:
        with pytest.raises(xcs.ExecutionTimeout), xcs.deadline(0.2):
            ordered_map(parent, range(2), pool=pool)
    finally:
        gate.set()


def test_a_block_that_finishes_late_raises_at_its_end() -> None:
    ran = False
    with pytest.raises(xcs.ExecutionTimeout, match="finished late"), xcs.deadline(0.01):
        time.sleep(0.05)
        ran = True
    assert ran


def test_zero_is_an_expired_deadline() -> None:
    ran = False
    with pytest.raises(xcs.ExecutionTimeout, match="expired on entry"), xcs.deadline(0):
        ran = True
    assert not ran


def test_an_expired_deadline_stops_new_work() -> None:
    calls: list[int] = []
    with pytest.raises(xcs.ExecutionTimeout), xcs.deadline(0.01):
        time.sleep(0.03)
        with TaskGroup() as group:
            group.spawn(calls.append, 1)
    assert calls == []


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, "5", None, True])
def test_bad_seconds_are_rejected(bad: object) -> None:
    with pytest.raises(xcs.ValidationError, match=r"xcs\.deadline"):
        xcs.deadline(bad)  # type: ignore[arg-type]


def test_a_deadline_object_is_not_reentrant() -> None:
    scope = xcs.deadline(5)
    with scope, pytest.raises(RuntimeError, match="already in use"), scope:
        pass


def test_user_errors_pass_through_a_deadline_unchanged() -> None:
    err = ValueError("mine")

    def fail(_: int) -> None:
        raise err

    with pytest.raises(ValueError) as caught, xcs.deadline(30):
        ordered_map(fail, range(3))
    assert caught.value is err


async def _async_body() -> float | None:
    async with xcs.deadline(5):
        return remaining()


def test_async_with_sets_the_deadline() -> None:
    import asyncio

    left = asyncio.run(_async_body())
    assert left is not None
    assert 0 < left <= 5


# -- no task starts after the deadline in force for it ---------------------------------


def test_a_pool_thread_under_a_deadline_starts_nothing_after_it(make_pool) -> None:  # type: ignore[no-untyped-def]
    # The region's owner is the pool's only thread, so it runs the region's calls
    # itself (NOTE: [Waiting threads help]); it must stop starting them at expiry.
    pool = make_pool(1)
    entered = threading.Event()
    started: list[int] = []
    late: list[int] = []

    def call(i: int) -> int:
        limit = current_deadline()
        if limit is not None and limit.expired():
            late.append(i)
        started.append(i)
        time.sleep(0.5)
        return i

    def region() -> list[int]:
        entered.set()
        with xcs.deadline(0.3):
            return ordered_map(call, range(6), window=6, pool=pool, name="call")

    with TaskGroup(pool=pool) as group:
        task = group.spawn(region)
        assert entered.wait(FOREVER)  # a pool thread owns the region, not this one
        with pytest.raises(xcs.ExecutionTimeout) as caught:
            group.result(task)
    assert late == []
    assert len(started) <= 1  # the first call overran the deadline: none came after it
    assert caught.value.cancelled == 6 - len(started)


def test_a_task_never_starts_after_the_deadline_it_was_spawned_under(make_pool) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(1)
    blocker = threading.Event()
    ran: list[int] = []
    with TaskGroup(pool=pool, name="busy") as busy:
        busy.spawn(blocker.wait, FOREVER)  # the only worker is taken
        with TaskGroup(pool=pool, name="late") as group:
            with xcs.deadline(0.05) as scope:
                task = group.spawn(ran.append, 1)
            while scope.remaining() > 0:
                time.sleep(0.01)
            blocker.set()  # the worker is free now, after the deadline
            with pytest.raises(xcs.ExecutionTimeout, match="item 0 not started"):
                group.result(task)
    assert ran == []


# -- async with: the awaiting task is cancelled at expiry ------------------------------

GUARD = 10.0  # asyncio.wait_for around each test body: a bound for a broken build


def _run(body: Any) -> Any:
    import asyncio

    async def guarded() -> Any:
        return await asyncio.wait_for(body(), GUARD)

    return asyncio.run(guarded())


def test_async_deadline_cancels_an_await_that_runs_past_it() -> None:
    import asyncio

    reached: list[str] = []

    async def body() -> tuple[BaseException, int]:
        try:
            async with xcs.deadline(0.2):
                await asyncio.Event().wait()  # never set
                reached.append("after the await")
        except BaseException as exc:
            task = asyncio.current_task()
            assert task is not None
            await asyncio.sleep(0)  # the task is usable again: no cancel left pending
            return exc, task.cancelling()
        raise AssertionError("the block did not raise")

    error, cancelling = _run(body)
    assert type(error) is xcs.ExecutionTimeout
    assert isinstance(error, TimeoutError)
    assert error.seconds == pytest.approx(0.2)
    assert cancelling == 0
    assert reached == []


def test_async_deadline_bounds_awaits_that_run_in_order_under_jit() -> None:
    import asyncio

    started: list[int] = []

    async def step(i: int) -> int:
        started.append(i)
        await asyncio.sleep(GUARD * 2)
        return i

    @xcs.jit
    async def chain() -> int:
        a = await step(0)
        b = await step(a + 1)
        return await step(b + 1)

    async def body() -> None:
        async with xcs.deadline(0.2):
            await chain()

    with pytest.raises(xcs.ExecutionTimeout):
        _run(body)
    assert started == [0]


def test_an_overlapped_async_region_still_reports_what_was_running() -> None:
    import asyncio

    async def step(i: int) -> int:
        await asyncio.Event().wait()
        return i

    @xcs.jit
    async def fan() -> list[int]:
        return [await step(i) for i in range(3)]

    async def body() -> None:
        with xcs.testing.force_overlap():
            async with xcs.deadline(0.2):
                await fan()

    for _ in range(5):  # the region's own timeout and the block's timer expire together
        with pytest.raises(xcs.ExecutionTimeout) as caught:
            _run(body)
        assert len(caught.value.running) == 3, caught.value


@pytest.mark.parametrize(("outer", "inner"), [(0.2, 30.0), (30.0, 0.2)])
def test_nested_async_deadlines_take_the_earliest(outer: float, inner: float) -> None:
    import asyncio

    seen: list[float] = []

    async def body() -> None:
        async with xcs.deadline(outer):
            try:
                async with xcs.deadline(inner):
                    await asyncio.Event().wait()
            except xcs.ExecutionTimeout as exc:
                seen.append(exc.seconds)
                if inner > outer:
                    raise
            await asyncio.sleep(0)  # the outer block still has time: it goes on
            seen.append(-1.0)

    if inner < outer:
        _run(body)
        assert seen == [pytest.approx(0.2), -1.0]
    else:
        with pytest.raises(xcs.ExecutionTimeout) as caught:
            _run(body)
        assert caught.value.seconds == pytest.approx(0.2)


def test_async_deadline_does_not_swallow_an_outer_cancel() -> None:
    import asyncio

    async def body() -> str:
        entered = asyncio.Event()

        async def worker() -> None:
            async with xcs.deadline(30):
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.ensure_future(worker())
        await entered.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "not cancelled"

    assert _run(body) == "cancelled"


def test_a_sync_deadline_around_the_loop_bounds_an_async_one() -> None:
    import asyncio

    async def body() -> None:
        async with xcs.deadline(30):
            await asyncio.Event().wait()

    with pytest.raises(xcs.ExecutionTimeout) as caught, xcs.deadline(0.2):
        _run(body)
    assert caught.value.seconds == pytest.approx(0.2)
