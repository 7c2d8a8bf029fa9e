"""Differential tests over call trees: ``xcs.jit(prog)`` behaves exactly like ``prog``
when ``prog`` reaches its work through the user's own functions, methods, class and
static methods, an operator's ``forward``, ``@xcs.sequential`` callees and recursion
(issue 15, DESIGN §1.9).

Programs come from ``_tree_programs`` (2-8 units, often 2-4 levels deep; also callable
objects, user decorators, generators, ``super()``, keyword arguments). Only the entry
``prog`` is jitted; every other unit runs its compiled form through the call tree (or
as written, where XCS does not compile it). Each example is loaded three times
from its own file, so each mode starts from fresh function objects (first-call
behaviour): plain Python on two sets of arguments; ``xcs.jit`` as shipped on the first,
the second and the first again (``max_workers`` None, 1 or 2); and ``xcs.jit`` under
``xcs.testing.force_overlap()`` on both. Every jitted run must give the plain run's
value (same types, same order) or its first error in program order (same type and
args, the very object raised, the same ``__cause__``/``__context__`` chain);
the same multiset of model calls (where the plain run failed, at least its calls:
speculation past a failure is allowed, §1.4); the same effects on ``log`` and
``store``; and no model call still running when it returns.

Effects are compared in order (F3, F3b, F3d fixed: a callee, a helper at any depth,
an operator's ``forward``, a callable object or a decorated function that changes a
mutable every item of a region passes in keeps the region in order), and an example
that meets F12 (a ``SystemError`` from ``ast.parse`` on two threads at once, fixed by
parsing one thread at a time) fails. ``XCS_TREE_STRICT=0`` relaxes both: effects as
multisets (after a failure: at least the plain run's), F12 examples rejected.
(F-numbers label the gaps; docs/reliability.md lists them.)
``XCS_TREE_EXAMPLES`` sets the number of examples (default 60, a modest CI budget).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from _programs import same
from _tree_programs import (
    STRICT,
    ModelError,
    TreeArgs,
    TreeConfig,
    TreeOutcome,
    TreeProgram,
    load_tree,
    remove_source_dir,
    run_tree,
    tree_arguments,
    tree_programs,
)
from hypothesis import event, given, reject, settings
from hypothesis import strategies as st

import xcs
import xcs.testing

EXAMPLES = int(os.environ.get("XCS_TREE_EXAMPLES", "60"))


@pytest.fixture(scope="module", autouse=True)
def _remove_sources() -> Iterator[None]:
    yield
    remove_source_dir()


def _listing(source: str) -> str:
    return "\n".join(f"  {i:3} | {line}" for i, line in enumerate(source.splitlines(), 1))


def _chain(error: BaseException | None) -> list[Any]:
    """The ``__cause__``/``__context__`` chain of ``error``: types, args, suppression."""
    chain: list[Any] = []
    while error is not None and len(chain) < 8:
        chain.append((type(error).__name__, error.args, error.__suppress_context__))
        error = error.__cause__ or error.__context__
    return chain


class _KnownRace(Exception):
    """An example that met findings F12; the property test rejects it."""


#: The message of findings F12 (CPython 3.11's AST constructor on two threads at once).
_AST_RACE = "AST constructor recursion depth mismatch"


def compare(what: str, args: TreeArgs, expected: TreeOutcome, got: TreeOutcome) -> list[str]:
    """Every way ``got`` (a jitted run) differs from ``expected`` (the plain run)."""
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
    elif not any(e is got.error for e in got.raised) and isinstance(
        got.error, ValueError | ModelError
    ):
        problems.append("jit raised an equal error, not the object the program raised")
    elif _chain(got.error) != _chain(expected.error):
        problems.append(
            f"error chains differ: plain {_chain(expected.error)}, jit {_chain(got.error)}"
        )
    if expected.error is not None or expected.raised:
        missing = expected.calls - got.calls
        if missing:
            problems.append(
                f"after a failure, jit skipped model calls the plain run made: {missing}"
            )
    elif got.calls != expected.calls:
        problems.append(
            f"model calls differ ({sum(expected.calls.values())} plain, "
            f"{sum(got.calls.values())} jit): jit missed {dict(expected.calls - got.calls)}, "
            f"made extra {dict(got.calls - expected.calls)}"
        )
    if STRICT:
        if got.log != expected.log:
            problems.append(f"log: plain {expected.log}, jit {got.log}")
        if not same(got.store, expected.store):
            problems.append(f"store: plain {expected.store}, jit {got.store}")
    elif not expected.raised:
        if Counter(got.log) != Counter(expected.log):
            problems.append(f"log (as a multiset): plain {expected.log}, jit {got.log}")
        if sorted(got.store.items()) != sorted(expected.store.items()):
            problems.append(f"store: plain {expected.store}, jit {got.store}")
    elif Counter(expected.log) - Counter(got.log):
        # Calls past a failure may have run (§1.4), and with them their effects.
        problems.append(
            f"after a failure, jit lost effects: plain log {expected.log}, jit {got.log}"
        )
    if got.still_running:
        problems.append(f"{got.still_running} model call(s) still running after jit(prog) returned")
    return [f"{what} {args}: {p}" for p in problems]


def check_tree(
    source: str, config: TreeConfig, first: TreeArgs, second: TreeArgs, window: int | None = None
) -> None:
    """Run ``prog`` plainly, jitted as shipped and jitted under ``force_overlap``.

    ``window`` is the ``max_workers`` of the jitted entry as shipped.
    """
    plain_module = load_tree(source, config, plain=True)
    plain = [run_tree(plain_module, plain_module.prog, args) for args in (first, second)]
    problems: list[str] = []

    shipped = load_tree(source, config)  # fresh function objects: the first call
    jitted = xcs.jit(shipped.prog) if window is None else xcs.jit(max_workers=window)(shipped.prog)
    for what, args, expected in [
        ("first call", first, plain[0]),
        ("second call, other args", second, plain[1]),
        ("third call, first args", first, plain[0]),
    ]:
        problems += compare(what, args, expected, run_tree(shipped, jitted, args))

    forced = load_tree(source, config)
    jitted = xcs.jit(forced.prog)
    with xcs.testing.force_overlap():
        for what, args, expected in [
            ("force_overlap, first call", first, plain[0]),
            ("force_overlap, second call", second, plain[1]),
        ]:
            problems += compare(what, args, expected, run_tree(forced, jitted, args))
    if problems and not STRICT and any(_AST_RACE in p for p in problems):
        # Findings F12: CPython 3.11's ast.parse on two threads at once (XCS parses
        # callees on worker threads): a race, counted here, not failed, until it is
        # fixed (XCS_TREE_STRICT=1 fails on it).
        raise _KnownRace("findings F12: SystemError from ast.parse on two threads")
    if problems:
        pytest.fail(
            "jit(prog) differs from plain Python over the call tree\n"
            + "\n".join(f"- {p}" for p in problems)
            + f"\nmodel: {config!r}, max_workers={window}\nprogram:\n{_listing(source)}",
            pytrace=False,
        )


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_jit_matches_plain_python_over_the_call_tree(data: st.DataObject) -> None:
    program: TreeProgram = data.draw(tree_programs(), label="program")
    first = data.draw(tree_arguments(), label="first args")
    second = data.draw(tree_arguments(), label="second args")
    # A small in-flight window, with regions nested through the tree and recursion,
    # must change nothing but the speed (DESIGN §1.9: no deadlock).
    window = data.draw(st.sampled_from([None, None, 1, 2]), label="max_workers")
    for feature in sorted(program.features):
        event(feature)
    try:
        check_tree(program.source, program.config, first, second, window)
    except _KnownRace as known:
        event(f"rejected: {known}")
        reject()


# -- fixed programs -----------------------------------------------------------------------

EFFECT_IN_A_REGION = """
import threading

