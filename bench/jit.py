"""``@xcs.jit`` benchmark: plain Python vs ``xcs.jit`` vs a hand-written thread pool, in one run.

Each pattern is written once, as the plain sequential function a user would write.
The *eager* row calls it as is; the *jit* row calls ``xcs.jit(<the same function>)``;
the *threads* row calls a hand-written ``concurrent.futures.ThreadPoolExecutor``
version of it (64 threads, the bound of XCS's shared pool), the code a careful user
would write without XCS. The work is a simulated model call, ``time.sleep(LATENCY)``
(it blocks like a socket and computes nothing), or, for the CPU-bound patterns, ~50 µs
of pure-Python arithmetic.

The approaches take *turns*: one turn runs jit, threads and a first call (below)
back to back (and eager, in every turn for CPU-bound patterns, every third turn for
blocking ones, whose eager wall is a sum of sleeps and barely varies; CPU-bound
patterns get a first call every tenth turn), in an order rotated each turn, each after
a 20 ms pause that is not counted (the threads of the call before go idle first).
Walls are medians over the turns. Figures per pattern:

- ``speedup`` = median eager wall / median jit wall;
- ``ideal`` = calls / calls on the longest dependent path: the speedup with unlimited
  overlap and free scheduling (an ensemble of 5: 5x; nested 8x8: 64x; a chain: 1x;
  CPU-bound pure Python: 1x, since the GIL lets one thread compute at a time);
- ``of ideal`` = speedup / ideal;
- ``jit / threads`` and ``jit / eager``: medians of the per-turn ratios. The two
  walls of one turn were measured on about the same machine, so load that comes and
  goes over the run cancels out of them.

Every approach makes one warm-up call that is not counted. Both thread pools are
fully started before anything is measured (``warm_pools``).

**First call.** A batch job, a CLI or a notebook calls its pipeline once, so the
first call of a freshly decorated function is measured too, in the same turns: each
time, ``bench/_jit_programs.py`` (where every program lives) is copied to a new file
and imported under a new name, and the function of that copy is jitted and called
once: new functions, classes and code objects, so no compiled form or region
statistic of an earlier call applies; compiling is part of it. Its figure is
``first call: of ideal`` = median eager wall / median first-call wall / ideal.

**Call-tree workloads.** The LLM workloads of ``bench/peers.py``
(self-consistency, mixture-of-agents, map-reduce, tree-of-thoughts,
critic/researcher/synthesizer) written as users write them: helpers, methods,
class and static methods, an ``xcs.Operator``'s ``forward``, recursion; only the
entry point is jitted, and the call tree compiles the rest. First call and warm,
as fractions of ideal; ``xcs.explain`` of those that miss their target.

Also measured: compile time (``compiled_for`` on fresh function objects made by
``exec`` of the same ~50-line source), the compile time of a 20-function call tree
(``TREE_SOURCE``), the dispatch overhead of a jitted function with no region
over a plain call, and of a call made from compiled code (``callee(f)(x)``, which
hands back ``f`` itself unless ``f`` is the user's function with a compiled form)
over ``f(x)``.

Run::

    python bench/jit.py                  # full run (50 ms calls): writes bench/results/jit.json
                                         # and the jit section of docs/benchmarks.md
    python bench/jit.py --quick          # smoke run (20 ms calls, few repeats), writes nothing
    python bench/jit.py --profile nested_8x8   # cProfile of the warmed jitted pattern
    python bench/jit.py --profile compile      # cProfile of the compiler
    python bench/jit.py --only trees           # one part (patterns, trees, compile);
                                               # prints a short report, writes nothing
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import gc
import importlib.util
import io
import itertools
import linecache
import math
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import timeit
import types
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _jit_programs as J
import xcs
from _report import machine_info, markdown_table, update_docs_section, utc_now, write_results
from xcs._compiler._jit import compiled_for
from xcs._compiler._jit import statistics as jit_statistics
from xcs._runtime._pool import get_pool
from xcs._runtime._scheduler import ordered_map

NAME = "jit"
PROGRAMS_SOURCE = Path(J.__file__).resolve()

POOL_SIZE = 64  # the hand-written pool gets the bound of XCS's shared pool
CPU_TARGET_US = 50.0  # one CPU-bound item computes about this long

TARGET_OF_IDEAL = 0.90  # I/O patterns: jit speedup >= 0.9 x the ideal speedup
TARGET_FIRST_OF_IDEAL = 0.85  # I/O patterns, first call of a fresh function
TARGET_TREE_FIRST = 0.90  # call-tree workloads, first call of a fresh entry point
TARGET_VS_THREADS = 1.05  # I/O patterns: jit wall <= 1.05 x the hand-written pool's
TARGET_CPU = 1.05  # CPU-bound patterns: jit wall <= 1.05 x eager
TARGET_COMPILE_MS = 5.0
TARGET_DISPATCH_US = 2.0
TARGET_CALLEE_US = 1.0  # a call from compiled code to one that needs no compiling
FROM_COMPILED = "called from compiled code: "


@dataclass(frozen=True)
class Settings:
    latency_s: float  # one simulated model call
    io_turns: int  # measured turns of each I/O pattern: jit and threads in each
    io_eager_every: int  # ... and eager in every this many (its wall barely varies)
    cpu_turns: int  # measured turns of each CPU-bound pattern: all three in each
    cpu_first_every: int  # ... and a first call of a fresh function every this many
    cpu_items: int  # items of a CPU-bound pattern
    compile_repeats: int  # fresh function objects compiled
    tree_compile_repeats: int  # fresh 20-function call trees compiled
    dispatch_calls: int  # calls per timeit run
    dispatch_runs: int  # timeit runs
    quick: bool


FULL = Settings(
    latency_s=0.05,
    io_turns=15,
    io_eager_every=3,
    cpu_turns=201,
    cpu_first_every=10,
    cpu_items=100,
    compile_repeats=300,
    tree_compile_repeats=60,
    dispatch_calls=1_000_000,
    dispatch_runs=5,
    quick=False,
)
QUICK = Settings(
    latency_s=0.02,
    io_turns=4,
    io_eager_every=2,
    cpu_turns=41,
    cpu_first_every=10,
    cpu_items=100,
    compile_repeats=30,
    tree_compile_repeats=10,
    dispatch_calls=100_000,
    dispatch_runs=3,
    quick=True,
)


# ---------------------------------------------------------------------------
# The work: the programs are in ``_jit_programs`` (``J``); this script sets its
# LATENCY_S and CPU_LOOPS (and those of every fresh copy of it).


def calibrate_cpu() -> float:
    """Set CPU_LOOPS so that ``cpu`` takes about CPU_TARGET_US; return the µs it takes."""
    for _ in range(3):
        runs = 2000
        start = time.perf_counter()
        for x in range(runs):
            J.cpu(x)
        per_call_us = (time.perf_counter() - start) / runs * 1e6
        J.CPU_LOOPS = max(1, round(J.CPU_LOOPS * CPU_TARGET_US / per_call_us))
    start = time.perf_counter()
    for x in range(runs):
        J.cpu(x)
    return (time.perf_counter() - start) / runs * 1e6


_fresh_dir: Path | None = None
_fresh_count = itertools.count()


def fresh_copy() -> types.ModuleType:
    """A new copy of ``_jit_programs`` from a new file under a new module name: new
    functions, classes and code objects, so that no compiled form, region statistic
    or cache of an earlier call applies (a *first call* is the first call of a
    function object that nothing has seen). The copy reads this run's settings."""
    global _fresh_dir
    if _fresh_dir is None:
        _fresh_dir = Path(tempfile.mkdtemp(prefix="xcs-bench-jit-"))
        atexit.register(shutil.rmtree, _fresh_dir, ignore_errors=True)
    number = next(_fresh_count)
    name = f"_jit_programs_fresh_{number}"
    path = _fresh_dir / f"{name}.py"
    # The copy's lines are shifted down by its number: CPython compares code objects
    # by content and first line, not by file, so the copies' functions would have
    # equal code objects, and xcs.explain's call tree (which records callees per
    # caller code object) would list the callees of every copy under each one.
    path.write_text("\n" * (1 + number) + PROGRAMS_SOURCE.read_text(encoding="utf-8"))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Kept in sys.modules, as an import would: type hints (an operator's spec) are
    # resolved through it.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    module.LATENCY_S = J.LATENCY_S
    module.CPU_LOOPS = J.CPU_LOOPS
    return module


# ---------------------------------------------------------------------------
# The patterns (in ``_jit_programs``, as the user writes them), and by hand on a
# thread pool


def _submit_all(pool: ThreadPoolExecutor, fn: Callable[..., Any], argses: Any) -> list[Any]:
    futures = [pool.submit(fn, *args) for args in argses]
    return [f.result() for f in futures]


def threads_ensemble(pool: ThreadPoolExecutor, question: str, n: int) -> list[str]:
    return _submit_all(pool, J.call, [(question, i) for i in range(n)])


def threads_map(pool: ThreadPoolExecutor, documents: list[str]) -> list[str]:
    return _submit_all(pool, J.call, [(doc,) for doc in documents])


def threads_nested(pool: ThreadPoolExecutor, n: int) -> list[list[str]]:
    flat = _submit_all(pool, J.call, [(x, y) for x in range(n) for y in range(n)])
    return [flat[x * n : (x + 1) * n] for x in range(n)]


def threads_diamond(pool: ThreadPoolExecutor, question: str) -> str:
    research = pool.submit(J.call, question, "research")
    critique = pool.submit(J.call, question, "critique")
    facts = pool.submit(J.call, question, "facts")
    joined = f"{research.result()}|{critique.result()}|{facts.result()}"
    return J.call(joined, "synthesize")


def threads_chain(pool: ThreadPoolExecutor, question: str) -> str:
    # Nothing to overlap: the hand-written version is the plain code.
    return J.chain(question)


def threads_cpu(pool: ThreadPoolExecutor, n: int) -> list[int]:
    # What a user who threads everything by hand would write; the GIL serialises it.
    return _submit_all(pool, J.cpu, [(x,) for x in range(n)])


@dataclass
class Pattern:
    name: str
    kind: str  # "io", "cpu", or "tree" (a call-tree workload: blocking calls, no threads row)
    what: str  # the code, for the table
    entry: str  # the function's name in _jit_programs
    threads: Callable[..., Any] | None  # takes the pool first; None: no hand-written row
    args: tuple[Any, ...]
    calls: int
    depth: int  # calls on the longest dependent path
    jitted: Callable[..., Any] = field(init=False)

    def __post_init__(self) -> None:
        # A copy of the function object for each pattern: compiled forms and region
        # measurements belong to a function object, and two patterns may share a
        # function (ensemble_3, ensemble_5); each must pay its own first call.
        fn = self.eager
        copy = types.FunctionType(
            fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
        )
        self.jitted = xcs.jit(copy)

    @property
    def eager(self) -> Callable[..., Any]:
        return getattr(J, self.entry)  # type: ignore[no-any-return]

    @property
    def ideal(self) -> float:
        return 1.0 if self.kind == "cpu" else self.calls / self.depth

    def fresh_jitted(self) -> Callable[..., Any]:
        """``xcs.jit`` of the function in a fresh copy of the programs (``fresh_copy``)."""
        return xcs.jit(getattr(fresh_copy(), self.entry))  # type: ignore[no-any-return]


def patterns(settings: Settings) -> list[Pattern]:
    docs = [f"doc{i}" for i in range(64)]
    n = settings.cpu_items
    return [
        Pattern("ensemble_3", "io", "[call(q, i) for i in range(3)]", "ensemble", threads_ensemble, ("q", 3), 3, 1),
        Pattern("ensemble_5", "io", "[call(q, i) for i in range(5)]", "ensemble", threads_ensemble, ("q", 5), 5, 1),
        Pattern("map_loop_64", "io", "for d in docs: out.append(call(d))", "map_loop", threads_map, (docs,), 64, 1),
        Pattern("map_comp_64", "io", "[call(d) for d in docs]", "map_comprehension", threads_map, (docs,), 64, 1),
        Pattern("nested_8x8", "io", "[[call(x, y) for y in range(8)] for x in range(8)]", "nested", threads_nested, (8,), 64, 1),
        Pattern("diamond", "io", "a = call(q); b = call(q); c = call(q); return call(a+b+c)", "diamond", threads_diamond, ("q",), 4, 2),
        Pattern("chain", "io", "a = call(q); b = call(a); return call(b)", "chain", threads_chain, ("q",), 3, 3),
        Pattern("cpu_comp", "cpu", f"[cpu(x) for x in range({n})]", "cpu_comprehension", threads_cpu, (n,), n, n),
        Pattern("cpu_loop", "cpu", f"for x in range({n}): out.append(cpu(x))", "cpu_loop", threads_cpu, (n,), n, n),
    ]  # fmt: skip


def tree_workloads() -> list[Pattern]:
    """The call-tree workloads: only the entry point is jitted (``_jit_programs``)."""
    docs = [f"doc{i}" for i in range(16)]
    questions = [f"question {i}" for i in range(4)]
    return [
        Pattern("self-consistency", "tree", "4 questions x 5 samples + a vote; plain helper functions, 2 levels", "tree_self_consistency", None, (questions,), 20, 1),
        Pattern("mixture-of-agents", "tree", "3 proposers x 2 layers + an aggregator; methods, a classmethod constructor", "tree_mixture_of_agents", None, ("q",), 7, 3),
        Pattern("map-reduce", "tree", "16 summaries (an xcs.Operator's forward), 4 combines, 1 combine; methods", "tree_map_reduce", None, (docs,), 21, 3),
        Pattern("tree-of-thoughts", "tree", "branching 3, depth 2; recursion, a staticmethod, a loop that extends", "tree_tree_of_thoughts", None, ("p",), 12, 2),
        Pattern("critic/researcher/synthesizer", "tree", "3 findings, a critique of each, a synthesis; 3 classes' methods", "tree_critic_researcher_synthesizer", None, ("t",), 7, 3),
    ]  # fmt: skip


# ---------------------------------------------------------------------------
# Measuring the patterns


def _time(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


# A pause before each measured call, not counted: the threads of the call before
# (the hand-written pool's workers above all) finish going idle, and do not compete
# for the GIL with the call being measured.
SETTLE_S = 0.02

# "first": the first call of a freshly decorated function in a fresh copy of the
# programs (compiling included); "jit": the same pattern's jitted function, warm.
APPROACHES = ("eager", "first", "jit", "threads")


@dataclass(frozen=True)
class PatternResult:
    """One pattern's walls, per approach and turn."""

    name: str
    kind: str
    what: str
    calls: int
    depth: int
    ideal_speedup: float
    warmup_jit_call_s: float  # the warm jitted function's first (uncounted) call
    first_s: tuple[float, ...]  # first calls of fresh functions, one per turn in first_turns
    first_turns: tuple[int, ...]
    # The compiler's own timer summed over each first call: the entry's compile and
    # its callees' (wall time of each compile; a callee called from an overlapping
    # region compiles on a pool thread, beside the others).
    first_compile_s: tuple[float, ...]
    jit_s: tuple[float, ...]  # one per turn
    threads_s: tuple[float, ...]  # one per turn (none for a call-tree workload)
    eager_s: tuple[float, ...]  # one per turn in eager_turns
    eager_turns: tuple[int, ...]
    # Process CPU time (all threads) of the same calls: on a shared machine it
    # varies less than wall time, which also counts time the core was taken away.
    jit_cpu_s: tuple[float, ...]
    eager_cpu_s: tuple[float, ...]
    explain: str = ""  # xcs.explain of the warm jitted function, at the end
    explain_first: str = ""  # ... and of the last fresh function, after its first call

    @property
    def eager(self) -> float:
        return statistics.median(self.eager_s)

    @property
    def jit(self) -> float:
        return statistics.median(self.jit_s)

    @property
    def first(self) -> float:
        return statistics.median(self.first_s)

    @property
    def threads(self) -> float:
        return statistics.median(self.threads_s) if self.threads_s else math.nan

    @property
    def first_compile(self) -> float:
        return statistics.median(self.first_compile_s)

    @property
    def speedup(self) -> float:
        return self.eager / self.jit

    @property
    def of_ideal(self) -> float:
        return self.speedup / self.ideal_speedup

    @property
    def first_of_ideal(self) -> float:
        return self.eager / self.first / self.ideal_speedup

    @property
    def threads_of_ideal(self) -> float:
        return self.eager / self.threads / self.ideal_speedup

    # The ratios the targets compare to 1 are medians of per-turn ratios: the
    # approaches of one turn ran back to back, on about the same machine, so load
    # that comes and goes over the run cancels out.

    @property
    def vs_threads(self) -> float:
        if not self.threads_s:
            return math.nan
        return statistics.median(j / t for j, t in zip(self.jit_s, self.threads_s, strict=True))

    @property
    def first_vs_threads(self) -> float:
        if not self.threads_s:
            return math.nan
        return statistics.median(
            f / self.threads_s[turn] for turn, f in zip(self.first_turns, self.first_s, strict=True)
        )

    @property
    def jit_over_eager(self) -> float:
        return statistics.median(
            self.jit_s[turn] / e for turn, e in zip(self.eager_turns, self.eager_s, strict=True)
        )

    @property
    def first_over_eager(self) -> float:
        eager = dict(zip(self.eager_turns, self.eager_s, strict=True))
        ratios = [
            f / eager[t] for t, f in zip(self.first_turns, self.first_s, strict=True) if t in eager
        ]
        return statistics.median(ratios) if ratios else self.first / self.eager

    @property
    def jit_over_eager_cpu(self) -> float:
        return statistics.median(
            self.jit_cpu_s[turn] / e
            for turn, e in zip(self.eager_turns, self.eager_cpu_s, strict=True)
            if e > 0
        )

    @property
    def threads_over_eager(self) -> float:
        return statistics.median(
            self.threads_s[turn] / e for turn, e in zip(self.eager_turns, self.eager_s, strict=True)
        )

    @property
    def first_met(self) -> bool:
        """The first-call target: blocking patterns >= 0.85 of ideal, call-tree
        workloads >= 0.9 (none for CPU-bound patterns: reported only)."""
        if self.kind == "cpu":
            return True
        target = TARGET_TREE_FIRST if self.kind == "tree" else TARGET_FIRST_OF_IDEAL
        return self.first_of_ideal >= target

    @property
    def met(self) -> bool:
        if self.kind == "cpu":
            return self.jit_over_eager <= TARGET_CPU
        if self.kind == "tree":
            return self.of_ideal >= TARGET_OF_IDEAL and self.first_met
        return (
            self.of_ideal >= TARGET_OF_IDEAL
            and self.vs_threads <= TARGET_VS_THREADS
            and self.first_met
        )

    def to_json(self) -> dict[str, Any]:
        figures = {
            **asdict(self),
            "eager_median_s": self.eager,
            "jit_median_s": self.jit,
            "first_median_s": self.first,
            "first_compile_median_s": self.first_compile,
            "speedup": self.speedup,
            "speedup_of_ideal": self.of_ideal,
            "first_call_of_ideal": self.first_of_ideal,
            "jit_over_eager": self.jit_over_eager,
            "first_over_eager": self.first_over_eager,
            "jit_over_eager_cpu_time": self.jit_over_eager_cpu,
            "first_met": self.first_met,
            "met": self.met,
        }
        if self.threads_s:
            figures.update(
                threads_median_s=self.threads,
                threads_speedup_of_ideal=self.threads_of_ideal,
                jit_over_threads=self.vs_threads,
                first_over_threads=self.first_vs_threads,
                threads_over_eager=self.threads_over_eager,
            )
        return figures


def bench_pattern(
    pattern: Pattern,
    pool: ThreadPoolExecutor,
    turns: int,
    eager_every: int = 1,
    first_every: int = 1,
) -> PatternResult:
    """One warm-up call per approach (checked against eager), then ``turns`` turns.

    Each turn runs jit and threads, eager in every ``eager_every``-th turn and a
    first call (of a fresh function) in every ``first_every``-th turn, in an order
    rotated each turn, so that no approach always runs right after another.
    """
    args = pattern.args
    expected = pattern.eager(*args)
    warmup_jit, got = _time(pattern.jitted, *args)
    if got != expected:
        raise AssertionError(f"{pattern.name}: xcs.jit returned a different result")
    threads = pattern.threads
    if threads is not None and threads(pool, *args) != expected:
        raise AssertionError(f"{pattern.name}: the thread-pool version is wrong")
    fresh: list[Callable[..., Any]] = []
    first_compile: list[float] = []  # the compiler's own timer, over each first call
    last_first: list[Callable[..., Any]] = []  # the last fresh function, for its explain

    def first_call() -> Any:
        fn = fresh.pop()
        last_first[:] = [fn]
        compiling = jit_statistics.seconds
        try:
            return fn(*args)
        finally:
            first_compile.append(jit_statistics.seconds - compiling)

    runs: dict[str, Callable[[], Any]] = {
        "eager": lambda: pattern.eager(*args),
        "first": first_call,
        "jit": lambda: pattern.jitted(*args),
    }
    if threads is not None:
        runs["threads"] = lambda: threads(pool, *args)
    samples: dict[str, list[float]] = {a: [] for a in APPROACHES}
    cpu_samples: dict[str, list[float]] = {a: [] for a in APPROACHES}
    eager_turns, first_turns = [], []
    for turn in range(turns):
        order = [
            a
            for a in APPROACHES
            if a in runs
            and (a != "eager" or turn % eager_every == 0)
            and (a != "first" or turn % first_every == 0)
        ]
        if "eager" in order:
            eager_turns.append(turn)
        if "first" in order:
            first_turns.append(turn)
        shift = turn % len(order)
        for approach in order[shift:] + order[:shift]:
            if approach == "first":
                fresh.append(pattern.fresh_jitted())  # not timed: loading the copy
            time.sleep(SETTLE_S)
            cpu0 = time.process_time()
            wall, got = _time(runs[approach])
            cpu_samples[approach].append(time.process_time() - cpu0)
            samples[approach].append(wall)
            if approach == "first" and got != expected:
                raise AssertionError(f"{pattern.name}: a first call returned a different result")
    return PatternResult(
        name=pattern.name,
        kind=pattern.kind,
        what=pattern.what,
        calls=pattern.calls,
        depth=pattern.depth,
        ideal_speedup=pattern.ideal,
        warmup_jit_call_s=warmup_jit,
        first_s=tuple(samples["first"]),
        first_turns=tuple(first_turns),
        first_compile_s=tuple(first_compile),
        jit_s=tuple(samples["jit"]),
        threads_s=tuple(samples["threads"]),
        eager_s=tuple(samples["eager"]),
        eager_turns=tuple(eager_turns),
        jit_cpu_s=tuple(cpu_samples["jit"]),
        eager_cpu_s=tuple(cpu_samples["eager"]),
        explain=xcs.explain(pattern.jitted),
        explain_first=xcs.explain(last_first[0]) if last_first else "",
    )


def warm_pools(pool: ThreadPoolExecutor) -> dict[str, int]:
    """Start every thread of both pools before anything is measured.

    Both pools start threads lazily, one per submitted call that finds no idle
    thread, and starting a thread here costs about a millisecond while other threads
    run (up to a GIL switch interval, 5 ms). One warm-up call of a 64-item pattern
    therefore leaves a pool part-started (threads that finished their first call
    take the later items), and the next calls would pay for the rest. Bursts of 64
    long sleeps start all 64 threads of each pool. Returns the thread counts.
    """
    for _ in range(3):
        ordered_map(time.sleep, [0.1] * POOL_SIZE)
        _submit_all(pool, time.sleep, [(0.1,)] * POOL_SIZE)
    return {"xcs": get_pool().thread_count, "threads": len(pool._threads)}


# ---------------------------------------------------------------------------
# Compile time

# Several regions of every kind: comprehensions (one nested), a loop with an
# accumulator, independent statements, a generator expression consumed whole, plus
# code that stays in order (a chain, a loop-carried dependence, a branch).
COMPILE_SOURCE = '''\
def pipeline(question, documents, judges, rounds=2):
    """A compound program of about 50 lines, for timing the compiler."""
    drafts = [call(question, i) for i in range(3)]
    summaries = []
    for doc in documents:
        summary = call(doc, "summary")
        summaries.append(summary)
    scores = {judge: call(judge, question) for judge in judges}
    grid = [[call(d, j) for j in judges] for d in drafts]
    research = call(question, "research")
    critique = call(question, "critique")
    facts = call(question, "facts")
    merged = call(f"{research}|{critique}|{facts}", "merge")
    best = max(scores, key=scores.get) if scores else None
    total = sum(len(call(s, "length")) for s in summaries)
    history = []
    answer = merged
    for r in range(rounds):
        answer = call(answer, r)
        history.append(answer)
    seen = set()
    unique = []
    for d in drafts:
        if d in seen:
            continue
        seen.add(d)
        unique.append(d)
    verdicts = []
    for d in unique:
        verdict = call(d, "verify")
        if verdict:
            verdicts.append((d, verdict))
    labels = {}
    for i, row in enumerate(grid):
        labels[i] = call(row, "label")
    notes = [call(v, "note") for _, v in verdicts if v]
    report = {
        "question": question,
        "drafts": drafts,
        "summaries": summaries,
        "scores": scores,
        "best": best,
        "total": total,
        "answer": answer,
        "history": history,
        "labels": labels,
        "notes": notes,
    }
    if not notes:
        report["warning"] = call(question, "no notes")
    final = call(report, "final")
    return final, report
'''
COMPILE_FILENAME = "<xcs-bench-compile>"


def fresh_pipeline() -> Callable[..., Any]:
    """A new function object from COMPILE_SOURCE (so nothing is cached for it).

    The function is taken out of the namespace it was defined in: left there, it
    would be reachable from its own ``__globals__``, and XCS's compile cache (which
    holds the globals) would keep every one of them alive, so that the garbage
    collector's full passes slow the later compiles down more and more.
    """
    namespace: dict[str, Any] = {"call": J.call}
    exec(compile(COMPILE_SOURCE, COMPILE_FILENAME, "exec"), namespace)
    return namespace.pop("pipeline")  # type: ignore[no-any-return]


WARMUP_S = 1.0


def bench_compile(repeats: int) -> dict[str, Any]:
    """Median time of ``compiled_for`` on fresh function objects, beside CPython's own
    ``compile`` of the same source.

    Compiling is single-threaded CPU work, so its figure is the calling thread's CPU
    time (``time.thread_time``): on a shared machine the wall clock also counts the
    time the OS gave the core to other processes. The wall median is reported too.
    CPython's parse-and-compile of the same source, timed in the same loop, gives a
    ratio that does not depend on how fast the machine is.
    """
    lines = COMPILE_SOURCE.splitlines(keepends=True)
    linecache.cache[COMPILE_FILENAME] = (len(COMPILE_SOURCE), None, lines, COMPILE_FILENAME)
    probe = fresh_pipeline()
    entry = compiled_for(probe, None)  # also warms imports and inspect's caches
    if entry.target is None or entry.runtime is None:
        raise AssertionError(f"the compile benchmark's function did not compile: {entry}")
    regions = len(entry.runtime.sites)
    # Warm-up, not timed: after the blocking patterns' mostly idle minutes the first
    # second of CPU-bound work runs slower on these VMs (measured: up to 1.7x, for
    # CPython's compile() alike).
    warm_until = time.perf_counter() + WARMUP_S
    while time.perf_counter() < warm_until:
        compiled_for(fresh_pipeline(), None)
        compile(COMPILE_SOURCE, COMPILE_FILENAME, "exec", dont_inherit=True)
    walls, cpus, cpython = [], [], []
    for _ in range(repeats):
        fn = fresh_pipeline()
        start, start_cpu = time.perf_counter(), time.thread_time()
        compiled_for(fn, None)
        cpus.append(time.thread_time() - start_cpu)
        walls.append(time.perf_counter() - start)
        del fn
        start_cpu = time.thread_time()
        compile(COMPILE_SOURCE, COMPILE_FILENAME, "exec", dont_inherit=True)
        cpython.append(time.thread_time() - start_cpu)
    cpu_ms = statistics.median(cpus) * 1e3
    cpython_ms = statistics.median(cpython) * 1e3
    return {
        "source_lines": len(lines),
        "regions": regions,
        "repeats": repeats,
        "samples_ms": [s * 1e3 for s in walls],
        "cpu_samples_ms": [s * 1e3 for s in cpus],
        "median_ms": statistics.median(walls) * 1e3,
        "best_ms": min(walls) * 1e3,
        "worst_ms": max(walls) * 1e3,
        "cpu_median_ms": cpu_ms,
        "cpu_best_ms": min(cpus) * 1e3,
        "cpython_compile_ms": cpython_ms,
        "vs_cpython_compile": cpu_ms / cpython_ms,
        "met": cpu_ms <= TARGET_COMPILE_MS,
    }


# Compile time of a call tree: 20 functions that ``@xcs.jit`` on ``report`` compiles
# at its first call (the entry, 15 helpers, 4 methods, a classmethod and a
# staticmethod among them; ``__init__`` is reached through a class call, which is
# not compiled). ``call`` is a builtin here (``str.format``), so that it is not
# compiled, and running the tree costs little beside compiling it.
TREE_SOURCE = """\
def clean(text):
    return " ".join(str(text).split())


def prompt_for(kind, subject, extra=""):
    return clean(f"{kind}: {subject} {extra}")


def ask(kind, subject, extra=""):
    return call(prompt_for(kind, subject, extra), kind)


def first_word(text):
    words = clean(text).split()
    return words[0] if words else ""


def majority(samples):
    counts = {}
    for s in samples:
        word = first_word(s)
        counts[word] = counts.get(word, 0) + 1
    return max(counts, key=counts.get)


def self_consistency(question, n=5):
    samples = [ask("sample", question, i) for i in range(n)]
    return majority(samples)


def summarize(document):
    return ask("summary", document)


def combine(parts):
    return ask("combine", " + ".join(parts))


def map_reduce(documents, fan_in=4):
    summaries = [summarize(d) for d in documents]
    partials = [combine(summaries[i : i + fan_in]) for i in range(0, len(summaries), fan_in)]
    return combine(partials)


class Agents:
    def __init__(self, personas, layers=2):
        self.personas = list(personas)
        self.layers = layers

    @classmethod
    def default(cls):
        return cls(("physicist", "historian", "economist"))

    @staticmethod
    def context(previous):
        return "; ".join(previous) or "none yet"

    def propose(self, persona, question, previous):
        return ask("propose", question, f"as {persona}, after {self.context(previous)}")

    def layer(self, question, previous):
        return [self.propose(p, question, previous) for p in self.personas]

    def run(self, question):
        previous = []
        for _ in range(self.layers):
            previous = self.layer(question, previous)
        return ask("aggregate", question, self.context(previous))


def expand(thought, level, depth=2, branching=3):
    if level == depth:
        return [thought]
    children = [ask("branch", thought, i) for i in range(branching)]
    leaves = []
    for child in children:
        leaves.extend(expand(child, level + 1, depth, branching))
    return leaves


def tree_of_thoughts(problem):
    leaves = expand(problem, 0)
    return max(leaves, key=len)


def critique_all(findings):
    return [ask("critique", f) for f in findings]


def angles_of(topic):
    return ("causes", "evidence", "open questions") if topic else ()


def research(topic, angles):
    findings = [ask("research", topic, angle) for angle in angles]
    critiques = critique_all(findings)
    return ask("synthesize", topic, " | ".join(findings + critiques))


def report(question, documents, topic):
    answer = self_consistency(question)
    digest = map_reduce(documents)
    debate = Agents.default().run(question)
    thought = tree_of_thoughts(question)
    study = research(topic, angles_of(topic))
    return {
        "answer": answer,
        "digest": digest,
        "debate": debate,
        "thought": thought,
        "study": study,
    }
"""
TREE_FILENAME = "<xcs-bench-tree>"
TREE_FUNCTIONS = 20  # compiled on the first call of report


def fresh_tree() -> dict[str, Any]:
    """A new namespace from TREE_SOURCE: new function objects, nothing compiled."""
    namespace: dict[str, Any] = {"call": "{}/{}".format}
    exec(compile(TREE_SOURCE, TREE_FILENAME, "exec"), namespace)
    return namespace


def tree_functions(namespace: dict[str, Any]) -> list[types.FunctionType]:
    """The functions of a TREE_SOURCE namespace that its first call compiles."""
    functions = []
    for value in namespace.values():
        if isinstance(value, types.FunctionType):
            functions.append(value)
        elif isinstance(value, type):
            for attr in vars(value).values():
                fn = getattr(attr, "__func__", attr)
                if isinstance(fn, types.FunctionType) and fn.__name__ != "__init__":
                    functions.append(fn)
    return functions


TREE_ARGS = ("q", ["d1", "d2", "d3", "d4", "d5"], "t")


def bench_tree_compile(repeats: int) -> dict[str, Any]:
    """Compile time of a 20-function call tree, two ways, beside CPython's ``compile``.

    - *one by one*: ``compiled_for`` of each of the 20 functions of a fresh copy, in
      the calling thread (what the first call does for each; its thread CPU time);
    - *on the first call*: the first call of ``xcs.jit(report)`` on a fresh copy:
      the compiler's own timer summed over the functions compiled during that call
      (callees of an overlapping region compile on pool threads, so this is wall
      time per compile), the count of functions compiled, and the process CPU time
      of the whole first call beside that of the second (running the tree).
    """
    lines = TREE_SOURCE.splitlines(keepends=True)
    linecache.cache[TREE_FILENAME] = (len(TREE_SOURCE), None, lines, TREE_FILENAME)
    expected = fresh_tree()["report"](*TREE_ARGS)
    stats = jit_statistics
    warm_until = time.perf_counter() + WARMUP_S
    while time.perf_counter() < warm_until:
        for fn in tree_functions(fresh_tree()):
            compiled_for(fn, None)
        compile(TREE_SOURCE, TREE_FILENAME, "exec", dont_inherit=True)
    one_by_one, cpython, first_compile, first_cpu, second_cpu, counts = [], [], [], [], [], []
    for _ in range(repeats):
        functions = tree_functions(fresh_tree())
        if len(functions) != TREE_FUNCTIONS:
            raise AssertionError(f"the call tree has {len(functions)} functions")
        start = time.thread_time()
        for fn in functions:
            compiled_for(fn, None)
        one_by_one.append(time.thread_time() - start)
        del functions
        start = time.thread_time()
        compile(TREE_SOURCE, TREE_FILENAME, "exec", dont_inherit=True)
        cpython.append(time.thread_time() - start)
        entry = xcs.jit(fresh_tree()["report"])
        compiled0, seconds0 = stats.compiled + stats.fallbacks, stats.seconds
        start = time.process_time()
        got = entry(*TREE_ARGS)
        first_cpu.append(time.process_time() - start)
        first_compile.append(stats.seconds - seconds0)
        counts.append(stats.compiled + stats.fallbacks - compiled0)
        start = time.process_time()
        again = entry(*TREE_ARGS)
        second_cpu.append(time.process_time() - start)
        if got != expected or again != expected:
            raise AssertionError("the jitted call tree returned a different result")
    ms = statistics.median(one_by_one) * 1e3
    cpython_ms = statistics.median(cpython) * 1e3
    return {
        "functions": TREE_FUNCTIONS,
        "source_lines": len(lines),
        "repeats": repeats,
        "one_by_one_cpu_ms": [x * 1e3 for x in one_by_one],
        "one_by_one_cpu_median_ms": ms,
        "one_by_one_cpu_best_ms": min(one_by_one) * 1e3,
        "per_function_ms": ms / TREE_FUNCTIONS,
        "cpython_compile_ms": cpython_ms,
        "vs_cpython_compile": ms / cpython_ms,
        "first_call_compile_ms": [x * 1e3 for x in first_compile],
        "first_call_compile_median_ms": statistics.median(first_compile) * 1e3,
        "first_call_compiled_functions": sorted(set(counts)),
        "first_call_cpu_median_ms": statistics.median(first_cpu) * 1e3,
        "second_call_cpu_median_ms": statistics.median(second_cpu) * 1e3,
    }


# ---------------------------------------------------------------------------
# Dispatch overhead


def trivial(x: int) -> int:
    return x + 1


def _ident(x: int) -> int:
    return x


def one_region(x: int) -> list[int]:
    # A region whose calls compute: after the first call it runs in order.
    return [_ident(i) for i in (x,)]


def bench_dispatch(calls: int, runs: int) -> dict[str, Any]:
    """µs per call of a plain function and of its jitted form, by ``timeit``.

    The runs take turns (plain, jitted, plain, ...); the figure is the median run.
    """
    jitted_trivial = xcs.jit(trivial)
    jitted_region = xcs.jit(one_region)
    pairs = {
        "no region": (trivial, jitted_trivial),
        "one region, in order": (one_region, jitted_region),
    }
    rows = {}
    for label, (plain, jitted) in pairs.items():
        jitted(1)  # compile, and probe the region
        rows[label] = _timed_side_by_side(lambda f=plain: f(1), lambda f=jitted: f(1), calls, runs)
    rows["no region"]["met"] = rows["no region"]["overhead_us"] <= TARGET_DISPATCH_US
    return rows


def _timed_side_by_side(
    plain: Callable[[], Any], jitted: Callable[[], Any], calls: int, runs: int
) -> dict[str, Any]:
    """µs per call of ``plain`` and ``jitted``, ``runs`` timeit runs each, taking
    turns; the medians and the overhead."""
    plain_us, jit_us = [], []
    for _ in range(runs):
        plain_us.append(timeit.timeit(plain, number=calls) / calls * 1e6)
        jit_us.append(timeit.timeit(jitted, number=calls) / calls * 1e6)
    plain_median = statistics.median(plain_us)
    jit_median = statistics.median(jit_us)
    return {
        "calls_per_run": calls,
        "runs": runs,
        "plain_us": plain_us,
        "jit_us": jit_us,
        "plain_median_us": plain_median,
        "jit_median_us": jit_median,
        "overhead_us": jit_median - plain_median,
    }


class _Scorer:
    def __init__(self, weight: int) -> None:
        self.weight = weight

    def score(self, x: int) -> int:
        return x * self.weight

    def __call__(self, x: int) -> int:
        return x * self.weight


def bench_callee_dispatch(calls: int, runs: int) -> dict[str, Any]:
    """µs per call of ``f(x)`` and of ``__xcs_rt__.callee(f)(x)``, what compiled code
    runs for it (NOTE: [Call tree]), for callees that need no compiling.

    The runs take turns (plain, dispatched, plain, ...); the figure is the median run.
    """
    import posixpath

    from xcs._compiler import _rt as rt

    scorer = _Scorer(3)
    callees: dict[str, tuple[Any, Any]] = {
        "builtin (`len`)": (len, [1, 2]),
        "library function (`posixpath.basename`)": (posixpath.basename, "a/b"),
        "your function, a leaf (runs as written)": (trivial, 1),
        "your method, a leaf (bound)": (scorer.score, 1),
        "your callable object": (scorer, 1),
        "your `@xcs.jit` function (without its wrapper's frame)": (xcs.jit(trivial), 1),
    }
    rows = {}
    for label, (fn, arg) in callees.items():
        fn(arg)  # a jit wrapper compiles at its first call
        rt.callee(fn)  # the first dispatch decides, once per function
        row = _timed_side_by_side(
            lambda f=fn, a=arg: f(a), lambda f=fn, a=arg: rt.callee(f)(a), calls, runs
        )
        row["met"] = row["overhead_us"] <= TARGET_CALLEE_US
        rows[label] = row
    return rows


# ---------------------------------------------------------------------------
# Profiling one pattern (for finding where the time goes when a target is missed)


def profile_pattern(pattern: Pattern, calls: int = 5, top: int = 25) -> str:
    """cProfile of the warmed jitted pattern (all threads' time shows up only for the
    calling thread: read it as where the *caller* spends its time)."""
    pattern.jitted(*pattern.args)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        pattern.jitted(*pattern.args)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def profile_compile(repeats: int = 100, top: int = 40) -> str:
    """cProfile of compiling COMPILE_SOURCE ``repeats`` times (fresh function objects)."""
    bench_compile(1)  # the linecache entry, and warm imports
    functions = [fresh_pipeline() for _ in range(repeats)]
    profiler = cProfile.Profile()
    profiler.enable()
    for fn in functions:
        compiled_for(fn, None)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# ---------------------------------------------------------------------------
# Reporting


def _load_text(load: float | None) -> str:
    return "unknown" if load is None else f"{load:.2f}"


def _ordinal(n: int) -> str:
    return {1: "", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def render(
    settings: Settings,
    results: list[PatternResult],
    trees: list[PatternResult],
    compile_figures: dict[str, Any],
    tree_compile: dict[str, Any],
    dispatch: dict[str, Any],
    cpu_us: float,
    targets: dict[str, Any],
    date: str,
    load: dict[str, float | None],
) -> str:
    machine = machine_info()
    io_rows = [r for r in results if r.kind == "io"]
    cpu_rows = [r for r in results if r.kind == "cpu"]
    io_table = markdown_table(
        [
            "pattern",
            "code",
            "calls",
            "eager ms",
            "jit ms",
            "threads ms",
            "speedup",
            "ideal",
            "of ideal",
            "threads: of ideal",
            "jit / threads",
            "first call ms",
            "first call: of ideal",
            "first call / threads",
            "target",
        ],
        [
            [
                r.name,
                f"`{r.what}`",
                r.calls,
                _ms(r.eager),
                _ms(r.jit),
                _ms(r.threads),
                f"{r.speedup:.2f}x",
                f"{r.ideal_speedup:.0f}x",
                f"{r.of_ideal:.3f}",
                f"{r.threads_of_ideal:.3f}",
                f"{r.vs_threads:.3f}",
                _ms(r.first),
                f"{r.first_of_ideal:.3f}",
                f"{r.first_vs_threads:.3f}",
                "met" if r.met else "**missed**",
            ]
            for r in io_rows
        ],
        align=["l", "l"] + ["r"] * 13,
    )
    cpu_table = markdown_table(
        [
            "pattern",
            "code",
            "eager ms",
            "jit ms",
            "threads ms",
            "jit / eager",
            "jit / eager, CPU time",
            "threads / eager",
            "first call ms",
            "first call / eager",
            "target",
        ],
        [
            [
                r.name,
                f"`{r.what}`",
                f"{r.eager * 1e3:.2f}",
                f"{r.jit * 1e3:.2f}",
                f"{r.threads * 1e3:.2f}",
                f"{r.jit_over_eager:.3f}",
                f"{r.jit_over_eager_cpu:.3f}",
                f"{r.threads_over_eager:.2f}",
                f"{r.first * 1e3:.2f}",
                f"{r.first_over_eager:.2f}",
                "met" if r.met else "**missed**",
            ]
            for r in cpu_rows
        ],
        align=["l", "l"] + ["r"] * 9,
    )
    tree_table = markdown_table(
        [
            "workload",
            "written as",
            "calls",
            "ideal",
            "eager ms",
            "first call ms",
            "of which compiling ms",
            "first call: of ideal",
            "warm jit ms",
            "warm: of ideal",
            "target",
        ],
        [
            [
                r.name,
                r.what,
                r.calls,
                f"{r.ideal_speedup:.0f}x",
                _ms(r.eager),
                _ms(r.first),
                _ms(r.first_compile),
                f"{r.first_of_ideal:.3f}",
                _ms(r.jit),
                f"{r.of_ideal:.3f}",
                "met" if r.met else "**missed**",
            ]
            for r in trees
        ],
        align=["l", "l"] + ["r"] * 9,
    )
    dispatch_table = markdown_table(
        ["function", "plain µs per call", "jit µs per call", "overhead µs"],
        [
            [
                label,
                f"{d['plain_median_us']:.3f}",
                f"{d['jit_median_us']:.3f}",
                f"{d['overhead_us']:.3f}",
            ]
            for label, d in dispatch.items()
        ],
    )
    c = compile_figures
    t = tree_compile

    def verdict(met: bool) -> str:
        return "met" if met else "**missed**"

    lines = [
        f"Measured {date} on {machine['platform']}, {machine['usable_cpus']} CPUs, "
        f"Python {machine['python']}"
        + (" (**quick run**: short calls, few repeats)" if settings.quick else "")
        + f". Simulated model call: `time.sleep({settings.latency_s})`. "
        f"{settings.io_turns} turns of jit, threads and a first call back to back, with "
        f"eager in every {_ordinal(settings.io_eager_every)} turn (blocking patterns and "
        f"call-tree workloads), or {settings.cpu_turns} turns of eager, jit and threads with "
        f"a first call in every {_ordinal(settings.cpu_first_every)} (CPU-bound), after one "
        "warm-up call each that is not counted. A *first call* is the first call of "
        "`xcs.jit` of a function in a fresh copy of the programs (`bench/_jit_programs.py` "
        "copied to a new file and imported under a new name: new functions, classes and "
        "code objects, nothing compiled or measured before), compiling included. "
        "Walls are medians; speedup is the ratio of median walls; of ideal is speedup / "
        "ideal; jit / threads and jit / eager are medians of the per-turn ratios. "
        f"Threads: a hand-written `ThreadPoolExecutor({POOL_SIZE})`. "
        f"Load average (1 min) before and after: {_load_text(load['before'])}, "
        f"{_load_text(load['after'])}.",
        "",
        f"**Blocking calls** (targets: speedup ≥ {TARGET_OF_IDEAL} x ideal, "
        f"jit ≤ {TARGET_VS_THREADS} x threads, first call ≥ {TARGET_FIRST_OF_IDEAL} x ideal):",
        "",
        io_table,
        "",
        f"**Call-tree workloads** (only the entry point is decorated `@xcs.jit`; the "
        "call tree compiles the helpers, methods and operator it calls; "
        f"`bench/_jit_programs.py`; targets: first call ≥ {TARGET_TREE_FIRST} x ideal, "
        f"warm ≥ {TARGET_OF_IDEAL} x ideal):",
        "",
        tree_table,
        "",
        f"**CPU-bound** (each item ~{cpu_us:.0f} µs of pure Python; "
        f"target: jit ≤ {TARGET_CPU} x eager, in wall time; the CPU-time ratio, "
        "which varies less on a shared machine, is shown beside it; the first call, "
        "compiling included, is reported):",
        "",
        cpu_table,
        "",
        f"**Compile time** of a {c['source_lines']}-line function with {c['regions']} "
        f"regions, fresh function object each time, {c['repeats']} times after "
        f"{WARMUP_S:.0f} s of untimed compiling: median "
        f"{c['cpu_median_ms']:.2f} ms of CPU time (best {c['cpu_best_ms']:.2f}); "
        f"{c['vs_cpython_compile']:.1f} x CPython's own `compile()` of the same source "
        f"({c['cpython_compile_ms']:.2f} ms, same loop); wall median "
        f"{c['median_ms']:.2f} ms (best {c['best_ms']:.2f}, worst {c['worst_ms']:.2f}); "
        f"target ≤ {TARGET_COMPILE_MS} ms of CPU time: {verdict(c['met'])}.",
        "",
        f"**Compile time of a {t['functions']}-function call tree** ({t['source_lines']} "
        "lines: helpers, methods, a classmethod, a staticmethod, recursion; "
        f"`TREE_SOURCE` in `bench/jit.py`), fresh functions each time, {t['repeats']} "
        f"times: the {t['functions']} functions compiled one by one, median "
        f"{t['one_by_one_cpu_median_ms']:.1f} ms of CPU time (best "
        f"{t['one_by_one_cpu_best_ms']:.1f}; {t['per_function_ms']:.2f} ms a function), "
        f"{t['vs_cpython_compile']:.1f} x CPython's `compile()` of the same source "
        f"({t['cpython_compile_ms']:.2f} ms). On the first call of `xcs.jit` of the "
        f"entry: {', '.join(map(str, t['first_call_compiled_functions']))} functions "
        f"compiled, {t['first_call_compile_median_ms']:.1f} ms by the compiler's own "
        f"timer (median; wall time per compile, some on pool threads); the whole first "
        f"call took {t['first_call_cpu_median_ms']:.1f} ms of process CPU time, the "
        f"second {t['second_call_cpu_median_ms']:.1f} ms.",
        "",
        f"**Dispatch** (`timeit`, {settings.dispatch_calls:,} calls a run, median of "
        f"{settings.dispatch_runs} runs; target for no region: overhead ≤ "
        f"{TARGET_DISPATCH_US} µs: {verdict(dispatch['no region']['met'])}; for a call "
        f"from compiled code, `__xcs_rt__.callee(f)(x)` against `f(x)`, to a callee "
        f"that needs no compiling: overhead ≤ {TARGET_CALLEE_US} µs: "
        f"{verdict(targets['call-tree dispatch ≤ 1 µs'])}):",
        "",
        dispatch_table,
        "",
        "Targets met? " + "; ".join(f"{k} {verdict(v)}" for k, v in targets.items()) + ".",
    ]
    for r in trees:
        shown = []
        if r.of_ideal < TARGET_OF_IDEAL:
            shown.append(("after its warm calls", r.explain))
        if not r.first_met:
            shown.append(("after the first call of a fresh copy", r.explain_first))
        for when, text in shown:
            lines += ["", f"`xcs.explain` of the **{r.name}** entry point {when}:", ""]
            lines += ["```text", _head(text, EXPLAIN_LINES), "```"]
    return "\n".join(lines)


EXPLAIN_LINES = 40  # of an xcs.explain shown in the docs (all of it is in the JSON)


def _head(text: str, lines: int) -> str:
    kept = text.rstrip().splitlines()
    if len(kept) <= lines:
        return "\n".join(kept)
    more = len(kept) - lines
    return "\n".join([*kept[:lines], f"... ({more} more lines in bench/results/jit.json)"])


def _load() -> float | None:
    """The 1-minute load average (other processes compete for the same cores)."""
    getloadavg = getattr(os, "getloadavg", None)
    return round(getloadavg()[0], 2) if getloadavg is not None else None


def _targets(
    results: list[PatternResult],
    trees: list[PatternResult],
    compile_figures: dict[str, Any],
    dispatch: dict[str, Any],
) -> dict[str, bool]:
    io = [r for r in results if r.kind == "io"]
    cpu_rows = [r for r in results if r.kind == "cpu"]
    return {
        "I/O ≥ 0.9 x ideal": all(r.of_ideal >= TARGET_OF_IDEAL for r in io),
        "I/O within 5% of threads": all(r.vs_threads <= TARGET_VS_THREADS for r in io),
        "I/O first call ≥ 0.85 x ideal": all(r.first_met for r in io),
        "call trees, first call ≥ 0.9 x ideal": all(r.first_met for r in trees),
        "call trees, warm ≥ 0.9 x ideal": all(r.of_ideal >= TARGET_OF_IDEAL for r in trees),
        "CPU-bound ≤ 1.05 x eager": all(r.met for r in cpu_rows),
        "compile ≤ 5 ms": bool(compile_figures["met"]),
        "dispatch ≤ 2 µs": bool(dispatch["no region"]["met"]),
        "call-tree dispatch ≤ 1 µs": all(
            row["met"] for label, row in dispatch.items() if label.startswith(FROM_COMPILED)
        ),
    }


# ---------------------------------------------------------------------------
# Main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="20 ms calls, few repeats; prints the tables, writes no results",
    )
    parser.add_argument(
        "--profile",
        metavar="PATTERN",
        help="print a cProfile of one warmed jitted pattern (or of 'compile') and exit",
    )
    parser.add_argument(
        "--only",
        choices=("patterns", "trees", "compile"),
        action="append",
        help="run only these parts (repeatable); prints, writes nothing",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    J.LATENCY_S = settings.latency_s
    date = utc_now()
    load_before = _load()
    cpu_us = calibrate_cpu()
    print(
        f"xcs pool: {get_pool().max_workers} threads; cpu item: {cpu_us:.1f} µs "
        f"({J.CPU_LOOPS} loops); {settings}",
        file=sys.stderr,
    )
    all_patterns = patterns(settings)
    if args.profile == "compile":
        print(profile_compile())
        return 0
    if args.profile:
        chosen = [p for p in all_patterns if p.name == args.profile]
        if not chosen:
            parser.error(f"--profile takes one of {[p.name for p in all_patterns]}")
        print(profile_pattern(chosen[0]))
        return 0
    parts = set(args.only or ("patterns", "trees", "compile"))

    results, trees = [], []
    with ThreadPoolExecutor(max_workers=POOL_SIZE) as pool:
        threads_started = warm_pools(pool)
        for pattern in all_patterns if "patterns" in parts else []:
            print(f"  {pattern.name}...", file=sys.stderr)
            if pattern.kind == "cpu":
                result = bench_pattern(
                    pattern, pool, settings.cpu_turns, first_every=settings.cpu_first_every
                )
            else:
                result = bench_pattern(pattern, pool, settings.io_turns, settings.io_eager_every)
            results.append(result)
        for workload in tree_workloads() if "trees" in parts else []:
            print(f"  {workload.name}...", file=sys.stderr)
            trees.append(bench_pattern(workload, pool, settings.io_turns, settings.io_eager_every))
    gc.collect()
    if parts != {"patterns", "trees", "compile"}:
        _print_parts(results, trees, settings)
        return 0
    compile_figures = bench_compile(settings.compile_repeats)
    tree_compile = bench_tree_compile(settings.tree_compile_repeats)
    dispatch = bench_dispatch(settings.dispatch_calls, settings.dispatch_runs)
    callee_rows = bench_callee_dispatch(settings.dispatch_calls, settings.dispatch_runs)
    dispatch.update({f"{FROM_COMPILED}{k}": v for k, v in callee_rows.items()})
    targets = _targets(results, trees, compile_figures, dispatch)
    load = {"before": load_before, "after": _load()}

    body = render(
        settings,
        results,
        trees,
        compile_figures,
        tree_compile,
        dispatch,
        cpu_us,
        targets,
        date,
        load,
    )
    print(body)
    if settings.quick:
        print("\n(quick run: results and docs not written)", file=sys.stderr)
        return 0
    path = write_results(
        NAME,
        {
            "settings": {
                **asdict(settings),
                "statistic": (
                    "walls: median over the turns; speedup: ratio of median walls; "
                    "jit/threads, jit/eager: median of the per-turn ratios; first call: "
                    "median over fresh copies of the programs, one per turn"
                ),
                "settle_s": SETTLE_S,
                "warmup_calls": 1,
                "threads_pool_size": POOL_SIZE,
                "xcs_pool_size": get_pool().max_workers,
                "cpu_item_us": cpu_us,
                "cpu_loops": J.CPU_LOOPS,
                "threads_started_before_measuring": threads_started,
                "load_average_1min": load,
            },
            "patterns": [r.to_json() for r in results],
            "call_trees": [r.to_json() for r in trees],
            "compile": compile_figures,
            "call_tree_compile": tree_compile,
            "dispatch": dispatch,
            "targets": {
                "of_ideal": TARGET_OF_IDEAL,
                "first_call_of_ideal": TARGET_FIRST_OF_IDEAL,
                "call_tree_first_call_of_ideal": TARGET_TREE_FIRST,
                "jit_over_threads": TARGET_VS_THREADS,
                "cpu_jit_over_eager": TARGET_CPU,
                "compile_ms": TARGET_COMPILE_MS,
                "dispatch_us": TARGET_DISPATCH_US,
                "met": targets,
            },
        },
    )
    doc = update_docs_section(NAME, body, title="@xcs.jit")
    print(f"\nwrote {path} and {doc}", file=sys.stderr)
    return 0


def _print_parts(
    results: list[PatternResult], trees: list[PatternResult], settings: Settings
) -> None:
    """A short report of a partial run (``--only``)."""
    for r in results + trees:
        line = (
            f"{r.name:32} warm {r.jit * 1e3:7.1f} ms  first {r.first * 1e3:7.1f} ms  "
            f"eager {r.eager * 1e3:7.1f} ms  compiling {r.first_compile * 1e3:5.1f} ms"
        )
        if r.kind != "cpu":
            line += f"  of ideal: warm {r.of_ideal:.3f}, first {r.first_of_ideal:.3f}"
        else:
            line += f"  jit/eager {r.jit_over_eager:.3f}, first/eager {r.first_over_eager:.2f}"
        print(line + ("" if r.met else "  MISSED"))
        if not r.met and r.kind == "tree":
            print(r.explain)
    print(f"(partial run, {settings.latency_s} s calls: results and docs not written)")


if __name__ == "__main__":
    sys.exit(main())
