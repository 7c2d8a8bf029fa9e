"""Each parallel pattern overlaps (proven by barriers), each in-order pattern keeps
program order (proven by an in-flight counter), and both give the plain result."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import xcs

N = 6
TIMEOUT = 10.0


class Ops:
    """Operations that block, record their calls, and meet at a barrier.

    Item 0 of a region is its probe on the first call: it runs alone, so it sleeps
    instead of meeting the others; the other N - 1 must all be in flight at once.
    """

    def __init__(self, parties: int | None = None, *, warm: bool = False) -> None:
        self.barrier = threading.Barrier(parties, timeout=TIMEOUT) if parties else None
        self.warm = warm  # the sites are already measured: no item is a probe
        self.lock = threading.Lock()
        self.calls: list[tuple[str, Any]] = []
        self.now = 0
        self.peak = 0

    def _enter(self, name: str, arg: Any, probe: bool) -> None:
        with self.lock:
            self.calls.append((name, arg))
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.barrier is not None and (self.warm or not probe):
                self.barrier.wait()
            else:
                time.sleep(0.001)
        finally:
            with self.lock:
                self.now -= 1

    def f(self, x: Any) -> Any:
        self._enter("f", x, x == 0)
        return x * 2

    def g(self, x: Any) -> Any:
        self._enter("g", x, x == 0)
        return x + 100

    def keep(self, x: Any) -> bool:
        self._enter("keep", x, x == 0)
        return x % 2 == 0


def run_twice(
    make: Callable[[Ops], Callable[..., Any]], parties: int, *args: Any, warm: bool = False
) -> Any:
    """The plain function, then the jitted one where the barrier needs overlap
    (on its first call, or, with ``warm``, once its sites have been measured)."""
    plain_ops = Ops()
    expected = make(plain_ops)(*args)
    ops = Ops(parties, warm=warm)
    jitted = xcs.jit(make(ops))
    if warm:
        ops.barrier, barrier = None, ops.barrier
        jitted(*args)
        ops.barrier = barrier
        ops.calls.clear()
    got = jitted(*args)
    assert got == expected
    assert type(got) is type(expected)
    assert sorted(map(repr, ops.calls)) == sorted(map(repr, plain_ops.calls))
    return got


# -- comprehensions --------------------------------------------------------------------


def test_list_comprehension_overlaps() -> None:
    def make(ops: Ops) -> Callable[[list[int]], list[int]]:
        def run(xs: list[int]) -> list[int]:
            return [ops.f(x) for x in xs]

        return run

    assert run_twice(make, N - 1, list(range(N))) == [x * 2 for x in range(N)]


def test_regions_inside_match_cases_overlap() -> None:
    def make(ops: Ops) -> Callable[[str, list[int]], Any]:
        def run(kind: str, xs: list[int]) -> Any:
            match kind:
                case "all" if len([ops.keep(x) for x in xs]) > 0:  # the guard: a region
                    return [ops.f(x) for x in xs]
                case "pair":
                    a = ops.f(xs[1])
                    b = ops.g(xs[2])
                    return a + b
                case _:
                    return None

        return run

    # keep(0) and f(0) are the probes; the other N - 1 calls of each region meet.
    assert run_twice(make, N - 1, "all", list(range(N))) == [x * 2 for x in range(N)]
    assert run_twice(make, 2, "pair", [0, 1, 2], warm=True) == 2 + 102
    assert run_twice(make, 2, "other", [0, 1, 2]) is None


def test_set_and_dict_comprehensions_overlap() -> None:
    def make_set(ops: Ops) -> Callable[[list[int]], set[int]]:
        def run(xs: list[int]) -> set[int]:
            return {ops.f(x) for x in xs}

        return run

    def make_dict(ops: Ops) -> Callable[[list[int]], dict[int, int]]:
        def run(xs: list[int]) -> dict[int, int]:
            return {x: ops.f(x) for x in xs}

        return run

    run_twice(make_set, N - 1, list(range(N)))
    run_twice(make_dict, N - 1, list(range(N)))


@pytest.mark.parametrize(
    "consumer",
    ["list", "tuple", "set", "sorted", "sum", "min", "max", "join"],
)
def test_generator_expressions_consumed_whole_overlap(consumer: str) -> None:
    def make(ops: Ops) -> Callable[[list[int]], Any]:
        runs = {
            "list": lambda xs: list(ops.f(x) for x in xs),  # noqa: C400
            "tuple": lambda xs: tuple(ops.f(x) for x in xs),
            "set": lambda xs: set(ops.f(x) for x in xs),  # noqa: C401
            "sorted": lambda xs: sorted(ops.f(x) for x in xs),
            "sum": lambda xs: sum(ops.f(x) for x in xs),
            "min": lambda xs: min(ops.f(x) for x in xs),
            "max": lambda xs: max((ops.f(x) for x in xs), default=None),
            "join": lambda xs: ",".join(str(ops.f(x)) for x in xs),
        }
        return runs[consumer]

    run_twice(make, N - 1, list(range(N)))


def test_nested_comprehension_overlaps_all_pairs() -> None:
    xs, ys = [0, 1, 2], [0, 1]

    def make(ops: Ops) -> Callable[[list[int], list[int]], list[int]]:
        def run(xs: list[int], ys: list[int]) -> list[int]:
            return [ops.f(x * 10 + y) for x in xs for y in ys]

        return run

    assert run_twice(make, 5, xs, ys) == [(x * 10 + y) * 2 for x in xs for y in ys]


def test_comprehension_of_comprehensions_overlaps() -> None:
    def make(ops: Ops) -> Callable[[list[int]], list[list[int]]]:
        def run(xs: list[int]) -> list[list[int]]:
            return [[ops.f(x * 10 + y) for y in range(2)] for x in xs]

        return run

    # Once measured, all 3 x 2 calls are in flight at once.
    got = run_twice(make, 6, [0, 1, 2], warm=True)
    assert got == [[0, 2], [20, 22], [40, 42]]


def test_a_calling_condition_is_part_of_the_iteration() -> None:
    def make(ops: Ops) -> Callable[[list[int]], list[int]]:
        def run(xs: list[int]) -> list[int]:
            return [ops.f(x) for x in xs if ops.keep(x)]

        return run

    # keep() for items 1..5 meet (5), then f() for the even ones among them (2, 4).
    ops_parties = N - 1
    plain = Ops()
    expected = make(plain)(list(range(N)))
    ops = Ops(ops_parties)

    def meet_keep_only(x: int) -> bool:
        ops._enter("keep", x, x == 0)
        return x % 2 == 0

    def f_no_barrier(x: int) -> int:
        with ops.lock:
            ops.calls.append(("f", x))
        return x * 2

    ops.keep = meet_keep_only  # type: ignore[method-assign]
    ops.f = f_no_barrier  # type: ignore[method-assign]
    assert xcs.jit(make(ops))(list(range(N))) == expected
    assert sorted(map(repr, ops.calls)) == sorted(map(repr, plain.calls))


def test_several_calls_per_iteration_chain_inside_it() -> None:
    def make(ops: Ops) -> Callable[[list[int]], list[int]]:
        def run(xs: list[int]) -> list[int]:
            return [ops.g(ops.f(x)) for x in xs]

        return run

    plain = Ops()
    expected = make(plain)(list(range(N)))
    ops = Ops(N - 1)
    ops.g = lambda x: x + 100  # type: ignore[method-assign]
    assert xcs.jit(make(ops))(list(range(N))) == expected


# -- loops -------------------------------------------------------------------------------


def test_loop_with_accumulators_overlaps() -> None:
    def make(ops: Ops) -> Callable[[list[int]], Any]:
        def run(xs: list[int]) -> Any:
            out: list[int] = []
            seen: set[int] = set()
            index: dict[int, int] = {}
            flat: list[int] = []
            total = 0
            for i, x in enumerate(xs):  # noqa: B007 - i is read after the loop
                y = ops.f(x)
                if y == 4:
                    continue
                out.append(y)
                seen.add(y % 3)
                index[x] = y
                flat.extend([y, -y])
                total += y
            return out, seen, index, flat, total, i, x, y

        return run

    out, seen, index, flat, total, i, x, y = run_twice(make, N - 1, list(range(N)))
    assert out == [0, 2, 6, 8, 10]
    assert seen == {0, 1, 2}
    assert index == {0: 0, 1: 2, 3: 6, 4: 8, 5: 10}
    assert flat == [0, 0, 2, -2, 6, -6, 8, -8, 10, -10]
    assert total == 26
    assert (i, x, y) == (5, 5, 10)


def test_nested_loops_overlap_all_their_calls() -> None:
    # 2 x 3 calls, all in flight at once (warm: no item is a probe).
    def make(ops: Ops) -> Callable[[list[int], list[int]], Any]:
        def run(xs: list[int], ys: list[int]) -> Any:
            out: list[int] = []
            for x in xs:
                for y in ys:
                    out.append(ops.f(x * 10 + y))
            return out

        return run

    assert run_twice(make, 6, [1, 2], [1, 2, 3], warm=True) == [22, 24, 26, 42, 44, 46]


def test_nested_loop_effects_keep_program_order_whatever_finishes_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    delays = {(x, y): 0.001 * ((x * 7 + y * 3) % 5) for x in range(4) for y in range(5)}

    def slow(x: int, y: int) -> int:
        time.sleep(delays[x, y])
        return x * 10 + y

    def run(xs: list[int], ys: list[int]) -> Any:
        out, by_pair, total = [], {}, 0
        for x in xs:
            row = []
            for y in ys:
                v = slow(x, y)
                if v % 3 == 0:
                    continue  # the inner loop's continue
                out.append(v)
                row.append(v)
                by_pair[x, y] = v
                total += v
                print(v, end=" ")
            out.append(len(row))
        return out, by_pair, total, x, y, v

    expected = run(list(range(4)), list(range(5)))
    printed = capsys.readouterr().out
    jitted = xcs.jit(run)
    for _ in range(3):
        assert jitted(list(range(4)), list(range(5))) == expected
        assert capsys.readouterr().out == printed
    assert xcs.explain(jitted).count("] loop, line") == 2  # both loops are regions


def test_loop_effects_keep_program_order_whatever_finishes_first() -> None:
    delays = [0.004, 0.0, 0.003, 0.0, 0.002, 0.001]

    def slow(x: int) -> int:
        time.sleep(delays[x])
        return x

    @xcs.jit
    def run(xs: list[int]) -> list[int]:
        out = []
        for x in xs:
            out.append(slow(x))
        return out

    for _ in range(3):
        assert run(list(range(6))) == list(range(6))


def test_a_loop_printing_prints_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    ops = Ops(N - 1)

    @xcs.jit
    def run(xs: list[int]) -> None:
        for x in xs:
            print("item", ops.f(x))

    run(list(range(N)))
    assert capsys.readouterr().out.splitlines() == [f"item {x * 2}" for x in range(N)]


def test_loop_over_imported_operations_overlaps() -> None:
    from tests.compiler import _remote_ops

    _remote_ops.barrier = threading.Barrier(N - 1, timeout=TIMEOUT)
    try:

        @xcs.jit
        def run(xs: list[int]) -> list[int]:
            results = []
            for x in xs:
                results.append(_remote_ops.fetch(x))
            return results

        assert run(list(range(N))) == [x * 10 for x in range(N)]
    finally:
        _remote_ops.barrier = None


# -- independent statements --------------------------------------------------------------


def test_independent_statements_overlap_and_join_at_first_use() -> None:
    def make(ops: Ops) -> Callable[[int], int]:
        def run(x: int) -> int:
            a = ops.f(x)
            b = ops.g(x + 1)
            c = ops.g(x + 2)
            return a + b + c

        return run

    # Statement 1 is the probe (x == 0 sleeps); b and c meet.
    assert run_twice(make, 2, 0) == 0 + 101 + 102


def test_a_late_read_of_a_surely_bound_local_still_overlaps() -> None:
    # `b` is read behind `or` and `if`-`else`, but both branches bind it.
    def make(ops: Ops) -> Callable[[int], int]:
        def run(x: int) -> int:
            if x > 100:
                b = 1
            else:
                b = 2
            a = ops.f(x)
            c = ops.g(x + 1 or b)
            d = ops.g(x + 2 if x < 0 else b)
            return a + c + d

        return run

    assert run_twice(make, 3, 0, warm=True) == 0 + 101 + 102


def test_a_late_read_of_a_maybe_unbound_local_runs_in_order() -> None:
    def make(ops: Ops) -> Callable[[int], int]:
        def run(x: int) -> int:
            if x > 100:
                b = 1
            a = ops.f(x)
            c = ops.g(x or b)
            return a + c

        return run

    ops = Ops()
    jitted = xcs.jit(make(ops))
    for _ in range(2):
        assert jitted(3) == make(Ops())(3)
    assert ops.peak == 1  # never two calls at once
    assert "it reads b after a call or only on some paths" in xcs.explain(jitted)


def test_a_dependent_statement_waits_for_its_input() -> None:
    order: list[str] = []

    def f(x: int) -> int:
        time.sleep(0.003)
        order.append("f")
        return x + 1

    def g(x: int) -> int:
        order.append(f"g({x})")
        return x * 2

    @xcs.jit
    def run(x: int) -> int:
        a = f(x)
        b = g(a)
        return b

    assert run(1) == 4
    assert order == ["f", "g(2)"]


# -- what stays in order ------------------------------------------------------------------


def in_order(fn: Callable[..., Any], *args: Any) -> tuple[Any, Ops]:
    """Run ``fn(ops, *args)`` plain and jitted (three times, so decisions settle);
    calls must be the same and never overlap."""
    plain = Ops()
    expected = fn(plain, *args)
    jitted = xcs.jit(fn)
    for _ in range(3):
        ops = Ops()
        assert jitted(ops, *args) == expected
        assert ops.calls == plain.calls  # same calls, same order
        assert ops.peak == 1
    return expected, plain


def test_break_on_a_result_runs_in_order() -> None:
    def run(ops: Ops, xs: list[int]) -> list[int]:
        out = []
        for x in xs:
            y = ops.f(x)
            if y > 4:
                break
            out.append(y)
        return out

    expected, plain = in_order(run, list(range(N)))
    assert expected == [0, 2, 4]
    assert len(plain.calls) == 4  # no call after the break


def test_return_inside_a_loop_runs_in_order() -> None:
    def run(ops: Ops, xs: list[int]) -> int:
        for x in xs:
            if ops.keep(x + 1):
                return x
        return -1

    in_order(run, list(range(N)))


def test_loop_carried_state_runs_in_order() -> None:
    def run(ops: Ops, xs: list[int]) -> int:
        prev = 0
        for x in xs:
            prev = ops.f(prev + x)
        return prev

    in_order(run, list(range(N)))


def test_short_circuit_consumers_make_no_extra_call() -> None:
    def run(ops: Ops, xs: list[int]) -> tuple[bool, bool, int]:
        return (
            any(ops.keep(x) for x in xs),
            all(ops.keep(x) for x in xs),
            next(ops.f(x) for x in xs if x > 2),
        )

    expected, plain = in_order(run, list(range(N)))
    assert expected == (True, False, 6)
    assert len(plain.calls) == 1 + 2 + 1


def test_a_while_loop_runs_in_order() -> None:
    def run(ops: Ops, n: int) -> int:
        total = 0
        while n > 0:
            total += ops.f(n)
            n -= 1
        return total

    in_order(run, 4)


def test_calls_inside_with_blocks_run_in_order() -> None:
    import contextlib

    def run(ops: Ops, xs: list[int]) -> list[int]:
        with contextlib.nullcontext():
            return [ops.f(x) for x in xs]

    in_order(run, list(range(N)))


def test_a_loop_inside_try_runs_in_order() -> None:
    def run(ops: Ops, xs: list[int]) -> int:
        total = 0
        try:
            for x in xs:
                total += ops.f(x)
                if total > 10:
                    raise ValueError(total)
        except ValueError as err:
            return -err.args[0]
        return total

    in_order(run, list(range(N)))


def test_a_walrus_comprehension_runs_in_order() -> None:
    def run(ops: Ops, xs: list[int]) -> tuple[list[int], int]:
        out = [last := ops.f(x) for x in xs]
        return out, last

    in_order(run, list(range(N)))


def test_global_and_nonlocal_writes_run_in_order() -> None:
    counter = 0

    def run(ops: Ops, xs: list[int]) -> int:
        nonlocal counter
        for x in xs:
            counter += ops.f(x)
        return counter

    plain = Ops()
    expected = run(plain, list(range(N)))
    counter = 0
    ops = Ops()
    assert xcs.jit(run)(ops, list(range(N))) == expected
    assert ops.peak == 1


def test_sequential_callee_keeps_its_calls_in_order() -> None:
    ops = Ops()

    @xcs.sequential
    def save(x: int) -> int:
        return ops.f(x)

    @xcs.jit
    def run(xs: list[int]) -> list[int]:
        return [save(x) for x in xs]

    for _ in range(3):
        ops.calls.clear()
        assert run(list(range(N))) == [x * 2 for x in range(N)]
        assert [arg for _, arg in ops.calls] == list(range(N))
    assert ops.peak == 1
    assert "marked @xcs.sequential" in xcs.explain(run)


def test_a_body_that_advances_the_loops_iterator_runs_in_order() -> None:
    def run(ops: Ops, xs: list[int]) -> list[tuple[int, int]]:
        it = iter(xs)
        pairs = []
        for a in it:
            pairs.append((ops.f(a), ops.f(next(it))))
        return pairs

    expected, _ = in_order(run, list(range(N)))
    assert expected == [(0, 2), (4, 6), (8, 10)]


def test_a_lambda_in_a_forked_statement_sees_the_variable_itself() -> None:
    def run(ops: Ops, x: int) -> list[int]:
        a = ops.f(x)
        get = make_getter(lambda: a)
        a = ops.g(x)
        return [get(), a]

    def make_getter(fn: Callable[[], int]) -> Callable[[], int]:
        return fn

    plain = run(Ops(), 3)
    assert plain == [103, 103]  # the lambda reads the variable, rebound later
    assert xcs.jit(run)(Ops(), 3) == plain


def test_statements_after_a_computing_one_still_overlap() -> None:
    # The run's first statement computes; probing goes on until a statement blocks,
    # so the two calls after it overlap (from the second call on, all of them).
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    meet = [False]

    def compute(x: int) -> int:
        end = time.thread_time() + 0.001
        while time.thread_time() < end:
            pass
        return x

    def fetch(x: int) -> int:
        if meet[0]:
            barrier.wait()
        else:
            time.sleep(0.002)
        return x * 10

    @xcs.jit
    def run(x: int) -> int:
        base = compute(x)
        a = fetch(x)
        b = fetch(x + 1)
        return base + a + b

    assert run(1) == 1 + 10 + 20  # first call: probes compute, then fetch (blocks)
    meet[0] = True
    assert run(1) == 31  # the two fetches meet at the barrier: they overlap
    assert "overlapping pays" in xcs.explain(run)


def test_closures_made_per_item_keep_late_binding() -> None:
    # In plain Python every lambda made by the comprehension (or loop) shares one
    # variable and sees its last value; regions run items in frames of their own,
    # so such comprehensions and loops stay in order.
    def run(ops: Ops, xs: list[int]) -> tuple[list[int], list[int]]:
        made = [lambda: ops.f(x) for x in xs]  # noqa: B023 - late binding is the point
        getters = []
        for x in xs:
            ops.g(x)
            getters.append(lambda: x)  # noqa: B023
        return [m() for m in made], [g() for g in getters]

    assert run(Ops(), [1, 2, 3]) == ([6, 6, 6], [3, 3, 3])
    jitted = xcs.jit(run)
    for _ in range(3):
        assert jitted(Ops(), [1, 2, 3]) == ([6, 6, 6], [3, 3, 3])
    assert "for loop runs in order: a function made in it captures 'x'" in xcs.explain(jitted)

    def calls_too(ops: Ops, xs: list[int]) -> list[int]:
        made = [(ops.f(x), lambda: x) for x in xs]  # noqa: B023
        return [value + get() for value, get in made]

    assert xcs.jit(calls_too)(Ops(), [1, 2]) == calls_too(Ops(), [1, 2]) == [4, 6]
    assert "captures 'x'" in xcs.explain(xcs.jit(calls_too))


def test_a_shadowed_consumer_gets_a_lazy_generator() -> None:
    # `max` here is the program's own function, which reads one item: XCS checks the
    # consumer when the region runs and gives it the plain lazy generator.
    def max(items: Any) -> Any:
        return next(iter(items))

    def run(ops: Ops, xs: list[int]) -> int:
        return max(ops.f(x) for x in xs)

    expected, plain = in_order(run, list(range(N)))
    assert expected == 0
    assert len(plain.calls) == 1
