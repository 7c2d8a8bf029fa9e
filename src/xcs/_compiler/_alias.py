"""Which locals of a function hold objects nothing else can reach.

A parallel loop defers its accumulations (``out.append(x)``, ``d[k] = v``,
``total += x``) and replays them in program order after each iteration (see
``_codegen``). Between the moment the sequential program would have made such a write
and the replay, the accumulator is stale: that is invisible only if nothing reads it
meanwhile. The loop body's own reads of the name are checked where loops are
analysed; this module answers the other half: can the object be reached *another
way*, through an alias (``get = counts.get``, ``alias = out``), a callee it was passed
to, a container or attribute it was stored in, or because it came from elsewhere (a
parameter, an attribute, a global)?

NOTE: [Unaliased locals]
A local is *unaliased* when every binding of it in the function makes a fresh object
(a display, a comprehension, ``list()``, ``dict()``, ``defaultdict(...)``...) and every
read of it is one that cannot hand the object on: a method call made at once
(``out.append(x)``, ``d.get(k)``; not ``d.keys()`` kept in a variable), an item
read or write, iteration in a ``for`` or a comprehension, a test, a comparison, an
operator, ``return``, or an argument to a builtin that only reads it (``len``,
``sorted``, ``print``...). Anything else (assigned to another name, passed to any
other call, stored, captured by a closure) lets it escape. A local bound only to
immutable values (numbers, strings: ``total = 0``) cannot be changed through an
alias at all, so its augmented assignments are safe to defer wherever it goes.
Conservative by construction: "unaliased" is a proof, "escapes" may be a false alarm
that only costs parallelism, with the reason shown by ``xcs.explain``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

__all__ = ["AliasFacts", "alias_facts", "fresh_value"]

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_children: Any = ast.iter_child_nodes
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

# Calls that return a new container (by name, or as a module attribute:
# ``collections.deque()``).
_FRESH_CALLS = frozenset(
    {
        "list",
        "dict",
        "set",
        "frozenset",
        "tuple",
        "bytearray",
        "defaultdict",
        "OrderedDict",
        "Counter",
        "deque",
    }
)
# Builtins that read an argument without keeping a reference to it (or to an
# iterator over it) after they return.
_READING_BUILTINS = frozenset(
    {
        "len",
        "sorted",
        "list",
        "tuple",
        "set",
        "frozenset",
        "dict",
        "sum",
        "min",
        "max",
        "any",
        "all",
        "str",
        "repr",
        "print",
        "isinstance",
        "bool",
        "hash",
        "id",
        "type",
        "format",
        "abs",
        "round",
        "int",
        "float",
    }
)
# Methods whose result is a live view of (or an iterator over) their object: kept in
# a variable, they read the object later.
_VIEW_METHODS = frozenset(
    {"keys", "values", "items", "__iter__", "__reversed__", "elements", "__self__"}
)
# Builtins returning immutable values, for ``total = int(...)`` and the like.
_IMMUTABLE_CALLS = frozenset(
    {"int", "float", "str", "bool", "len", "abs", "round", "complex", "ord", "chr", "hash"}
)


def fresh_value(expr: ast.expr | None) -> bool:
    """True if evaluating ``expr`` makes a new object that nothing else refers to."""
    if expr is None:
        return False
    if isinstance(expr, (ast.List, ast.Dict, ast.Set, ast.Tuple, *_COMPREHENSIONS)):
        return True
    if isinstance(expr, ast.Constant | ast.JoinedStr):
        return True
    if isinstance(expr, ast.Call):
        func = expr.func
        name = (
            func.id
            if isinstance(func, ast.Name)
            else func.attr
            if isinstance(func, ast.Attribute)
            else None
        )
        return name in _FRESH_CALLS or name in _IMMUTABLE_CALLS
    return _immutable_value(expr)


def _immutable_value(expr: ast.expr) -> bool:
    """True if ``expr`` surely evaluates to an immutable value (a number, a string)."""
    if isinstance(expr, ast.Constant | ast.JoinedStr | ast.Compare):
        return True
    if isinstance(expr, ast.UnaryOp):
        return _immutable_value(expr.operand)
    if isinstance(expr, ast.BinOp):
        return _immutable_value(expr.left) and _immutable_value(expr.right)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        return expr.func.id in _IMMUTABLE_CALLS
    return False


@dataclass(frozen=True)
class AliasFacts:
    """What a function's locals may share (NOTE: [Unaliased locals])."""

    unaliased: frozenset[str]  # fresh objects that never escape
    immutable: frozenset[str]  # bound only to immutable values

    def deferrable(self, name: str, *, augmented: bool) -> bool:
        """May writes to the local ``name`` be deferred and replayed in order?"""
        return name in self.unaliased or (augmented and name in self.immutable)


def alias_facts(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> AliasFacts:
    """The alias facts of ``function``'s own locals (nested scopes are theirs)."""
    global _children
    from xcs._compiler._analysis import children  # fields that hold nodes only

    _children = children
    walker = _Walker()
    if isinstance(function, ast.Lambda):
        return AliasFacts(frozenset(), frozenset())
    params = {
        a.arg for a in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs)
    }
    for extra in (function.args.vararg, function.args.kwarg):
        if extra is not None:
            params.add(extra.arg)
    walker.not_fresh |= params
    walker.not_immutable |= params
    for stmt in function.body:
        walker.visit(stmt, None)
    bound = walker.bound - walker.not_fresh
    return AliasFacts(
        frozenset(bound - walker.escaped),
        frozenset(walker.bound - walker.not_immutable),
    )


