"""``xcs bench``: a quick benchmark that ships with the package.

The full benchmarks live in the repository's ``bench/`` directory, which is not in
the wheel; they compare XCS with Dask, Ray and hand-written threads and write
``docs/benchmarks.md``. This one runs anywhere XCS is installed, offline, in a few
seconds, and answers "is XCS working as it should on this machine": the dispatch
cost of a jitted function, the cost of a CPU-bound region that stays in order, the
speedup of an I/O-bound ensemble (sleeps, then ``sim:`` model calls) against the
plain function, and the cost of tracing. Each row runs the plain and the jitted form
side by side in one process, alternately, and reports their ratio and, beside its
verdict, what XCS adds per call: the figure an absolute target judges, and the one
that says whether a large ratio matters (0.4 µs more per call is 3x a call that does
nothing, and nothing next to a model call). A row that misses its target is measured
again, up to three times, so a verdict is stable on a quiet machine.
"""

from __future__ import annotations

import gc
import time
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Row", "run"]


@dataclass
class Row:
    """One measurement: ``plain`` and ``xcs`` in ``unit``; ``ratio`` = plain / xcs
    for speedups, xcs / plain for costs (``kind`` says which); ``target`` in words.

    ``per_call_us`` is what XCS adds per call, in µs, printed beside every verdict: for
    a cost row, (xcs - plain) per call; for a speed-up row, the jitted wall time beyond
    one call's latency (what all the calls overlapping perfectly would take), per
    call. ``attempts`` counts the measurements made: a row that misses its target is
    measured again, up to ``ATTEMPTS`` times, so one stall does not flip a verdict.
    """

    name: str
    unit: str
    plain: float
    xcs: float
    ratio: float
    kind: str  # "speedup" or "cost"
    target: str
    met: bool
    per_call_us: float
    attempts: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# A missed target is measured again (a busy moment is not a slow XCS); a verdict that
# misses ATTEMPTS times in a row stands.
ATTEMPTS = 3


def _paired(
    plain: Callable[[], Any], jitted: Callable[[], Any], repeats: int
) -> tuple[float, float]:
    """Best seconds of each, timed alternately (plain, jitted, plain, ...), so a stall
    of the machine hits both sides alike and the minimum of each is its undisturbed
    time. The garbage collector is run before each timing and off during it, as in
    ``timeit``: otherwise one side pays for collecting the other's garbage (a traced
    run leaves spans behind)."""
    a: list[float] = []
    b: list[float] = []
    enabled = gc.isenabled()
    try:
        for _ in range(repeats):
            for fn, times in ((plain, a), (jitted, b)):
                gc.collect()
                gc.disable()
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
                gc.enable()
    finally:
        if enabled:
            gc.enable()
        else:
            gc.disable()
    return min(a), min(b)


def _dispatch(number: int, repeats: int) -> Row:
    import xcs

    def plain(x: int) -> int:
        return x + 1

    jitted = xcs.jit(plain)
    jitted(1)
    a, b = _paired(
        lambda: timeit.timeit(lambda: plain(1), number=number),
        lambda: timeit.timeit(lambda: jitted(1), number=number),
        repeats,
    )
    a, b = a / number * 1e6, b / number * 1e6
    return Row(
        "dispatch, no region", "µs/call", a, b, b / a, "cost", "≤ 2 µs/call", b - a <= 2.0, b - a
    )


def _cpu_region(items: int, repeats: int) -> Row:
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
        jitted(items)
    a, b = _paired(lambda: plain(items), lambda: jitted(items), repeats)
    return Row(
        "CPU-bound region (in order)",
        "ms",
        a * 1e3,
        b * 1e3,
        b / a,
        "cost",
        "≤ 1.05x plain",
        b / a <= 1.05,
        (b - a) / items * 1e6,
    )


