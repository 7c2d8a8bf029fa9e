"""xcs.stats(): exact counters under concurrent use, reset, and what each part counts."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _gated import TIMEOUT, force_overlap

import xcs
from xcs.models import FakeClock, use_clock

THREADS = 8
CALLS = 40


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock()
    with use_clock(fake):
        yield fake


def totals() -> dict[str, Any]:
    return xcs.stats()["totals"]


def test_counts_are_exact_under_concurrent_calls_and_snapshots() -> None:
    xcs.stats(reset=True)
    start = threading.Barrier(THREADS + 1, timeout=TIMEOUT)
    tokens: list[int] = []
    lock = threading.Lock()
    snapshots: list[dict[str, Any]] = []
    stop = threading.Event()

    def caller(n: int) -> None:
        start.wait()
        for i in range(CALLS):
            r = xcs.models("sim:chat", f"thread {n} call {i}", temperature=0, cache=False)
            with lock:
                tokens.append(r.usage.total_tokens)

    def reader() -> None:
        start.wait()
        while not stop.is_set():
            # Every snapshot-and-reset is one step per source: summed, they are exact.
            snapshots.append(xcs.stats(reset=True))

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(THREADS)]
    watcher = threading.Thread(target=reader)
    for t in [*threads, watcher]:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 3)
    stop.set()
    watcher.join(TIMEOUT)
    snapshots.append(xcs.stats(reset=True))
    assert len(snapshots) > 1
    calls = sum(s["totals"]["calls"] for s in snapshots)
    seen = sum(s["totals"]["prompt_tokens"] + s["totals"]["completion_tokens"] for s in snapshots)
    assert calls == THREADS * CALLS
    assert seen == sum(tokens)
    assert totals()["calls"] == 0


def test_reset_zeroes_everything() -> None:
    xcs.models("sim:echo", "hi")
    xcs.jit(lambda: [len(x) for x in ("a", "bb")])()
    before = xcs.stats(reset=True)
    assert before["totals"]["calls"] == 1
    after = xcs.stats()
    assert after["totals"]["calls"] == 0
    assert after["models"] == {}
    assert after["compile"]["compiled"] == 0
    assert after["regions"]["executions"] == 0


def test_compiles_and_fallbacks_with_reasons() -> None:
    xcs.stats(reset=True)

    def generator() -> Iterator[int]:
        yield 1

    def compiles(xs: list[int]) -> list[int]:
        return [abs(x) for x in xs]

    with pytest.warns(xcs.JitWarning):
        assert list(xcs.jit(generator)()) == [1]
    assert xcs.jit(compiles)([-1]) == [1]
    compiled = xcs.stats()["compile"]
    assert compiled["compiled"] == 1
    assert compiled["fallbacks"] == 1
    assert compiled["seconds"] > 0
    (name,) = compiled["fallback_reasons"]
    assert name.endswith("generator")
    assert "generator function" in compiled["fallback_reasons"][name]


@xcs.sequential
def kept_in_order(x: int) -> int:
    return x


def test_regions_overlapped_and_in_order() -> None:
    xcs.stats(reset=True)
    gate = threading.Event()

    def blocks(x: int) -> int:
        gate.wait(0.005)
        return x

    @xcs.jit
    def overlapping(xs: list[int]) -> list[int]:
        return [blocks(x) for x in xs]

    @xcs.jit
    def ordered(xs: list[int]) -> list[int]:
        return [kept_in_order(x) for x in xs]

    force_overlap(overlapping)
    for _ in range(3):
        overlapping([1, 2, 3])
        ordered([1, 2, 3])
    regions = xcs.stats()["regions"]
    by_site = {s["site"].split(":")[0].rpartition(".")[2]: s for s in regions["sites"]}
    assert by_site["overlapping"]["executions"] == 3
    assert by_site["overlapping"]["overlapped"] == 3
    assert by_site["ordered"]["executions"] == 3
    assert by_site["ordered"]["overlapped"] == 0
    assert "kept_in_order, which is marked @xcs.sequential" in by_site["ordered"]["reason"]
    assert regions["executions"] == 6
    assert (regions["overlapped"], regions["in_order"]) == (3, 3)


def test_retries_429s_failures_and_circuit_state(clock: FakeClock) -> None:
    xcs.stats(reset=True)
    limited = "sim:chat?rate_limit_rate=1&retry_after=0.01"
    with pytest.raises(xcs.RateLimitError):
        xcs.models(limited, "q", max_attempts=3, cache=False)
    xcs.models.configure("sim", failure_threshold=2, reset_after=60)
    for _ in range(2):
        with pytest.raises(xcs.ProviderError):
            xcs.models("sim:chat?error_rate=1", "q", max_attempts=1, cache=False)
    snapshot = xcs.stats()
    row = snapshot["models"]["sim:chat"]
    assert (row["calls"], row["attempts"], row["retries"]) == (3, 5, 2)
    assert row["rate_limited"] == 3
    assert row["failures"] == 3
    states = {endpoint: b["state"] for endpoint, b in snapshot["breakers"].items()}
    assert "open" in states.values()
    assert snapshot["totals"]["rate_limited"] == 3


def test_stats_is_a_plain_json_dict() -> None:
    import json

    xcs.models("sim:echo", "hi")
    assert json.loads(json.dumps(xcs.stats()))["totals"]["calls"] >= 1


# -- layers register their counters: no cycle, no race, nothing loaded to count zeros --


def _fresh_function(n: int) -> Any:
    # A new function object each time: jit compiles it afresh (a new runtime).
    def fresh(xs: list[int]) -> list[int]:
        return [abs(x) + n for x in xs]

    return fresh


def test_stats_while_other_threads_compile_fresh_functions() -> None:
    compilers, rounds = 4, 150
    start = threading.Barrier(compilers + 1, timeout=TIMEOUT)
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = 0
    keep: list[Any] = []  # some runtimes stay alive, some die while being read

    def compile_many(t: int) -> None:
        start.wait()
        try:
            for i in range(rounds):
                fn = xcs.jit(_fresh_function(i))
                assert fn([-1, 2]) == [1 + i, 2 + i]
                if i % 4:
                    keep.append(fn)
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        nonlocal reads
        start.wait()
        try:
            while not stop.is_set():
                xcs.stats()
                reads += 1
        except BaseException as exc:
            errors.append(exc)

    xcs.stats(reset=True)
    threads = [threading.Thread(target=compile_many, args=(t,)) for t in range(compilers)]
    reader = threading.Thread(target=read)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads interleave finely: a race shows up at once
    try:
        for thread in [*threads, reader]:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT * 6)
        stop.set()
        reader.join(TIMEOUT)
    finally:
        sys.setswitchinterval(switch)
    assert errors == []
    assert reads > 0
    assert xcs.stats()["compile"]["compiled"] == compilers * rounds


def test_observe_imports_no_other_layer() -> None:
    # NOTE: [Layers register their counters]: _observe is the bottom layer.
    import ast
    import pathlib

    import xcs._observe

    package = pathlib.Path(xcs._observe.__file__).parent
    reached: set[str] = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                reached.add(node.module)
            elif isinstance(node, ast.Import):
                reached.update(alias.name for alias in node.names)
    layers = {m for m in reached if m.startswith("xcs.")}
    assert {m for m in layers if not m.startswith(("xcs._observe", "xcs.errors"))} == set()


def test_stats_shows_zeros_without_loading_the_model_layer() -> None:
    import json
    import subprocess

    code = (
        "import json, sys, xcs; s = xcs.stats(); "
        "print(json.dumps([s, 'xcs.models' in sys.modules, 'pydantic' in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    counters, models_loaded, pydantic_loaded = json.loads(out)
    assert not models_loaded
    assert not pydantic_loaded
    assert counters == {
        "compile": {"compiled": 0, "fallbacks": 0, "seconds": 0.0, "fallback_reasons": {}},
        "regions": {"executions": 0, "overlapped": 0, "in_order": 0, "sites": []},
        "models": {},
        "totals": {
            "calls": 0,
            "attempts": 0,
            "retries": 0,
            "rate_limited": 0,
            "failures": 0,
            "cache_hits": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": 0.0,
        },
        "breakers": {},
        "adaptive": {},
        "cache": None,
    }
