"""Fallbacks, internal errors, the compile cache, adaptivity, bounds and explain."""

from __future__ import annotations

import functools
import gc
import linecache
import logging
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import pytest

import xcs
from xcs._compiler import _jit
from xcs._runtime._pool import WorkerPool


def slow(x: Any) -> Any:
    time.sleep(0.001)
    return x


def slow_pair(x: Any) -> tuple[Any, Any]:
    first = slow(x)
    second = slow(x)
    return first, second


def spin(x: int) -> int:
    end = time.thread_time() + 0.001
    while time.thread_time() < end:
        pass
    return x


# -- fallbacks -------------------------------------------------------------------------


def gen(n: int) -> Any:
    yield from (slow(i) for i in range(n))


async def coroutine(x: int) -> int:
    return x


class CallableThing:
    def __call__(self, x: int) -> int:
        return x + 1


@pytest.mark.parametrize(
    ("target", "args", "reason"),
    [
        (gen, (3,), "generator function"),
        (len, ([1, 2],), "builtin or C function"),
        (functools.partial(slow, 3), (), "functools.partial"),
        (CallableThing(), (1,), "CallableThing, not a Python function"),
    ],
)
def test_known_unsupported_functions_run_as_written(
    target: Any, args: tuple[Any, ...], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    jitted = xcs.jit(target)
    with caplog.at_level(logging.INFO, logger="xcs"), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        first = jitted(*args)
        jitted(*args)
    assert [str(w.message) for w in seen] == [  # once
        f"xcs.jit cannot compile {getattr(target, '__qualname__', repr(target))}, so it "
        f"runs as written: {_jit.compiled_for(target, None).fallback}"
    ]
    expected = target(*args)
    if hasattr(expected, "__next__"):
        assert list(first) == list(expected)
    else:
        assert first == expected
    assert reason in xcs.explain(jitted)
    records = [r for r in caplog.records if "runs as written" in r.getMessage()]
    assert len(records) <= 1  # one record, at the first compile only


def test_async_functions_stay_awaitable() -> None:
    import asyncio
    import inspect

    jitted = xcs.jit(coroutine)
    assert inspect.iscoroutinefunction(jitted)
    assert asyncio.run(jitted(4)) == 4
    assert "async" in xcs.explain(jitted)


def test_an_internal_failure_is_a_compilation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("boom inside the compiler")

    monkeypatch.setattr(_jit, "rewrite_function", broken)

    @xcs.jit
    def run(xs: list[int]) -> list[int]:
        return [slow(x) for x in xs]

    with pytest.raises(xcs.CompilationError, match="failed to compile") as caught:
        run([1])
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert caught.value.function.endswith("run")  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "4", True])
def test_bad_max_workers(bad: Any) -> None:
    with pytest.raises(xcs.ValidationError, match="max_workers"):
        xcs.jit(max_workers=bad)


@pytest.mark.parametrize("bad", [42, "text", None.__class__])
def test_bad_targets(bad: Any) -> None:
    with pytest.raises(xcs.ValidationError, match=r"xcs\.jit"):
        xcs.jit(bad)


# -- the cache ---------------------------------------------------------------------------


def test_compiled_once_per_function_even_from_many_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    compiles: list[str] = []
    real = _jit._try_compile

    def counting(fn: Any, window: Any) -> Any:
        if fn.__module__ == __name__:  # not another test's function compiled ahead
            compiles.append(fn.__name__)
        time.sleep(0.01)  # widen the window in which threads would race
        return real(fn, window)

    monkeypatch.setattr(_jit, "_try_compile", counting)

    def run(xs: list[int]) -> list[int]:
        return [slow_pair(x) for x in xs]

    jitted = xcs.jit(run)
    start = threading.Barrier(8, timeout=10)
    results: list[list[int]] = []

    def call() -> None:
        start.wait()
        results.append(jitted([1, 2]))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [[(1, 1), (2, 2)]] * 8
    # `slow_pair`, the user's own callee, is compiled too (once): the call tree. Its
    # callee `slow` is a leaf: it runs as written, never compiled.
    assert sorted(compiles) == ["run", "slow_pair"]
    xcs.jit(run)([3])  # another wrapper of the same function object: cached
    assert sorted(compiles) == ["run", "slow_pair"]


def test_a_redefined_function_compiles_anew_and_the_old_is_released() -> None:
    def make(k: int) -> Any:
        def run(xs: list[int]) -> list[int]:
            return [slow(x) * k for x in xs]

        return run

    first = make(1)
    assert xcs.jit(first)([2]) == [2]
    second = make(3)
    assert xcs.jit(second)([2]) == [6]
    assert _jit.is_cached(first)
    assert _jit.is_cached(second)
    alive = weakref.ref(first)
    del first
    gc.collect()
    assert alive() is None  # the cache did not keep the old function alive


