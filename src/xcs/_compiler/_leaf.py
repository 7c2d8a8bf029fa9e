"""What a function's bytecode tells without reading its source: that its compiled
form would be the function itself (NOTE: [Leaves run as written]), and that it
changes none of the objects passed to it (``changes_no_parameter``).

NOTE: [Leaves run as written]
A compiled caller dispatches each call to the callee's compiled form (NOTE: [Call
tree] in _codegen), and the first dispatch of a function compiles it: its source is
read and parsed, rewritten, and compiled again. On a first call that work sits on the
critical path, once per level of the call tree, before the first model call starts.
Most leaves of a call tree (a prompt formatter, the function that makes the model
call) gain nothing from it: they have no loop, no comprehension, no ``with`` block,
and one call or one assignment at most (a fork needs two assignments that call), so
nothing in them can become a region; and each call they make goes to a library
function, a callable object, or another such leaf, which a dispatch would hand back
unchanged. Their compiled form would be the function
itself, so they run as written, decided from the code object in microseconds.

The test is conservative: anything it does not recognise (a call on a local, an
attribute of something that is not a module, a closure variable, a jump before the
call, an instruction set it does not know) sends the function to the compiler, which
decides as before. The call's target is read now, from the function's globals: a
global rebound later to a function with regions is then called as written from this
leaf (the same values and errors, in order), as a function that runs as written
would call it.
"""

from __future__ import annotations

import dis
import inspect
import sys
import types
import weakref
from collections.abc import Iterator
from typing import Any

from xcs._compiler import _rt

__all__ = ["changes_no_parameter", "runs_as_written"]

_OPS = dis.opmap
# Instructions that make a call (the names differ across CPython versions).
_CALL_OPS = frozenset(
    _OPS[name]
    for name in ("CALL", "CALL_KW", "CALL_FUNCTION", "CALL_FUNCTION_KW", "CALL_FUNCTION_EX")
    if name in _OPS
) | frozenset({_OPS["CALL_METHOD"]} if "CALL_METHOD" in _OPS else ())
# Instructions that may start a region or that the compiler treats specially (loops,
# with blocks, nested functions and comprehensions, awaits and yields), and reads of
# closure cells (their values are not followed).
_BAIL_OPS = frozenset(
    _OPS[name]
    for name in (
        "FOR_ITER",
        "JUMP_BACKWARD",
        "JUMP_BACKWARD_NO_INTERRUPT",
        "JUMP_ABSOLUTE",
        "BEFORE_WITH",
        "BEFORE_ASYNC_WITH",
        "SETUP_WITH",
        "SETUP_ASYNC_WITH",
        "MAKE_FUNCTION",
        "LOAD_BUILD_CLASS",
        "GET_AWAITABLE",
        "YIELD_VALUE",
        "SEND",
        "LOAD_DEREF",
        "LOAD_CLOSURE",
        "LOAD_CLASSDEREF",
        "LOAD_FROM_DICT_OR_DEREF",
    )
    if name in _OPS
)
# Instructions that store a value: a fork needs two assignments.
_STORE_OPS = frozenset(op for name, op in _OPS.items() if name.startswith(("STORE_", "UNPACK_")))
_JUMP_OPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)
# Instructions that carry no value of their own.
_NEUTRAL_OPS = frozenset(
    _OPS[name]
    for name in ("PUSH_NULL", "PRECALL", "KW_NAMES", "CACHE", "NOP", "RESUME")
    if name in _OPS
)
_EXTENDED_ARG = dis.EXTENDED_ARG
_LOAD_GLOBAL = _OPS["LOAD_GLOBAL"]
_LOAD_ATTR = _OPS["LOAD_ATTR"]
_ATTRIBUTE_OPS = frozenset(  # LOAD_METHOD: before 3.12
    _OPS[name] for name in ("LOAD_ATTR", "LOAD_METHOD") if name in _OPS
)
_NOT_COMPILED = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR | inspect.CO_COROUTINE
_MAX_DEPTH = 4
_MISSING = object()