second_called = threading.Event()


def ask(v, log, store):
    if v == 0:
        second_called.wait(0.5)  # the first item finishes last when items overlap
    a = model("ask", v)
    if v == 1:
        second_called.set()
    log.append(("ask", v))
    return a


def prog(xs, n, log, store):
    return [ask(x, log, store) for x in xs]
"""

#: The same, with the mutation one level further down (findings F3b).
EFFECT_TWO_LEVELS_DOWN = EFFECT_IN_A_REGION.replace(
    "def prog(", "def pass_on(v, log, store):\n    return ask(v, log, store)\n\n\ndef prog("
).replace("[ask(x, log, store)", "[pass_on(x, log, store)")

#: The same, with the mutation in an operator's forward (findings F3d).
EFFECT_IN_AN_OPERATOR = EFFECT_IN_A_REGION.replace(
    "def prog(",
    "class Ask(xcs.Operator):\n    def forward(self, v, log, store):\n"
    "        return ask(v, log, store)\n\n\nask_op = Ask()\n\n\ndef prog(",
).replace("[ask(x, log, store)", "[ask_op(x, log, store)")


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(EFFECT_IN_A_REGION, id="direct"),
        pytest.param(EFFECT_TWO_LEVELS_DOWN, id="two_levels_down"),
        pytest.param(EFFECT_IN_AN_OPERATOR, id="operator"),
    ],
)
def test_a_callee_mutating_a_passed_in_list_keeps_program_order(source: str) -> None:
    """Findings F3 (fixed in 09bf328 for a direct callee) and F3b (two levels down,
    fixed in b8337d6): the appends landed in completion order."""
    config = TreeConfig()
    plain_module = load_tree(source, config, plain=True)
    expected = run_tree(plain_module, plain_module.prog, ([0, 1], 0))
    assert expected.log == [("ask", 0), ("ask", 1)]
    shipped = load_tree(source, config)
    got = run_tree(shipped, xcs.jit(shipped.prog), ([0, 1], 0))
    assert got.error is None
    assert same(got.value, expected.value)
    assert got.log == expected.log


def test_the_harness_sees_a_reordered_log_and_a_lost_call() -> None:
    """The comparison can fail: a reordered log (strict), a missing call, a wrong value."""
    source = "def prog(xs, n, log, store):\n    return [model('m', x) for x in xs]\n"
    loaded = load_tree(source, TreeConfig())
    expected = run_tree(loaded, loaded.prog, ([1, 2, 3], 0))

    def broken(xs: list[int], n: int, log: list[Any], store: dict[Any, Any]) -> Any:
        log.append("extra")
        return loaded.prog(xs[:-1], n, log, store)

    problems = compare("call", ([1, 2, 3], 0), expected, run_tree(loaded, broken, ([1, 2, 3], 0)))
    assert len(problems) == 3  # the value, the calls and the log


WRAPPED_AFTER_DISPATCH = """
import functools


