"""Shared fixtures: private pools that are closed and joined after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from xcs._compiler import _jit
from xcs._runtime._pool import WorkerPool

# CI runs every example budget in full; locally `HYPOTHESIS_PROFILE=dev` is quicker.
settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _no_compile_ahead_left_over() -> Iterator[None]:
    """Functions a test's jitted code queued to compile ahead (NOTE: [Compiled ahead]
    in xcs._compiler._jit) are compiled before the test ends, not in the next test,
    whose compile counters and monkeypatches they would otherwise touch."""
    yield
    assert _jit._ahead.drain(timeout=30), "compiling ahead did not finish"


@pytest.fixture
def make_pool() -> Iterator[Callable[[int], WorkerPool]]:
    """Factory of private pools; every pool is closed and its threads joined after."""
    pools: list[WorkerPool] = []

    def make(max_workers: int) -> WorkerPool:
        pool = WorkerPool(max_workers, name=f"xcs-test-{len(pools)}")
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()
        assert pool.join(timeout=30), "a test pool's threads did not stop"
