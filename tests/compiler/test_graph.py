"""xcs.Graph: validation, rendering, overlap, and the sequential program's results and errors."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import xcs
from xcs._compiler._interpreter import Interpreter
from xcs._runtime import _pool

BARRIER_TIMEOUT = 10.0


def qa_graph() -> xcs.Graph:
    g = xcs.Graph(inputs=["question"], name="qa")
    g.add("fast", str.upper, "question")
    g.add("careful", str.title, "question")
    g.add("judge", max, "fast", "careful")
    return g


# -- building and validation ------------------------------------------------------------


def test_rendering_shows_nodes_edges_and_waves() -> None:
    assert str(qa_graph()) == (
        "graph qa: inputs (question), 3 nodes in 2 waves\n"
        "  wave 1\n"
        "    fast = str.upper(question)\n"
        "    careful = str.title(question)\n"
        "  wave 2\n"
        "    judge = max(fast, careful)"
    )
    g = qa_graph()
    assert g.waves() == [["fast", "careful"], ["judge"]]
    assert g.edges() == [
        ("question", "fast"),
        ("question", "careful"),
        ("fast", "judge"),
        ("careful", "judge"),
    ]
    assert repr(g) == "<xcs.Graph 'qa': 1 inputs, 3 nodes>"


def test_keyword_dependencies() -> None:
    g = xcs.Graph(inputs=["text", "n"])
    g.add("cut", lambda text, *, size: text[:size], "text", size="n")
    assert g.run(text="abcdef", n=3) == {"cut": "abc"}
    assert "cut = " in str(g)
    assert "(text, size=n)" in str(g)


def test_a_cycle_names_its_nodes() -> None:
    g = xcs.Graph(inputs=["x"], name="loop")
    g.add("a", len, "c")
    g.add("b", len, "a")
    g.add("c", len, "b")
    g.add("ok", len, "x")
    with pytest.raises(xcs.ValidationError, match="graph 'loop' has a cycle: ") as caught:
        g.lint()
    assert set(caught.value.nodes) == {"a", "b", "c"}
    assert "ok" not in str(caught.value)
    with pytest.raises(xcs.ValidationError, match="cycle"):
        g.run(x=[1])
    assert "invalid" in str(g)  # rendering an invalid graph does not raise


def test_a_self_dependency_is_a_cycle() -> None:
    g = xcs.Graph()
    g.add("me", len, "me")
    with pytest.raises(xcs.ValidationError, match="me -> me"):
        g.lint()


def test_an_unknown_dependency_names_the_node_and_the_dependency() -> None:
    g = xcs.Graph(inputs=["question"])
    g.add("answer", len, "questoin")
    with pytest.raises(xcs.ValidationError) as caught:
        g.run(question="q")
    assert caught.value.nodes == ("answer",)
    assert "node 'answer' depends on unknown 'questoin'" in str(caught.value)
    assert "inputs: question" in str(caught.value)


def test_missing_and_unexpected_inputs() -> None:
    g = xcs.Graph(inputs=["a", "b"])
    g.add("sum", lambda x, y: x + y, "a", "b")
    with pytest.raises(xcs.ValidationError, match="missing input 'b'") as caught:
        g.run(a=1)
    assert caught.value.nodes == ("b",)
    with pytest.raises(xcs.ValidationError, match="has no input 'c'"):
        g.run(a=1, b=2, c=3)
    assert g(a=1, b=2) == {"sum": 3}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda g: g.add("x", 42), "is not callable"),
        (lambda g: g.add("", len), "non-empty strings"),
        (lambda g: g.add("q", len), "already has an input named 'q'"),
        (lambda g: (g.add("x", len, "q"), g.add("x", len, "q")), "already has a node named 'x'"),
        (lambda g: g.add("x", len, 3), "dependencies are node names"),
    ],
)
def test_bad_nodes_are_rejected(build: Any, message: str) -> None:
    g = xcs.Graph(inputs=["q"])
    with pytest.raises(xcs.ValidationError, match=message):
        build(g)


def test_inputs_must_be_a_list_of_names() -> None:
    with pytest.raises(xcs.ValidationError, match=r"write inputs=\['question'\]"):
        xcs.Graph(inputs="question")


def test_nodes_may_be_added_before_their_dependencies() -> None:
    g = xcs.Graph(inputs=["x"])
    g.add("late", lambda v: v + 1, "early")
    g.add("early", lambda v: v * 2, "x")
    assert g.order() == ["early", "late"]
    assert g.run(x=5) == {"early": 10, "late": 11}


# -- running ------------------------------------------------------------------------------


def test_a_wave_runs_concurrently() -> None:
    barrier = threading.Barrier(4, timeout=BARRIER_TIMEOUT)

    def member(q: str) -> str:
        barrier.wait()
        return q

    g = xcs.Graph(inputs=["q"])
    for i in range(4):
        g.add(f"m{i}", member, "q")
    g.add("all", lambda *xs: "".join(xs), "m0", "m1", "m2", "m3")
    assert g.run(q="z")["all"] == "zzzz"


def test_a_node_starts_as_soon_as_its_own_dependencies_are_done() -> None:
    # a -> (b slow, c fast) -> d, and a -> e -> f. f depends only on e, so it must
    # start while b still runs: b waits for f's start (a wave barrier after b, c, e
    # would make b time out, as f would only start once b is done).
    f_started = threading.Event()
    seen: dict[str, bool] = {}

    def b(a: str) -> str:
        seen["f started while b ran"] = f_started.wait(BARRIER_TIMEOUT)
        return a + "b"

    def f(e: str) -> str:
        f_started.set()
        return e + "f"

    g = xcs.Graph(inputs=["x"], name="diamond")
    g.add("a", lambda x: x + "a", "x")
    g.add("b", b, "a")
    g.add("c", lambda a: a + "c", "a")
    g.add("d", lambda b, c: b + c, "b", "c")
    g.add("e", lambda a: a + "e", "a")
    g.add("f", f, "e")
    assert g.run(x="") == {"a": "a", "b": "ab", "c": "ac", "d": "abac", "e": "ae", "f": "aef"}
    assert seen == {"f started while b ran": True}
    # The rendering still groups nodes by depth, as a reading aid.
    assert g.waves() == [["a"], ["b", "c", "e"], ["d", "f"]]


def test_a_chain_runs_beside_a_slow_node_without_waiting_for_it() -> None:
    # slow waits until the whole chain n0 -> n1 -> ... -> n5 has run beside it.
    chain_done = threading.Event()
    g = xcs.Graph(inputs=["x"])
    g.add("slow", lambda x: chain_done.wait(BARRIER_TIMEOUT), "x")
    g.add("n0", lambda x: x, "x")
    for i in range(1, 6):
        g.add(f"n{i}", lambda v: v + 1, f"n{i - 1}")
    g.add("end", lambda v: chain_done.set() or v, "n5")
    assert g.run(x=0)["slow"] is True


def test_nodes_after_a_known_failure_never_start_and_nodes_before_it_run() -> None:
    # Program order: boom, slow, late. slow comes after boom but may start beside it
    # (its result is then dropped); late is ready only once boom's failure is known,
    # so it never starts.
    failed = threading.Event()
    calls: list[str] = []

    def boom(x: int) -> int:
        calls.append("boom")
        failed.set()
        raise KeyError("boom")

    def slow(x: int) -> int:
        calls.append("slow")
        failed.wait(BARRIER_TIMEOUT)
        time.sleep(0.05)  # lets the run record boom's failure; not asserted on
        return x

    g = xcs.Graph(inputs=["x"])
    g.add("boom", boom, "x")
    g.add("slow", slow, "x")  # after boom, but it may start beside it
    g.add("late", lambda v: calls.append("late"), "slow")  # ready only after the failure
    interpreter = Interpreter(g)
    with pytest.raises(KeyError, match="boom"):
        interpreter.run({"x": 1})
    assert "late" not in calls
    assert "late" not in interpreter.start_seq
    assert interpreter.failure_seq >= 0


def test_a_node_before_the_failure_in_program_order_still_runs_and_its_error_wins() -> None:
    # Program order: a, c, b. b fails first in time; c (which waited for a) still
    # runs because it comes before b, and c's failure is the one raised.
    b_failed = threading.Event()

    def a(q: int) -> int:
        b_failed.wait(BARRIER_TIMEOUT)
        return q

    def b(q: int) -> int:
        b_failed.set()
        raise ValueError("b")

    def c(a: int) -> int:
        raise ValueError("c")

    g = xcs.Graph(inputs=["q"])
    g.add("a", a, "q")
    g.add("c", c, "a")
    g.add("b", b, "q")
    with pytest.raises(ValueError, match="c"):
        g.run(q=0)


def test_graphs_nested_in_graph_nodes_finish_on_a_tiny_pool(
    monkeypatch: pytest.MonkeyPatch, make_pool: Any
) -> None:
    # Every owner below the top one is a pool worker; with 2 workers, 4 x 4 x 4 nodes
    # finish only if waiting owners run their own unstarted nodes.
    monkeypatch.setattr(_pool, "_pool", make_pool(2))

    def graph_of(depth: int) -> xcs.Graph:
        g = xcs.Graph(inputs=["x"], name=f"level{depth}")
        for i in range(4):
            if depth == 0:
                g.add(f"n{i}", lambda x, i=i: x + i, "x")
            else:
                inner = graph_of(depth - 1)
                g.add(f"n{i}", lambda x, inner=inner: sum(inner.run(x=x).values()), "x")
        g.add("total", lambda *v: sum(v), "n0", "n1", "n2", "n3")
        return g

    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(graph_of(2).run(x=1)))
    runner.start()
    runner.join(60)
    assert not runner.is_alive(), "nested graphs deadlocked on a 2-thread pool"
    # level 0 sums to 2 (4x + 6), level 1 to 16 (4x + 6); level 2's total is 64 (4x + 6).
    assert outcome["total"] == 64 * (4 * 1 + 6)


def test_the_first_error_in_program_order_wins_across_waves() -> None:
    # Program order: a, c, b. c (wave 2) comes before b (wave 1), so c's error is
    # the one the sequential program raises, although b fails earlier in time.
    calls: list[str] = []

    def node(name: str, fail: bool = False, delay: float = 0.0) -> Any:
        def run(*_: Any) -> str:
            time.sleep(delay)
            calls.append(name)
            if fail:
                raise ValueError(name)
            return name

        return run

    g = xcs.Graph(inputs=["q"])
    g.add("a", node("a", delay=0.02), "q")
    g.add("c", node("c", fail=True), "a")
    g.add("b", node("b", fail=True), "q")
    g.add("d", node("d"), "b")
    with pytest.raises(ValueError, match="c"):
        g.run(q=0)
    assert sorted(calls) == ["a", "b", "c"]  # d comes after the failure: never run


def test_the_error_notes_its_node_once() -> None:
    def fail(q: int) -> int:
        raise ValueError("bad")

    g = xcs.Graph(inputs=["q"], name="outer")
    g.add("ok", abs, "q")
    g.add("bad", fail, "q")
    with pytest.raises(ValueError, match="bad") as caught:
        g.run(q=1)
    assert caught.value.__notes__ == ["xcs: raised by node 'bad' of graph 'outer'"]
    # Through a nested graph, the innermost note stands.
    inner = g
    outer = xcs.Graph(inputs=["q"], name="wrapper")
    outer.add("sub", lambda q: inner.run(q=q), "q")
    with pytest.raises(ValueError, match="bad") as caught:
        outer.run(q=2)
    assert caught.value.__notes__ == ["xcs: raised by node 'bad' of graph 'outer'"]


def test_an_interrupt_inside_a_node_is_that_nodes_failure_in_program_order() -> None:
    interrupted = threading.Event()

    def first(q: int) -> int:
        interrupted.wait(BARRIER_TIMEOUT)
        raise ValueError("first")

    def second(q: int) -> int:
        interrupted.set()
        raise KeyboardInterrupt

    g = xcs.Graph(inputs=["q"])
    g.add("first", first, "q")
    g.add("second", second, "q")
    with pytest.raises(ValueError, match="first"):
        g.run(q=0)
    g2 = xcs.Graph(inputs=["q"])
    g2.add("second", second, "q")
    g2.add("after", lambda s: s, "second")
    with pytest.raises(KeyboardInterrupt):
        g2.run(q=0)


def test_a_deadline_bounds_a_run() -> None:
    gate = threading.Event()
    g = xcs.Graph(inputs=["q"])
    g.add("slow", lambda q: gate.wait(60), "q")
    try:
        with pytest.raises(xcs.ExecutionTimeout), xcs.deadline(0.1):
            g.run(q=1)
    finally:
        gate.set()


def test_a_deadline_cancels_what_has_not_started_and_names_what_runs() -> None:
    gate = threading.Event()
    calls: list[str] = []
    g = xcs.Graph(inputs=["q"], name="pipeline")
    g.add("slow", lambda q: gate.wait(60), "q")
    g.add("after", lambda s: calls.append("after"), "slow")
    try:
        with pytest.raises(xcs.ExecutionTimeout) as caught, xcs.deadline(0.1):
            g.run(q=1)
    finally:
        gate.set()
    assert caught.value.running == ("slow",)
    assert caught.value.cancelled == 1
    assert "in pipeline" in str(caught.value)
    time.sleep(0.05)  # slow has returned by now; after must still never run
    assert calls == []


def test_a_traced_run_has_a_task_span_per_node() -> None:
    g = xcs.Graph(inputs=["q"], name="traced")
    g.add("ok", str.upper, "q")
    g.add("bad", lambda q: int(q), "q")
    with xcs.trace() as recorded, pytest.raises(ValueError):
        g.run(q="x")
    tasks = {s.attrs["node"]: s for s in recorded.spans if s.kind == "task"}
    assert set(tasks) == {"ok", "bad"}
    assert "error" not in tasks["ok"].attrs
    assert tasks["bad"].attrs["error"].startswith("ValueError")
    (region,) = [s for s in recorded.spans if s.kind == "region"]
    assert region.name == "traced"
    assert {s.parent for s in tasks.values()} == {region.id}


def test_compiler_plan_nodes_are_shown_not_run() -> None:
    g = xcs.Graph(inputs=["x"])
    g.add_node(xcs.Node("r", "region", "[f(v) for v in x]", ("x",)))
    with pytest.raises(xcs.ValidationError, match="plans are shown, not run"):
        g.run(x=[])
    with pytest.raises(xcs.ValidationError, match="unknown op"):
        g.add_node(xcs.Node("bad", "jump", None))


# -- differential: a graph run is its sequential program -----------------------------------


class Boom(Exception):
    pass


def on_a_pool_thread(fn: Any) -> Any:
    """``fn()`` run by a worker of the shared pool; its value, or its exception raised."""
    done = threading.Event()
    outcome: dict[str, Any] = {}

    class Job:
        def run_from_pool(self) -> None:
            outcome["worker"] = _pool.in_worker_thread()
            try:
                outcome["value"] = fn()
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                done.set()

    _pool.get_pool().submit(Job())
    assert done.wait(60), "the pool never ran the job"
    assert outcome["worker"]
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[tuple[str, list[str]]], set[str], dict[str, float]]:
    n = draw(st.integers(1, 12))
    spec: list[tuple[str, list[str]]] = []
    for i in range(n):
        pool = ["x", *(f"n{j}" for j in range(i))]
        deps = draw(st.lists(st.sampled_from(pool), max_size=3, unique=True))
        spec.append((f"n{i}", deps))
    order = draw(st.permutations(range(n)))  # insertion order differs from creation
    spec = [spec[i] for i in order]
    failing = draw(st.sets(st.sampled_from([name for name, _ in spec])))
    delays = {name: draw(st.floats(0, 0.002)) for name, _ in spec}
    return spec, failing, delays


@given(graphs(), st.booleans())
def test_graph_run_equals_the_sequential_program(
    case: tuple[list[tuple[str, list[str]]], set[str], dict[str, float]],
    from_pool: bool,
) -> None:
    # from_pool: the graph runs inside a pool task, so its owner helps with its own
    # unstarted nodes while it waits (NOTE: [Graph dataflow]).
    spec, failing, delays = case
    errors = {name: Boom(name) for name in failing}

    def make(name: str, calls: Counter[str], lock: threading.Lock) -> Any:
        def fn(*args: Any) -> str:
            with lock:
                calls[name] += 1
            time.sleep(delays[name])
            if name in errors:
                raise errors[name]
            return f"{name}({','.join(map(str, args))})"

        return fn

    def build(calls: Counter[str]) -> xcs.Graph:
        lock = threading.Lock()
        g = xcs.Graph(inputs=["x"])
        for name, deps in spec:
            g.add(name, make(name, calls, lock), *deps)
        return g

    # The sequential program: nodes called one after another in program order.
    seq_calls: Counter[str] = Counter()
    reference = build(seq_calls)
    seq_values: dict[str, Any] = {"x": "x"}
    seq_error: BaseException | None = None
    for name in reference.order():
        node = reference.nodes[name]
        try:
            seq_values[name] = node.target(*(seq_values[d] for d in node.args))  # type: ignore[operator]
        except Boom as exc:
            seq_error = exc
            break

    par_calls: Counter[str] = Counter()
    graph = build(par_calls)
    interpreter = Interpreter(graph)

    def run() -> dict[str, Any]:
        if from_pool:
            return on_a_pool_thread(lambda: interpreter.run({"x": "x"}))
        return interpreter.run({"x": "x"})

    if seq_error is None:
        assert run() == {k: v for k, v in seq_values.items() if k != "x"}
        assert par_calls == seq_calls
    else:
        with pytest.raises(Boom) as caught:
            run()
        assert caught.value is seq_error
        assert set(seq_calls) <= set(par_calls)  # every call it made, we made
        # Calls it did not make (after its failure in program order) may only have
        # started before the failure was known.
        for extra in set(par_calls) - set(seq_calls):
            assert interpreter.start_seq[extra] < interpreter.failure_seq, extra
    assert all(count == 1 for count in par_calls.values())  # and never twice
    assert set(interpreter.start_seq) == set(par_calls)
