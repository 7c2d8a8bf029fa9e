"""@xcs.jit on an entry point compiles the user's own callees, transitively (issue 15,
DESIGN §1.9): helpers, methods, class and static methods, recursion; not library code;
``@xcs.sequential`` callees stay as written. Barriers prove the overlap on the FIRST call.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from typing import Any

import pytest
from tests.compiler._forget import forget

import xcs
import xcs.testing
from xcs._compiler import _jit, _rt

TIMEOUT = 10.0


class Model:
    """A model whose calls meet at a barrier (when set) and count those in flight."""

    def __init__(self, parties: int | None, delay: float = 0.0) -> None:
        self.barrier = threading.Barrier(parties, timeout=TIMEOUT) if parties else None
        self.delay = delay  # seconds each call stays in flight
        self.lock = threading.Lock()
        self.now = self.peak = 0
        self.calls: list[str] = []

    def __call__(self, prompt: str) -> str:
        with self.lock:
            self.calls.append(prompt)
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.barrier is not None:
                self.barrier.wait()
            time.sleep(self.delay)
            return prompt.upper()
        finally:
            with self.lock:
                self.now -= 1


model = Model(None)


class Pipeline:
    def drafts(self, q: str) -> list[str]:
        return [model(f"{q}-{i}") for i in range(4)]

    @classmethod
    def make(cls) -> Pipeline:
        return cls()

    @staticmethod
    def polish(text: str) -> str:
        return text.strip()

    def run(self, qs: list[str]) -> list[list[str]]:
        out = []
        for q in qs:
            out.append([self.polish(d) for d in self.drafts(q)])
        return out


def top(qs: list[str]) -> list[list[str]]:
    return Pipeline.make().run(qs)


def walk(tree: list[Any], depth: int = 0) -> list[str]:
    here = [model(f"node{depth}")]
    return here + [x for child in tree for x in walk(child, depth + 1)]


@xcs.sequential
def save(text: str) -> str:
    return model(text)


def saves(xs: list[str]) -> list[str]:
    return [save(x) for x in xs]


def three_levels(qs: list[str]) -> list[str]:
    return helper_a(qs)


def helper_a(qs: list[str]) -> list[str]:
    return helper_b(qs)


def helper_b(qs: list[str]) -> list[str]:
    return [model(q) for q in qs]


@pytest.fixture(autouse=True)
def _fresh_model() -> Any:
    global model
    yield
    model = Model(None)


def _fresh(fn: Any) -> Any:
    """A fresh function object with ``fn``'s code: nothing compiled or cached yet."""
    forget(fn, Pipeline.drafts, Pipeline.run, Pipeline.make, Pipeline.polish)
    forget(helper_a, helper_b, walk)
    return xcs.jit(fn)


def test_methods_of_a_class_overlap_on_the_first_call() -> None:
    global model
    model = Model(16)  # 4 questions x 4 drafts: all in flight at once, or no return
    assert _fresh(top)(["a", "b", "c", "d"]) == [
        [f"{q.upper()}-{i}" for i in range(4)] for q in "abcd"
    ]
    assert model.peak == 16
    tree = xcs.explain(top)
    assert "Pipeline.run: compiled, 2 regions (loop line" in tree


def test_three_levels_of_plain_helpers_overlap_on_the_first_call() -> None:
    global model
    model = Model(5)
    assert _fresh(three_levels)(list("vwxyz")) == list("VWXYZ")


def test_recursion_through_the_call_tree() -> None:
    global model
    model = Model(None)
    tree = [[[]], [], [[], []]]
    plain = walk(tree)
    model = Model(None)
    with xcs.testing.force_overlap():
        assert _fresh(walk)(tree) == plain


def test_a_sequential_callee_stays_in_order_and_uncompiled() -> None:
    global model
    model = Model(None)
    with xcs.testing.force_overlap():
        assert _fresh(saves)(list("abcdef")) == list("ABCDEF")
    assert model.peak == 1
    assert _rt.dispatch_target(save) in (None, save)


