"""Differential tests of ``xcs.jit`` on ``async def``: the jitted coroutine behaves
exactly like the plain one (DESIGN §1, point 10).

Programs come from ``_async_programs``. For each example the plain coroutine runs on
two sets of arguments, then ``xcs.jit`` of the same function runs on the first, the
second and the first again, each in the test's own event loop. Every jitted run must
give the plain run's value (same types, same dict order) or its exception (same type
and args, the very object the op raised); the same multiset of calls (or, where the
plain run met an op error, at least its calls: speculation past a failure is
allowed, §1.4); no call still running and no task left pending when it returns.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _async_programs import (
    FAMILIES,
    Args,
    AsyncLoaded,
    AsyncOutcome,
    AsyncProgram,
    arguments,
    block,
    load,
    programs,
    run,
)
from _programs import OpConfig, OpError, same
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import xcs

#: Examples per family: four families give the >= 1,000 examples the issue asks of CI.
EXAMPLES_PER_FAMILY = 260


def _listing(source: str) -> str:
    return "\n".join(f"  {i:3} | {line}" for i, line in enumerate(source.splitlines(), 1))


def _compare(what: str, args: Args, expected: AsyncOutcome, got: AsyncOutcome) -> list[str]:
    problems: list[str] = []
    differs = f"plain {expected.describe()}, jit {got.describe()}\n{got.traceback}".rstrip()
    if expected.error is None:
        if got.error is not None or not same(expected.value, got.value):
            problems.append(differs)
    elif (
        got.error is None
        or type(got.error) is not type(expected.error)
        or got.error.args != expected.error.args
    ):
        problems.append(differs)
    elif isinstance(got.error, OpError) and not any(e is got.error for e in got.raised):
        problems.append("jit raised an equal OpError, not the object the op raised")
    if expected.error is not None or expected.raised:
        missing = expected.calls - got.calls
        if missing:
            problems.append(f"after a failure, jit skipped calls the plain run made: {missing}")
    elif got.calls != expected.calls:
        problems.append(
            "calls differ: jit missed "
            f"{dict(expected.calls - got.calls)}, made extra {dict(got.calls - expected.calls)}"
        )
    if got.still_running:
        problems.append(f"{got.still_running} call(s) still running after jit(prog) returned")
    if got.left_pending:
        problems.append(f"{got.left_pending} task(s) left pending after jit(prog) returned")
    return [f"{what} {args}: {p}" for p in problems]


def check_async_program(
    source: str,
    config: OpConfig,
    first: Args,
    second: Args,
    window: int | None = None,
    *,
    debug: bool = True,
) -> None:
    """Run ``prog`` plainly and jitted in one event loop (in asyncio debug mode unless
    told otherwise); fail with the program and every difference."""
    loaded: AsyncLoaded = load(source, config)
    try:
        with asyncio.Runner(debug=debug) as runner:
            f = loaded.fn
            plain = [run(runner, loaded, f, first), run(runner, loaded, f, second)]
            jitted = xcs.jit(f) if window is None else xcs.jit(max_workers=window)(f)
            problems: list[str] = []
            for what, args, expected in [
                ("first call", first, plain[0]),
                ("later call, different args", second, plain[1]),
                ("third call, first args again", first, plain[0]),
            ]:
                problems += _compare(what, args, expected, run(runner, loaded, jitted, args))
        if problems:
            pytest.fail(
                "jit(prog) differs from the plain coroutine\n"
                + "\n".join(f"- {p}" for p in problems)
                + f"\nops: {config!r}, max_workers={window}\nprogram:\n{_listing(source)}",
                pytrace=False,
            )
    finally:
        loaded.close()


@pytest.mark.parametrize("family", sorted(FAMILIES))
@settings(
    max_examples=EXAMPLES_PER_FAMILY,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_async_jit_matches_the_plain_coroutine(family: str, data: st.DataObject) -> None:
    program: AsyncProgram = data.draw(programs(family), label="program")
    first = data.draw(arguments(), label="first args")
    second = data.draw(arguments(), label="second args")
    if second == first:
        second = (second[0], second[1], second[2] + 1)
    window = data.draw(st.sampled_from([None, None, 1, 2, 3]), label="max_workers")
    # asyncio's debug mode (slower) in a quarter of the examples; the fixed programs
    # below and test_async_jit.py always run in it.
    debug = data.draw(st.sampled_from([True, False, False, False]), label="debug")
    for feature in sorted(program.features):
        event(feature)
    check_async_program(program.source, program.config, first, second, window, debug=debug)


SLOW = OpConfig(latency=(("op_a", 0.0005), ("op_b", 0.0003), ("op_c", 0.0005)))
FAILING = OpConfig(
    latency=SLOW.latency,
    failing=(("op_a", frozenset({4, 9})), ("op_b", frozenset({7}))),
)
ARGS_A: Args = ([3, 1, 4, 1, 5, 9], [2, 7, 0], 5)
ARGS_B: Args = ([6, 0, 2], [4], 8)


@pytest.mark.parametrize("config", [SLOW, FAILING], ids=["ok", "failing"])
@pytest.mark.parametrize("kind", sorted({k for ks in FAMILIES.values() for k in ks}))
def test_each_block_alone(kind: str, config: OpConfig) -> None:
    lines = ["async def prog(xs, ys, n):"]
    lines += ["    " + line for line in block(kind, "r0")]
    lines.append("    return r0")
    check_async_program("\n".join(lines) + "\n", config, ARGS_A, ARGS_B)


def test_the_harness_sees_a_wrong_result() -> None:
    """A stand-in that drops a call must fail the comparison (the check can fail)."""
    loaded = load("async def prog(xs, ys, n):\n    return [await op_a(x) for x in xs]\n", SLOW)
    try:
        with asyncio.Runner() as runner:
            expected = run(runner, loaded, loaded.fn, ARGS_A)

            async def broken(xs: list[int], ys: list[int], n: int) -> Any:
                return await loaded.fn(xs[:-1], ys, n)

            problems = _compare("call", ARGS_A, expected, run(runner, loaded, broken, ARGS_A))
    finally:
        loaded.close()
    assert len(problems) == 2  # the value and the calls
