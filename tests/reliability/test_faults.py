"""Faults: jitted pipelines over a faulty ``sim:`` give the plain run's value or first error.

Each seed is one run of one pipeline (ensemble, map, nested, diamond, and async def
versions of ensemble and diamond) against the
simulator with 30% HTTP 500s, 429s with a Retry-After, hangs until the timeout and a
slow tail (``_faults.FAULTS``), first as written, then under ``xcs.jit``, under the
same seeded faults: the same value (and the same number of attempts), or the same
exception (type and args). ``bench/soak.py`` runs 1,000 seeds; CI runs 30 per pipeline.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from tests.reliability._faults import (
    FAULTS,
    PIPELINES,
    compare_seed,
    configure_for_faults,
    non_pool_threads,
    pool_threads,
)

from xcs._config import DEFAULT_MAX_WORKERS
from xcs.models import FakeClock, Message, Request, use_clock
from xcs.models._base import EndpointConfig
from xcs.models._sim import SimProvider

SEEDS_PER_PIPELINE = 30


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_jit_meets_the_same_faults_as_the_plain_run(name: str) -> None:
    configure_for_faults()
    baseline = non_pool_threads()
    outcomes: Counter[str] = Counter()
    problems: list[str] = []
    by_breaker = opened = 0
    for seed in range(SEEDS_PER_PIPELINE):
        result = compare_seed(PIPELINES[name], seed)
        outcomes["ok" if result.plain.error is None else type(result.plain.error).__name__] += 1
        problems += [f"{name} seed {seed}: {p}" for p in result.problems]
        by_breaker += result.breaker is not None
        opened += result.plain.breaker_opened or result.jitted.breaker_opened
    # Every difference is one the default breaker explains (docs/reliability.md).
    assert problems == []
    assert by_breaker <= opened
    # The seeds exercise both outcomes: successes after retries, and failures.
    assert outcomes["ok"] > 0
    assert sum(outcomes.values()) - outcomes["ok"] > 0
    # No thread outlives the runs, except the shared pool's idle workers (bounded).
    assert non_pool_threads() <= baseline
    assert len(pool_threads()) <= DEFAULT_MAX_WORKERS


# -- the simulator's faults depend on the request, the seed and the attempt only ------------


def _requests(count: int) -> list[Request]:
    return [
        Request(
            model="chat",
            messages=(Message(role="user", content=f"request {i}"),),
            temperature=0.5,
            sample=i % 3,
            timeout=0.04,
            attempt=attempt,
        )
        for i in range(count)
        for attempt in range(4)
    ]


def _outcome(provider: SimProvider, request: Request) -> tuple[str, object]:
    try:
        return "ok", str(provider.complete(request).text)
    except Exception as exc:
        return type(exc).__name__, exc.args


def test_sim_faults_do_not_depend_on_order_or_threads() -> None:
    options = tuple(pair.split("=") for pair in f"{FAULTS}&seed=11".split("&"))
    config = EndpointConfig("sim", options=tuple((k, v) for k, v in options))
    requests = _requests(40)
    with use_clock(FakeClock()):  # the hangs and latencies cost no time
        in_order = {r: _outcome(SimProvider(config), r) for r in requests}

        shuffled = requests[:]
        random.Random(3).shuffle(shuffled)
        provider = SimProvider(config)  # one instance, used in another order
        in_other_order = {r: _outcome(provider, r) for r in shuffled}

        from_threads: dict[Request, tuple[str, object]] = {}
        barrier = threading.Barrier(8, timeout=30)
        lock = threading.Lock()

        def worker(part: list[Request]) -> None:
            barrier.wait()
            for r in part:
                got = _outcome(provider, r)
                with lock:
                    from_threads[r] = got

        threads = [threading.Thread(target=worker, args=(shuffled[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert in_other_order == in_order
    assert from_threads == in_order
    kinds = Counter(kind for kind, _ in in_order.values())
    # Every kind of fault is drawn at these rates (160 attempts).
    assert {"ok", "ProviderError", "RateLimitError", "ProviderTimeoutError"} <= set(kinds)