class _Walker:
    """One pass over a function's own code, with each node's parent at hand."""

    def __init__(self) -> None:
        self.bound: set[str] = set()  # names bound in the function's own scope
        self.not_fresh: set[str] = set()  # some binding is not a fresh object
        self.not_immutable: set[str] = set()  # some binding may be mutable
        self.escaped: set[str] = set()  # some read may hand the object on

    def visit(self, node: ast.AST, parent: ast.AST | None) -> None:
        if isinstance(node, ast.Name):
            self._name(node, parent)
            return
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.attr in _VIEW_METHODS
        ):
            if not _view_consumed(node, parent):
                self.escaped.add(node.func.value.id)
            for argument in (*node.args, *node.keywords):
                self.visit(argument, node)
            return
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if isinstance(node.value.ctx, ast.Load) and not _harmless_attribute(node, parent):
                self.escaped.add(node.value.id)
            return  # the rest of the chain is the attribute's, not a local's
        if isinstance(node, _SCOPES):
            self._scope(node)
            return
        if isinstance(node, ast.Tuple | ast.List) and isinstance(parent, ast.Return):
            for element in node.elts:  # ``return out, total``: each is returned
                self.visit(element, parent)
            return
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._bind(target, node.value)
        elif isinstance(node, ast.AnnAssign):
            self._bind(node.target, node.value, annotated_only=node.value is None)
        elif isinstance(node, ast.NamedExpr):
            self._bind(node.target, node.value)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self._bind(node.target, None)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            self._bind(node.optional_vars, None)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self._taint(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                self._taint((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            self._taint(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            self._taint(node.rest)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            for name in node.names:
                self._taint(name)
                self.escaped.add(name)
        for child in _children(node):
            self.visit(child, node)

    def _scope(self, node: ast.AST) -> None:
        # Defaults and decorators are evaluated here; the body reads are closures'
        # (their names are cells, which loops refuse to write anyway). Every name a
        # nested scope reads escapes into it.
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self._taint(node.name)
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Load):
                self.escaped.add(inner.id)

    def _taint(self, name: str) -> None:
        self.bound.add(name)
        self.not_fresh.add(name)
        self.not_immutable.add(name)

    def _bind(self, target: ast.AST, value: ast.expr | None, annotated_only: bool = False) -> None:
        if annotated_only:
            return
        if isinstance(target, ast.Name):
            self.bound.add(target.id)
            if not fresh_value(value):
                self.not_fresh.add(target.id)
            if value is None or not _immutable_value(value):
                self.not_immutable.add(target.id)
            return
        if isinstance(target, ast.Starred):
            self._bind(target.value, None)
        elif isinstance(target, ast.Tuple | ast.List):
            values: list[ast.expr | None] = [None] * len(target.elts)
            if (
                isinstance(value, ast.Tuple | ast.List)
                and len(value.elts) == len(target.elts)
                and not any(isinstance(e, ast.Starred) for e in (*value.elts, *target.elts))
            ):
                values = list(value.elts)  # ``out, total = [], 0``: element by element
            for element, element_value in zip(target.elts, values, strict=True):
                self._bind(element, element_value)

    def _name(self, node: ast.Name, parent: ast.AST | None) -> None:
        if not isinstance(node.ctx, ast.Load):
            if isinstance(node.ctx, ast.Store) and isinstance(parent, ast.AugAssign):
                self.bound.add(node.id)  # keeps its object (lists) or rebinds (numbers)
            elif isinstance(node.ctx, ast.Store) and isinstance(parent, ast.comprehension):
                pass  # a comprehension's own variable
            return
        if not _harmless_read(node, parent):
            self.escaped.add(node.id)


def _harmless_read(node: ast.Name, parent: ast.AST | None) -> bool:
    """Can this read of a name not hand its object on? (NOTE: [Unaliased locals])"""
    if parent is None or isinstance(
        parent,
        ast.Compare
        | ast.UnaryOp
        | ast.BinOp
        | ast.FormattedValue
        | ast.Return
        | ast.Expr
        | ast.If
        | ast.While
        | ast.Assert,
    ):
        return True
    if isinstance(parent, ast.Subscript):
        return parent.value is node
    if isinstance(parent, ast.IfExp):
        return parent.test is node
    if isinstance(parent, ast.comprehension | ast.For | ast.AsyncFor):
        return parent.iter is node
    if isinstance(parent, ast.Call):
        if parent.func is node:
            return True  # called: a function, not an accumulator
        return _reading_builtin(parent)
    return False  # assigned, stored, passed on, ``N or default``...


def _reading_builtin(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Name) and call.func.id in _READING_BUILTINS


def _harmless_attribute(node: ast.Attribute, parent: ast.AST | None) -> bool:
    """``N.method(...)``, called at once, hands N on only if it makes a view of it
    (``d.items()``), and a view is harmless only where it is used up at once."""
    if not isinstance(parent, ast.Call) or parent.func is not node:
        return False  # ``get = N.get``, ``N.attr``: the bound method or value escapes
    return node.attr not in _VIEW_METHODS


def _view_consumed(call: ast.Call, parent: ast.AST | None) -> bool:
    if isinstance(parent, ast.comprehension | ast.For | ast.AsyncFor):
        return parent.iter is call
    return isinstance(parent, ast.Call) and call in parent.args and _reading_builtin(parent)