def _speedup(name: str, calls: int, latency: float, a: float, b: float) -> Row:
    return Row(
        name,
        "ms",
        a * 1e3,
        b * 1e3,
        a / b,
        "speedup",
        f"≥ 0.8 x ideal ({calls}x)",
        a / b >= 0.8 * calls,
        (b - latency) / calls * 1e6,
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
    a, b = _paired(lambda: plain(calls), lambda: jitted(calls), repeats)
    return _speedup(f"I/O ensemble, {calls} x {latency * 1e3:.0f} ms sleeps", calls, latency, a, b)


def _sim_ensemble(calls: int, latency: float, repeats: int) -> Row:
    import xcs

    model = xcs.models.bind(f"sim:chat?latency={latency}", temperature=0, cache=False)

    def plain(question: str) -> list[str]:
        return [model(f"{question} #{i}") for i in range(calls)]

    jitted = xcs.jit(plain)
    jitted("warm")
    a, b = _paired(lambda: plain("q"), lambda: jitted("q"), repeats)
    return _speedup(f"sim: model ensemble, {calls} calls", calls, latency, a, b)


def _tracing(calls: int, repeats: int) -> Row:
    import xcs

    model = xcs.models.bind("sim:echo", temperature=0, cache=False)

    def pipeline(n: int) -> list[str]:
        return [model(f"q{i}") for i in range(n)]

    def traced() -> None:
        with xcs.trace():
            pipeline(calls)

    # Many short samples (a few ms each), not a few long ones: a short sample often
    # runs without being preempted, so the minimum is the undisturbed time even on a
    # loaded machine (200 calls a sample swung the verdict from -15 to +90 µs a call).
    a, b = _paired(lambda: pipeline(calls), traced, repeats)
    a, b = a / calls * 1e6, b / calls * 1e6
    return Row(
        f"tracing, {calls} model calls a sample",
        "µs/call",
        a,
        b,
        b / a,
        "cost",
        "≤ 20 µs/call",
        b - a <= 20.0,
        b - a,
    )


def _settled(measure: Callable[[], Row]) -> Row:
    """The row, measured again while it misses its target (at most ``ATTEMPTS`` times)."""
    for attempt in range(1, ATTEMPTS + 1):
        row = measure()
        row.attempts = attempt
        if row.met:
            break
    return row


def run(*, quick: bool = True) -> list[Row]:
    """Run every row (``quick``: fewer repeats) and return them."""
    # Fast rows take many alternate samples (the minimum of more samples is closer to
    # the undisturbed time); the ensembles' 300 ms plain runs take a few.
    repeats = 40 if quick else 150
    slow_repeats = 3 if quick else 7
    measures: list[Callable[[], Row]] = [
        lambda: _dispatch(20_000 if quick else 100_000, 5 if quick else 11),
        lambda: _cpu_region(100, repeats),
        lambda: _sleep_ensemble(16, 0.02, slow_repeats),
        lambda: _sim_ensemble(16, 0.02, slow_repeats),
        lambda: _tracing(20, repeats),
    ]
    return [_settled(measure) for measure in measures]


def table(rows: list[Row]) -> str:
    """The rows as text: the figures, then what XCS adds per call beside each verdict."""
    head = (
        f"{'benchmark':36} {'unit':7} {'plain':>9} {'xcs':>9} {'ratio':>13} "
        f"{'XCS per call':>13}  target: verdict"
    )
    lines = [head, "-" * (len(head) + 14)]
    for r in rows:
        label = f"{r.ratio:.2f}x" + (" faster" if r.kind == "speedup" else "")
        verdict = "met" if r.met else "MISSED"
        if r.attempts > 1:
            verdict += f" (measured {r.attempts} times)"
        lines.append(
            f"{r.name:36} {r.unit:7} {r.plain:9.3f} {r.xcs:9.3f} {label:>13} "
            f"{_micros(r.per_call_us):>13}  {r.target}: {verdict}"
        )
    return "\n".join(lines)


def _micros(value: float) -> str:
    return f"{value:+.2f} µs" if abs(value) < 1000 else f"{value / 1e3:+.2f} ms"
