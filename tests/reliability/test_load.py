"""Load: 64 threads calling jitted functions and model bindings at once (bounded in CI).

``bench/soak.py`` runs the same load with 10,000 calls and writes its figures to
``docs/reliability.md``.
"""

from __future__ import annotations

import textwrap

import pytest
from tests.reliability._load import CACHE_SIZE, OPERATOR_CACHE_SIZE, run_load

import xcs
from xcs._compiler._jit import _MAX_REASONS
from xcs._compiler._jit import statistics as compile_statistics

THREADS = 64
CALLS = 1_920  # 30 per thread


def test_many_threads_no_deadlock_bounded_threads_memory_and_caches() -> None:
    report = run_load(THREADS, CALLS)
    assert report.unfinished == 0  # every thread finished: no deadlock
    assert report.errors == []
    assert report.wrong == []  # every answer is the sequential one
    # Threads: the callers, the monitor and at most the shared pool's bound.
    assert report.max_pool_threads <= report.pool_bound
    assert report.max_threads <= report.baseline_threads + THREADS + 1 + report.pool_bound
    # Memory still held after the run (caches included) stays small: nothing per call.
    assert report.memory_after < 4_000_000, report.memory_after
    # Every cache held its bound, and was full (so the bound was really tested).
    assert report.cache_entries == CACHE_SIZE
    assert report.operator_cache_entries == OPERATOR_CACHE_SIZE
    assert report.site_profile_entries <= report.site_profile_bound


def test_the_list_of_fallback_reasons_is_bounded() -> None:
    # 150 distinct generator functions fall back; only the latest _MAX_REASONS stay.
    namespace: dict[str, object] = {}
    for i in range(150):
        source = textwrap.dedent(
            f"""
            def gen_{i}(n):
                yield from range(n)
            """
        )
        exec(compile(source, f"<reliability-gen-{i}>", "exec"), namespace)
        with pytest.warns(xcs.JitWarning):
            assert list(xcs.jit(namespace[f"gen_{i}"])(2)) == [0, 1]  # type: ignore[arg-type]
    assert len(compile_statistics.reasons) <= _MAX_REASONS
    assert "gen_149" in compile_statistics.reasons
