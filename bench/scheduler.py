"""Scheduler benchmark: xcs's ordered map against threads, asyncio, Dask and Ray, in one run.

Two questions, each answered side by side in one process, as ratios:

1. **Per-task overhead.** N trivial calls (``fn = lambda x: x``) as one batch; the
   figure is ``(wall of the batch - wall of a plain for-loop making the same calls) / N``
   in µs. Dask and Ray get a smaller N (they cost ~1 ms a task; the figure is per
   task, so N only changes how long the run takes).
2. **Overlap of blocking calls.** 64 calls of ``time.sleep(0.05)`` (``asyncio.sleep``
   for asyncio); the figure is ``wall / 0.05 s``, 1.00 being all 64 fully overlapped.

Every approach runs one warm-up batch first, not counted (thread and worker start-up
is a one-time cost; for Ray it is seconds), then ``repeats`` measured batches; the
in-process approaches take turns batch by batch so that load on the machine hits all
of them alike. Tables show the median, the best and the worst batch.

Run::

    python bench/scheduler.py            # full run: writes bench/results/scheduler.json
                                         # and the scheduler section of docs/benchmarks.md
    python bench/scheduler.py --quick    # smoke run: small N, 2 repeats, writes nothing
    python bench/scheduler.py --skip ray --skip dask

Dask and Ray come from the ``bench`` extra (``pip install -e '.[bench]'``); each is
imported only when its rows run, and a missing one skips its rows with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from _report import machine_info, markdown_table, update_docs_section, utc_now, write_results
from xcs._runtime._pool import get_pool
from xcs._runtime._scheduler import ordered_map

NAME = "scheduler"

SLEEP_SECONDS = 0.05
SLEEP_TASKS = 64
# Every thread pool here gets the bound of xcs's default pool, so that all of them
# could overlap the 64 sleeps.
POOL_SIZE = 64
# Ray: the cluster gets the machine's 2 cores; a task asking for 0.01 CPU lets 64
# sleeping tasks run at once instead of 2.
RAY_NUM_CPUS = 2
RAY_TASK_CPUS = 0.01

TARGET_OVERHEAD_US = 25.0
TARGET_SLEEP_RATIO = 1.10

BENCH_EXTRA = "install the benchmark dependencies with: pip install -e '.[bench]'"

LOOP = "plain for-loop"
XCS = "xcs ordered_map"
THREADS = f"ThreadPoolExecutor({POOL_SIZE}): submit all, results in order"
ASYNCIO = "asyncio.gather"
DASK = f"Dask distributed, Client(processes=False), {POOL_SIZE} threads"
RAY = f"Ray task, num_cpus={RAY_TASK_CPUS}"
RAY_DEFAULT = "Ray task, num_cpus=1 (default)"
RAY_ACTOR = f"Ray threaded actor, max_concurrency={POOL_SIZE}"


@dataclass(frozen=True)
class Settings:
    n_tasks: int  # trivial tasks per batch: xcs, threads, asyncio
    n_tasks_slow: int  # trivial tasks per batch: Dask, Ray
    repeats: int  # measured batches per approach, after one warm-up batch
    quick: bool


FULL = Settings(n_tasks=20_000, n_tasks_slow=2_000, repeats=5, quick=False)
QUICK = Settings(n_tasks=2_000, n_tasks_slow=200, repeats=2, quick=True)


@dataclass(frozen=True)
class Row:
    """One approach's result for one question."""

    approach: str
    tasks: int  # tasks per batch
    warmup_s: float  # wall of the warm-up batch, not counted
    samples_s: tuple[float, ...]  # wall of each measured batch
    figures: tuple[float, ...]  # per batch: µs per task, or wall / ideal
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.figures)

    @property
    def best(self) -> float:
        return min(self.figures)

    @property
    def worst(self) -> float:
        return max(self.figures)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "median": self.median, "best": self.best, "worst": self.worst}


# ---------------------------------------------------------------------------
# The work: module-level so that Ray can ship it to its workers


def _identity(x: int) -> int:
    return x


def _sleep(_: int) -> None:
    time.sleep(SLEEP_SECONDS)


class _Worker:
    """Ray: one actor process whose threads run the calls (made an actor in
    ``bench_ray``). This is how XCS will run blocking calls on Ray: fractional-CPU
    tasks make Ray start worker processes again and again; an actor's threads stay."""

    def identity(self, x: int) -> int:
        return x

    def sleep(self, x: int) -> None:
        _sleep(x)


async def _aidentity(x: int) -> int:
    return x


async def _gather_identity(items: Sequence[int]) -> list[int]:
    return list(await asyncio.gather(*(_aidentity(x) for x in items)))


