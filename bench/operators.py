"""Operators benchmark: what an operator call costs, and what composing with operators
gains over the plain sequential program, side by side in one run.

Two parts:

- **Call overhead.** One call of a trivial ``forward`` (``a + b``) through
  ``Operator.__call__``: untyped (only the arguments' names and number checked),
  typed (specs inferred from the hints, pydantic checks in and out), declared
  (``input_model`` / ``output_model``), and a jitted operator with no parallel region.
  The figure is µs per call minus a plain function call, the median of several
  batches.
- **Compound programs on the simulator.** Model calls are ``sim:`` calls with a fixed
  latency (``sim:chat?latency=L``: they block like a network call and compute
  nothing). Each program is written once as plain sequential Python (the *plain*
  row) and once with operators (eager, and jitted where it has a ``forward`` with
  regions). ``speedup`` = median plain wall / median wall; ``ideal`` = calls / calls
  on the longest dependent path. The approaches take turns, so load that comes and
  goes hits them alike.

Run::

    python bench/operators.py          # full run: bench/results/operators.json and the
                                       # operators section of docs/benchmarks.md
    python bench/operators.py --quick  # smoke run, writes nothing
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic

import xcs
from _report import machine_info, markdown_table, update_docs_section, utc_now, write_results
from xcs.operators import Chain, Ensemble, Judge, Operator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from map_reduce_summaries import DOCUMENTS, Combine, MapReduce, Summarize

# ---------------------------------------------------------------------------
# Call overhead


def plain_add(a: int, b: int = 1) -> int:
    return a + b


class Untyped(Operator):
    def forward(self, a, b=1):  # type: ignore[no-untyped-def]
        return a + b


class Typed(Operator):
    def forward(self, a: int, b: int = 1) -> int:
        return a + b


class AddIn(pydantic.BaseModel):
    a: int
    b: int = 1


class AddOut(pydantic.BaseModel):
    total: int


class Declared(Operator):
    input_model = AddIn
    output_model = AddOut

    def forward(self, a: int, b: int = 1) -> dict[str, int]:
        return {"total": a + b}


def per_call_us(fn: Callable[[], Any], number: int, repeats: int) -> float:
    fn()
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeats)) / number * 1e6


def overhead(number: int, repeats: int) -> list[dict[str, Any]]:
    base = per_call_us(lambda: plain_add(1, 2), number, repeats)
    rows = []
    for label, op in (
        ("untyped operator", Untyped()),
        ("typed operator (inferred specs)", Typed()),
        ("declared input_model / output_model", Declared()),
        ("typed operator, jitted (no region)", xcs.jit(Typed())),
    ):
        us = per_call_us(lambda op=op: op(1, 2), number, repeats)
        rows.append({"approach": label, "us_per_call": us, "over_plain_us": us - base})
    rows.insert(0, {"approach": "plain function", "us_per_call": base, "over_plain_us": 0.0})
    return rows


# ---------------------------------------------------------------------------
# Compound programs


class Answer(Operator):
    def __init__(self, model: Any) -> None:
        self.model = model

    def forward(self, question: str, sample: int = 0) -> str:
        return self.model(f"Answer: {question}", sample=sample)


def programs(latency: float) -> list[tuple[str, float, dict[str, Callable[[], Any]]]]:
    chat = xcs.models.bind(f"sim:chat?latency={latency}", temperature=0.8, max_tokens=8)
    judge_model = xcs.models.bind(f"sim:judge?latency={latency}", temperature=0, max_tokens=4)
    q = "Why is the sky blue?"

    def plain_ensemble() -> list[str]:
        return [chat(f"Answer: {q}", sample=i) for i in range(8)]

    ensemble = Ensemble(Answer(chat), n=8)

    def plain_qa() -> str:
        drafts = [chat(f"Answer: {q}", sample=i) for i in range(5)]
        return Judge(judge_model)(drafts, question=q)

    qa = Chain(Ensemble(Answer(chat), n=5), Judge(judge_model))

    summarize = xcs.models.bind(f"sim:summary?latency={latency}", temperature=0, max_tokens=8)
    mapreduce = MapReduce(Summarize(summarize), Combine(summarize))
    jitted_mapreduce = xcs.jit(mapreduce)

    return [
        (
            "ensemble of 8 samples",
            8.0,
            {"plain": plain_ensemble, "Ensemble": lambda: ensemble(q)},
        ),
        (
            "Chain(Ensemble(n=5), Judge)",
            6 / 2,
            {"plain": plain_qa, "operators": lambda: qa(q)},
        ),
        (
            "map-reduce over 6 documents",
            7 / 2,
            {
                "plain": lambda: mapreduce(DOCUMENTS),
                "jit(MapReduce)": lambda: jitted_mapreduce(DOCUMENTS),
            },
        ),
    ]


def compound(latency: float, turns: int) -> list[dict[str, Any]]:
    rows = []
    for name, ideal, approaches in programs(latency):
        walls: dict[str, list[float]] = {label: [] for label in approaches}
        for fn in approaches.values():
            fn()  # warm-up: compile, probe, start pool threads
        for turn in range(turns):
            order = list(approaches.items())
            order = order[turn % len(order) :] + order[: turn % len(order)]
            for label, fn in order:
                time.sleep(0.01)
                start = time.perf_counter()
                fn()
                walls[label].append(time.perf_counter() - start)
        plain = statistics.median(walls["plain"])
        for label, samples in walls.items():
            median = statistics.median(samples)
            rows.append(
                {
                    "program": name,
                    "approach": label,
                    "median_s": median,
                    "best_s": min(samples),
                    "worst_s": max(samples),
                    "speedup": plain / median,
                    "ideal": ideal,
                    "walls": samples,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run; writes nothing")
    args = parser.parse_args()
    latency = 0.02 if args.quick else 0.05
    calls = overhead(number=2_000 if args.quick else 20_000, repeats=3 if args.quick else 7)
    programs_rows = compound(latency, turns=2 if args.quick else 7)

    table1 = markdown_table(
        ["call", "µs per call", "over a plain call (µs)"],
        [(r["approach"], f"{r['us_per_call']:.2f}", f"{r['over_plain_us']:.2f}") for r in calls],
    )
    table2 = markdown_table(
        ["program", "approach", "median", "best .. worst", "speedup", "ideal"],
        [
            (
                r["program"],
                r["approach"],
                f"{r['median_s'] * 1e3:.0f} ms",
                f"{r['best_s'] * 1e3:.0f} .. {r['worst_s'] * 1e3:.0f} ms",
                f"{r['speedup']:.2f}x",
                f"{r['ideal']:.1f}x",
            )
            for r in programs_rows
        ],
        align=["l", "l", "r", "r", "r", "r"],
    )
    print(table1)
    print()
    print(table2)
    if args.quick:
        return
    write_results(
        "operators",
        {"latency_s": latency, "call_overhead": calls, "programs": programs_rows},
    )
    machine = machine_info()
    body = (
        f"Run {utc_now()}, {machine['usable_cpus']} CPUs, Python {machine['python']}. "
        "`bench/operators.py`; figures in `bench/results/operators.json`.\n\n"
        "**Call overhead**: one call of a trivial `forward` "
        "through `Operator.__call__` (median of 7 batches of 20,000 calls):\n\n"
        f"{table1}\n\n"
        f"**Compound programs** on the simulator (`sim:` calls of {latency * 1e3:.0f} ms, "
        "median of 7 turns; *plain* is the sequential program; `Ensemble` members "
        "overlap without jit):\n\n"
        f"{table2}\n"
    )
    update_docs_section("operators", body, title="Operators")


if __name__ == "__main__":
    main()
