"""Compiler fuzzing: generated valid Python functions through ``xcs.jit``.

``_fuzz.functions()`` writes functions with arbitrary statements and nesting (see its
docstring). For each, the plain run and two jitted runs (the first compiles and
measures, the second may overlap) must agree: the same value, or the same exception
(type and args); the same calls (on success exactly, after a failure at least the
plain run's); the same global state. ``xcs.jit`` may fall back (run as written) but
must then say so in ``xcs.explain``; it may never fail on its own account.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import event, given, settings
from tests.reliability._fuzz import Fuzzed, Outcome, functions, load, run

import xcs

EXAMPLES = int(os.environ.get("XCS_FUZZ_EXAMPLES", "300"))


def _differences(plain: Outcome, jitted: Outcome) -> list[str]:
    problems: list[str] = []
    if isinstance(jitted.error, xcs.XCSError):
        problems.append(f"xcs.jit failed on its own account: {jitted.describe()}")
    if plain.error is None:
        if jitted.error is not None or plain.value != jitted.value:
            problems.append(f"plain {plain.describe()}, jit {jitted.describe()}")
        elif plain.calls != jitted.calls:
            problems.append(f"calls: plain {dict(plain.calls)}, jit {dict(jitted.calls)}")
    else:
        if type(jitted.error) is not type(plain.error) or jitted.error.args != plain.error.args:
            problems.append(f"plain {plain.describe()}, jit {jitted.describe()}")
        missing = plain.calls - jitted.calls
        if missing:
            problems.append(f"jit skipped calls the plain run made: {dict(missing)}")
    if plain.g != jitted.g:
        problems.append(f"global G: plain {plain.g!r}, jit {jitted.g!r}")
    return problems


def check(program: Fuzzed, *, events: bool = True) -> None:
    plain = run(program, program.fn)
    jitted_fn = xcs.jit(program.fn)
    problems: list[str] = []
    for attempt in ("first", "second"):
        got = run(program, jitted_fn)
        problems += [f"{attempt} jitted run: {p}" for p in _differences(plain, got)]
    explanation = xcs.explain(jitted_fn)
    if "\n  runs as written:" in explanation:
        kind = "fell back (xcs.explain says why)"
    elif "no parallel region" in explanation:
        kind = "compiled, no parallel region"
    else:
        kind = "compiled, with parallel regions"
    if events:
        event(kind)
        event("plain run raised" if plain.error is not None else "plain run returned")
    assert not problems, f"{program!r}\n" + "\n".join(problems) + f"\n{explanation}"


@settings(max_examples=EXAMPLES)
@given(functions())
def test_jit_never_crashes_and_keeps_semantics(generated: tuple[str, float]) -> None:
    source, latency = generated
    compile(source, "<generated>", "exec")  # the generator writes valid Python
    program = load(source, latency)
    try:
        check(program)
    finally:
        program.close()


@pytest.mark.parametrize(
    "source",
    [
        # A hand-written program with every construct at once, so that each appears
        # at least once whatever hypothesis draws.
        """
def prog(xs, n, *rest, k=2, **kw):
    global G
    a, b, c, d = 1, 2, 3, 4
    out = []
    for i, x in enumerate(xs):
        if x % 2:
            continue
        out.append(op(x, k=k))
    else:
        b += sum([op(x) for x in xs if x > 1])
    _w = 0
    while _w < 3:
        _w += 1
        if (c := op(_w)) > 20:
            break
    try:
        d = fail(n * 5)
    except OpError as err:
        out.append(err.args)
    else:
        d = 0
    finally:
        G += 1
    with Rec("w") as tag:
        a = (lambda v, *more, w=1: op(v, *more) + w)(a, b, w=c)
    match [a, b]:
        case [p, q] if p > q:
            out.append(p)
        case _:
            out.append(len({op(x) % 3 for x in xs}))
    def inner(v):
        nonlocal d
        d = d + v
        return op(d)
    out.append(inner(op(*rest, **kw)))
    first, *others = [op(1), op(2), op(3)]
    del first
    assert sum(op(x) for x in xs) >= 0, "never"
    return (a, b, c, d, out, G, others, {x: op(x) for x in xs})
""",
    ],
)
def test_every_construct_at_once(source: str) -> None:
    program = load(source, 0.0005)
    try:
        check(program, events=False)
    finally:
        program.close()