async def _gather_sleeps(n: int) -> None:
    await asyncio.gather(*(asyncio.sleep(SLEEP_SECONDS) for _ in range(n)))


def _plain_loop(items: Sequence[int]) -> list[int]:
    out = []
    for x in items:
        out.append(_identity(x))
    return out


def _executor_map(
    executor: ThreadPoolExecutor, fn: Callable[[int], Any], items: Iterable[int]
) -> list[Any]:
    futures = [executor.submit(fn, x) for x in items]
    return [f.result() for f in futures]


# ---------------------------------------------------------------------------
# Measuring

Batch = Callable[[], object]


def _time(batch: Batch) -> tuple[float, object]:
    start = time.perf_counter()
    result = batch()
    return time.perf_counter() - start, result


def measure(
    batches: dict[str, Batch], repeats: int, *, expected: object = None
) -> dict[str, tuple[float, list[float]]]:
    """Run each batch once to warm up, then ``repeats`` times, taking turns.

    Returns, per label, the warm-up wall and the measured walls. When ``expected`` is
    given, each warm-up result must equal it: a benchmark of a broken map is no
    benchmark.
    """
    warmup: dict[str, float] = {}
    for label, batch in batches.items():
        warmup[label], result = _time(batch)
        if expected is not None and result != expected:
            raise AssertionError(f"{label}: wrong result for the batch")
    samples: dict[str, list[float]] = {label: [] for label in batches}
    for _ in range(repeats):
        for label, batch in batches.items():
            samples[label].append(_time(batch)[0])
    return {label: (warmup[label], samples[label]) for label in batches}


def overhead_rows(
    timings: dict[str, tuple[float, list[float]]], tasks: int, notes: dict[str, str] | None = None
) -> list[Row]:
    """µs per task of each approach, over the median wall of the plain loop."""
    baseline = statistics.median(timings[LOOP][1])
    notes = notes or {}
    return [
        Row(
            approach=label,
            tasks=tasks,
            warmup_s=warmup,
            samples_s=tuple(samples),
            figures=tuple((s - baseline) / tasks * 1e6 for s in samples),
            note=notes.get(label, ""),
        )
        for label, (warmup, samples) in timings.items()
        if label != LOOP
    ]


def sleep_rows(
    timings: dict[str, tuple[float, list[float]]], notes: dict[str, str] | None = None
) -> list[Row]:
    """Wall over the ideal (one sleep, all overlapped) of each approach."""
    notes = notes or {}
    return [
        Row(
            approach=label,
            tasks=SLEEP_TASKS,
            warmup_s=warmup,
            samples_s=tuple(samples),
            figures=tuple(s / SLEEP_SECONDS for s in samples),
            note=notes.get(label, ""),
        )
        for label, (warmup, samples) in timings.items()
    ]


class Skipped(Exception):
    """Raised by a phase whose dependency is not installed; the message says how to fix it."""


# ---------------------------------------------------------------------------
# The phases


def bench_in_process(settings: Settings) -> tuple[list[Row], list[Row], float]:
    """xcs, a ThreadPoolExecutor and asyncio, batch by batch in turn.

    Returns the overhead rows, the sleep rows, and the plain loop's µs per call.
    """
    items = list(range(settings.n_tasks))
    with ThreadPoolExecutor(max_workers=POOL_SIZE) as executor, asyncio.Runner() as runner:
        overhead = measure(
            {
                LOOP: lambda: _plain_loop(items),
                XCS: lambda: ordered_map(_identity, items),
                THREADS: lambda: _executor_map(executor, _identity, items),
                ASYNCIO: lambda: runner.run(_gather_identity(items)),
            },
            settings.repeats,
            expected=items,
        )
        sleeps = measure(
            {
                XCS: lambda: ordered_map(_sleep, range(SLEEP_TASKS)),
                THREADS: lambda: _executor_map(executor, _sleep, range(SLEEP_TASKS)),
                ASYNCIO: lambda: runner.run(_gather_sleeps(SLEEP_TASKS)),
            },
            settings.repeats,
        )
    loop_us = statistics.median(overhead[LOOP][1]) / settings.n_tasks * 1e6
    notes = {ASYNCIO: "sleeps with asyncio.sleep"}
    return overhead_rows(overhead, settings.n_tasks), sleep_rows(sleeps, notes), loop_us


