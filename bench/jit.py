"""``@xcs.jit`` benchmark: plain Python vs ``xcs.jit`` vs a hand-written thread pool, in one run.

Each pattern is written once, as the plain sequential function a user would write.
The *eager* row calls it as is; the *jit* row calls ``xcs.jit(<the same function>)``;
the *threads* row calls a hand-written ``concurrent.futures.ThreadPoolExecutor``
version of it (64 threads, the bound of XCS's shared pool), the code a careful user
would write without XCS. The work is a simulated model call, ``time.sleep(LATENCY)``
(it blocks like a socket and computes nothing), or, for the CPU-bound patterns, ~50 µs
of pure-Python arithmetic.

The approaches take *turns*: one turn runs jit and threads back to back (and eager,
in every turn for CPU-bound patterns, every third turn for blocking ones, whose eager
wall is a sum of sleeps and barely varies), in an order rotated each turn, each after
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

Jitted functions adapt: the first execution of a region runs its first item alone as
a probe, so the first call is slower. Every approach makes one warm-up call that is
not counted; the jit's (compiling, then probing) is reported on its own. Both thread
pools are fully started before anything is measured (``warm_pools``).

Also measured: compile time (``compiled_for`` on fresh function objects made by
``exec`` of the same ~50-line source) and the dispatch overhead of a jitted function
with no region over a plain call.

Run::

    python bench/jit.py                  # full run (50 ms calls): writes bench/results/jit.json
                                         # and the jit section of docs/benchmarks.md
    python bench/jit.py --quick          # smoke run (20 ms calls, few repeats), writes nothing
    python bench/jit.py --profile nested_8x8   # cProfile of the warmed jitted pattern
    python bench/jit.py --profile compile      # cProfile of the compiler
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import linecache
import os
import pstats
import statistics
import sys
import time
import timeit
import types
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import xcs
from _report import machine_info, markdown_table, update_docs_section, utc_now, write_results
from xcs._compiler._jit import compiled_for
from xcs._runtime._pool import get_pool
from xcs._runtime._scheduler import ordered_map

NAME = "jit"

POOL_SIZE = 64  # the hand-written pool gets the bound of XCS's shared pool
CPU_TARGET_US = 50.0  # one CPU-bound item computes about this long

TARGET_OF_IDEAL = 0.90  # I/O patterns: jit speedup >= 0.9 x the ideal speedup
TARGET_VS_THREADS = 1.05  # I/O patterns: jit wall <= 1.05 x the hand-written pool's
TARGET_CPU = 1.05  # CPU-bound patterns: jit wall <= 1.05 x eager
TARGET_COMPILE_MS = 5.0
TARGET_DISPATCH_US = 2.0


@dataclass(frozen=True)
class Settings:
    latency_s: float  # one simulated model call
    io_turns: int  # measured turns of each I/O pattern: jit and threads in each
    io_eager_every: int  # ... and eager in every this many (its wall barely varies)
    cpu_turns: int  # measured turns of each CPU-bound pattern: all three in each
    cpu_items: int  # items of a CPU-bound pattern
    compile_repeats: int  # fresh function objects compiled
    dispatch_calls: int  # calls per timeit run
    dispatch_runs: int  # timeit runs
    quick: bool


FULL = Settings(
    latency_s=0.05,
    io_turns=15,
    io_eager_every=3,
    cpu_turns=201,
    cpu_items=100,
    compile_repeats=300,
    dispatch_calls=1_000_000,
    dispatch_runs=5,
    quick=False,
)
QUICK = Settings(
    latency_s=0.02,
    io_turns=4,
    io_eager_every=2,
    cpu_turns=41,
    cpu_items=100,
    compile_repeats=30,
    dispatch_calls=100_000,
    dispatch_runs=3,
    quick=True,
)


# ---------------------------------------------------------------------------
# The work
#
# Module-level names that the patterns read at call time, set by ``main``.

LATENCY_S = FULL.latency_s
CPU_LOOPS = 300  # calibrated by ``calibrate_cpu`` to about CPU_TARGET_US per item


def call(prompt: object, tag: object = 0) -> str:
    """A simulated model call: blocks for LATENCY_S (a sleep, like a socket wait)."""
    time.sleep(LATENCY_S)
    return f"{prompt}/{tag}"


def cpu(x: int) -> int:
    """About CPU_TARGET_US of pure-Python arithmetic: holds the GIL throughout."""
    total = x
    for i in range(CPU_LOOPS):
        total = (total * 31 + i) % 1_000_003
    return total


def calibrate_cpu() -> float:
    """Set CPU_LOOPS so that ``cpu`` takes about CPU_TARGET_US; return the µs it takes."""
    global CPU_LOOPS
    for _ in range(3):
        runs = 2000
        start = time.perf_counter()
        for x in range(runs):
            cpu(x)
        per_call_us = (time.perf_counter() - start) / runs * 1e6
        CPU_LOOPS = max(1, round(CPU_LOOPS * CPU_TARGET_US / per_call_us))
    start = time.perf_counter()
    for x in range(runs):
        cpu(x)
    return (time.perf_counter() - start) / runs * 1e6


# ---------------------------------------------------------------------------
# The patterns, as the user writes them (eager), and by hand on a thread pool


def ensemble(question: str, n: int) -> list[str]:
    return [call(question, i) for i in range(n)]


def map_loop(documents: list[str]) -> list[str]:
    out = []
    for doc in documents:
        out.append(call(doc))
    return out


def map_comprehension(documents: list[str]) -> list[str]:
    return [call(doc) for doc in documents]


def nested(n: int) -> list[list[str]]:
    return [[call(x, y) for y in range(n)] for x in range(n)]


def diamond(question: str) -> str:
    research = call(question, "research")
    critique = call(question, "critique")
    facts = call(question, "facts")
    return call(f"{research}|{critique}|{facts}", "synthesize")


def chain(question: str) -> str:
    draft = call(question, "draft")
    revised = call(draft, "revise")
    return call(revised, "polish")


def cpu_comprehension(n: int) -> list[int]:
    return [cpu(x) for x in range(n)]


def cpu_loop(n: int) -> list[int]:
    out = []
    for x in range(n):
        out.append(cpu(x))
    return out


def _submit_all(pool: ThreadPoolExecutor, fn: Callable[..., Any], argses: Any) -> list[Any]:
    futures = [pool.submit(fn, *args) for args in argses]
    return [f.result() for f in futures]


def threads_ensemble(pool: ThreadPoolExecutor, question: str, n: int) -> list[str]:
    return _submit_all(pool, call, [(question, i) for i in range(n)])


def threads_map(pool: ThreadPoolExecutor, documents: list[str]) -> list[str]:
    return _submit_all(pool, call, [(doc,) for doc in documents])


def threads_nested(pool: ThreadPoolExecutor, n: int) -> list[list[str]]:
    flat = _submit_all(pool, call, [(x, y) for x in range(n) for y in range(n)])
    return [flat[x * n : (x + 1) * n] for x in range(n)]


def threads_diamond(pool: ThreadPoolExecutor, question: str) -> str:
    research = pool.submit(call, question, "research")
    critique = pool.submit(call, question, "critique")
    facts = pool.submit(call, question, "facts")
    joined = f"{research.result()}|{critique.result()}|{facts.result()}"
    return call(joined, "synthesize")


def threads_chain(pool: ThreadPoolExecutor, question: str) -> str:
    # Nothing to overlap: the hand-written version is the plain code.
    return chain(question)


def threads_cpu(pool: ThreadPoolExecutor, n: int) -> list[int]:
    # What a user who threads everything by hand would write; the GIL serialises it.
    return _submit_all(pool, cpu, [(x,) for x in range(n)])


@dataclass
class Pattern:
    name: str
    kind: str  # "io" or "cpu"
    what: str  # the code, for the table
    eager: Callable[..., Any]
    threads: Callable[..., Any]  # takes the pool first
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
    def ideal(self) -> float:
        return 1.0 if self.kind == "cpu" else self.calls / self.depth


def patterns(settings: Settings) -> list[Pattern]:
    docs = [f"doc{i}" for i in range(64)]
    n = settings.cpu_items
    return [
        Pattern("ensemble_3", "io", "[call(q, i) for i in range(3)]", ensemble, threads_ensemble, ("q", 3), 3, 1),
        Pattern("ensemble_5", "io", "[call(q, i) for i in range(5)]", ensemble, threads_ensemble, ("q", 5), 5, 1),
        Pattern("map_loop_64", "io", "for d in docs: out.append(call(d))", map_loop, threads_map, (docs,), 64, 1),
        Pattern("map_comp_64", "io", "[call(d) for d in docs]", map_comprehension, threads_map, (docs,), 64, 1),
        Pattern("nested_8x8", "io", "[[call(x, y) for y in range(8)] for x in range(8)]", nested, threads_nested, (8,), 64, 1),
        Pattern("diamond", "io", "a = call(q); b = call(q); c = call(q); return call(a+b+c)", diamond, threads_diamond, ("q",), 4, 2),
        Pattern("chain", "io", "a = call(q); b = call(a); return call(b)", chain, threads_chain, ("q",), 3, 3),
        Pattern("cpu_comp", "cpu", f"[cpu(x) for x in range({n})]", cpu_comprehension, threads_cpu, (n,), n, n),
        Pattern("cpu_loop", "cpu", f"for x in range({n}): out.append(cpu(x))", cpu_loop, threads_cpu, (n,), n, n),
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

APPROACHES = ("eager", "jit", "threads")


@dataclass(frozen=True)
class PatternResult:
    """One pattern's walls, per approach and turn."""

    name: str
    kind: str
    what: str
    calls: int
    depth: int
    ideal_speedup: float
    first_jit_call_s: float  # compile + the probe of each region
    jit_s: tuple[float, ...]  # one per turn
    threads_s: tuple[float, ...]  # one per turn
    eager_s: tuple[float, ...]  # one per turn in eager_turns
    eager_turns: tuple[int, ...]
    # Process CPU time (all threads) of the same calls: on a shared machine it
    # varies less than wall time, which also counts time the core was taken away.
    jit_cpu_s: tuple[float, ...]
    eager_cpu_s: tuple[float, ...]

    @property
    def eager(self) -> float:
        return statistics.median(self.eager_s)

    @property
    def jit(self) -> float:
        return statistics.median(self.jit_s)

    @property
    def threads(self) -> float:
        return statistics.median(self.threads_s)

    @property
    def speedup(self) -> float:
        return self.eager / self.jit

    @property
    def of_ideal(self) -> float:
        return self.speedup / self.ideal_speedup

    @property
    def threads_of_ideal(self) -> float:
        return self.eager / self.threads / self.ideal_speedup

    # The ratios the targets compare to 1 are medians of per-turn ratios: the
    # approaches of one turn ran back to back, on about the same machine, so load
    # that comes and goes over the run cancels out.

    @property
    def vs_threads(self) -> float:
        return statistics.median(j / t for j, t in zip(self.jit_s, self.threads_s, strict=True))

    @property
    def jit_over_eager(self) -> float:
        return statistics.median(
            self.jit_s[turn] / e for turn, e in zip(self.eager_turns, self.eager_s, strict=True)
        )

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
    def met(self) -> bool:
        if self.kind == "cpu":
            return self.jit_over_eager <= TARGET_CPU
        return self.of_ideal >= TARGET_OF_IDEAL and self.vs_threads <= TARGET_VS_THREADS

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "eager_median_s": self.eager,
            "jit_median_s": self.jit,
            "threads_median_s": self.threads,
            "speedup": self.speedup,
            "speedup_of_ideal": self.of_ideal,
            "threads_speedup_of_ideal": self.threads_of_ideal,
            "jit_over_threads": self.vs_threads,
            "jit_over_eager": self.jit_over_eager,
            "threads_over_eager": self.threads_over_eager,
            "jit_over_eager_cpu_time": self.jit_over_eager_cpu,
            "met": self.met,
        }


