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
that only costs parallelism, with the reason shown by ``xcs.explain``. It is judged
per loop, by position: an escape or a binding after the loop, outside every loop
around it, cannot happen while the loop runs (``return {"summaries": summaries}``
after ``for doc in docs: summaries.append(...)`` leaves that loop parallel); one
before it, inside it, or in a loop around it can.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

__all__ = ["AliasFacts", "alias_facts", "fresh_value"]

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_children: Any = ast.iter_child_nodes
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
# Classes asked about together, as tuples (a union ``A | B`` would be built at every
# check, and the walk checks every node).
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_ITERATING = (ast.comprehension, ast.For, ast.AsyncFor)
_STRINGS_AND_CONSTANTS = (ast.Constant, ast.JoinedStr)
_IMMUTABLE_DISPLAYS = (ast.Constant, ast.JoinedStr, ast.Compare)
_SEQUENCES = (ast.Tuple, ast.List)
_IMPORTS = (ast.Import, ast.ImportFrom)
_CAPTURES = (ast.MatchAs, ast.MatchStar)
_DECLARATIONS = (ast.Global, ast.Nonlocal)
# The walk's dispatch, by exact class.
_SCOPE_CLASSES = frozenset(_SCOPES)
_SEQUENCE_CLASSES = frozenset(_SEQUENCES)
_LOOP_CLASSES = frozenset(_LOOPS)
_BINDING_CLASSES = frozenset(
    {ast.Assign, ast.AnnAssign, ast.NamedExpr, ast.withitem, ast.ExceptHandler}
    | {ast.Import, ast.ImportFrom, ast.MatchAs, ast.MatchStar, ast.MatchMapping}
    | {ast.Global, ast.Nonlocal}
)

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
    if isinstance(expr, _STRINGS_AND_CONSTANTS):
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
    if isinstance(expr, _IMMUTABLE_DISPLAYS):
        return True
    if isinstance(expr, ast.UnaryOp):
        return _immutable_value(expr.operand)
    if isinstance(expr, ast.BinOp):
        return _immutable_value(expr.left) and _immutable_value(expr.right)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        return expr.func.id in _IMMUTABLE_CALLS
    return False


Position = tuple[int, int]
Span = tuple[Position, Position]


class _Events:
    """Where in the function something happened to each name: a position, and the
    spans of the loops around it (NOTE: [Unaliased locals], flow)."""

    def __init__(self, walker: _Walker) -> None:
        self.walker = walker
        self.by_name: dict[str, list[tuple[Position, tuple[Span, ...]]]] = {}

    def add(self, name: str) -> None:
        walker = self.walker
        self.by_name.setdefault(name, []).append((walker.here, walker.loops))

    def matter_for(self, name: str, loop: Span, around: set[Span]) -> bool:
        """Can one of ``name``'s events happen before or while ``loop`` runs? Only
        those after it, outside every loop around it, cannot."""
        return any(
            position < loop[1] or not around.isdisjoint(spans)
            for position, spans in self.by_name.get(name, ())
        )


@dataclass(frozen=True)
class _Facts:
    """What one walk of a function found (NOTE: [Unaliased locals])."""

    bound: frozenset[str]
    not_fresh: _Events | None = None
    not_immutable: _Events | None = None
    escaped: _Events | None = None
    loops: tuple[Span, ...] = ()


class AliasFacts:
    """What a function's locals may share (NOTE: [Unaliased locals]).

    The function is walked when the first question is asked: most loops are kept in
    order (or made parallel) for reasons found before any accumulation is looked at,
    and most functions never ask.
    """

    __slots__ = ("_facts", "_function")

    def __init__(self, function: ast.FunctionDef | ast.AsyncFunctionDef | None) -> None:
        self._function = function  # None: a lambda, nothing of its own to defer
        self._facts: _Facts | None = None

    def deferrable(self, name: str, *, augmented: bool, loop: ast.AST | None = None) -> bool:
        """May writes to the local ``name`` be deferred and replayed in order, in
        ``loop``? Escapes and bindings after the loop, outside the loops around it,
        cannot reach it (``return {"out": out}``)."""
        facts = self._facts
        if facts is None:
            facts = self._facts = _walk_function(self._function)
        if (
            name not in facts.bound
            or facts.not_fresh is None
            or facts.not_immutable is None
            or facts.escaped is None
        ):
            return False
        span = _span(loop) if loop is not None else ((1 << 30, 0), (1 << 30, 0))
        around = {s for s in facts.loops if s[0] <= span[0] and span[1] <= s[1] and s != span}
        if not facts.not_fresh.matter_for(name, span, around) and not facts.escaped.matter_for(
            name, span, around
        ):
            return True
        return augmented and not facts.not_immutable.matter_for(name, span, around)


def _span(node: ast.AST) -> Span:
    return (
        (getattr(node, "lineno", 0), getattr(node, "col_offset", 0)),
        (getattr(node, "end_lineno", 1 << 30) or 1 << 30, getattr(node, "end_col_offset", 0) or 0),
    )


def alias_facts(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> AliasFacts:
    """The alias facts of ``function``'s own locals (nested scopes are theirs),
    worked out when first asked."""
    return AliasFacts(None if isinstance(function, ast.Lambda) else function)


def _walk_function(function: ast.FunctionDef | ast.AsyncFunctionDef | None) -> _Facts:
    global _children
    from xcs._compiler._analysis import children  # fields that hold nodes only

    _children = children
    if function is None:
        return _Facts(frozenset())
    walker = _Walker()
    params = {
        a.arg for a in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs)
    }
    for extra in (function.args.vararg, function.args.kwarg):
        if extra is not None:
            params.add(extra.arg)
    walker.here = (0, 0)  # before everything
    for name in params:
        walker.bound.add(name)
        walker.not_fresh.add(name)
        walker.not_immutable.add(name)
    for stmt in function.body:
        walker.visit(stmt, None)
    return _Facts(
        frozenset(walker.bound),
        walker.not_fresh,
        walker.not_immutable,
        walker.escaped,
        tuple(walker.all_loops),
    )


