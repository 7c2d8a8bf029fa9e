"""When a local is surely bound, and when an expression reads one late.

A forked statement (``a = f(x)`` spawned beside ``b = g(y)``) hands the locals its
value reads to the spawned task *by value, at spawn time*. Reading a local that is
unbound raises ``UnboundLocalError`` there and then, which is right only if the
sequential program would also have read it first thing. It would not when the read
is short-circuited (``x or b``, ``b if c else 0``) or comes after a call in the same
statement (``f(g(), b)`` calls ``g`` first). So a statement is forked only if each
local it reads late is surely bound at that point, which this module decides with a
small definite-assignment analysis (the one compilers use for "may be unbound"
warnings), conservative wherever control flow is unusual.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from ._analysis import parameter_names, target_names

__all__ = ["bound_before", "late_reads"]

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


# ---------------------------------------------------------------------------
# Late reads


def late_reads(expr: ast.expr) -> set[str]:
    """Names that evaluating ``expr`` may read conditionally or after a call (or an
    ``await``) has run.

    Walks the expression in Python's evaluation order. Names read only up front,
    unconditionally and before any call, are left out: reading them earlier, at
    spawn time, raises exactly where the sequential program would.
    """
    late: set[str] = set()
    state = [False]  # a call has run

    def visit(node: ast.AST, conditional: bool) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and (conditional or state[0]):
                late.add(node.id)
            return
        if isinstance(node, ast.Lambda):
            return  # not evaluated here (forks never spawn lambdas anyway)
        if isinstance(node, ast.BoolOp):
            visit(node.values[0], conditional)
            for value in node.values[1:]:
                visit(value, True)
            return
        if isinstance(node, ast.IfExp):
            visit(node.test, conditional)
            visit(node.body, True)
            visit(node.orelse, True)
            return
        if isinstance(node, ast.Compare):
            visit(node.left, conditional)
            for position, comparator in enumerate(node.comparators):
                visit(comparator, conditional or position > 0)  # a < b < c short-circuits
            return
        if isinstance(node, _COMPREHENSIONS):
            visit(node.generators[0].iter, conditional)
            # Everything else runs per item, zero or more times, and may call.
            first = node.generators[0]
            per_item: list[ast.AST] = [*first.ifs, *node.generators[1:]]
            if isinstance(node, ast.DictComp):
                per_item += [node.key, node.value]
            else:
                per_item.append(node.elt)
            # The variables of the comprehension (and of those nested in it) are
            # theirs (on Python 3.12+ they also appear among the function's locals,
            # comprehensions being inlined).
            own = {
                name.id
                for generator in ast.walk(node)
                if isinstance(generator, ast.comprehension)
                for name in ast.walk(generator.target)
                if isinstance(name, ast.Name)
            }
            for part in per_item:
                for inner in ast.walk(part):
                    if (
                        isinstance(inner, ast.Name)
                        and isinstance(inner.ctx, ast.Load)
                        and inner.id not in own
                    ):
                        late.add(inner.id)
            state[0] = True
            return
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None:
                    visit(key, conditional)
                visit(value, conditional)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, conditional)
        if isinstance(node, ast.Call | ast.Await | ast.Yield | ast.YieldFrom):
            state[0] = True

    visit(expr, False)
    return late


# ---------------------------------------------------------------------------
# Definite assignment


def bound_before(function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[int, frozenset[str]]:
    """For each statement of ``function`` (by ``id``), the locals surely bound when
    it starts. Statements missing from the map (unreachable ones) have none."""
    out: dict[int, frozenset[str]] = {}
    _block(function.body, frozenset(parameter_names(function.args)), out)
    return out


def _block(
    stmts: list[ast.stmt], bound: frozenset[str], out: dict[int, frozenset[str]]
) -> frozenset[str] | None:
    """Record each statement's entry set; the set after the block, or None if the
    block never ends normally (it returns, raises, breaks or continues)."""
    current: frozenset[str] | None = bound
    for stmt in stmts:
        if current is None:
            return None
        out[id(stmt)] = current
        current = _statement(stmt, current, out)
    return current


def _statement(
    stmt: ast.stmt, bound: frozenset[str], out: dict[int, frozenset[str]]
) -> frozenset[str] | None:
    if isinstance(stmt, ast.Assign):
        names = [n for target in stmt.targets for n in (target_names(target) or [])]
        return bound | frozenset(names)
    if isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        has_value = not isinstance(stmt, ast.AnnAssign) or stmt.value is not None
        if has_value and isinstance(stmt.target, ast.Name):
            return bound | {stmt.target.id}
        return bound
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return bound | {(a.asname or a.name).split(".")[0] for a in stmt.names}
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return bound | {stmt.name}
    if isinstance(stmt, ast.Delete):
        return bound - _deleted([stmt])
    if isinstance(stmt, ast.Return | ast.Raise | ast.Continue | ast.Break):
        return None
    if isinstance(stmt, ast.If):
        ends = [_block(stmt.body, bound, out), _block(stmt.orelse, bound, out)]
        return _meet(ends)
    if isinstance(stmt, ast.For | ast.AsyncFor | ast.While):
        # Later iterations start from an earlier one's end: only deletions take away.
        kept = bound - _deleted([*stmt.body, *stmt.orelse])
        start = kept
        if isinstance(stmt, ast.For | ast.AsyncFor):
            start = kept | frozenset(target_names(stmt.target) or ())
        _block(stmt.body, start, out)
        _block(stmt.orelse, kept, out)
        return kept
    if isinstance(stmt, ast.With | ast.AsyncWith):
        as_names = frozenset(n for item in stmt.items for n in _optional_target(item.optional_vars))
        inside = bound | as_names
        _block(stmt.body, inside, out)
        # A context manager may swallow the body's exception: its bindings are not sure.
        return inside - _deleted(stmt.body)
    if isinstance(stmt, ast.Try | ast.TryStar):
        return _try(stmt, bound, out)
    if isinstance(stmt, ast.Match):
        kept = bound - _deleted([s for case in stmt.cases for s in case.body])
        for case in stmt.cases:
            # A case's body runs only after its pattern matched, which bound its
            # captures (every alternative of an or-pattern binds the same names).
            _block(case.body, kept | _captures(case.pattern), out)
        return kept
    return bound  # Expr, Pass, Assert, Global, Nonlocal


def _try(
    stmt: ast.Try | ast.TryStar, bound: frozenset[str], out: dict[int, frozenset[str]]
) -> frozenset[str] | None:
    body_end = _block(stmt.body, bound, out)
    # A handler starts from any point of the body.
    at_raise = bound - _deleted(stmt.body)
    ends: list[frozenset[str] | None] = [
        _block(stmt.orelse, body_end, out) if body_end is not None else None
    ]
    for handler in stmt.handlers:
        name = {handler.name} if handler.name else set()
        end = _block(handler.body, at_raise | name, out)
        ends.append(None if end is None else end - name)  # `except E as n` unbinds n
    everything = [*stmt.body, *stmt.orelse, *(s for h in stmt.handlers for s in h.body)]
    _block(stmt.finalbody, bound - _deleted(everything), out)
    after = _meet(ends)
    if after is None:
        return None
    return after - _deleted(stmt.finalbody)


def _meet(ends: Iterable[frozenset[str] | None]) -> frozenset[str] | None:
    """Names bound at the end of every branch that ends normally."""
    reached = [end for end in ends if end is not None]
    if not reached:
        return None
    result = reached[0]
    for end in reached[1:]:
        result &= end
    return result


def _captures(pattern: ast.pattern) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.walk(pattern):
        if isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return frozenset(names)


def _optional_target(target: ast.expr | None) -> list[str]:
    return (target_names(target) or []) if target is not None else []


def _deleted(stmts: list[ast.stmt]) -> frozenset[str]:
    """Names a statement in ``stmts`` (at any depth, in this scope) may unbind: the
    targets of ``del`` and the names of ``except ... as``."""
    names: set[str] = set()
    pending: list[ast.AST] = list(stmts)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Delete):
            for target in node.targets:
                names.update(target_names(target) or ())
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, _SCOPES) and isinstance(
                child, ast.stmt | ast.excepthandler | ast.match_case
            ):
                pending.append(child)
    return frozenset(names)
