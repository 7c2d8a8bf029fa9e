"""Ensemble: members concurrent with or without jit, the sequential program's results
and first error; N samples with distinct sample indices; differential trees."""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from typing import Any

import pytest
from _operator_defs import Answer
from hypothesis import given, settings
from hypothesis import strategies as st

import xcs
from xcs._runtime._pool import get_pool
from xcs.models import MockProvider
from xcs.operators import Candidates, Chain, Ensemble, MajorityVote, Operator


class InFlight:
    """Counts calls in flight and the most seen at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def test_members_run_concurrently_without_jit() -> None:
    n = 6
    barrier = threading.Barrier(n, timeout=30)
    flight = InFlight()

    def member(tag: int, question: str) -> str:
        with flight:
            barrier.wait()  # passes only when all n members run at once
        return f"{tag}:{question}"

    ensemble = Ensemble(*[functools.partial(member, i) for i in range(n)])
    out = ensemble("q")
    assert out == [f"{i}:q" for i in range(n)]
    assert isinstance(out, Candidates)
    assert out.question == "q"
    assert flight.most == n


def test_samples_of_one_operator_run_concurrently_with_distinct_indices() -> None:
    n = 4
    barrier = threading.Barrier(n, timeout=30)
    seen: list[int] = []

    class Sampler(Operator):
        def forward(self, question: str, sample: int = 0) -> str:
            barrier.wait()
            seen.append(sample)
            return f"{question}#{sample}"

    assert Ensemble(Sampler(), n=n)("q") == [f"q#{i}" for i in range(n)]
    assert sorted(seen) == list(range(n))


def test_samples_of_a_binding_are_distinct_requests_and_cache_apart() -> None:
    mock = MockProvider(lambda r: f"answer {r.sample}")
    xcs.models.register_provider("mock", mock)
    ensemble = Ensemble(xcs.models.bind("mock:m", temperature=0.9), n=5)
    with xcs.models.Cache() as cache:
        first = ensemble("q")
        second = ensemble("q")
    assert first == second == [f"answer {i}" for i in range(5)]
    assert sorted(r.sample for r in mock.requests) == list(range(5))  # 5 calls, then hits
    assert all(a.cached for a in second)
    assert cache.statistics().hits == 5


def test_sim_samples_differ_and_are_stable() -> None:
    answer = Answer(xcs.models.bind("sim:chat", temperature=0.8, max_tokens=6))
    out = Ensemble(answer, n=4)("why?")
    assert len(set(out)) == 4
    assert out == Ensemble(answer, n=4)("why?")


def test_nested_sample_offsets_stay_distinct() -> None:
    mock = MockProvider(lambda r: str(r.sample))
    xcs.models.register_provider("mock", mock)
    inner = Ensemble(xcs.models.bind("mock:m"), n=3)
    outer = Ensemble(inner, n=2)
    out = outer("q")
    assert [list(c) for c in out] == [["0", "1", "2"], ["3", "4", "5"]]


def test_first_error_in_member_order_and_later_members_do_not_start() -> None:
    calls: Counter[int] = Counter()
    lock = threading.Lock()

    def member(i: int, question: str) -> str:
        with lock:
            calls[i] += 1
        if i == 1:
            time.sleep(0.05)  # fails later in time than member 2...
            raise KeyError("member 1")
        if i == 2:
            raise ValueError("member 2")
        return str(i)

    total = get_pool().max_workers + 100  # more members than the in-flight window
    members = [functools.partial(member, i) for i in range(total)]
    with pytest.raises(KeyError) as info:  # ...but first in member order
        Ensemble(*members)("q")
    assert info.value.args == ("member 1",)
    assert calls[0] == calls[1] == 1
    assert sum(calls.values()) < total  # the window never moved past the failure


def test_construction_errors() -> None:
    with pytest.raises(xcs.ValidationError, match="at least one member"):
        Ensemble()
    with pytest.raises(xcs.ValidationError, match="n= samples one member, got 2"):
        Ensemble(len, str, n=2)
    with pytest.raises(xcs.ValidationError, match="n must be a positive integer"):
        Ensemble(xcs.models.bind("sim:echo"), n=0)
    with pytest.raises(xcs.ValidationError, match="takes no 'sample' keyword"):
        Ensemble(len, n=3)
    with pytest.raises(xcs.ValidationError, match="must be a model id"):
        Ensemble(42)


def test_model_ids_are_bound() -> None:
    out = Ensemble("sim:echo", "sim:echo")("hello")
    assert out == ["hello", "hello"]
    assert out[0].model == "sim:echo"


# ---------------------------------------------------------------------------
# Differential: plain sequential reference == eager operators == jitted operators


class Boom(Exception):
    pass


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[int] = Counter()

    def hit(self, leaf: int) -> None:
        with self.lock:
            self.calls[leaf] += 1


class Leaf(Operator):
    def __init__(self, ident: int, fails: bool, delay: float, recorder: Recorder) -> None:
        self.ident, self.fails, self.delay, self.recorder = ident, fails, delay, recorder

    def forward(self, x: str) -> str:
        self.recorder.hit(self.ident)
        time.sleep(self.delay)
        if self.fails:
            raise Boom(self.ident)
        return f"{self.ident}({x})"


class Join(Operator):
    def forward(self, parts: list[str]) -> str:
        return "[" + ",".join(parts) + "]"


class Top(Operator):
    """A user's operator whose forward has parallel regions for jit to find."""

    def __init__(self, first: Any, second: Any, branches: list[Any]) -> None:
        self.first, self.second, self.branches = first, second, branches

    def forward(self, x: str) -> list[str]:
        a = self.first(x)
        b = self.second(x)
        outs = [branch(x) for branch in self.branches]
        return [a, b, *outs]


