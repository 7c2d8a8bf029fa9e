"""The first call of a freshly decorated function overlaps (issue 15, DESIGN §1.7).

No barrier here needs ``force_overlap``: the first execution of a region overlaps its
items as measured tasks, and only a region shown to compute goes in order.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import pytest

import xcs
import xcs.testing

N = 6
TIMEOUT = 10.0


class Meet:
    """Calls that can only all return if ``parties`` of them are in flight at once."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=TIMEOUT)
        self.lock = threading.Lock()
        self.calls: list[Any] = []

    def __call__(self, x: Any) -> Any:
        with self.lock:
            self.calls.append(x)
        self.barrier.wait()
        return x


def test_the_first_call_of_a_comprehension_has_every_call_in_flight() -> None:
    call = Meet(N)

    @xcs.jit
    def ask_all(xs: list[int]) -> list[int]:
        return [call(x) for x in xs]

    assert ask_all(list(range(N))) == list(range(N))


def test_the_first_call_of_a_loop_and_of_statements_overlaps() -> None:
    call = Meet(N)
    pair = Meet(3)

    @xcs.jit
    def collect(xs: list[int]) -> list[int]:
        out = []
        for x in xs:
            out.append(call(x))
        return out

    @xcs.jit
    def three(x: int) -> tuple[int, int, int]:
        a = pair(x)
        b = pair(x + 1)
        c = pair(x + 2)
        return a, b, c

    assert collect(list(range(N))) == list(range(N))
    assert three(1) == (1, 2, 3)


def test_the_first_call_under_a_deadline_never_waits_on_the_caller_s_thread() -> None:
    release = threading.Event()
    returned: list[int] = []

    def hang(x: int) -> int:
        release.wait(TIMEOUT)
        returned.append(x)
        return x

    @xcs.jit
    def ask_all(xs: list[int]) -> list[int]:
        return [hang(x) for x in xs]

    try:
        with pytest.raises(xcs.ExecutionTimeout), xcs.deadline(0.2):
            ask_all([1, 2, 3])
        # Raised while every call still waits: no call ran on the caller's thread.
        assert returned == []
    finally:
        release.set()


def test_an_error_from_a_region_carries_a_note_naming_the_site_and_item() -> None:
    def check(x: int) -> int:
        if x == 3:
            raise ValueError(x)
        return x

    @xcs.jit
    def check_all(xs: list[int]) -> list[int]:
        return [check(x) for x in xs]

    with pytest.raises(ValueError) as caught:
        check_all(list(range(6)))
    assert caught.value.args == (3,)
    assert caught.value.__notes__ == [
        f"xcs: raised by item 3 of the comprehension at line "
        f"{check_all.__wrapped__.__code__.co_firstlineno + 2}"
        " of test_an_error_from_a_region_carries_a_note_naming_the_site_and_item.<locals>"
        ".check_all"
    ]


def test_a_comprehension_in_a_loop_body_does_not_keep_the_loop_in_order() -> None:
    # Before Python 3.12 the comprehension is a closure, so the loop variable it reads
    # is a cell; the comprehension runs where it stands, and the loop still overlaps.
    call = Meet(2 * 3)

    @xcs.jit
    def vote(qs: list[str]) -> list[str]:
        votes = []
        for q in qs:
            samples = [call(q + str(i)) for i in range(3)]
            votes.append(max(samples))
        return votes

    assert vote(["a", "b"]) == ["a2", "b2"]


def test_a_closure_made_in_a_loop_still_sees_the_variable_itself() -> None:
    def plain(qs: list[int]) -> list[int]:
        makers = []
        for q in qs:
            makers.append(lambda: q)  # noqa: B023 - the late binding under test
            _ = [str(q) for _ in range(2)]
        return [make() for make in makers]

    def walrus(qs: list[int]) -> tuple[list[int], int]:
        out = []
        last = -1
        for q in qs:
            out.append(sum([(last := str(q + i)) and q for i in range(2)]))
        return out, int(last)

    for fn in (plain, walrus):
        assert xcs.jit(fn)([1, 2, 3]) == fn([1, 2, 3])
        with xcs.testing.force_overlap():
            assert xcs.jit(fn)([1, 2, 3]) == fn([1, 2, 3])


def test_jit_of_a_bound_method_compiles_its_function() -> None:
    call = Meet(N)

    class Tool:
        def __init__(self) -> None:
            self.seen: list[int] = []

        def run(self, xs: list[int]) -> list[int]:
            self.seen.extend(xs)
            return [call(x) for x in xs]

    tool = Tool()
    run = xcs.jit(tool.run)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no JitWarning: it compiles
        assert run(list(range(N))) == list(range(N))
    assert tool.seen == list(range(N))
    assert "compiled in" in xcs.explain(run)


@pytest.mark.parametrize("work", [0, 2000])  # calls that do nothing; calls that compute
def test_a_first_call_whose_calls_are_quick_or_compute_overlaps_at_most_one_window(
    work: int,
) -> None:
    caller = threading.get_ident()
    elsewhere: list[int] = []

    def quick(x: int) -> int:
        if threading.get_ident() != caller:
            elsewhere.append(x)
        return sum(range(work)) + x

    @xcs.jit(max_workers=4)
    def run(xs: list[int]) -> list[int]:
        return [quick(x) for x in xs]

    xs = list(range(2000))
    assert run(xs) == [sum(range(work)) + x for x in xs]
    # The tasks started before the finished ones showed the region does not pay (one
    # window of 4, and the few that finished meanwhile), then the rest in order.
    assert len(elsewhere) < 200
    assert "        in order:" in xcs.explain(run)  # and later calls run in order
