"""Scale benchmark: a batch of simulated model calls through vmap, pmap on Ray, pmap on
Dask and a hand-written thread pool, in one run; and the memory of a 1,000,000-item stream.

Two questions:

1. **Throughput of blocking calls.** N calls to ``sim:chat?latency=0.02`` (the
   model SIMULATOR: each call sleeps 20 ms, then answers) at the same configured
   concurrency C for every approach: 64 calls in flight. The ideal is
   ``N * 0.02 / C`` seconds, i.e. ``C / 0.02`` calls per second; the figure is the
   throughput reached and its ratio to that ideal. Approaches:

   - ``xcs.vmap(ask, max_workers=64)``: the shared pool;
   - ``concurrent.futures.ThreadPoolExecutor(64)``: submit all, results in order;
   - ``xcs.pmap(ask, backend="ray")`` on a local cluster of 2 CPUs: 4 shards in
     flight (0.5 CPU each), 16 calls at once in each;
   - ``xcs.pmap(ask, backend=client.get_executor())`` on Dask
     ``Client(processes=False)``: 4 shards in flight, 16 calls at once in each.

   Each approach runs a warm-up batch of 500 calls (thread, worker and cluster
   start-up are one-time costs), then ``repeats`` measured batches, taking turns.

2. **Memory of a lazy stream.** ``vmap`` over a generator of 1,000,000 items
   (results consumed as they come) against collecting the results of the same
   generator in a list, as Python allocations traced by ``tracemalloc`` (peak).

Run::

    python bench/scale.py            # full run: bench/results/scale.json + docs/benchmarks.md
    python bench/scale.py --quick    # smoke run: small N, writes nothing
    python bench/scale.py --skip ray --skip dask
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import xcs
from _report import machine_info, markdown_table, update_docs_section, utc_now, write_results

NAME = "scale"
MODEL = "sim:chat?latency=0.02"
LATENCY = 0.02
CONCURRENCY = 64
SHARDS = 4  # Ray and Dask: shards in flight
PER_SHARD = CONCURRENCY // SHARDS  # calls at once inside each shard
RAY_CPUS = 2
WARMUP = 500

VMAP = f"xcs.vmap, max_workers={CONCURRENCY}"
THREADS = f"ThreadPoolExecutor({CONCURRENCY}), hand-written"
RAY = f"xcs.pmap on Ray ({RAY_CPUS} CPUs), {SHARDS} shards x {PER_SHARD}"
DASK = f"xcs.pmap on Dask Client(processes=False), {SHARDS} shards x {PER_SHARD}"


@dataclass(frozen=True)
class Settings:
    calls: int
    repeats: int
    stream_items: int
    quick: bool


FULL = Settings(calls=10_000, repeats=2, stream_items=1_000_000, quick=False)
QUICK = Settings(calls=1_000, repeats=1, stream_items=50_000, quick=True)


def ask(i: int) -> str:
    """One simulated model call (module level: Ray and Dask ship it by reference)."""
    return str(xcs.models(MODEL, f"question {i}", temperature=0))


# ---------------------------------------------------------------------------
# Throughput

Batch = Callable[[list[int]], list[str]]


@dataclass
class Row:
    approach: str
    calls: int
    warmup_s: float
    samples_s: list[float]

    @property
    def wall(self) -> float:
        return statistics.median(self.samples_s)

    @property
    def throughput(self) -> float:
        return self.calls / self.wall

    @property
    def ideal(self) -> float:
        return CONCURRENCY / LATENCY

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "median_wall_s": self.wall,
            "calls_per_s": self.throughput,
            "ideal_calls_per_s": self.ideal,
            "fraction_of_ideal": self.throughput / self.ideal,
        }


def _threads_batch(pool: ThreadPoolExecutor) -> Batch:
    def run(items: list[int]) -> list[str]:
        futures = [pool.submit(ask, i) for i in items]
        return [f.result() for f in futures]

    return run


def throughput(settings: Settings, skip: set[str]) -> tuple[list[Row], dict[str, str]]:
    batches: dict[str, Batch] = {VMAP: xcs.vmap(ask, max_workers=CONCURRENCY)}
    cleanups: list[Callable[[], None]] = []
    skipped: dict[str, str] = {}
    pool = ThreadPoolExecutor(CONCURRENCY)
    cleanups.append(lambda: pool.shutdown(wait=True))
    batches[THREADS] = _threads_batch(pool)
    if "ray" in skip:
        skipped["ray"] = "--skip ray"
    else:
        try:
            import ray
        except ImportError:
            skipped["ray"] = "Ray is not installed (pip install -e '.[bench]')"
        else:
            logging.getLogger("ray").setLevel(logging.WARNING)
            ray.init(num_cpus=RAY_CPUS, include_dashboard=False, log_to_driver=False)
            cleanups.append(ray.shutdown)
            batches[RAY] = xcs.pmap(
                ask, backend="ray", max_shards=SHARDS, max_workers=PER_SHARD, num_cpus=0.5
            )
    if "dask" in skip:
        skipped["dask"] = "--skip dask"
    else:
        try:
            import distributed
        except ImportError:
            skipped["dask"] = "Dask is not installed (pip install -e '.[bench]')"
        else:
            logging.getLogger("distributed").setLevel(logging.WARNING)
            client = distributed.Client(
                processes=False, n_workers=1, threads_per_worker=SHARDS, dashboard_address=None
            )
            cleanups.append(client.close)
            batches[DASK] = xcs.pmap(
                ask,
                backend=client.get_executor(),
                max_shards=SHARDS,
                max_workers=PER_SHARD,
            )
    try:
        expected = [ask(i) for i in range(50)]
        warm: dict[str, float] = {}
        for label, batch in batches.items():
            print(f"warm-up: {label}", file=sys.stderr)
            start = time.perf_counter()
            result = batch(list(range(WARMUP)))
            warm[label] = time.perf_counter() - start
            if result[:50] != expected:
                raise AssertionError(f"{label}: wrong results")
        samples: dict[str, list[float]] = {label: [] for label in batches}
        items = list(range(settings.calls))
        for turn in range(settings.repeats):
            for label, batch in batches.items():
                print(f"batch {turn + 1}/{settings.repeats}: {label}", file=sys.stderr)
                start = time.perf_counter()
                result = batch(items)
                samples[label].append(time.perf_counter() - start)
                assert len(result) == settings.calls
    finally:
        for cleanup in reversed(cleanups):
            cleanup()
    rows = [Row(label, settings.calls, warm[label], samples[label]) for label in batches]
    return rows, skipped


# ---------------------------------------------------------------------------
# Memory of a lazy stream


def _items(n: int) -> Iterator[int]:
    yield from range(n)


def _peak(run: Callable[[], object]) -> tuple[int, float]:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        run()
        return tracemalloc.get_traced_memory()[1], time.perf_counter() - start
    finally:
        tracemalloc.stop()


def stream_memory(settings: Settings) -> dict[str, Any]:
    n = settings.stream_items

    def streamed() -> None:
        count = 0
        for _ in xcs.vmap(str, max_workers=CONCURRENCY)(_items(n)):
            count += 1
        assert count == n

    def collected() -> None:
        results = list(xcs.vmap(str, max_workers=CONCURRENCY)(_items(n)))
        assert len(results) == n

    stream_peak, stream_s = _peak(streamed)
    list_peak, list_s = _peak(collected)
    return {
        "items": n,
        "function": "str (each result a new string)",
        "streamed_peak_bytes": stream_peak,
        "streamed_s": stream_s,
        "collected_in_a_list_peak_bytes": list_peak,
        "collected_s": list_s,
    }


# ---------------------------------------------------------------------------
# Report


def render(
    settings: Settings, rows: list[Row], skipped: dict[str, str], memory: dict[str, Any], date: str
) -> str:
    ideal = CONCURRENCY / LATENCY
    table = markdown_table(
        ["approach", "median wall (s)", "calls/s", "of ideal", "warm-up (s)", "walls (s)"],
        [
            (
                r.approach,
                f"{r.wall:.2f}",
                f"{r.throughput:,.0f}",
                f"{r.throughput / ideal:.0%}",
                f"{r.warmup_s:.2f}",
                ", ".join(f"{s:.2f}" for s in r.samples_s),
            )
            for r in rows
        ],
    )
    mib = 1024 * 1024
    mem = markdown_table(
        [
            "1,000,000-item generator"
            if memory["items"] == 1_000_000
            else f"{memory['items']:,} items",
            "peak traced memory",
            "time (s)",
        ],
        [
            (
                "vmap, results consumed as they come",
                f"{memory['streamed_peak_bytes'] / mib:.2f} MiB",
                f"{memory['streamed_s']:.1f}",
            ),
            (
                "the same results collected in a list",
                f"{memory['collected_in_a_list_peak_bytes'] / mib:.1f} MiB",
                f"{memory['collected_s']:.1f}",
            ),
        ],
    )
    notes = "".join(f"\n- {k.capitalize()} rows skipped: {v}." for k, v in skipped.items())
    m = machine_info()
    return (
        f"Run {date} on {m['usable_cpus']} usable CPUs, Python {m['python']}. "
        f"{settings.calls:,} calls of `{MODEL}` (the simulator: 20 ms each) at "
        f"{CONCURRENCY} in flight for every approach, so the ideal is "
        f"{ideal:,.0f} calls/s ({settings.calls * LATENCY / CONCURRENCY:.2f} s). "
        f"Median of {settings.repeats} measured batches after a warm-up batch of {WARMUP}.\n\n"
        f"{table}\n{notes}\n\n"
        f"Memory of a lazy stream (`tracemalloc` peak, Python allocations):\n\n{mem}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small run; writes nothing")
    parser.add_argument("--skip", action="append", choices=["dask", "ray"], default=[])
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    date = utc_now()
    rows, skipped = throughput(settings, set(args.skip))
    print("measuring the stream's memory...", file=sys.stderr)
    memory = stream_memory(settings)
    body = render(settings, rows, skipped, memory, date)
    print(body)
    if settings.quick:
        print("(quick run: results and docs not written)", file=sys.stderr)
        return 0
    path = write_results(
        NAME,
        {
            "settings": {
                **asdict(settings),
                "model": MODEL,
                "latency_s": LATENCY,
                "concurrency": CONCURRENCY,
                "shards_in_flight": SHARDS,
                "calls_per_shard_at_once": PER_SHARD,
                "ray_num_cpus": RAY_CPUS,
                "warmup_calls": WARMUP,
                "statistic": "median over the measured batches",
            },
            "throughput": [r.to_json() for r in rows],
            "skipped": skipped,
            "stream_memory": memory,
        },
    )
    update_docs_section(NAME, body, title="Scale: vmap, pmap on Ray and Dask")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
