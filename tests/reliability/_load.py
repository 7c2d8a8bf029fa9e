"""Load: many threads calling jitted functions and model bindings at once.

Shared by ``tests/reliability/test_load.py`` (a bounded run in CI) and
``bench/soak.py`` (64 threads, 10,000 calls). Each thread makes its share of calls,
alternating between a jitted fan-out of model calls, a plain binding call, a call of
a freshly made (and freshly jitted) closure, and a cached operator; every answer is
checked against what the sequential code gives (``sim:echo`` answers with the
prompt). The threads start together at a barrier; a monitor samples the live thread
count and the traced memory while they run.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
from dataclasses import dataclass, field
from typing import Any

import xcs
from xcs._runtime._measure import _profile
from xcs._runtime._pool import get_pool
from xcs.models import Cache, ModelBinding, bind, set_cache
from xcs.operators import Cached

__all__ = ["LoadReport", "run_load"]

#: The in-memory model cache of a load run: far fewer entries than distinct prompts.
CACHE_SIZE = 256
OPERATOR_CACHE_SIZE = 16


def fan(m: ModelBinding, i: int) -> list[str]:
    return [m(f"fan {i} {j}") for j in range(4)]


def fan_plain(i: int) -> list[str]:
    return [f"fan {i} {j}" for j in range(4)]


def make_closure(m: ModelBinding, i: int) -> Any:
    def closure(k: int) -> list[str]:
        return [m(f"closure {i} {k} {j}") for j in range(2)]

    return closure


@dataclass
class LoadReport:
    threads: int
    calls: int
    wrong: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    unfinished: int = 0
    max_threads: int = 0
    baseline_threads: int = 0
    pool_bound: int = 0
    max_pool_threads: int = 0
    memory_before: int = 0
    memory_after: int = 0
    memory_peak: int = 0
    cache_entries: int = 0
    cache_size: int = CACHE_SIZE
    operator_cache_entries: int = 0
    site_profile_entries: int = 0
    site_profile_bound: int = 0
    fallback_reasons: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def run_load(threads: int, calls: int, *, latency: float = 0.0005) -> LoadReport:
    """Run ``calls`` calls from ``threads`` threads; see the module docstring."""
    import time

    m = bind(f"sim:echo?latency={latency}")
    jitted_fan = xcs.jit(fan)
    upper = Cached(xcs.op(str.upper), maxsize=OPERATOR_CACHE_SIZE)
    cache = Cache(maxsize=CACHE_SIZE)
    set_cache(cache)
    report = LoadReport(threads, calls)
    report.baseline_threads = threading.active_count()
    report.pool_bound = get_pool().max_workers
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1, timeout=120)
    done = threading.Event()
    shares = [calls // threads + (1 if t < calls % threads else 0) for t in range(threads)]

    def one(t: int, n: int) -> None:
        i = t * 1_000_000 + n
        kind = n % 4
        if kind == 0:
            got: Any = jitted_fan(m, i)
            want: Any = fan_plain(i)
        elif kind == 1:
            got, want = m(f"single {i}"), f"single {i}"
        elif kind == 2:
            got = xcs.jit(make_closure(m, i))(n)
            want = [f"closure {i} {n} {j}" for j in range(2)]
        else:
            got, want = upper(f"word {i % 97}"), f"WORD {i % 97}"
        if got != want:
            with lock:
                report.wrong.append(f"thread {t} call {n}: {got!r} != {want!r}")

    def worker(t: int) -> None:
        barrier.wait()
        for n in range(shares[t]):
            try:
                one(t, n)
            except Exception as exc:
                with lock:
                    report.errors.append(exc)

    def monitor() -> None:
        while not done.wait(0.01):
            report.max_threads = max(report.max_threads, threading.active_count())
            pool = sum(1 for t in threading.enumerate() if t.name.startswith("xcs-worker"))
            report.max_pool_threads = max(report.max_pool_threads, pool)

    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    gc.collect()
    report.memory_before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    workers = [threading.Thread(target=worker, args=(t,), name=f"load-{t}") for t in range(threads)]
    watcher = threading.Thread(target=monitor, name="load-monitor")
    try:
        for w in workers:
            w.start()
        watcher.start()
        start = time.perf_counter()
        barrier.wait()
        for w in workers:
            w.join(timeout=600)
        report.seconds = time.perf_counter() - start
        report.unfinished = sum(w.is_alive() for w in workers)
    finally:
        done.set()
        watcher.join(timeout=30)
        set_cache(None)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    report.memory_after, report.memory_peak = current, peak
    if not tracing:
        tracemalloc.stop()
    report.cache_entries = cache.statistics().size
    report.operator_cache_entries = upper.statistics().size
    report.site_profile_entries = len(_profile)
    report.site_profile_bound = _profile._max_sites
    from xcs._compiler._jit import statistics as compile_statistics

    report.fallback_reasons = len(compile_statistics.reasons)
    return report
