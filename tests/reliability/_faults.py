"""Seeded fault runs: pipelines of ``sim:`` calls, run as written and under ``xcs.jit``.

Shared by ``tests/reliability/test_faults.py`` (a bounded number of seeds in CI) and
``bench/soak.py`` (1,000 seeds). One *run* is one pipeline, one seed: the simulator's
faults (HTTP 500s, 429s with a Retry-After, attempts that hang until their timeout, a
slow tail past the timeout) are drawn from the seed, the request and the attempt
number, so the plain run and the jitted run meet the same faults. The jitted run must
then give the plain run's value, or its exception (same type, same args), and, when it
succeeds, make the same number of attempts.

The default circuit breaker stays on. It counts *consecutive* failed attempts across
the calls of a model at an endpoint, so whether it opens depends on the order in
which attempts end, which concurrency changes by design (and a half-open breaker
turns away every call but its one probe, which only concurrent calls can meet). Each
run starts with fresh breakers (the state the plain run left is not the jitted run's
input), and a difference between the two runs is *explained by the breaker* when a
breaker opened in one of them and one side raised ``CircuitOpenError``: counted in
``Comparison.breaker``, not a problem. Any other difference is a problem.
``docs/reliability.md`` gives the condition and the measured rate.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xcs
from xcs.errors import CircuitOpenError
from xcs.models import ModelBinding, bind, models
from xcs.models._registry import registry

__all__ = [
    "PIPELINES",
    "RunResult",
    "compare_seed",
    "configure_for_faults",
    "fault_model",
    "non_pool_threads",
    "pool_threads",
]

#: The simulated faults, per attempt: 30% HTTP 500, 10% 429 (Retry-After 3 ms), 5%
#: hangs until the timeout, 10% a slow tail 30x the median latency (past the timeout).
FAULTS = (
    "latency=0.002&sigma=0.5&slow_rate=0.1&slow_factor=30"
    "&error_rate=0.3&rate_limit_rate=0.1&retry_after=0.003&timeout_rate=0.05"
)
#: Seconds one attempt may take: the slow tail (60 ms) and the hangs run past it.
ATTEMPT_TIMEOUT = 0.04
#: No run may take this long; a run that does has hung (the deadline raises).
RUN_DEADLINE = 60.0


def fault_model(seed: int) -> ModelBinding:
    """A binding to the faulty simulator seeded with ``seed`` (its own endpoint)."""
    return bind(f"sim:chat?{FAULTS}&seed={seed}", timeout=ATTEMPT_TIMEOUT)


def configure_for_faults() -> None:
    """Short backoffs; the default breaker (see the module docstring)."""
    models.configure("sim", backoff_base=0.001, backoff_max=0.004)


def _fresh_breakers() -> None:
    for endpoint in registry.endpoints():
        endpoint.reset_breakers()


def _breakers_opened() -> int:
    return sum(b.times_opened for e in registry.endpoints() for b in e.breakers())


# -- the pipelines ---------------------------------------------------------------------


def ensemble(m: ModelBinding, question: str, attempts: int) -> str:
    drafts = [m(question, temperature=0.8, sample=i, max_attempts=attempts) for i in range(5)]
    return m("judge: " + " | ".join(drafts), temperature=0, max_attempts=attempts)


def map_docs(m: ModelBinding, docs: list[str], attempts: int) -> list[str]:
    summaries = []
    for doc in docs:
        summaries.append(m(f"summarize: {doc}", max_attempts=attempts))
    return summaries


def summarize(m: ModelBinding, doc: str, attempts: int) -> str:
    parts = [m(f"part {i} of {doc}", max_attempts=attempts) for i in range(2)]
    return m("merge: " + " / ".join(parts), max_attempts=attempts)


def nested(
    m: ModelBinding, docs: list[str], attempts: int, inner: Callable[..., str] = summarize
) -> list[str]:
    return [inner(m, doc, attempts) for doc in docs]


def diamond(m: ModelBinding, question: str, attempts: int) -> str:
    plan = m(f"plan: {question}", max_attempts=attempts)
    research = m(f"research: {plan}", max_attempts=attempts)
    critique = m(f"critique: {plan}", max_attempts=attempts)
    return m(f"synthesize: {research} || {critique}", max_attempts=attempts)


async def ensemble_async(m: ModelBinding, question: str, attempts: int) -> str:
    drafts = [
        await asyncio.to_thread(m, question, temperature=0.8, sample=i, max_attempts=attempts)
        for i in range(5)
    ]
    judge = "judge: " + " | ".join(drafts)
    return await asyncio.to_thread(m, judge, temperature=0, max_attempts=attempts)


async def diamond_async(m: ModelBinding, question: str, attempts: int) -> str:
    plan = await asyncio.to_thread(m, f"plan: {question}", max_attempts=attempts)
    research = await asyncio.to_thread(m, f"research: {plan}", max_attempts=attempts)
    critique = await asyncio.to_thread(m, f"critique: {plan}", max_attempts=attempts)
    return await asyncio.to_thread(
        m, f"synthesize: {research} || {critique}", max_attempts=attempts
    )


def _sync(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (an async def, plain or jitted) run to completion by ``asyncio.run``."""
    return lambda *args: asyncio.run(fn(*args))


_jit_summarize = xcs.jit(summarize)


