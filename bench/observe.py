"""Observability benchmark: what tracing costs, off and on, side by side in one run.

The hooks of ``xcs.trace`` sit in the scheduler (one per task spawned), the model
layer (one per call) and operators (one per call). When no trace is open they read
one module attribute; inside a trace each span costs a few microseconds. Rows, each
measured with and without an open ``xcs.trace()`` in alternating turns (medians):

- ``model call``: one ``sim:echo`` call (the simulator answers at once, so the
  figure is XCS's own cost per call, the worst case for the hook);
- ``scheduler task``: one trivial task of an ordered map (20,000 per turn);
- ``jitted ensemble``: 16 calls that each block 20 ms, in one overlapped region: the
  realistic case, where the spans' cost disappears in the calls' time;
- ``render``: the timeline, summary and Chrome file of a trace of 1,000 spans.

Off-trace, the hooks' cost is one attribute read; ``bench/jit.py`` measures the
dispatch and region overheads they must not raise (see docs/benchmarks.md).

Run::

    python bench/observe.py            # writes bench/results/observe.json and the
                                       # observe section of docs/benchmarks.md
    python bench/observe.py --quick    # smoke run, writes nothing
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import xcs
from _report import markdown_table, update_docs_section, utc_now, write_results
from xcs._runtime._scheduler import ordered_map


def _turns(
    plain: Callable[[], Any], traced: Callable[[], Any], turns: int
) -> tuple[float, float, float, float]:
    """Medians of (wall off, wall on, CPU off, CPU on); CPU is the process's, all
    threads, which a busy machine disturbs less than the wall clock."""
    walls: tuple[list[float], list[float]] = ([], [])
    cpus: tuple[list[float], list[float]] = ([], [])
    for turn in range(turns):
        order = [(plain, 0), (traced, 1)] if turn % 2 == 0 else [(traced, 1), (plain, 0)]
        for fn, which in order:
            cpu, start = time.process_time(), time.perf_counter()
            fn()
            walls[which].append(time.perf_counter() - start)
            cpus[which].append(time.process_time() - cpu)
    return (
        statistics.median(walls[0]),
        statistics.median(walls[1]),
        statistics.median(cpus[0]),
        statistics.median(cpus[1]),
    )


def _row(name: str, unit: str, scale: float, figures: tuple[float, ...]) -> dict[str, Any]:
    off, on, cpu_off, cpu_on = (f * scale for f in figures)
    return {"row": name, "unit": unit, "off": off, "on": on, "cpu_off": cpu_off, "cpu_on": cpu_on}


def _in_trace(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> None:
        with xcs.trace():
            fn()

    return run


def model_calls(n: int, turns: int) -> dict[str, Any]:
    model = xcs.models.bind("sim:echo", temperature=0, cache=False)

    def calls() -> None:
        for i in range(n):
            model(f"q{i}")

    calls()
    return _row("model call (sim:echo)", "µs", 1e6 / n, _turns(calls, _in_trace(calls), turns))


def scheduler_tasks(n: int, turns: int) -> dict[str, Any]:
    def tasks() -> None:
        ordered_map(abs, range(n), window=64)

    tasks()
    return _row("scheduler task (trivial)", "µs", 1e6 / n, _turns(tasks, _in_trace(tasks), turns))


def jitted_ensemble(calls: int, latency: float, turns: int) -> dict[str, Any]:
    def call(i: int) -> int:
        time.sleep(latency)
        return i

    @xcs.jit
    def ensemble(n: int) -> list[int]:
        return [call(i) for i in range(n)]

    ensemble(calls)  # compile and measure: overlapped from now on
    figures = _turns(lambda: ensemble(calls), _in_trace(lambda: ensemble(calls)), turns)
    return _row(f"jitted ensemble ({calls} x {latency * 1e3:.0f} ms)", "ms", 1e3, figures)


def render(spans: int) -> dict[str, Any]:
    model = xcs.models.bind("sim:echo", temperature=0, cache=False)
    with xcs.trace() as recorded:
        for i in range(spans):
            model(f"q{i}")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        recorded.timeline(max_rows=spans)
        recorded.summary()
        recorded.to_chrome(Path(tmp) / "t.json")
        took = time.perf_counter() - start
    return {"row": f"render {spans} spans (timeline, summary, Chrome file)", "ms": took * 1e3}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run; writes nothing")
    args = parser.parse_args(argv)
    turns = 5 if args.quick else 15
    rows = [
        model_calls(500 if args.quick else 2000, turns),
        scheduler_tasks(5000 if args.quick else 20000, turns),
        jitted_ensemble(16, 0.02, turns),
    ]
    for row in rows:
        row["overhead"] = row["on"] - row["off"]
        row["ratio"] = row["on"] / row["off"]
        row["cpu_overhead"] = row["cpu_on"] - row["cpu_off"]
    rendered = render(1000)
    table = markdown_table(
        [
            "work",
            "unit",
            "no trace",
            "in a trace",
            "overhead",
            "ratio",
            "CPU, no trace",
            "CPU, in a trace",
            "CPU overhead",
        ],
        [
            (
                r["row"],
                r["unit"],
                f"{r['off']:.2f}",
                f"{r['on']:.2f}",
                f"{r['overhead']:+.2f}",
                f"{r['ratio']:.3f}",
                f"{r['cpu_off']:.2f}",
                f"{r['cpu_on']:.2f}",
                f"{r['cpu_overhead']:+.2f}",
            )
            for r in rows
        ],
        align=["l", "l", "r", "r", "r", "r", "r", "r", "r"],
    )
    print(table)
    print(f"\n{rendered['row']}: {rendered['ms']:.1f} ms")
    if args.quick:
        print("\n(quick run: results and docs not written)", file=sys.stderr)
        return 0
    write_results("observe", {"rows": rows, "render": rendered, "turns": turns})
    body = (
        f"Run {utc_now()}. `bench/observe.py`; figures in `bench/results/observe.json`. "
        f"Medians of {turns} alternating turns, with and without an open `xcs.trace()`; "
        "wall time, and the process's CPU time (all threads), which load from other "
        "jobs on the machine disturbs less.\n\n"
        f"{table}\n\n"
        f"Rendering a trace of 1,000 model-call spans (timeline, summary and Chrome "
        f"file): {rendered['ms']:.1f} ms.\n"
    )
    update_docs_section("observe", body, title="Tracing (`bench/observe.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
