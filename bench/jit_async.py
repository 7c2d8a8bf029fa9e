"""``@xcs.jit`` on ``async def``: an eager await loop vs the same function jitted vs a
hand-written ``asyncio.gather``, in one run.

The pattern is written once, as the plain coroutine a user would write::

    async def fan_out(n):
        return [await call(i) for i in range(n)]

The *eager* row awaits it as is (the calls run one after another); the *jit* row awaits
``xcs.jit(fan_out)``; the *gather* row awaits ``asyncio.gather(*(call(i) for i in
range(n)))``, the code a careful user writes without XCS. ``call`` is a simulated
model call, ``await asyncio.sleep(LATENCY)``: it waits and computes nothing.

jit and gather take turns (the order rotated each turn) in the same event loop; the
eager wall is a sum of sleeps and barely varies, so it runs a few times only. Walls
are medians over the turns; ``jit / gather`` is the median of the per-turn ratios (two
walls of one turn were measured on about the same machine, so load that comes and goes
cancels out). The jit's first call (compile, then its first, measured execution) is
reported on its own and not counted.

A second pattern measures awaits that never suspend (a cache hit: ``async def
cached(i): return i``): there a task per item is pure overhead, and a jitted region
goes in order after its first execution (NOTE: [Deciding async regions] in
``xcs/_compiler/_async_rt.py``). It reports the per-item cost of each approach.

Run::

    python bench/jit_async.py            # full run: writes bench/results/jit_async.json
                                         # and the jit_async section of docs/benchmarks.md
    python bench/jit_async.py --quick    # smoke run (fewer turns), writes nothing
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import xcs
from _report import (
    markdown_table,
    update_docs_section,
    utc_now,
    write_results,
)

NAME = "jit_async"
LATENCY = 0.050
CALLS = 64
TARGET = 1.05  # jitted within 5% of gather


async def call(i: int) -> int:
    await asyncio.sleep(LATENCY)
    return i


async def fan_out(n: int) -> list[int]:
    return [await call(i) for i in range(n)]


async def gather(n: int) -> list[int]:
    return list(await asyncio.gather(*(call(i) for i in range(n))))


async def cached(i: int) -> int:
    return i


async def quick(n: int) -> list[int]:
    return [await cached(i) for i in range(n)]


async def quick_gather(n: int) -> list[int]:
    return list(await asyncio.gather(*(cached(i) for i in range(n))))


async def _time(fn: Callable[[int], Awaitable[list[int]]], n: int) -> float:
    start = time.perf_counter()
    result = await fn(n)
    wall = time.perf_counter() - start
    assert result == list(range(n)), "a benchmark returned a wrong result"
    return wall


async def bench_fan_out(turns: int, eager_runs: int) -> dict[str, Any]:
    jitted = xcs.jit(fan_out)
    first = await _time(jitted, CALLS)
    await _time(gather, CALLS)  # warm-up, not counted
    jit_walls: list[float] = []
    gather_walls: list[float] = []
    ratios: list[float] = []
    for turn in range(turns):
        order = [("jit", jitted), ("gather", gather)]
        if turn % 2:
            order.reverse()
        walls: dict[str, float] = {}
        for label, fn in order:
            await asyncio.sleep(0.02)  # let the previous run's callbacks drain
            walls[label] = await _time(fn, CALLS)
        jit_walls.append(walls["jit"])
        gather_walls.append(walls["gather"])
        ratios.append(walls["jit"] / walls["gather"])
    eager_walls = [await _time(fan_out, CALLS) for _ in range(eager_runs)]
    eager = statistics.median(eager_walls)
    jit = statistics.median(jit_walls)
    ratio = statistics.median(ratios)
    return {
        "calls": CALLS,
        "latency_s": LATENCY,
        "eager_median_s": eager,
        "jit_median_s": jit,
        "gather_median_s": statistics.median(gather_walls),
        "jit_first_call_s": first,
        "jit_over_gather": ratio,
        "speedup_over_eager": eager / jit,
        "target_jit_over_gather": TARGET,
        "met": ratio <= TARGET,
        "turns": turns,
        "explain": xcs.explain(jitted),
    }


async def bench_quick(items: int, runs: int) -> dict[str, Any]:
    jitted = xcs.jit(quick)
    first = await _time(jitted, items)  # measured as tasks, then in order
    walls: dict[str, list[float]] = {"eager": [], "jit": [], "gather": []}
    for _ in range(runs):
        walls["eager"].append(await _time(quick, items))
        walls["jit"].append(await _time(jitted, items))
        walls["gather"].append(await _time(quick_gather, items))
    per_item = {k: statistics.median(v) / items * 1e6 for k, v in walls.items()}
    return {
        "items": items,
        "eager_us_per_item": per_item["eager"],
        "jit_us_per_item": per_item["jit"],
        "gather_us_per_item": per_item["gather"],
        "jit_first_call_us_per_item": first / items * 1e6,
        "explain": xcs.explain(jitted),
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run; writes nothing")
    options = parser.parse_args()
    turns, eager_runs, quick_runs = (4, 1, 5) if options.quick else (15, 3, 25)

    async def run_all() -> tuple[dict[str, Any], dict[str, Any]]:
        return await bench_fan_out(turns, eager_runs), await bench_quick(1000, quick_runs)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    fan, quick_figures = asyncio.run(run_all())
    print(fan["explain"], file=sys.stderr)
    print(quick_figures["explain"], file=sys.stderr)
    table = markdown_table(
        ["approach", "code", "wall ms (median)", "vs gather"],
        [
            [
                "eager",
                "`[await call(i) for i in range(64)]`",
                _ms(fan["eager_median_s"]),
                f"{fan['eager_median_s'] / fan['gather_median_s']:.2f}x",
            ],
            [
                "xcs.jit",
                "the same function, `@xcs.jit`",
                _ms(fan["jit_median_s"]),
                f"{fan['jit_over_gather']:.3f}x",
            ],
            [
                "gather",
                "`await asyncio.gather(*(call(i) for i in range(64)))`",
                _ms(fan["gather_median_s"]),
                "1x",
            ],
        ],
    )
    quick_table = markdown_table(
        ["approach", "µs per item (median)"],
        [
            ["eager", f"{quick_figures['eager_us_per_item']:.2f}"],
            ["xcs.jit (in order after its first call)", f"{quick_figures['jit_us_per_item']:.2f}"],
            [
                "xcs.jit, first call (every item a measured task)",
                f"{quick_figures['jit_first_call_us_per_item']:.2f}",
            ],
            ["gather (a task per item)", f"{quick_figures['gather_us_per_item']:.2f}"],
        ],
    )
    verdict = "met" if fan["met"] else "NOT met"
    body = "\n".join(
        [
            f"Run {utc_now()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
            + (f", load average {load:.1f} at the start" if load is not None else "")
            + ". Produced by `python bench/jit_async.py`; figures in "
            "`bench/results/jit_async.json`.",
            "",
            f"{CALLS} calls of `await asyncio.sleep({LATENCY})`, {turns} turns of jit and "
            "gather (alternating), eager run "
            f"{eager_runs} times. jit / gather is the median of the per-turn ratios: "
            f"**{fan['jit_over_gather']:.3f}x** (target <= {TARGET}x: {verdict}); "
            f"speedup over eager {fan['speedup_over_eager']:.1f}x. The jit's first call "
            f"(compile + first execution): {_ms(fan['jit_first_call_s'])} ms.",
            "",
            table,
            "",
            f"Awaits that never suspend ({quick_figures['items']} items of `await "
            "cached(i)`): tasks only cost; after its first call the jitted region runs "
            "the original comprehension.",
            "",
            quick_table,
        ]
    )
    print(body)
    if options.quick:
        return 0
    for figures in (fan, quick_figures):
        figures.pop("explain")
    path = write_results(
        NAME,
        {
            "settings": {"turns": turns, "eager_runs": eager_runs, "quick_runs": quick_runs},
            "load_average_at_start": load,
            "fan_out": fan,
            "never_suspending": quick_figures,
        },
    )
    doc = update_docs_section(NAME, body, title="@xcs.jit on async def")
    print(f"\nwrote {path} and {doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