@dataclass(frozen=True)
class Pipeline:
    """A pipeline: its plain function, its jitted twin and its inputs for a seed."""

    name: str
    plain: Callable[..., Any]
    jitted: Callable[..., Any]
    arguments: Callable[[int], tuple[Any, ...]]


def _docs(seed: int) -> list[str]:
    return [f"document {seed}-{i}" for i in range(4)]


PIPELINES: dict[str, Pipeline] = {
    "ensemble": Pipeline("ensemble", ensemble, xcs.jit(ensemble), lambda s: (f"question {s}?",)),
    "map": Pipeline("map", map_docs, xcs.jit(map_docs), lambda s: (_docs(s),)),
    "nested": Pipeline(
        "nested",
        nested,
        # The jitted pipeline calls the jitted helper from inside its own region.
        lambda m, docs, attempts: _jit_nested(m, docs, attempts, _jit_summarize),
        lambda s: (_docs(s)[:3],),
    ),
    "diamond": Pipeline("diamond", diamond, xcs.jit(diamond), lambda s: (f"topic {s}",)),
    # async def pipelines: the model calls run in threads (asyncio.to_thread), awaited.
    "ensemble-async": Pipeline(
        "ensemble-async",
        _sync(ensemble_async),
        _sync(xcs.jit(ensemble_async)),
        lambda s: (f"question {s}?",),
    ),
    "diamond-async": Pipeline(
        "diamond-async",
        _sync(diamond_async),
        _sync(xcs.jit(diamond_async)),
        lambda s: (f"topic {s}",),
    ),
}
_jit_nested = xcs.jit(nested)


# -- one run, compared ---------------------------------------------------------------------


@dataclass
class RunResult:
    """What one run gave: a value or an exception, and the attempts it made."""

    value: Any = None
    error: BaseException | None = None
    attempts: int = 0
    seconds: float = 0.0
    breaker_opened: bool = False

    def describe(self) -> str:
        if self.error is not None:
            return f"raised {type(self.error).__name__}{self.error.args!r}"
        return f"returned {self.value!r}"


def _attempts() -> int:
    # Counted per model ("sim:chat"), whatever the options; runs do not overlap.
    return sum(int(s.attempts) for s in models.statistics()["models"].values())


def _run(fn: Callable[..., Any], args: tuple[Any, ...]) -> RunResult:
    _fresh_breakers()
    before = _attempts()
    result = RunResult()
    start = time.perf_counter()
    try:
        with xcs.deadline(RUN_DEADLINE):
            result.value = fn(*args)
    except Exception as exc:
        result.error = exc
    result.seconds = time.perf_counter() - start
    result.attempts = _attempts() - before
    result.breaker_opened = _breakers_opened() > 0
    return result


def _same_value(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) and hasattr(a, "usage"):
        return str(a) == str(b) and a.usage == b.usage and a.finish_reason == b.finish_reason
    return bool(a == b)


@dataclass
class Comparison:
    """One seed of one pipeline: the plain run, the jitted run, and every difference."""

    pipeline: str
    seed: int
    attempts_allowed: int
    plain: RunResult
    jitted: RunResult
    problems: list[str]
    # A difference explained by the breaker (see the module docstring), else None.
    breaker: str | None = None


def compare_seed(pipeline: Pipeline, seed: int) -> Comparison:
    """Run ``pipeline`` plainly, then jitted, on the faults of ``seed``."""
    m = fault_model(seed)
    attempts = 1 + seed % 4  # 1 to 4 attempts: many runs fail, many recover
    args = (m, *pipeline.arguments(seed), attempts)
    plain = _run(pipeline.plain, args)
    jitted = _run(pipeline.jitted, args)
    problems: list[str] = []
    if isinstance(plain.error, xcs.ExecutionTimeout) or isinstance(
        jitted.error, xcs.ExecutionTimeout
    ):
        problems.append(f"a run hung past {RUN_DEADLINE} s")
    if plain.error is None:
        if jitted.error is not None or not _same_value(plain.value, jitted.value):
            problems.append(f"plain {plain.describe()}, jit {jitted.describe()}")
        elif plain.attempts != jitted.attempts:
            problems.append(f"attempts: plain {plain.attempts}, jit {jitted.attempts}")
    elif (
        jitted.error is None
        or type(jitted.error) is not type(plain.error)
        or jitted.error.args != plain.error.args
    ):
        problems.append(f"plain {plain.describe()}, jit {jitted.describe()}")
    elif jitted.attempts < plain.attempts:
        problems.append(
            f"jit made fewer attempts ({jitted.attempts}) than plain ({plain.attempts})"
        )
    breaker = None
    opened = plain.breaker_opened or jitted.breaker_opened
    fast_failed = any(isinstance(r.error, CircuitOpenError) for r in (plain, jitted))
    if problems and opened and fast_failed:
        breaker, problems = "; ".join(problems), []
    return Comparison(pipeline.name, seed, attempts, plain, jitted, problems, breaker)


# -- threads -----------------------------------------------------------------------------


def pool_threads() -> list[threading.Thread]:
    """The shared pool's worker threads (idle ones stay, reused, up to its bound)."""
    return [t for t in threading.enumerate() if t.name.startswith("xcs-worker")]


def non_pool_threads() -> set[threading.Thread]:
    """Every other live thread: these must be back to what they were after a run."""
    return {t for t in threading.enumerate() if not t.name.startswith("xcs-worker")}