def bench_pattern(
    pattern: Pattern, pool: ThreadPoolExecutor, turns: int, eager_every: int = 1
) -> PatternResult:
    """One warm-up call per approach (checked against eager), then ``turns`` turns.

    Each turn runs jit and threads, and eager in every ``eager_every``-th turn, in
    an order rotated each turn, so that no approach always runs right after another.
    """
    args = pattern.args
    expected = pattern.eager(*args)
    first_jit, got = _time(pattern.jitted, *args)
    if got != expected:
        raise AssertionError(f"{pattern.name}: xcs.jit returned a different result")
    if pattern.threads(pool, *args) != expected:
        raise AssertionError(f"{pattern.name}: the thread-pool version is wrong")
    runs: dict[str, Callable[[], Any]] = {
        "eager": lambda: pattern.eager(*args),
        "jit": lambda: pattern.jitted(*args),
        "threads": lambda: pattern.threads(pool, *args),
    }
    samples: dict[str, list[float]] = {a: [] for a in APPROACHES}
    cpu_samples: dict[str, list[float]] = {a: [] for a in APPROACHES}
    eager_turns = []
    for turn in range(turns):
        order = [a for a in APPROACHES if a != "eager" or turn % eager_every == 0]
        if "eager" in order:
            eager_turns.append(turn)
        shift = turn % len(order)
        for approach in order[shift:] + order[:shift]:
            time.sleep(SETTLE_S)
            cpu0 = time.process_time()
            samples[approach].append(_time(runs[approach])[0])
            cpu_samples[approach].append(time.process_time() - cpu0)
    return PatternResult(
        name=pattern.name,
        kind=pattern.kind,
        what=pattern.what,
        calls=pattern.calls,
        depth=pattern.depth,
        ideal_speedup=pattern.ideal,
        first_jit_call_s=first_jit,
        jit_s=tuple(samples["jit"]),
        threads_s=tuple(samples["threads"]),
        eager_s=tuple(samples["eager"]),
        eager_turns=tuple(eager_turns),
        jit_cpu_s=tuple(cpu_samples["jit"]),
        eager_cpu_s=tuple(cpu_samples["eager"]),
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
    namespace: dict[str, Any] = {"call": call}
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
        plain_us, jit_us = [], []
        for _ in range(runs):
            plain_us.append(timeit.timeit(lambda f=plain: f(1), number=calls) / calls * 1e6)
            jit_us.append(timeit.timeit(lambda f=jitted: f(1), number=calls) / calls * 1e6)
        plain_median = statistics.median(plain_us)
        jit_median = statistics.median(jit_us)
        rows[label] = {
            "calls_per_run": calls,
            "runs": runs,
            "plain_us": plain_us,
            "jit_us": jit_us,
            "plain_median_us": plain_median,
            "jit_median_us": jit_median,
            "overhead_us": jit_median - plain_median,
        }
    rows["no region"]["met"] = rows["no region"]["overhead_us"] <= TARGET_DISPATCH_US
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
    compile_figures: dict[str, Any],
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
            "first jit call ms",
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
                _ms(r.first_jit_call_s),
                "met" if r.met else "**missed**",
            ]
            for r in io_rows
        ],
        align=["l", "l"] + ["r"] * 11,
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
                "met" if r.met else "**missed**",
            ]
            for r in cpu_rows
        ],
        align=["l", "l"] + ["r"] * 7,
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

    def verdict(met: bool) -> str:
        return "met" if met else "**missed**"

    lines = [
        f"Measured {date} on {machine['platform']}, {machine['usable_cpus']} CPUs, "
        f"Python {machine['python']}"
        + (" (**quick run**: short calls, few repeats)" if settings.quick else "")
        + f". Simulated model call: `time.sleep({settings.latency_s})`. "
        f"{settings.io_turns} turns of jit and threads back to back, with eager in every "
        f"{_ordinal(settings.io_eager_every)} turn (blocking patterns), or {settings.cpu_turns} "
        "turns of all three (CPU-bound), after one warm-up call each that is not counted "
        "(the first jit call, with compiling and probes, is shown on its own). "
        "Walls are medians; speedup is the ratio of median walls; jit / threads and "
        "jit / eager are medians of the per-turn ratios. "
        f"Threads: a hand-written `ThreadPoolExecutor({POOL_SIZE})`. "
        f"Load average (1 min) before and after: {_load_text(load['before'])}, "
        f"{_load_text(load['after'])}.",
        "",
        f"**Blocking calls** (targets: speedup ≥ {TARGET_OF_IDEAL} x ideal and "
        f"jit ≤ {TARGET_VS_THREADS} x threads):",
        "",
        io_table,
        "",
        f"**CPU-bound** (each item ~{cpu_us:.0f} µs of pure Python; "
        f"target: jit ≤ {TARGET_CPU} x eager, in wall time; the CPU-time ratio, "
        "which varies less on a shared machine, is shown beside it):",
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
        f"**Dispatch** (`timeit`, {settings.dispatch_calls:,} calls a run, median of "
        f"{settings.dispatch_runs} runs; target for no region: overhead ≤ "
        f"{TARGET_DISPATCH_US} µs: {verdict(dispatch['no region']['met'])}):",
        "",
        dispatch_table,
        "",
        "Targets met? " + "; ".join(f"{k} {verdict(v)}" for k, v in targets.items()) + ".",
    ]
    return "\n".join(lines)