def helper(v):
    return model("helper", v)


def first(xs, n, log, store):
    return [helper(x) for x in xs]


def logged(fn):
    @functools.wraps(fn)  # copies fn.__dict__, with whatever XCS cached there
    def wrapper(*args):
        LOG.append(args)
        return fn(*args)

    return wrapper


LOG = []
helper_logged = None


def wrap_now():
    global helper_logged
    helper_logged = logged(helper)


def prog(xs, n, log, store):
    out = [helper_logged(x) for x in xs]
    log.extend(LOG)
    LOG.clear()
    return out
"""


def test_a_wrapper_made_after_dispatch_runs_under_jit() -> None:
    """Findings F7 (fixed in 59d6bc5): ``functools.wraps`` copied the compiled form
    XCS had cached on ``helper`` to the wrapper, and jit skipped the wrapper."""
    plain_module = load_tree(WRAPPED_AFTER_DISPATCH, TreeConfig())
    plain_module.namespace["wrap_now"]()
    expected = run_tree(plain_module, plain_module.prog, ([1, 2], 0))
    assert expected.log == [(1,), (2,)]
    loaded = load_tree(WRAPPED_AFTER_DISPATCH, TreeConfig())
    assert run_tree(loaded, xcs.jit(loaded.namespace["first"]), ([1, 2], 0)).error is None
    loaded.namespace["wrap_now"]()  # after helper was dispatched: plain code wraps it
    got = run_tree(loaded, xcs.jit(loaded.prog), ([1, 2], 0))
    assert compare("after helper was dispatched", ([1, 2], 0), expected, got) == []


DECORATED_INSIDE = """
import functools


def helper(v):
    return model("helper", v)


def logged(fn):
    @functools.wraps(fn)  # the wrapper's __qualname__ becomes "helper"
    def wrapper(*args):
        log = args[-2]
        log.append(("wrapper", args[0]))
        return fn(args[0])

    return wrapper


def prog(xs, n, log, store):
    h = logged(helper)  # made by compiled code when prog is jitted
    return [h(x, log, store) for x in xs]
"""


def test_a_decorator_applied_inside_a_jitted_function() -> None:
    """Findings F11 (fixed on main by bce1f3c): the functools.wraps wrapper that the
    compiled ``logged`` made was compiled again and failed (CompilationError)."""
    plain_module = load_tree(DECORATED_INSIDE, TreeConfig())
    expected = run_tree(plain_module, plain_module.prog, ([1, 2], 0))
    assert expected.error is None
    loaded = load_tree(DECORATED_INSIDE, TreeConfig())
    got = run_tree(loaded, xcs.jit(loaded.prog), ([1, 2], 0))
    assert compare("decorated inside prog", ([1, 2], 0), expected, got) == []


DEEP_RECURSION = """
def count(v):
    if v == 0:
        return [0]
    return [model("count", v) + count(v - 1)[0] for _ in range(1)]


def prog(xs, n, log, store):
    return count(n)
"""


def test_recursion_through_a_region_as_deep_as_plain_python() -> None:
    """Findings F6: each level of a recursion through a region cost about 12 frames
    under jit (2 plain) on the thread that runs its items: RecursionError about 85
    levels down. Fixed by NOTE: [Deep on one thread, in order] in ``_rt``."""
    plain_module = load_tree(DEEP_RECURSION, TreeConfig())
    expected = run_tree(plain_module, plain_module.prog, ([], 300))
    assert expected.error is None
    problems = []
    for forced in (False, True):
        loaded = load_tree(DEEP_RECURSION, TreeConfig())
        with xcs.testing.force_overlap() if forced else contextlib.nullcontext():
            got = run_tree(loaded, xcs.jit(loaded.prog), ([], 300))
        problems += compare(f"depth 300, force_overlap={forced}", ([], 300), expected, got)
    assert problems == []


CHAIN_IN_A_HANDLER = """
def check(v):
    try:
        if v == 2:
            raise ValueError("inner", v)
        return model("check", v)
    except ValueError:
        raise KeyError("outer", v)


