"""Leaves of the call tree run as written, decided from their bytecode (NOTE: [Leaves
run as written] in ``_leaf``): what is a leaf and what is not, that a leaf is never
compiled, that a function above a leaf still is when it has something to overlap, and
that the first call still overlaps through leaves (barriers)."""

from __future__ import annotations

import json
import os.path
import threading
import time
from typing import Any

import pytest
from tests.compiler._forget import forget

import xcs
from xcs._compiler import _jit, _leaf, _rt
from xcs._compiler._leaf import runs_as_written

TIMEOUT = 10.0


class Model:
    """A callable object: calls meet at a barrier of ``parties`` (if any)."""

    def __init__(self, parties: int | None = None) -> None:
        self.barrier = threading.Barrier(parties, timeout=TIMEOUT) if parties else None
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, prompt: str) -> str:
        with self.lock:
            self.calls.append(prompt)
        if self.barrier is not None:
            self.barrier.wait()
        return prompt.upper()


model = Model()


# -- what is a leaf ----------------------------------------------------------------------


def no_call(x: int) -> int:
    return x + 1


def library_call(x: float) -> None:
    time.sleep(x)


def module_attribute_call(a: str, b: str) -> str:
    return os.path.join(a, b)


def builtin_call(xs: list[int]) -> int:
    return len(xs)


def callable_object(prompt: str) -> str:
    return model(prompt)


def to_a_leaf(q: str) -> str:
    return callable_object(f"about {q}")


def formats(q: str, n: int) -> str:
    return f"{q!r}: {n:>4} {q.upper if n else q}"


def two_calls_one_assignment(q: str) -> str:
    first = model(q)
    return json.dumps(first)


def nested_calls(prompt: str) -> str:
    return str(model(prompt))


def two_assignments(q: str) -> str:
    first = model(q)
    second = model(q + "?")
    return first + second


def on_a_local(q: str) -> str:
    return q.upper()


def a_loop(qs: list[str]) -> list[str]:
    out = []
    for q in qs:
        out.append(q)
    return out


def a_comprehension(qs: list[str]) -> list[str]:
    return [q.strip() for q in qs]


def a_with_block(lock: Any) -> int:
    with lock:
        return 1


def a_branch_first(q: str) -> str:
    if not q:
        return ""
    return model(q)


def to_a_loop(qs: list[str]) -> list[str]:
    return a_loop(qs)


def ping(n: int) -> int:
    return pong(n)


def pong(n: int) -> int:
    return ping(n)


def an_item(table: dict[str, Any], q: str) -> Any:
    return table["model"](q)


def unknown_global(q: str) -> Any:
    return not_defined_anywhere(q)  # type: ignore[name-defined]  # noqa: F821


async def a_coroutine(q: str) -> str:
    return q


class Holder:
    helper = staticmethod(on_a_local)


def through_a_class(q: str) -> str:
    return Holder.helper(q)


def make_closure() -> Any:
    inner = model

    def uses_a_cell(q: str) -> str:
        return inner(q)

    return uses_a_cell


class Summarize(xcs.Operator):
    def forward(self, text: str) -> str:
        return text


summarize = Summarize()


def an_operator(q: str) -> str:
    return summarize(q)


@pytest.mark.parametrize(
    "fn",
    [
        no_call,
        library_call,
        module_attribute_call,
        builtin_call,
        callable_object,
        to_a_leaf,
        formats,
        two_calls_one_assignment,
        nested_calls,
    ],
    ids=lambda fn: fn.__name__,
)
def test_leaves(fn: Any) -> None:
    assert runs_as_written(fn)


@pytest.mark.parametrize(
    "fn",
    [
        two_assignments,
        on_a_local,
        a_loop,
        a_comprehension,
        a_with_block,
        a_branch_first,
        to_a_loop,
        ping,
        an_item,
        unknown_global,
        a_coroutine,
        through_a_class,
        make_closure(),
        an_operator,
    ],
    ids=lambda fn: fn.__name__,
)
def test_not_leaves(fn: Any) -> None:
    # Each may call the user's code through something the bytecode does not name (a
    # local, an item, a cell, a class attribute, an operator), may hold a region, or
    # calls such a function: the compiler decides.
    assert not runs_as_written(fn)


