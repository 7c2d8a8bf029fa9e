"""The ordered map and task groups: order, overlap, first error, laziness, nesting."""

from __future__ import annotations

import contextlib
import itertools
import random
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xcs._runtime._scheduler import TaskGroup, TaskState, ordered_imap, ordered_map

BARRIER_TIMEOUT = 10.0


class InFlight:
    """Counts calls in progress and remembers the most seen at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


# -- overlap, proven without clocks ----------------------------------------------------


@pytest.mark.parametrize("n", [2, 8, 32])
def test_map_overlaps_all_items_of_the_window(n: int) -> None:
    # Each call waits until all n are inside at once: passes only if they overlap.
    barrier = threading.Barrier(n, timeout=BARRIER_TIMEOUT)

    def meet(i: int) -> int:
        barrier.wait()
        return i * i

    assert ordered_map(meet, range(n), window=n) == [i * i for i in range(n)]


def test_in_flight_never_exceeds_the_window() -> None:
    counter = InFlight()
    rng = random.Random(7)
    delays = [rng.uniform(0, 0.002) for _ in range(200)]

    def work(i: int) -> int:
        with counter:
            time.sleep(delays[i])
        return i

    assert ordered_map(work, range(200), window=5) == list(range(200))
    assert counter.peak <= 5
    assert counter.now == 0


def test_window_is_filled() -> None:
    # The window is not only a bound: all of it is used (5 calls meet at a barrier).
    barrier = threading.Barrier(5, timeout=BARRIER_TIMEOUT)
    assert ordered_map(lambda i: barrier.wait() * 0 + i, range(20), window=5) == list(range(20))


def test_a_group_overlaps_heterogeneous_calls() -> None:
    barrier = threading.Barrier(3, timeout=BARRIER_TIMEOUT)

    def call(tag: str) -> str:
        barrier.wait()
        return tag

    with TaskGroup(name="fork") as group:
        a = group.spawn(call, "a")
        b = group.spawn(call, "b")
        c = group.spawn(call, "c")
        assert (group.result(b), group.result(a), group.result(c)) == ("b", "a", "c")


# -- order and laziness ------------------------------------------------------------------


@given(st.lists(st.floats(0, 0.002), max_size=40), st.integers(1, 12))
def test_results_come_in_input_order(delays: list[float], window: int) -> None:
    def work(i: int) -> int:
        time.sleep(delays[i])
        return i * 3

    assert ordered_map(work, range(len(delays)), window=window) == [
        i * 3 for i in range(len(delays))
    ]


def test_an_iterator_is_read_only_as_the_window_moves() -> None:
    pulled = 0

    def source() -> Iterator[int]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield i

    results = ordered_imap(lambda x: x + 1, source(), window=4)
    assert pulled == 0  # nothing happens before the first result is asked for
    for consumed, value in enumerate(itertools.islice(results, 50), start=1):
        assert value == consumed
        assert pulled <= consumed + 4
    results.close()  # type: ignore[attr-defined]


def test_closing_the_iterator_cancels_what_has_not_started(make_pool) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(1)
    started: list[int] = []
    release = threading.Event()

    def work(i: int) -> int:
        started.append(i)
        if i == 0:
            release.wait(BARRIER_TIMEOUT)
        return i

    results = ordered_imap(work, range(100), window=10, pool=pool)
    release.set()
    assert next(results) == 0
    results.close()  # type: ignore[attr-defined]
    snapshot = list(started)
    pool.close()
    assert pool.join(timeout=30)
    assert started == snapshot  # nothing ran after the close returned
    assert len(started) <= 11


# -- the first error in program order ---------------------------------------------------


class ItemError(Exception):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


@given(
    delays=st.lists(st.floats(0, 0.003), min_size=1, max_size=30),
    failing=st.sets(st.integers(0, 29)),
    window=st.integers(1, 16),
)
def test_map_raises_the_error_of_the_smallest_failing_index(
    delays: list[float], failing: set[int], window: int
) -> None:
    n = len(delays)
    failing = {i for i in failing if i < n}
    errors = {i: ItemError(i) for i in failing}
    started: set[int] = set()
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.add(i)
        time.sleep(delays[i])
        if i in errors:
            raise errors[i]
        return i

    if not failing:
        assert ordered_map(work, range(n), window=window) == list(range(n))
        return
    first = min(failing)
    with pytest.raises(ItemError) as caught:
        ordered_map(work, range(n), window=window)
    assert caught.value is errors[first]  # the original object, never wrapped
    # The sequential program made every call up to the failure; speculation beyond it
    # is bounded by the window.
    assert set(range(first + 1)) <= started
    assert max(started) < first + window


def test_no_result_after_the_failure_surfaces() -> None:
    seen: list[int] = []

    def work(i: int) -> int:
        if i == 3:
            raise ValueError("three")
        return i

    with pytest.raises(ValueError, match="three"):
        for value in ordered_imap(work, range(10), window=8):
            seen.append(value)
    assert seen == [0, 1, 2]


@given(
    delays=st.lists(st.floats(0, 0.002), min_size=2, max_size=24),
    failing=st.sets(st.integers(0, 23), min_size=1),
)
def test_no_task_after_a_known_failure_starts(delays: list[float], failing: set[int]) -> None:
    n = len(delays)
    failing = {i for i in failing if i < n} or {n - 1}
    errors = {i: ItemError(i) for i in failing}

    def work(i: int) -> int:
        time.sleep(delays[i])
        if i in errors:
            raise errors[i]
        return i

    group = TaskGroup(name="prop")
    with pytest.raises(ItemError) as caught, group:
        tasks = [group.spawn(work, i) for i in range(n)]
        for task in tasks:
            group.result(task)
    first = min(failing)
    assert caught.value is errors[first]
    assert group.failure_seq >= 0
    for task in tasks:
        if task.index > first and task.start_seq >= 0:
            # It started, so it must have started before the failure was recorded.
            assert task.start_seq < group.failure_seq
        if task.index <= first:
            assert task.state is TaskState.FINISHED
    # Every task is settled: the group waited for what was running.
    assert all(t.state in (TaskState.FINISHED, TaskState.CANCELLED) for t in tasks)


def test_errors_are_raised_unwrapped_with_their_traceback() -> None:
    def fail(i: int) -> int:
        raise KeyError(f"item {i}")

    with pytest.raises(KeyError) as caught:
        ordered_map(fail, range(3))
    assert caught.value.args == ("item 0",)
    frames = [tb.name for tb in caught.traceback]
    assert "fail" in frames  # the user's frame is in the traceback


def test_a_failing_input_iterator_raises_after_the_earlier_items() -> None:
    calls: list[int] = []

    def source() -> Iterator[int]:
        yield 0
        yield 1
        raise RuntimeError("input broke")

    def work(i: int) -> int:
        calls.append(i)
        return i

    with pytest.raises(RuntimeError, match="input broke"):
        ordered_map(work, source(), window=8)
    assert sorted(calls) == [0, 1]

    def failing_work(i: int) -> int:
        if i == 1:
            raise ValueError("item 1")
        return i

    # An item before the input's failure fails first in program order.
    with pytest.raises(ValueError, match="item 1"):
        ordered_map(failing_work, source(), window=8)


def test_the_owners_exception_loses_to_an_earlier_task_failure() -> None:
    # a = f(); b = g(); then the program itself raises: if f or g failed, the
    # sequential program never reached the raise.
    def boom() -> None:
        raise ValueError("task failed")

    with pytest.raises(ValueError, match="task failed"), TaskGroup() as group:
        group.spawn(boom)
        group.spawn(lambda: 1)
        raise KeyError("the program's own error")

    with pytest.raises(KeyError), TaskGroup() as group:
        group.spawn(lambda: 1)
        raise KeyError("the program's own error")


def test_unjoined_tasks_still_count_at_exit() -> None:
    calls: list[str] = []

    def effect(tag: str) -> None:
        calls.append(tag)
        if tag == "b":
            raise LookupError(tag)

    with pytest.raises(LookupError), TaskGroup() as group:
        group.spawn(effect, "a")
        group.spawn(effect, "b")
    assert sorted(calls) == ["a", "b"]


def test_a_task_spawned_after_a_known_failure_never_runs() -> None:
    ran: list[str] = []
    group = TaskGroup()
    with pytest.raises(ValueError), group:
        first = group.spawn(lambda: (_ for _ in ()).throw(ValueError("x")))
        group._join(first)  # the failure is now known
        late = group.spawn(ran.append, "late")
        assert late.state is TaskState.CANCELLED
        group.result(late)
    assert ran == []


def test_misuse_is_reported() -> None:
    with TaskGroup() as one, TaskGroup() as other:
        task = one.spawn(lambda: 1)
        with pytest.raises(ValueError, match="another task group"):
            other.result(task)
        one.result(task)
    with pytest.raises(RuntimeError, match="has exited"):
        one.spawn(lambda: 2)
    with pytest.raises(ValueError, match="window"):
        ordered_map(abs, [1], window=0)


# -- nesting --------------------------------------------------------------------------


def test_nested_maps_on_a_tiny_pool_finish(make_pool) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(2)

    def tree(depth: int) -> int:
        if depth == 0:
            time.sleep(0.0005)  # blocks, so other threads get to run
            return 1
        return sum(ordered_map(tree, [depth - 1] * 4, pool=pool))

    assert ordered_map(tree, [3, 3], pool=pool) == [64, 64]
    assert pool.thread_count <= 2


def test_nested_groups_wait_without_idling_workers(make_pool) -> None:  # type: ignore[no-untyped-def]
    # One worker: a parent task that waits on its children must run them itself.
    pool = make_pool(1)

    def parent(i: int) -> list[int]:
        return ordered_map(lambda j: i * 10 + j, range(5), pool=pool)

    assert ordered_map(parent, range(4), pool=pool) == [
        [i * 10 + j for j in range(5)] for i in range(4)
    ]


def test_nesting_is_deep_and_wide_from_many_threads(make_pool) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(3)

    def tree(depth: int) -> int:
        if depth == 0:
            return 1
        return sum(ordered_map(tree, [depth - 1] * 3, pool=pool, window=2))

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(tree(4))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [81] * 6


# -- KeyboardInterrupt and SystemExit inside tasks: their place in program order --------


@pytest.mark.parametrize("interrupt", [SystemExit(2), KeyboardInterrupt()])
def test_a_later_tasks_interrupt_does_not_beat_an_earlier_error(
    make_pool,  # type: ignore[no-untyped-def]
    interrupt: BaseException,
) -> None:
    # The owner is a pool thread: while item 0 runs on the other thread, the owner
    # helps by running item 1, which raises. Item 0's error is first in program order.
    pool = make_pool(2)
    first_running = threading.Event()
    release = threading.Event()
    first_error = ValueError("item 0")

    def first() -> None:
        first_running.set()
        release.wait(BARRIER_TIMEOUT)
        raise first_error

    def second() -> None:
        release.set()
        raise interrupt

    def owner() -> None:
        with TaskGroup(pool=pool, name="inner") as group:
            a = group.spawn(first)
            assert first_running.wait(BARRIER_TIMEOUT)
            b = group.spawn(second)
            group.result(a)
            group.result(b)

    outer_running = threading.Event()

    def outer() -> None:
        outer_running.set()
        owner()

    raised: BaseException | None = None
    with TaskGroup(pool=pool, name="outer") as group:
        task = group.spawn(outer)
        assert outer_running.wait(BARRIER_TIMEOUT)
        try:
            group.result(task)
        except BaseException as exc:  # SystemExit included
            raised = exc
    assert raised is first_error


@pytest.mark.parametrize("interrupt", [SystemExit(3), KeyboardInterrupt()])
def test_an_interrupt_inside_a_task_is_that_tasks_error_in_program_order(
    interrupt: BaseException,
) -> None:
    calls: list[int] = []

    def call(i: int) -> int:
        calls.append(i)
        if i == 2:
            raise interrupt
        return i

    with pytest.raises(type(interrupt)) as caught:
        ordered_map(call, range(6), window=1)
    assert caught.value is interrupt
    assert sorted(calls) == [0, 1, 2]


# -- the note that says where a task's error came from -----------------------------------


def test_a_task_error_gets_one_note_naming_the_group_and_item() -> None:
    err = ValueError("third")

    def call(i: int) -> int:
        if i == 2:
            raise err
        return i

    with pytest.raises(ValueError) as caught:
        ordered_map(call, range(5), name="grade")
    assert caught.value is err
    assert err.args == ("third",)
    assert err.__notes__ == ["xcs: raised by item 2 of grade"]
    assert caught.traceback[-1].name == "call"  # the traceback still ends where it was raised


def test_a_task_group_error_note_and_identity() -> None:
    table: dict[str, int] = {}
    with pytest.raises(KeyError) as caught, TaskGroup(name="fork") as group:
        group.spawn(int, "1")
        failing = group.spawn(table.__getitem__, "k")
        group.result(failing)
    assert caught.value.args == ("k",)
    assert caught.value.__notes__ == ["xcs: raised by item 1 of fork"]


def test_nested_groups_leave_the_innermost_note_only() -> None:
    def inner(i: int) -> int:
        if i == 1:
            raise ValueError("deep")
        return i

    def outer(j: int) -> list[int]:
        return ordered_map(inner, range(3), name="inner")

    with pytest.raises(ValueError) as caught:
        ordered_map(outer, range(2), name="outer", window=1)
    assert caught.value.__notes__ == ["xcs: raised by item 1 of inner"]


def test_an_error_whose_notes_are_not_a_list_is_raised_as_it_is() -> None:
    class Frozen(Exception):
        def __init__(self) -> None:
            super().__init__("frozen")
            self.__notes__ = ("kept",)  # add_note would raise TypeError

    err = Frozen()

    def call(i: int) -> int:
        if i == 1:
            raise err
        return i

    with pytest.raises(Frozen) as caught:
        ordered_map(call, range(3))
    assert caught.value is err
    assert err.__notes__ == ("kept",)


def test_user_notes_are_kept_and_the_origin_note_follows_them() -> None:
    def call(i: int) -> int:
        err = RuntimeError(i)
        err.add_note("from the user")
        raise err

    with pytest.raises(RuntimeError) as caught:
        ordered_map(call, range(2), name="m")
    assert caught.value.__notes__ == ["from the user", "xcs: raised by item 0 of m"]


# -- tasks that start after others (NOTE: [Tasks that start after others]) ---------------


def test_a_task_starts_after_its_inputs_and_not_after_every_earlier_task() -> None:
    from xcs._runtime._pool import WorkerPool

    pool = WorkerPool(4, name="xcs-after")
    try:
        meet = threading.Barrier(2, timeout=10)
        with TaskGroup(name="after", pool=pool) as group:
            slow = group.spawn(lambda: (meet.wait(), 1)[1])  # waits for the dependent
            first = group.spawn(lambda: 5)
            then = group.spawn(lambda: (meet.wait(), first.value * 2)[1], after=(first,))
            assert group.result(then) == 10
            assert group.result(slow) == 1
    finally:
        pool.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_chain_of_dependent_tasks_finishes_on_a_small_pool(workers: int) -> None:
    from xcs._runtime._pool import WorkerPool

    pool = WorkerPool(workers, name="xcs-chain")
    try:
        with TaskGroup(name="chain", pool=pool) as group:
            tasks = [group.spawn(lambda: 0)]
            for _ in range(50):
                before = tasks[-1]
                tasks.append(group.spawn(lambda t=before: t.value + 1, after=(before,)))
            assert group.result(tasks[-1]) == 50
    finally:
        pool.close()


def test_a_task_after_a_failed_input_or_a_known_failure_never_runs() -> None:
    ran: list[str] = []
    failed = threading.Event()

    def boom() -> None:
        failed.set()
        raise ValueError("boom")

    def slow() -> int:
        failed.wait(10)
        time.sleep(0.05)
        return 1

    with pytest.raises(ValueError, match="boom"), TaskGroup(name="failing") as group:
        bad = group.spawn(boom)
        group.spawn(lambda: ran.append("after bad"), after=(bad,))
        good = group.spawn(slow)
        late = group.spawn(lambda: ran.append("after good"), after=(good,))
        group.wait(late)
        assert late.state is TaskState.CANCELLED
    assert ran == []


# -- a task that ends at the recursion limit (NOTE in _scheduler) ----------------------


class _NoWorkers:
    """A pool whose workers never take anything: the owner runs every task it waits for."""

    max_workers = 1

    def submit(self, task: object) -> None:
        pass


def _depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def _wait_at(levels: int, group: TaskGroup, task: object) -> None:
    if levels > 0:
        _wait_at(levels - 1, group, task)
        return
    with contextlib.suppress(RecursionError):
        group.wait(task)  # type: ignore[arg-type]


def test_a_task_run_where_no_call_fits_still_finishes() -> None:
    """Waited for at every depth close to the limit, a task is never left running: at
    one of them it ends (here, failing to enter its function) with no room for the
    call that records it. Before the fix it stayed running and its group waited for
    it forever."""
    room = sys.getrecursionlimit() - _depth()
    states = []
    for below_the_limit in range(1, 40):
        group = TaskGroup(name="limit", pool=_NoWorkers())  # type: ignore[arg-type]
        task = group.spawn(lambda: 1)
        with contextlib.suppress(RecursionError):  # too deep to even get there
            _wait_at(room - below_the_limit, group, task)
        states.append(task.state)
        assert task.state is not TaskState.RUNNING, below_the_limit
        # Back where calls fit: the group ends as any other (runs what is pending).
        with contextlib.suppress(RecursionError):  # the task's, if it had one
            group.__exit__(None, None, None)
        assert task.state is TaskState.FINISHED
    assert TaskState.PENDING in states  # too deep to claim it: it waits for its owner
    assert TaskState.FINISHED in states