class _Walker:
    """One pass over a function's own code, with each node's parent at hand."""

    def __init__(self) -> None:
        self.bound: set[str] = set()  # names bound in the function's own scope
        self.not_fresh = _Events(self)  # a binding that is not a fresh object
        self.not_immutable = _Events(self)  # a binding that may be mutable
        self.escaped = _Events(self)  # a read that may hand the object on
        self.here: Position = (0, 0)  # where the walk is
        self.loops: tuple[Span, ...] = ()  # the loops around it
        self.all_loops: list[Span] = []

    def visit(self, node: ast.AST, parent: ast.AST | None) -> None:
        lineno = getattr(node, "lineno", None)
        if lineno is not None:
            self.here = (lineno, node.col_offset)  # type: ignore[attr-defined]
        # By exact class (the parser's nodes): this runs for every node of the function.
        cls = node.__class__
        if cls is ast.Name:
            self._name(node, parent)  # type: ignore[arg-type]
            return
        if cls is ast.Call:
            func = node.func  # type: ignore[attr-defined]
            if (
                func.__class__ is ast.Attribute
                and func.value.__class__ is ast.Name
                and func.attr in _VIEW_METHODS
            ):
                if not _view_consumed(node, parent):  # type: ignore[arg-type]
                    self.escaped.add(func.value.id)
                for argument in (*node.args, *node.keywords):  # type: ignore[attr-defined]
                    self.visit(argument, node)
                return
        elif cls is ast.Attribute:
            value = node.value  # type: ignore[attr-defined]
            if value.__class__ is ast.Name:
                if value.ctx.__class__ is ast.Load and not _harmless_attribute(node, parent):  # type: ignore[arg-type]
                    self.escaped.add(value.id)
                return  # the rest of the chain is the attribute's, not a local's
        elif cls in _SCOPE_CLASSES:
            self._scope(node)
            return
        elif cls in _SEQUENCE_CLASSES:
            if parent.__class__ is ast.Return:
                for element in node.elts:  # type: ignore[attr-defined]
                    self.visit(element, parent)  # ``return out, total``: each is returned
                return
        elif cls in _LOOP_CLASSES:
            span = _span(node)
            self.all_loops.append(span)
            around = self.loops
            self.loops = (*around, span)
            try:
                if cls is not ast.While:
                    self._bind(node.target, None)  # type: ignore[attr-defined]
                for child in _children(node):
                    self.visit(child, node)
            finally:
                self.loops = around
            return
        elif cls in _BINDING_CLASSES:
            self._binding(node)
        for child in _children(node):
            self.visit(child, node)

    def _binding(self, node: ast.AST) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._bind(target, node.value)
        elif isinstance(node, ast.AnnAssign):
            self._bind(node.target, node.value, annotated_only=node.value is None)
        elif isinstance(node, ast.NamedExpr):
            self._bind(node.target, node.value)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            self._bind(node.optional_vars, None)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self._taint(node.name)
        elif isinstance(node, _IMPORTS):
            for alias in node.names:
                self._taint((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, _CAPTURES) and node.name:
            self._taint(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            self._taint(node.rest)
        elif isinstance(node, _DECLARATIONS):
            for name in node.names:
                self._taint(name)
                self.escaped.add(name)

    def _scope(self, node: ast.AST) -> None:
        # Defaults and decorators are evaluated here; the body reads are closures'
        # (their names are cells, which loops refuse to write anyway). Every name a
        # nested scope reads escapes into it.
        if isinstance(node, _DEFINITIONS):
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
        elif isinstance(target, _SEQUENCES):
            values: list[ast.expr | None] = [None] * len(target.elts)
            if (
                isinstance(value, _SEQUENCES)
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
    if parent is None or isinstance(parent, _READING_PARENTS):
        return True
    if isinstance(parent, ast.Subscript):
        return parent.value is node
    if isinstance(parent, ast.IfExp):
        return parent.test is node
    if isinstance(parent, _ITERATING):
        return parent.iter is node
    if isinstance(parent, ast.Call):
        if parent.func is node:
            return True  # called: a function, not an accumulator
        return _reading_builtin(parent)
    return False  # assigned, stored, passed on, ``N or default``...


# Parents whose reading of a name cannot hand its object on.
_READING_PARENTS = (
    ast.Compare,
    ast.UnaryOp,
    ast.BinOp,
    ast.FormattedValue,
    ast.Return,
    ast.Expr,
    ast.If,
    ast.While,
    ast.Assert,
)


def _reading_builtin(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Name) and call.func.id in _READING_BUILTINS


def _harmless_attribute(node: ast.Attribute, parent: ast.AST | None) -> bool:
    """``N.method(...)``, called at once, hands N on only if it makes a view of it
    (``d.items()``), and a view is harmless only where it is used up at once."""
    if not isinstance(parent, ast.Call) or parent.func is not node:
        return False  # ``get = N.get``, ``N.attr``: the bound method or value escapes
    return node.attr not in _VIEW_METHODS


def _view_consumed(call: ast.Call, parent: ast.AST | None) -> bool:
    if isinstance(parent, _ITERATING):
        return parent.iter is call
    return isinstance(parent, ast.Call) and call in parent.args and _reading_builtin(parent)