def test_a_leaf_follows_what_its_target_is_known_to_run() -> None:
    namespace: dict[str, Any] = {"model": model}
    source = (
        "def helper(qs):\n    return [model(q) for q in qs]\n\n"
        "def caller(qs):\n    return helper(qs)\n"
    )
    exec(compile(source, "<user code>", "exec"), namespace)
    helper, caller = namespace["helper"], namespace["caller"]
    assert not runs_as_written(caller)  # its callee has a region
    helper.__dict__[_rt.DISPATCH_KEY] = (helper, helper.__code__, helper)  # as written
    assert runs_as_written(caller)
    helper.__dict__[_rt.DISPATCH_KEY] = (helper, helper.__code__, no_call)  # compiled
    assert not runs_as_written(caller)


# -- never compiled, and what is above them is ---------------------------------------------


def leaf_draft(q: str, i: int) -> str:
    return model(f"{q}-{i}")


def drafts(q: str) -> list[str]:
    return [leaf_draft(q, i) for i in range(3)]


def step(q: str) -> list[str]:
    return drafts(q)  # one call, but to a function with a region: compiled


def pipeline(qs: list[str]) -> list[list[str]]:
    return [step(q) for q in qs]


def test_the_first_call_overlaps_through_a_leaf_and_compiles_only_what_has_regions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    global model
    model = Model(9)  # 3 questions x 3 drafts in flight at once, or no return
    forget(pipeline, step, drafts, leaf_draft)
    compiled: list[str] = []
    real = _jit._try_compile

    def counting(fn: Any, window: Any) -> Any:
        if fn.__module__ == __name__:  # not another test's function compiled ahead
            compiled.append(fn.__name__)
        return real(fn, window)

    monkeypatch.setattr(_jit, "_try_compile", counting)
    try:
        got = xcs.jit(pipeline)(["a", "b", "c"])
    finally:
        model = Model()
    assert got == [[f"{q.upper()}-{i}" for i in range(3)] for q in "abc"]
    assert sorted(compiled) == ["drafts", "pipeline", "step"]
    assert _rt.dispatch_target(leaf_draft) is leaf_draft
    assert "leaf_draft: runs as written" in xcs.explain(pipeline)


# -- a leaf's target rebound later: the same results ---------------------------------------


def rebinding_target(q: str) -> str:
    return q + "!"


def calls_the_target(q: str) -> str:
    return rebinding_target(q)


def fan_out(qs: list[str]) -> list[str]:
    return [calls_the_target(q) for q in qs]


def test_a_leaf_whose_global_is_rebound_later_gives_what_plain_python_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forget(fan_out, calls_the_target, rebinding_target)
    jitted = xcs.jit(fan_out)
    assert jitted(["a", "b"]) == fan_out(["a", "b"]) == ["a!", "b!"]
    seen: list[str] = []

    def with_a_region(q: str) -> str:
        parts = [p.upper() for p in q]
        seen.append(q)
        if q == "boom":
            raise ValueError(q)
        return "".join(parts)

    monkeypatch.setitem(globals(), "rebinding_target", with_a_region)
    assert jitted(["ab", "c"]) == fan_out(["ab", "c"]) == ["AB", "C"]
    assert seen == ["ab", "c", "ab", "c"]
    with pytest.raises(ValueError) as plain:
        fan_out(["x", "boom", "y"])
    with pytest.raises(ValueError) as under_jit:
        jitted(["x", "boom", "y"])
    assert under_jit.value.args == plain.value.args == ("boom",)


# -- the raw bytecode scan reads what dis reads --------------------------------------------