def prog(xs, n, log, store):
    try:
        raise LookupError("primary", n)
    except LookupError:
        return [check(x) for x in xs]
"""


def test_an_error_chain_raised_inside_an_except_block_is_kept() -> None:
    """Findings F10 (fixed on main by 013efc0): the item's error, re-raised inside the
    entry's except block, got the handled exception as ``__context__`` and lost the
    ValueError behind the KeyError."""
    plain_module = load_tree(CHAIN_IN_A_HANDLER, TreeConfig())
    expected = run_tree(plain_module, plain_module.prog, ([1, 2], 0))
    assert _chain(expected.error) == [
        ("KeyError", ("outer", 2), False),
        ("ValueError", ("inner", 2), False),
        ("LookupError", ("primary", 0), False),
    ]
    problems = []
    for forced in (False, True):
        loaded = load_tree(CHAIN_IN_A_HANDLER, TreeConfig())
        with xcs.testing.force_overlap() if forced else contextlib.nullcontext():
            got = run_tree(loaded, xcs.jit(loaded.prog), ([1, 2], 0))
        problems += compare(f"force_overlap={forced}", ([1, 2], 0), expected, got)
    assert problems == []


MUTUAL_RECURSION_EFFECTS = """
def p0(v, d, log, store):
    if d <= 0:
        return model("p0.3", v)
    rs = [q1(w, d - 1, log, store) for w in range(v % 3 + 1)]
    return sum(i * r for i, r in enumerate(rs, 1)) % 97


def q1(v, d, log, store):
    if d <= 0:
        return model("q1.2", v)
    log.append(("q1", v))
    return p0(v, d - 1, log, store)


def prog(xs, n, log, store):
    r1 = [q1(x, 2, log, store) for x in xs]
    r2 = []
    for x in xs:
        r2.append(p0(x, 2, log, store))
    return (r1, r2,)
"""

SWAPPED_THROUGH_A_CYCLE = """
def a(v, d, x, y):
    r = model("a", v)
    y.append(("a", v, d))
    if d > 0:
        b(v, d - 1, x, y)
    return r


def b(v, d, p, q):
    return a(v, d, q, p)  # the lists swap places on each turn of the cycle


def prog(xs, n, log, store):
    return [a(x, 1, log, []) for x in xs]  # only log is shared: a changes it via b
"""


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(MUTUAL_RECURSION_EFFECTS, id="mutual_recursion"),
        pytest.param(SWAPPED_THROUGH_A_CYCLE, id="swapped_through_a_cycle"),
    ],
)
def test_a_change_made_through_a_cycle_of_calls_keeps_program_order(source: str) -> None:
    """Found by this suite (400 examples): in a cycle of calls the analysis of what a
    callee changes met itself, assumed "nothing", and cached what it found on the way
    as final (NOTE: [Changes through a cycle] in ``_rt``): a loop calling ``p0(x,
    log)`` overlapped and its appends landed in completion order. In the second
    program ``a`` changes its ``x`` only through ``b``, which passes it back to ``a``
    as ``y``: found only by analysing ``a`` again with what the first pass found."""
    check_tree(source, TreeConfig(latency=0.002), ([3, 5], 0), ([1, 0], 0))
    check_tree(source, TreeConfig(latency=0.002), ([2, 1], 0), ([1, 2], 0))


PASSED_ON_UNPACKED = """
def f3(v, log, store):
    rs = []
    for w in range(v % 3 + 1):
        log.append(("f3", w))
        rs.append(model("f3", w))
    return sum(rs) % 97


def run0(v, log, store):
    return (f3(*[v + 1, log, store]) + model("run0", v)) % 97  # log passed unpacked


def prog(xs, n, log, store):
    return [run0(x, log, store) for x in xs]
"""


def test_a_shared_argument_passed_on_inside_an_unpacked_list_keeps_program_order() -> None:
    """Found by this suite (2500 examples, under force_overlap): ``run0`` passes ``log``
    on as ``f3(*[v + 1, log, store])``, which the analysis of what a callee changes
    did not read (the region's own call sites did), so the items overlapped and
    ``f3``'s appends interleaved."""
    check_tree(PASSED_ON_UNPACKED, TreeConfig(latency=0.002), ([0, 0, 0], 0), ([1, 2], 0))