def test_library_code_runs_as_written() -> None:
    @xcs.jit
    def dump(obj: Any) -> str:
        return json.dumps(obj)

    assert dump({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert _rt.dispatch_target(json.dumps) in (None, json.dumps)
    assert not _rt.is_user_code(json.dumps.__code__)
    assert _rt.is_user_code(top.__code__)


def test_first_errors_and_values_equal_the_plain_call_tree() -> None:
    def failing(q: str) -> str:
        if q in ("c", "e"):
            raise ValueError(q)
        return model(q)

    def entry(qs: list[str]) -> list[str]:
        return inner(qs)

    def inner(qs: list[str]) -> list[str]:
        return [failing(q) for q in qs]

    global model
    model = Model(None)
    with pytest.raises(ValueError) as plain:
        entry(list("abcdef"))
    with xcs.testing.force_overlap(), pytest.raises(ValueError) as jitted:
        xcs.jit(entry)(list("abcdef"))
    assert jitted.value.args == plain.value.args == ("c",)


# -- what a callee does decides for the caller's region ---------------------------------


@xcs.sequential
def _save(x: str) -> str:
    return model(x)


def _process(x: str) -> str:
    return _save(x)


class _Store:
    def put(self, x: str) -> str:
        return self.write(x)

    def write(self, x: str) -> str:
        return _save(x)


def _ask(q: str, log: list[str]) -> str:
    answer = model(q)
    log.append(q)
    return answer


def _ask_deeper(q: str, log: list[str]) -> str:
    return _ask(q, log)  # passes the shared list on to the function that changes it


class _Seen:
    def __init__(self) -> None:
        self.items: list[str] = []


def _ask_into(q: str, state: _Seen) -> str:
    answer = model(q)
    state.items.append(q)  # an attribute of the argument
    return answer


def _ask_extend(q: str, log: list[str]) -> str:
    answer = model(q)
    log += [q]  # in place
    return answer


def _enrich(doc: dict[str, str]) -> dict[str, str]:
    doc["answer"] = model(doc["q"])
    return doc


@pytest.mark.parametrize("mode", ["as shipped", "forced"])
def test_a_sequential_function_behind_helpers_keeps_the_region_in_order(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Model(None)
    monkeypatch.setitem(globals(), "model", calls)

    @xcs.jit
    def through_function(xs: list[str]) -> list[str]:
        return [_process(x) for x in xs]

    @xcs.jit
    def through_methods(xs: list[str]) -> list[str]:
        store = _Store()
        return [store.put(x) for x in xs]

    for jitted in (through_function, through_methods):
        with xcs.testing.force_overlap() if mode == "forced" else contextlib.nullcontext():
            assert jitted(["a", "b", "c", "d"]) == ["A", "B", "C", "D"]
        assert calls.peak == 1
        assert "which calls _save, marked @xcs.sequential" in xcs.explain(jitted)


def _cycle_a(x: str, d: int) -> str:
    return _cycle_b(x, d - 1) if d > 0 else x  # reaches _save only through _cycle_b


def _cycle_b(x: str, d: int) -> str:
    return _save(_cycle_a(x, d))


@pytest.mark.parametrize("mode", ["as shipped", "forced"])
def test_a_sequential_function_reached_through_a_cycle_keeps_the_region_in_order(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search for a marked function met a search further up (``_cycle_b`` ->
    ``_cycle_a`` -> ``_cycle_b``), took it for "none" and cached ``_cycle_a`` as
    reaching nothing: a region calling ``_cycle_a`` then overlapped ``_save``'s calls
    (NOTE: [Changes through a cycle] in ``_rt``)."""
    calls = Model(None, delay=0.005)  # calls that block: overlapped, they would meet
    monkeypatch.setitem(globals(), "model", calls)
    forget(_cycle_a, _cycle_b)

    @xcs.jit
    def both(xs: list[str]) -> tuple[list[str], list[str]]:
        first = [_cycle_b(x, 1) for x in xs]  # searched from _cycle_b first
        return first, [_cycle_a(x, 2) for x in xs]

    with xcs.testing.force_overlap() if mode == "forced" else contextlib.nullcontext():
        assert both(["a", "b", "c", "d"]) == (["A", "B", "C", "D"],) * 2
    assert calls.peak == 1
    assert "which calls _save, marked @xcs.sequential" in xcs.explain(both)


@pytest.mark.parametrize("mode", ["as shipped", "forced"])
def test_a_callee_that_changes_an_argument_every_item_shares_keeps_order(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(globals(), "model", Model(None))

    @xcs.jit
    def ask_all(qs: list[str], log: list[str]) -> list[str]:
        return [_ask(q, log) for q in qs]

    @xcs.jit
    def deeper(qs: list[str], log: list[str]) -> list[str]:
        return [_ask_deeper(q, log) for q in qs]

    @xcs.jit
    def extend(qs: list[str], log: list[str]) -> list[str]:
        return [_ask_extend(q, log) for q in qs]

    @xcs.jit
    def into(qs: list[str], state: _Seen) -> list[str]:
        return [_ask_into(q, state) for q in qs]

    qs = [f"q{i}" for i in range(8)]
    for program in (ask_all, deeper, extend):
        log: list[str] = []
        with xcs.testing.force_overlap() if mode == "forced" else contextlib.nullcontext():
            assert program(qs, log) == [q.upper() for q in qs]
        assert log == qs
    state = _Seen()
    with xcs.testing.force_overlap() if mode == "forced" else contextlib.nullcontext():
        assert into(qs, state) == [q.upper() for q in qs]
    assert state.items == qs
    assert "changes its argument log (log.append())" in xcs.explain(ask_all)
    assert "changes its argument log (_ask() log.append())" in xcs.explain(deeper)


def test_a_callee_that_changes_only_its_own_item_still_overlaps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(globals(), "model", Model(4))

    @xcs.jit
    def enrich_all(docs: list[dict[str, str]]) -> list[dict[str, str]]:
        return [_enrich(doc) for doc in docs]

    docs = [{"q": f"q{i}"} for i in range(4)]
    assert enrich_all(docs) == [{"q": f"q{i}", "answer": f"Q{i}"} for i in range(4)]


def test_a_wrapper_made_with_functools_wraps_runs_its_own_code() -> None:
    log: list[Any] = []

    def helper(x: int) -> int:
        return x * 10

    def logged(fn: Any) -> Any:
        @functools.wraps(fn)  # copies fn.__dict__, where XCS caches compiled forms
        def wrapper(*args: Any) -> Any:
            log.append(args)
            return fn(*args)

        return wrapper

    @xcs.jit
    def first(xs: list[int]) -> list[int]:
        return [_helper_global(x) for x in xs]

    assert first([1, 2]) == [10, 20]  # _helper_global's compiled form is cached on it
    wrapped = logged(_helper_global)
    globals()["_wrapped_global"] = wrapped

    @xcs.jit
    def second(xs: list[int]) -> list[int]:
        return [_wrapped_global(x) for x in xs]

    assert second([3, 4]) == [30, 40]
    assert log == [(3,), (4,)]
    log.clear()
    assert xcs.jit(wrapped)(5) == 50  # the entry too
    assert log == [(5,)]
    log.clear()
    rejitted = xcs.jit(logged(xcs.jit(helper)), max_workers=2)
    assert rejitted(6) == 60
    assert log == [(6,)]


def _helper_global(x: int) -> int:
    return x * 10


_wrapped_global: Any = None  # set by the test above


def test_a_helper_defined_inside_a_function_is_compiled_once_per_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = Model(2 * 3)
    monkeypatch.setitem(globals(), "model", calls)

    def outer(qs: list[str]) -> list[list[str]]:
        prefix = "q"

        def ask(q: str) -> list[str]:  # made anew at each call of outer
            return [model(f"{prefix}{q}{i}") for i in range(3)]

        return [ask(q) for q in qs]

    @xcs.jit
    def top(qs: list[str]) -> list[list[str]]:
        return outer(qs)

    expected = [[f"Q{q}{i}".upper() for i in range(3)] for q in "ab"]
    assert top(["a", "b"]) == expected  # all 6 calls in flight: ask's region overlaps
    calls.barrier = None
    assert top(["a", "b"]) == expected  # a new ask, the same compiled code
    assert "outer.<locals>.ask: compiled, 1 region" in xcs.explain(top)
    assert _jit.statistics.compiled >= 1


class _Record(xcs.Operator):
    def forward(self, q: str, log: list[str]) -> str:
        answer = model(q)
        log.append(q)  # changes the list every item passes
        return answer


class _Saver(xcs.Operator):
    def forward(self, q: str) -> str:
        return _save(q)  # marked @xcs.sequential


@pytest.mark.parametrize("mode", ["as shipped", "forced"])
def test_an_operator_whose_forward_changes_a_shared_argument_or_is_sequential_keeps_order(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Model(None)
    monkeypatch.setitem(globals(), "model", calls)
    record, saver = _Record(), _Saver()

    @xcs.jit
    def recorded(qs: list[str], log: list[str]) -> list[str]:
        return [record(q, log) for q in qs]

    @xcs.jit
    def saved(qs: list[str]) -> list[str]:
        return [saver(q) for q in qs]

    qs = [f"q{i}" for i in range(6)]
    log: list[str] = []
    with xcs.testing.force_overlap() if mode == "forced" else contextlib.nullcontext():
        assert recorded(qs, log) == [q.upper() for q in qs]
        assert saved(qs) == [q.upper() for q in qs]
    assert log == qs
    assert calls.peak == 1
    assert "which calls _save, marked @xcs.sequential" in xcs.explain(saved)


def _slow(prompt: str) -> str:
    time.sleep(0.003)  # blocks: worth overlapping
    return prompt


def _expand(depth: int) -> list[str]:
    if depth == 0:
        return ["leaf"]  # the leaves return at once
    out: list[str] = []
    for child in [_slow(f"d{depth}-{i}") for i in range(2)]:
        out.extend([*_expand(depth - 1), child])
    return out


def test_quick_leaves_do_not_put_a_recursion_in_order() -> None:
    expected = _expand(3)

    @xcs.jit
    def solve() -> list[str]:
        return _expand(3)

    for _ in range(4):  # warm: the lowest level's loop runs quick executions
        assert solve() == expected
    runtime = _jit.compiled_for(_expand, None).runtime
    assert runtime is not None
    loops = [site for site in runtime.sites if site.kind == "loop"]
    assert loops
    assert all(site.mode.value == "overlap" for site in loops), xcs.explain(solve)