def bench_dask(settings: Settings) -> tuple[list[Row], list[Row]]:
    """Dask's distributed scheduler in this process: ``client.map`` then ``client.gather``.

    Why this and not ``dask.delayed`` on the threaded scheduler: the Dask docs
    recommend the distributed scheduler even on one machine, and its futures API
    (submit, map, gather) is the one built for many small independent calls, the
    counterpart of an executor. ``pure=False``: the keys must be unique, or a batch
    repeated while the last one's results are still held would be served from them.
    """
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise Skipped(f"Dask rows skipped: {exc}; {BENCH_EXTRA}") from None

    items = list(range(settings.n_tasks_slow))
    with Client(
        processes=False,
        n_workers=1,
        threads_per_worker=POOL_SIZE,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as client:

        def run(fn: Callable[[int], Any], args: Iterable[int]) -> list[Any]:
            return client.gather(client.map(fn, args, pure=False))  # type: ignore[no-any-return]

        overhead = measure(
            {LOOP: lambda: _plain_loop(items), DASK: lambda: run(_identity, items)},
            settings.repeats,
            expected=items,
        )
        sleeps = measure({DASK: lambda: run(_sleep, range(SLEEP_TASKS))}, settings.repeats)
    return overhead_rows(overhead, settings.n_tasks_slow), sleep_rows(sleeps)


def bench_ray(settings: Settings) -> tuple[list[Row], list[Row]]:
    """Ray tasks and a threaded actor on a fresh local cluster of 2 CPUs, shut down at the end.

    Order matters: the default tasks first (Ray then runs 2 workers); the threaded
    actor (one more process, created once; its warm-up batch is not counted); the
    sleeps (0.01 CPU: Ray starts up to 64 worker processes); the 0.01-CPU trivial
    tasks last, since they too make Ray start workers while the batch runs.
    """
    try:
        import ray
    except ImportError as exc:
        raise Skipped(f"Ray rows skipped: {exc}; {BENCH_EXTRA}") from None

    items = list(range(settings.n_tasks_slow))
    ray.init(
        address="local",
        num_cpus=RAY_NUM_CPUS,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    try:
        identity_default = ray.remote(_identity)
        identity_fraction = ray.remote(num_cpus=RAY_TASK_CPUS)(_identity)
        sleep_fraction = ray.remote(num_cpus=RAY_TASK_CPUS)(_sleep)

        def run(remote: Any, args: Iterable[int]) -> list[Any]:
            return ray.get([remote.remote(x) for x in args])  # type: ignore[no-any-return]

        default = measure(
            {LOOP: lambda: _plain_loop(items), RAY_DEFAULT: lambda: run(identity_default, items)},
            settings.repeats,
            expected=items,
        )
        worker = ray.remote(max_concurrency=POOL_SIZE)(_Worker).remote()
        ray.get(worker.identity.remote(0))  # wait for the actor's process to start
        actor = measure(
            {LOOP: lambda: _plain_loop(items), RAY_ACTOR: lambda: run(worker.identity, items)},
            settings.repeats,
            expected=items,
        )
        actor_sleeps = measure(
            {RAY_ACTOR: lambda: run(worker.sleep, range(SLEEP_TASKS))}, settings.repeats
        )
        sleeps = measure({RAY: lambda: run(sleep_fraction, range(SLEEP_TASKS))}, settings.repeats)
        fraction = measure(
            {LOOP: lambda: _plain_loop(items), RAY: lambda: run(identity_fraction, items)},
            settings.repeats,
            expected=items,
        )
    finally:
        ray.shutdown()
    notes = {RAY: "Ray starts worker processes while the batch runs"}
    overhead = (
        overhead_rows(default, settings.n_tasks_slow)
        + overhead_rows(actor, settings.n_tasks_slow)
        + overhead_rows(fraction, settings.n_tasks_slow, notes)
    )
    return overhead, sleep_rows(actor_sleeps) + sleep_rows(sleeps)


# ---------------------------------------------------------------------------
# Reporting


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("dask", "distributed", "ray"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _targets(overhead: list[Row], sleeps: list[Row]) -> dict[str, Any]:
    xcs_overhead = next(r for r in overhead if r.approach == XCS).median
    xcs_sleep = next(r for r in sleeps if r.approach == XCS).median
    return {
        "overhead_us": {
            "target": TARGET_OVERHEAD_US,
            "xcs_median": xcs_overhead,
            "met": xcs_overhead <= TARGET_OVERHEAD_US,
        },
        "sleep_ratio": {
            "target": TARGET_SLEEP_RATIO,
            "xcs_median": xcs_sleep,
            "met": xcs_sleep <= TARGET_SLEEP_RATIO,
        },
    }


def _label(row: Row) -> str:
    return f"{row.approach} ({row.note})" if row.note else row.approach


def render(
    settings: Settings,
    overhead: list[Row],
    sleeps: list[Row],
    loop_us: float,
    targets: dict[str, Any],
    skipped: dict[str, str],
    date: str,
) -> str:
    """The Markdown of the docs section: two tables, the targets, what was skipped."""
    machine = machine_info()
    xcs_us = targets["overhead_us"]["xcs_median"]
    overhead_table = markdown_table(
        ["approach", "tasks per batch", "µs per task (median)", "best", "worst", "vs xcs"],
        [
            [
                _label(r),
                f"{r.tasks:,}",
                f"{r.median:.1f}",
                f"{r.best:.1f}",
                f"{r.worst:.1f}",
                f"{r.median / xcs_us:.1f}",
            ]
            for r in overhead
        ],
    )
    sleep_table = markdown_table(
        ["approach", "wall / ideal (median)", "best", "worst", "warm-up batch / ideal"],
        [
            [
                _label(r),
                f"{r.median:.2f}",
                f"{r.best:.2f}",
                f"{r.worst:.2f}",
                f"{r.warmup_s / SLEEP_SECONDS:.2f}",
            ]
            for r in sleeps
        ],
    )

    def verdict(key: str, unit: str) -> str:
        t = targets[key]
        met = "met" if t["met"] else "**missed**"
        return f"{met} ({t['xcs_median']:.2f}{unit}, target ≤ {t['target']}{unit})"

    lines = [
        f"Measured {date} on {machine['platform']}, {machine['usable_cpus']} CPUs, "
        f"Python {machine['python']}"
        + (" (**quick run**: small batches, few repeats)" if settings.quick else "")
        + ". Each figure is over "
        f"{settings.repeats} measured batches after one warm-up batch that is not counted.",
        "",
        f"**Per-task overhead**: (wall of the batch - wall of a plain for-loop making the "
        f"same calls) / tasks. The plain loop takes {loop_us:.2f} µs per call.",
        "",
        overhead_table,
        "",
        f"**{SLEEP_TASKS} x `time.sleep({SLEEP_SECONDS})`**: wall / {SLEEP_SECONDS} s "
        f"(the ideal: all {SLEEP_TASKS} overlapped). The warm-up column includes "
        "starting threads or worker processes.",
        "",
        sleep_table,
        "",
        f"Targets for xcs: overhead {verdict('overhead_us', ' µs')}; "
        f"sleeps {verdict('sleep_ratio', 'x')}.",
    ]
    for reason in skipped.values():
        lines += ["", f"_{reason}_"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small batches and 2 repeats; prints the tables, writes no results",
    )
    parser.add_argument(
        "--skip",
        action="append",
        choices=["dask", "ray"],
        default=[],
        help="leave out an approach (repeatable)",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    date = utc_now()

    print(f"xcs pool: {get_pool().max_workers} threads; {settings}", file=sys.stderr)
    overhead, sleeps, loop_us = bench_in_process(settings)
    skipped: dict[str, str] = {}
    phases = {"dask": bench_dask, "ray": bench_ray}
    for name, phase in phases.items():
        if name in args.skip:
            skipped[name] = f"{name.capitalize()} rows skipped: --skip {name}."
            continue
        print(f"running the {name} rows...", file=sys.stderr)
        try:
            more_overhead, more_sleeps = phase(settings)
        except Skipped as exc:
            print(exc, file=sys.stderr)
            skipped[name] = str(exc)
            continue
        overhead += more_overhead
        sleeps += more_sleeps

    targets = _targets(overhead, sleeps)
    body = render(settings, overhead, sleeps, loop_us, targets, skipped, date)
    print(body)
    if settings.quick:
        print("\n(quick run: results and docs not written)", file=sys.stderr)
        return 0
    path = write_results(
        NAME,
        {
            "settings": {
                **asdict(settings),
                "statistic": "median over the measured batches (best and worst kept too)",
                "warmup_batches": 1,
                "pool_size": POOL_SIZE,
                "xcs_pool_size": get_pool().max_workers,
                "sleep_tasks": SLEEP_TASKS,
                "sleep_seconds": SLEEP_SECONDS,
                "ray_num_cpus": RAY_NUM_CPUS,
                "ray_task_cpus": RAY_TASK_CPUS,
            },
            "versions": _versions(),
            "loop_us_per_call": loop_us,
            "overhead_us_per_task": [r.to_json() for r in overhead],
            "sleep_wall_over_ideal": [r.to_json() for r in sleeps],
            "targets": targets,
            "skipped": skipped,
        },
    )
    doc = update_docs_section(NAME, body, title="Scheduler")
    print(f"\nwrote {path} and {doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