Tree = Any
_ids = iter(range(10**9))


def leaves() -> st.SearchStrategy[Tree]:
    return st.tuples(
        st.just("leaf"),
        st.booleans().map(lambda fail: fail),
        st.sampled_from([0.0, 0.001, 0.003]),
    )


def trees() -> st.SearchStrategy[Tree]:
    return st.recursive(
        leaves(),
        lambda kids: st.one_of(
            st.tuples(st.just("ens"), st.lists(kids, min_size=1, max_size=4)),
            st.tuples(st.just("vote"), st.lists(kids, min_size=1, max_size=3)),
        ),
        max_leaves=8,
    )


def build(tree: Tree, recorder: Recorder, counter: list[int]) -> tuple[Any, Any]:
    """(operator, reference function) for a tree; leaves get ids in program order."""
    if tree[0] == "leaf":
        ident = counter[0]
        counter[0] += 1
        _, fails, delay = tree

        def ref(x: str) -> str:
            recorder.hit(ident)
            if fails:
                raise Boom(ident)
            return f"{ident}({x})"

        return Leaf(ident, fails, delay, recorder), ref
    built = [build(kid, recorder, counter) for kid in tree[1]]
    ops = [op for op, _ in built]
    refs = [ref for _, ref in built]
    if tree[0] == "ens":

        def ens_ref(x: str) -> str:
            return "[" + ",".join([r(x) for r in refs]) + "]"

        return Chain(Ensemble(*ops), Join()), ens_ref

    def vote_ref(x: str) -> str:
        outs = [r(x) for r in refs]
        return max(outs, key=lambda o: (outs.count(o), -outs.index(o)))

    return Chain(Ensemble(*ops), MajorityVote()), vote_ref


def outcome(fn: Any, x: str) -> tuple[str, Any]:
    try:
        return ("value", fn(x))
    except Boom as exc:
        return ("error", (type(exc), exc.args))


@settings(max_examples=40)
@given(first=trees(), second=trees(), branches=st.lists(trees(), min_size=1, max_size=4))
def test_eager_and_jitted_trees_match_the_sequential_program(
    first: Tree, second: Tree, branches: list[Tree]
) -> None:
    results = {}
    calls = {}
    for mode in ("reference", "eager", "jit"):
        recorder = Recorder()
        counter = [0]
        (op1, ref1), (op2, ref2) = build(first, recorder, counter), build(second, recorder, counter)
        built = [build(b, recorder, counter) for b in branches]
        if mode == "reference":
            refs = [ref1, ref2, *[ref for _, ref in built]]

            def fn(x: str, refs: list[Any] = refs) -> list[str]:
                return [ref(x) for ref in refs]  # in order: the sequential program

        else:
            top = Top(op1, op2, [op for op, _ in built])
            fn = xcs.jit(top) if mode == "jit" else top
        results[mode] = outcome(fn, "x")
        calls[mode] = recorder.calls
    assert results["eager"] == results["reference"]
    assert results["jit"] == results["reference"]
    for mode in ("eager", "jit"):
        # Every call the sequential program makes is made exactly once; calls after
        # its first error may have started, never more than once.
        for leaf, count in calls["reference"].items():
            assert calls[mode][leaf] == count, (mode, leaf)
        assert all(count == 1 for count in calls[mode].values())
        if results["reference"][0] == "value":
            assert calls[mode] == calls["reference"]