def _shape_by_dis(code: Any) -> Any:
    """``_leaf._shape`` written with ``dis.get_instructions`` (slow, plain)."""
    import dis

    if any(isinstance(c, type(code)) for c in code.co_consts):
        return None
    instructions = list(dis.get_instructions(code))
    names = {dis.opname[op] for op in _leaf._BAIL_OPS}
    if any(ins.opname in names for ins in instructions):
        return None
    call_names = {dis.opname[op] for op in _leaf._CALL_OPS}
    calls = [i for i, ins in enumerate(instructions) if ins.opname in call_names]
    stores = [ins for ins in instructions if ins.opname.startswith(("STORE_", "UNPACK_"))]
    if len(calls) > 1 and len(stores) > 1:
        return None
    paths = []
    for call in calls:
        where = instructions[call].positions
        if where is None or where.lineno is None or where.col_offset is None:
            return None
        path: list[str] = []
        for ins in instructions[:call]:
            if ins.opcode in _leaf._JUMP_OPS:
                return None
            if ins.opcode in _leaf._NEUTRAL_OPS or ins.positions is None:
                continue
            start = (ins.positions.lineno, ins.positions.col_offset)
            if start != (where.lineno, where.col_offset):
                continue
            wanted = {"LOAD_ATTR", "LOAD_METHOD"} if path else {"LOAD_GLOBAL"}
            if ins.opname not in wanted:
                return None
            path.append(ins.argval)
        if not path:
            return None
        paths.append(tuple(path))
    return tuple(paths)


def test_the_raw_scan_agrees_with_dis_on_the_standard_library_and_xcs() -> None:
    import argparse
    import collections
    import email.message
    import inspect
    import textwrap

    import xcs._compiler._codegen

    codes = []
    for module in (
        argparse,
        collections,
        email.message,
        inspect,
        json,
        textwrap,
        xcs._compiler._codegen,
    ):
        for value in vars(module).values():
            candidates = [value, *vars(value).values()] if isinstance(value, type) else [value]
            for fn in candidates:
                fn = getattr(fn, "__func__", fn)
                if isinstance(fn, type(test_leaves)):
                    codes.append(fn.__code__)
    assert len(codes) > 500
    leaves = 0
    for code in codes:
        expected = _shape_by_dis(code)
        assert _leaf._shape(code) == expected, code
        leaves += expected is not None
    assert leaves > 50  # both ways, many functions are leaves


# -- a callee that changes none of its arguments, told from its bytecode ----------------


def formats_only(question: str, attempt: int) -> str:
    return model(f"{question} (attempt {attempt:>3})")


def never_reads(question: str) -> str:
    return "constant"


def appends(log: list[str], item: str) -> None:
    log.append(f"{item}")


def passes_on(log: list[str]) -> None:
    appends(log, "x")


def augments(total: list[int]) -> list[int]:
    total += [1]
    return total


def stores_into(box: dict[str, str], key: str) -> None:
    box[f"{key}"] = "v"


def formats_an_attribute(item: Any) -> str:
    return f"{item.name}"


def reads_in_a_comprehension(items: list[str]) -> list[str]:
    return [f"{i}" for i in items]


def captured(items: list[str]) -> Any:
    return lambda: f"{items}"


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (formats_only, True),
        (never_reads, True),
        (no_call, False),  # x + 1: a read that is not an f-string field
        (appends, False),
        (passes_on, False),
        (augments, False),
        (stores_into, False),
        (formats_an_attribute, False),
        (reads_in_a_comprehension, False),
        (captured, False),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_which_functions_change_no_parameter_by_their_bytecode(fn: Any, expected: bool) -> None:
    assert _leaf.changes_no_parameter(fn.__code__) is expected
    if expected:
        assert _rt._changed_parameters_read(fn) == {}


def test_no_function_said_to_change_no_parameter_changes_one_by_its_source() -> None:
    """Over real modules: whenever the bytecode says no parameter is changed, the
    analysis of the source (what a region's first execution read before) finds none."""
    import argparse
    import email.message
    import textwrap

    import xcs._compiler._codegen

    told = 0
    for module in (argparse, email.message, json, textwrap, xcs._compiler._codegen):
        for value in vars(module).values():
            candidates = [value, *vars(value).values()] if isinstance(value, type) else [value]
            for fn in candidates:
                fn = getattr(fn, "__func__", fn)
                if isinstance(fn, type(test_leaves)) and _leaf.changes_no_parameter(fn.__code__):
                    told += 1
                    assert _rt._changed_parameters_read(fn) == {}, fn
    assert told > 5