# code -> the targets of its calls, each (global, attr, ...), or None (not a leaf).
# The code alone decides it; the targets are looked up at each test.
_shapes: weakref.WeakKeyDictionary[types.CodeType, tuple[tuple[str, ...], ...] | None] = (
    weakref.WeakKeyDictionary()
)


def runs_as_written(fn: types.FunctionType) -> bool:
    """True if ``fn``'s compiled form would be ``fn`` itself (NOTE: [Leaves run as
    written]); False when in doubt."""
    return _is_leaf(fn, 0, set())


def _is_leaf(fn: types.FunctionType, depth: int, seen: set[types.CodeType]) -> bool:
    code = fn.__code__
    if code in seen or depth > _MAX_DEPTH or code.co_flags & _NOT_COMPILED:
        return False
    try:
        shape = _shapes[code]
    except KeyError:
        shape = _shapes[code] = _shape(code)
    if shape is None:
        return False
    seen.add(code)
    for path in shape:
        target = _resolve(fn, path)
        if target is _MISSING or not _dispatch_leaves(target, depth, seen):
            return False
    return True


def _shape(code: types.CodeType) -> tuple[tuple[str, ...], ...] | None:
    """The targets of ``code``'s calls as global paths, or None if it may not be a
    leaf. Reads the bytecode only, as raw code units (``dis.get_instructions`` costs
    tens of microseconds per function, on the first call's critical path)."""
    if any(isinstance(const, types.CodeType) for const in code.co_consts):
        return None  # a nested function, class or comprehension
    raw = code.co_code
    ops = raw[::2]
    if not _BAIL_OPS.isdisjoint(ops):
        return None
    calls = [unit for unit, op in enumerate(ops) if op in _CALL_OPS]
    if len(calls) > 1 and sum(ops.count(op) for op in _STORE_OPS) > 1:
        return None  # two assignments that call may be a fork
    positions = list(code.co_positions())
    paths = []
    for unit in calls:
        path = _target(code, raw, ops, positions, unit)
        if path is None:
            return None
        paths.append(path)
    return tuple(paths)


def _target(
    code: types.CodeType, raw: bytes, ops: bytes, positions: list[Any], unit: int
) -> tuple[str, ...] | None:
    """The global path the call at code unit ``unit`` calls, or None if it is not
    read that way."""
    line, _, column, _ = positions[unit]
    if line is None or column is None:
        return None
    path: list[str] = []
    for i, op, arg in _decoded(raw, ops, unit):
        if op in _JUMP_OPS:
            return None  # a branch before the call: its target is not one expression
        if op not in _NEUTRAL_OPS:
            at_line, _, at_column, _ = positions[i]
            # Only what starts where the call does is part of the expression its
            # target is read by: a global, then attributes of it. Anything else (a
            # local, an item, a call's result, an argument that starts there too) is
            # not followed.
            if (at_line, at_column) == (line, column):
                if not (op in _ATTRIBUTE_OPS if path else op == _LOAD_GLOBAL):
                    return None
                path.append(_name(code, op, arg))
    return tuple(path) if path else None


def _name(code: types.CodeType, op: int, arg: int) -> str:
    """The name a LOAD_GLOBAL, LOAD_ATTR or LOAD_METHOD with ``arg`` loads."""
    shifted = op == _LOAD_GLOBAL or (op == _LOAD_ATTR and sys.version_info >= (3, 12))
    return code.co_names[arg >> 1 if shifted else arg]


def _resolve(fn: types.FunctionType, path: tuple[str, ...]) -> Any:
    """What ``path`` names now, from ``fn``'s globals (attributes of modules only: no
    user code runs), or _MISSING."""
    first, *attributes = path
    value = fn.__globals__.get(first, _MISSING)
    if value is _MISSING:
        value = _rt.builtins_of(fn.__globals__).get(first, _MISSING)
    for attribute in attributes:
        if type(value) is not types.ModuleType:
            return _MISSING
        value = value.__dict__.get(attribute, _MISSING)
    return value


