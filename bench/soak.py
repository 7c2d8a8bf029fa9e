"""Soak: the long version of ``tests/reliability`` — 1,500 seeded fault runs, 10,000 calls.

Faults: each of the six pipelines of ``tests/reliability/_faults.py`` (ensemble, map,
nested, diamond, and async def versions of ensemble and diamond) runs on ``--seeds``
seeds (default 250 each: 1,500 runs), as written
and then under ``xcs.jit``, against the simulator's seeded faults (30% HTTP 500, 10%
429 with a Retry-After, 5% hangs until the timeout, a 10% slow tail past it). Every
jitted run must give the plain run's value (and make as many attempts) or raise the
plain run's exception (type and args); a run that hangs would hit its deadline.

Load: ``--threads`` threads (64) make ``--calls`` calls (10,000) of jitted fan-outs,
model bindings, freshly jitted closures and a cached operator (``_load.py``): every
answer checked, threads, retained memory (tracemalloc) and cache sizes measured.

Writes ``bench/results/soak.json`` and the figures in ``docs/reliability.md``. Exits
with status 1 if any run differed, hung, or any bound was broken.

    python bench/soak.py                  # the full soak (a few minutes)
    python bench/soak.py --seeds 20 --calls 2000   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.reliability, shared with the tests

from tests.reliability._faults import (  # noqa: E402
    FAULTS,
    PIPELINES,
    compare_seed,
    configure_for_faults,
    non_pool_threads,
    pool_threads,
)
from tests.reliability._load import run_load  # noqa: E402

from _report import markdown_table, update_docs_section, utc_now, write_results  # noqa: E402
from xcs.models import models  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"


def soak_faults(seeds: int) -> dict[str, Any]:
    models._reset()
    configure_for_faults()
    baseline = non_pool_threads()
    rows: dict[str, Any] = {}
    problems: list[str] = []
    breaker: list[str] = []  # differences the default breaker explains (_faults)
    for name, pipeline in PIPELINES.items():
        outcomes: Counter[str] = Counter()
        plain_s = jit_s = ok_plain_s = ok_jit_s = 0.0
        attempts = 0
        for seed in range(seeds):
            result = compare_seed(pipeline, seed)
            outcomes["ok" if result.plain.error is None else type(result.plain.error).__name__] += 1
            attempts += result.plain.attempts
            plain_s += result.plain.seconds
            jit_s += result.jitted.seconds
            if result.plain.error is None:
                ok_plain_s += result.plain.seconds
                ok_jit_s += result.jitted.seconds
            problems += [f"{name} seed {seed}: {p}" for p in result.problems]
            if result.breaker is not None:
                breaker.append(f"{name} seed {seed}: {result.breaker}")
        differ = [p for p in problems + breaker if p.startswith(f"{name} seed")]
        rows[name] = {
            "runs": seeds,
            "identical": seeds - len(differ),
            "outcomes": dict(outcomes),
            "attempts": attempts,
            "plain_s": round(plain_s, 3),
            "jit_s": round(jit_s, 3),
            "ok_plain_s": round(ok_plain_s, 3),
            "ok_jit_s": round(ok_jit_s, 3),
        }
    threads_left = len(non_pool_threads() - baseline)
    return {
        "faults": FAULTS,
        "seeds_per_pipeline": seeds,
        "runs": seeds * len(PIPELINES),
        "problems": problems,
        "breaker_differences": breaker,
        "pipelines": rows,
        "threads_left_besides_pool": threads_left,
        "pool_threads": len(pool_threads()),
    }


def soak_load(threads: int, calls: int) -> dict[str, Any]:
    models._reset()
    report = run_load(threads, calls)
    figures = {
        key: value for key, value in vars(report).items() if key not in ("wrong", "errors", "extra")
    }
    figures["wrong"] = len(report.wrong)
    figures["errors"] = [repr(e) for e in report.errors[:10]]
    figures["calls_per_s"] = round(calls / report.seconds, 1) if report.seconds else None
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=250, help="seeds per pipeline")
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()

    started = time.perf_counter()
    faults = soak_faults(args.seeds)
    load = soak_load(args.threads, args.calls)
    total_s = time.perf_counter() - started
    write_results("soak", {"faults": faults, "load": load, "seconds": round(total_s, 1)})

    table = markdown_table(
        [
            "pipeline",
            "runs",
            "identical",
            "plain ok",
            "plain failed (by type)",
            "attempts",
            "plain s",
            "jit s",
            "speed-up",
            "speed-up, successful runs",
        ],
        [
            [
                name,
                row["runs"],
                row["identical"],
                row["outcomes"].get("ok", 0),
                ", ".join(f"{k} {v}" for k, v in sorted(row["outcomes"].items()) if k != "ok"),
                row["attempts"],
                f"{row['plain_s']:.2f}",
                f"{row['jit_s']:.2f}",
                f"{row['plain_s'] / row['jit_s']:.2f}x" if row["jit_s"] else "-",
                f"{row['ok_plain_s'] / row['ok_jit_s']:.2f}x" if row["ok_jit_s"] else "-",
            ]
            for name, row in faults["pipelines"].items()
        ],
    )
    identical = sum(row["identical"] for row in faults["pipelines"].values())
    update_docs_section(
        "soak-faults",
        f"Soak of {utc_now()[:10]} (`python bench/soak.py`, {faults['runs']} seeded runs, "
        f"`bench/results/soak.json`): **{identical} of {faults['runs']} jitted runs "
        f"identical** to the plain run; {len(faults.get('breaker_differences', []))} "
        f"differed because the default circuit breaker opened in one run only, "
        f"{len(faults['problems'])} for any other reason; no run hung; "
        f"threads left after the runs besides the pool's idle workers: "
        f"{faults['threads_left_besides_pool']} (pool: {faults['pool_threads']} threads, "
        f"bound 64). Times are wall seconds for all the runs of a pipeline (retries, "
        f"backoffs and timeouts included).\n\n{table}",
        doc=DOC,
    )
    mib = 1024 * 1024
    update_docs_section(
        "soak-load",
        f"Soak of {utc_now()[:10]}: {load['threads']} threads, {load['calls']:,} calls in "
        f"{load['seconds']:.1f} s ({load['calls_per_s']:,} calls/s); wrong answers: "
        f"{load['wrong']}; errors: {len(load['errors'])}; unfinished threads: "
        f"{load['unfinished']}.\n\n"
        + markdown_table(
            ["measure", "value", "bound"],
            [
                [
                    "most threads alive",
                    load["max_threads"],
                    f"{load['baseline_threads']} before + {load['threads']} callers + 1 monitor "
                    f"+ pool {load['pool_bound']}",
                ],
                ["most pool threads", load["max_pool_threads"], load["pool_bound"]],
                ["memory held after the run", f"{load['memory_after'] / mib:.2f} MiB", "-"],
                ["memory peak during the run", f"{load['memory_peak'] / mib:.2f} MiB", "-"],
                ["model cache entries (in memory)", load["cache_entries"], load["cache_size"]],
                ["`Cached` operator entries", load["operator_cache_entries"], 16],
                [
                    "call-site measurements",
                    load["site_profile_entries"],
                    load["site_profile_bound"],
                ],
            ],
            align=["l", "r", "l"],
        ),
        doc=DOC,
    )
    bounds_ok = (
        load["unfinished"] == 0
        and load["wrong"] == 0
        and not load["errors"]
        and load["max_pool_threads"] <= load["pool_bound"]
        and load["cache_entries"] <= load["cache_size"]
    )
    print(f"faults: {identical}/{faults['runs']} identical; problems: {faults['problems'][:5]}")
    print(f"load: {load}")
    return 0 if not faults["problems"] and bounds_ok else 1


if __name__ == "__main__":
    threading.current_thread().name = "soak-main"
    sys.exit(main())