def _load() -> float | None:
    """The 1-minute load average (other processes compete for the same cores)."""
    getloadavg = getattr(os, "getloadavg", None)
    return round(getloadavg()[0], 2) if getloadavg is not None else None


def _targets(
    results: list[PatternResult], compile_figures: dict[str, Any], dispatch: dict[str, Any]
) -> dict[str, bool]:
    io = [r for r in results if r.kind == "io"]
    cpu_rows = [r for r in results if r.kind == "cpu"]
    return {
        "I/O ≥ 0.9 x ideal": all(r.of_ideal >= TARGET_OF_IDEAL for r in io),
        "I/O within 5% of threads": all(r.vs_threads <= TARGET_VS_THREADS for r in io),
        "CPU-bound ≤ 1.05 x eager": all(r.met for r in cpu_rows),
        "compile ≤ 5 ms": bool(compile_figures["met"]),
        "dispatch ≤ 2 µs": bool(dispatch["no region"]["met"]),
    }


# ---------------------------------------------------------------------------
# Main


def main(argv: Sequence[str] | None = None) -> int:
    global LATENCY_S
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
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    LATENCY_S = settings.latency_s
    date = utc_now()
    load_before = _load()
    cpu_us = calibrate_cpu()
    print(
        f"xcs pool: {get_pool().max_workers} threads; cpu item: {cpu_us:.1f} µs "
        f"({CPU_LOOPS} loops); {settings}",
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

    results = []
    with ThreadPoolExecutor(max_workers=POOL_SIZE) as pool:
        threads_started = warm_pools(pool)
        for pattern in all_patterns:
            print(f"  {pattern.name}...", file=sys.stderr)
            if pattern.kind == "cpu":
                result = bench_pattern(pattern, pool, settings.cpu_turns)
            else:
                result = bench_pattern(pattern, pool, settings.io_turns, settings.io_eager_every)
            results.append(result)
    gc.collect()
    compile_figures = bench_compile(settings.compile_repeats)
    dispatch = bench_dispatch(settings.dispatch_calls, settings.dispatch_runs)
    targets = _targets(results, compile_figures, dispatch)
    load = {"before": load_before, "after": _load()}

    body = render(settings, results, compile_figures, dispatch, cpu_us, targets, date, load)
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
                    "jit/threads, jit/eager: median of the per-turn ratios"
                ),
                "settle_s": SETTLE_S,
                "warmup_calls": 1,
                "threads_pool_size": POOL_SIZE,
                "xcs_pool_size": get_pool().max_workers,
                "cpu_item_us": cpu_us,
                "cpu_loops": CPU_LOOPS,
                "threads_started_before_measuring": threads_started,
                "load_average_1min": load,
            },
            "patterns": [r.to_json() for r in results],
            "compile": compile_figures,
            "dispatch": dispatch,
            "targets": {
                "of_ideal": TARGET_OF_IDEAL,
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


if __name__ == "__main__":
    sys.exit(main())