def test_compiled_forms_do_not_keep_self_referencing_functions_alive() -> None:
    # An exec'd function sits in its own globals; a recursive closure refers to
    # itself through a cell. Neither may be kept alive by having been compiled.
    source = "def run(xs):\n    return [slow(x) for x in xs]\n"
    filename = "<xcs-test-leak>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"slow": slow}
    exec(compile(source, filename, "exec"), namespace)
    assert xcs.jit(namespace["run"])([1]) == [1]
    exec_alive = weakref.ref(namespace["run"])

    def make() -> Any:
        def walk(n: int) -> list[int]:
            return [walk(n - 1)[0] if n else slow(n) for _ in range(1)]

        return walk

    recursive = make()
    assert xcs.jit(recursive)(2) == [0]
    recursive_alive = weakref.ref(recursive)
    del namespace, recursive
    gc.collect()
    assert exec_alive() is None
    assert recursive_alive() is None


# -- results are never stale ---------------------------------------------------------------


def test_new_arguments_give_new_results() -> None:
    @xcs.jit
    def run(xs: list[int], k: int) -> list[int]:
        out = []
        for x in xs:
            out.append(slow(x) + k)
        return out

    for k in range(4):
        xs = list(range(k + 2))
        assert run(xs, k) == [x + k for x in xs]


# -- adaptivity --------------------------------------------------------------------------