def _dispatch_leaves(target: Any, depth: int, seen: set[types.CodeType]) -> bool:
    """Would ``_rt.callee(target)`` hand back ``target`` itself, as far as running
    it goes? (Mirrors ``_rt.callee`` without compiling anything.)"""
    kind = type(target)
    if kind is types.MethodType:
        target = target.__func__
        kind = type(target)
    if kind is not types.FunctionType:
        return getattr(kind, "__xcs_callee__", None) is None  # as _rt.callee looks it up
    if _rt.jit_state is not None and _rt.jit_state(target) is not None:
        return False  # a jit wrapper: _rt.callee hands back its target, one frame less
    known = _rt.dispatch_target(target)
    if known is not None:
        return known is target
    if target.__code__ in _rt.as_written or not _rt.compiles(target):
        return True
    return _is_leaf(target, depth + 1, seen)


# Instructions a parameter's value may go to, read only, when it goes nowhere else: a
# field of an f-string (the names differ across CPython versions).
_FORMAT_OPS = frozenset(
    _OPS[name] for name in ("FORMAT_VALUE", "FORMAT_SIMPLE", "CONVERT_VALUE") if name in _OPS
)
_LOAD_FAST = _OPS["LOAD_FAST"]
_LOAD_CONST = _OPS["LOAD_CONST"]
_FORMAT_VALUE = _OPS.get("FORMAT_VALUE")  # before 3.13; its arg & 4: a spec follows
_WITH_SPEC = 0x04
# Other instructions that read locals (3.12+): not followed, so not told apart.
_OTHER_FAST_LOADS = frozenset(
    op for name, op in _OPS.items() if name.startswith("LOAD_FAST") and op != _LOAD_FAST
)


def changes_no_parameter(code: types.CodeType) -> bool:
    """True if the function of ``code`` visibly changes none of the objects passed to
    it: every read of a parameter goes straight into an f-string field (a prompt
    builder: ``return call(f"{question} (attempt {i})")``). False when in doubt: the
    caller then reads the source (``_rt._changed_parameters``), which costs a parse,
    some 0.3 ms, on a region's first execution."""
    if any(isinstance(const, types.CodeType) for const in code.co_consts):
        return False  # a nested function or comprehension may read them
    count = code.co_argcount + code.co_kwonlyargcount
    if not set(code.co_varnames[:count]).isdisjoint(code.co_cellvars):
        return False  # read through a cell
    raw = code.co_code
    ops = raw[::2]
    if not _OTHER_FAST_LOADS.isdisjoint(ops):
        return False
    return not any(
        op == _LOAD_FAST and arg < count and not _formatted(raw, ops, i + 1)
        for i, op, arg in _decoded(raw, ops, len(ops))
    )


def _decoded(raw: bytes, ops: bytes, stop: int) -> Iterator[tuple[int, int, int]]:
    """(code unit, opcode, argument) of each instruction before code unit ``stop``,
    with the arguments of EXTENDED_ARG prefixes folded in."""
    arg = 0
    for i in range(stop):
        op = ops[i]
        arg = arg << 8 | raw[2 * i + 1]
        if op != _EXTENDED_ARG:
            yield i, op, arg
            arg = 0


def _formatted(raw: bytes, ops: bytes, unit: int) -> bool:
    """Whether the value loaded just before code unit ``unit`` goes straight into an
    f-string field: ``{p}``, or ``{p:>3}`` (a constant spec, then FORMAT_VALUE with
    a spec)."""
    following = _next_op(ops, unit)
    if following is None:
        return False
    if ops[following] in _FORMAT_OPS:
        return True
    if ops[following] != _LOAD_CONST or _FORMAT_VALUE is None:
        return False
    formats = _next_op(ops, following + 1)
    return (
        formats is not None
        and ops[formats] == _FORMAT_VALUE
        and ops[formats - 1] != _EXTENDED_ARG
        and bool(raw[2 * formats + 1] & _WITH_SPEC)
    )


def _next_op(ops: bytes, unit: int) -> int | None:
    """The code unit of the first instruction at or after ``unit`` that is not
    neutral, or None."""
    for at in range(unit, len(ops)):
        if ops[at] not in _NEUTRAL_OPS:
            return at
    return None
