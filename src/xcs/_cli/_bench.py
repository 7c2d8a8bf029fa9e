"""``xcs bench``: a quick benchmark that ships with the package.

The full benchmarks live in the repository's ``bench/`` directory, which is not in
the wheel; they compare XCS with Dask, Ray and hand-written threads and write
``docs/benchmarks.md``. This one runs anywhere XCS is installed, offline, in a few
seconds, and answers "is XCS working as it should on this machine": the dispatch
cost of a jitted function, the cost of a CPU-bound region that stays in order, the
speedup of an I/O-bound ensemble (sleeps, then ``sim:`` model calls) against the
plain function, and the cost of tracing. Each row runs the plain and the jitted form
side by side in one process and reports their ratio.
"""

from __future__ import annotations

import statistics
import time
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Row", "run"]


@dataclass
class Row:
    """One measurement: ``plain`` and ``xcs`` in ``unit``; ``ratio`` = plain / xcs
    for speedups, xcs / plain for costs (``kind`` says which); ``target`` in words."""

    name: str
    unit: str
    plain: float
    xcs: float
    ratio: float
    kind: str  # "speedup" or "cost"
    target: str
    met: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _best_of(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _dispatch(number: int) -> Row:
    import xcs

    def plain(x: int) -> int:
        return x + 1

    jitted = xcs.jit(plain)
    jitted(1)
    a = min(timeit.repeat(lambda: plain(1), number=number, repeat=3)) / number * 1e6
    b = min(timeit.repeat(lambda: jitted(1), number=number, repeat=3)) / number * 1e6
    return Row(
        "dispatch, no region", "µs/call", a, b, b / a, "cost", "overhead ≤ 2 µs", b - a <= 2.0
    )


def _cpu_region(repeats: int) -> Row:
    import xcs

    def work(x: int) -> int:
        total = 0
        for i in range(400):
            total += (x * i) % 7
        return total

    def plain(n: int) -> list[int]:
        return [work(x) for x in range(n)]

    jitted = xcs.jit(plain)
    for _ in range(3):  # measured, then in order
        jitted(100)
    a = _best_of(lambda: plain(100), repeats) * 1e3
    b = _best_of(lambda: jitted(100), repeats) * 1e3
    return Row(
        "CPU-bound region (in order)", "ms", a, b, b / a, "cost", "≤ 1.05x plain", b / a <= 1.05
    )


def _sleep_ensemble(calls: int, latency: float, repeats: int) -> Row:
    import xcs

    def call(i: int) -> int:
        time.sleep(latency)
        return i

    def plain(n: int) -> list[int]:
        return [call(i) for i in range(n)]

    jitted = xcs.jit(plain)
    jitted(calls)  # compiles and measures
    a = _best_of(lambda: plain(calls), repeats) * 1e3
    b = _best_of(lambda: jitted(calls), repeats) * 1e3
    ideal = float(calls)
    return Row(
        f"I/O ensemble, {calls} x {latency * 1e3:.0f} ms sleeps",
        "ms",
        a,
        b,
        a / b,
        "speedup",
        f"≥ 0.8 x ideal ({ideal:.0f}x)",
        a / b >= 0.8 * ideal,
    )


def _sim_ensemble(calls: int, latency: float, repeats: int) -> Row:
    import xcs

    model = xcs.models.bind(f"sim:chat?latency={latency}", temperature=0, cache=False)

    def plain(question: str) -> list[str]:
        return [model(f"{question} #{i}") for i in range(calls)]

    jitted = xcs.jit(plain)
    jitted("warm")
    a = _best_of(lambda: plain("q"), repeats) * 1e3
    b = _best_of(lambda: jitted("q"), repeats) * 1e3
    return Row(
        f"sim: model ensemble, {calls} calls",
        "ms",
        a,
        b,
        a / b,
        "speedup",
        f"≥ 0.8 x ideal ({calls}x)",
        a / b >= 0.8 * calls,
    )


def _tracing(calls: int, repeats: int) -> Row:
    import xcs

    model = xcs.models.bind("sim:echo", temperature=0, cache=False)

    def pipeline(n: int) -> list[str]:
        return [model(f"q{i}") for i in range(n)]

    def traced() -> None:
        with xcs.trace():
            pipeline(calls)

    a = statistics.median(_best_of(lambda: pipeline(calls), 1) for _ in range(repeats)) * 1e6
    b = statistics.median(_best_of(traced, 1) for _ in range(repeats)) * 1e6
    per_call = (b - a) / calls
    return Row(
        f"tracing {calls} model calls",
        "µs",
        a,
        b,
        b / a,
        "cost",
        "≤ 20 µs per call",
        per_call <= 20.0,
    )


def run(*, quick: bool = True) -> list[Row]:
    """Run every row (``quick``: fewer repeats) and return them."""
    repeats = 3 if quick else 7
    return [
        _dispatch(50_000 if quick else 200_000),
        _cpu_region(repeats),
        _sleep_ensemble(16, 0.02, repeats),
        _sim_ensemble(16, 0.02, repeats),
        _tracing(200, repeats),
    ]


def table(rows: list[Row]) -> str:
    head = f"{'benchmark':36} {'unit':8} {'plain':>10} {'xcs':>10} {'ratio':>13}  target"
    lines = [head, "-" * len(head)]
    for r in rows:
        label = f"{r.ratio:.2f}x" + (" faster" if r.kind == "speedup" else "")
        lines.append(
            f"{r.name:36} {r.unit:8} {r.plain:10.3f} {r.xcs:10.3f} {label:>13}  "
            f"{r.target}: {'met' if r.met else 'MISSED'}"
        )
    return "\n".join(lines)