class _Clock:
    """Wall and thread-CPU clocks that a test moves by hand (the decision must not
    depend on how busy the machine running the tests is)."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def perf_counter(self) -> float:
        return self.wall

    def thread_time(self) -> float:
        return self.cpu

    def compute(self, seconds: float) -> None:
        self.wall += seconds
        self.cpu += seconds

    def wait(self, seconds: float) -> None:
        self.wall += seconds


def _first_execution(clock: _Clock, items: list[Callable[[], None]]) -> Any:
    from xcs._compiler import _rt

    site = _rt.Site(0, "comprehension", 1, "test")
    gate = _rt._Gate(iter(range(100)))
    measure = _rt.Measure(site)
    task = measure.timed(lambda step: step(), gate)
    for step in items:
        task(step)
    closed = gate.closed
    site.settle(measure)
    return site, closed


def test_a_first_execution_that_computes_stops_overlapping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from xcs._compiler import _rt

    clock = _Clock()
    monkeypatch.setattr(_rt, "time", clock)
    # One-time cost in the first task (an import: CPU), then calls that compute.
    site, closed = _first_execution(
        clock, [lambda: clock.compute(0.5)] + [lambda: clock.compute(0.01)] * 4
    )
    assert closed  # no more items were started: the rest ran in order
    assert site.mode.value == "in order"
    assert "compute" in site.reason


def test_a_first_execution_that_waits_keeps_overlapping(monkeypatch: pytest.MonkeyPatch) -> None:
    from xcs._compiler import _rt

    clock = _Clock()
    monkeypatch.setattr(_rt, "time", clock)
    # The first call pays a one-time cost in CPU (an SDK import); the others wait.
    site, closed = _first_execution(
        clock,
        [lambda: (clock.compute(0.4), clock.wait(0.1))]
        + [lambda: (clock.compute(0.001), clock.wait(0.1))] * 3,
    )
    assert not closed
    assert site.mode.value == "overlap"
    assert "overlapping pays" in site.reason


def test_a_cpu_bound_region_stays_in_order_and_is_probed_rarely() -> None:
    @xcs.jit
    def run(xs: list[int]) -> list[int]:
        return [spin(x) for x in xs]

    assert run(list(range(5))) == list(range(5))
    site = run.__xcs_jit__.compiled().runtime.sites[0]  # type: ignore[attr-defined]
    site.force_in_order("measured: it computes")  # as the first execution decides
    site._countdown = site._interval = 1
    before = site.probes
    for _ in range(20):
        assert run([1, 2]) == [1, 2]
    assert site.probes - before <= 5  # probes become rare: 2, 4, 8, 16 ...
    assert "it computes; overlapping would not pay" in xcs.explain(run)


def test_an_io_bound_region_overlaps_and_says_why() -> None:
    @xcs.jit
    def run(xs: list[int]) -> list[int]:
        return [slow(x) for x in xs]

    run([1, 2, 3])
    text = xcs.explain(run)
    assert "overlap: its first execution overlapped" in text
    assert "overlapping pays" in text


def test_a_region_whose_calls_become_quick_goes_in_order() -> None:
    delay = [0.002]

    def call(x: int) -> int:
        if delay[0]:
            time.sleep(delay[0])
        return x

    @xcs.jit
    def run(xs: list[int]) -> list[int]:
        return [call(x) for x in xs]

    xs = list(range(10))  # judged quick from 8 tasks or more
    run(xs)
    site = run.__xcs_jit__.compiled().runtime.sites[0]  # type: ignore[attr-defined]
    assert site.mode.value == "overlap"
    delay[0] = 0
    run(xs)
    assert site.mode.value == "in order"
    assert "no longer pays" in xcs.explain(run)


# -- bounds, nesting, deadlines ---------------------------------------------------------------


def test_max_workers_bounds_a_region() -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def call(x: int) -> int:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.002)
        with lock:
            state["now"] -= 1
        return x

    @xcs.jit(max_workers=3)
    def run(xs: list[int]) -> list[int]:
        return [call(x) for x in xs]

    assert run(list(range(20))) == list(range(20))
    assert 1 < state["peak"] <= 3


def test_jitted_functions_nest_inside_regions_without_deadlock() -> None:
    pool = WorkerPool(2, name="xcs-nest")
    from xcs._runtime import _pool

    original = _pool._pool
    _pool._pool = pool
    try:

        @xcs.jit
        def leaf(x: int) -> int:
            return sum(slow(v) for v in range(x, x + 3))

        @xcs.jit
        def middle(x: int) -> list[int]:
            return [leaf(x + i) for i in range(3)]

        @xcs.jit
        def top(xs: list[int]) -> list[list[int]]:
            return [middle(x) for x in xs]

        expected = [[sum(range(x + i, x + i + 3)) for i in range(3)] for x in range(4)]
        for _ in range(3):
            assert top(list(range(4))) == expected
        assert pool.thread_count <= 2
    finally:
        _pool._pool = original
        pool.close()
        pool.join(10)


def test_a_deadline_bounds_a_jitted_call() -> None:
    gate = threading.Event()

    def stuck(x: int) -> int:
        if x:
            gate.wait(60)
        else:
            time.sleep(0.002)
        return x

    @xcs.jit
    def run(xs: list[int]) -> list[int]:
        return [stuck(x) for x in xs]

    try:
        with pytest.raises(xcs.ExecutionTimeout), xcs.deadline(0.2):
            run([0, 1, 2])
    finally:
        gate.set()


# -- explain -------------------------------------------------------------------------------


def test_explain_shows_regions_order_notes_and_the_plan() -> None:
    def run(q: str, xs: list[int]) -> Any:
        a = slow(q)
        b = slow(q + "!")
        answers = [slow(x) for x in xs]
        for x in xs:
            if slow(x) > 2:
                break
        out = []
        for x in xs:
            out.append(slow(x))
        return a, b, answers, out

    text = xcs.explain(run)  # a plain function: compiled to show the plan
    assert "statements, line" in text
    assert "comprehension, line" in text
    assert "loop, line" in text
    assert "for x in xs: ..." in text
    assert "for loop runs in order: it may break out early" in text
    assert "graph test_explain_shows_regions_order_notes_and_the_plan.<locals>.run" in text
    assert "inputs (q, xs)" in text


def test_explain_a_function_with_nothing_to_overlap() -> None:
    def run(x: int) -> int:
        return x + 1

    assert "no parallel region" in xcs.explain(xcs.jit(run))


@pytest.mark.parametrize("failing", [0, 3])
def test_effects_before_a_failure_are_made_whichever_item_fails(failing: int) -> None:
    # The caller can see `out` after the error: it must hold exactly what the plain
    # function had appended, for the first item (the probe) as for any other.
    def run(xs: list[int], out: list[int]) -> None:
        for x in xs:
            out.append(slow(x))
            if x == failing:
                raise KeyError(x)
            out.append(-x)

    plain: list[int] = []
    with pytest.raises(KeyError):
        run(list(range(6)), plain)
    jitted = xcs.jit(run)
    for _ in range(3):  # first call (probe), then measured calls
        got: list[int] = []
        with pytest.raises(KeyError):
            jitted(list(range(6)), got)
        assert got == plain


def test_a_function_jit_cannot_compile_warns_once_at_its_first_call() -> None:
    @xcs.jit
    def count(n: int) -> Any:
        yield from range(n)

    with pytest.warns(xcs.JitWarning, match=r"cannot compile .*count.* generator") as seen:
        assert list(count(2)) == [0, 1]
    assert seen[0].filename == __file__  # points at the call, not into xcs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(count(3)) == [0, 1, 2]  # once per function


def test_a_function_without_source_warns_as_under_python_c() -> None:
    script = (
        "import warnings, xcs\n"
        "warnings.simplefilter('error', xcs.JitWarning)\n"
        "f = xcs.jit(lambda xs: [x * 2 for x in xs])\n"
        "try:\n"
        "    f([1])\n"
        "except xcs.JitWarning as w:\n"
        "    print('warned:', w)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert "warned: xcs.jit cannot compile <lambda>" in done.stdout
    assert "source" in done.stdout


def test_explain_and_callees_that_cannot_compile_do_not_warn() -> None:
    def pairs(n: int) -> Any:
        yield from range(n)

    @xcs.jit
    def top(n: int) -> list[int]:
        return [sum(pairs(k)) for k in range(n)]

    gen = xcs.jit(pairs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "generator" in xcs.explain(gen)
        assert top(3) == [0, 0, 1]
