"""Analysis of a function's AST: which names are bound where, what reads what, and
whether a construct may become a parallel region (and if not, why not).

Everything here is conservative: when a question cannot be answered with certainty
(a name read through ``locals()``, a loop whose iterations might see each other's
writes), the answer is "keep it in order", with a reason that ``xcs.explain`` shows.
"""

from __future__ import annotations

import ast
import inspect
import types
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from xcs._compiler._alias import AliasFacts, fresh_value

__all__ = [
    "MARKERS",
    "EffectKind",
    "FunctionScope",
    "LoopAnalysis",
    "all_nodes",
    "analyze_loop",
    "bound_names",
    "children",
    "code_parameter_names",
    "comprehension_obstacle",
    "free_loads",
    "has_call",
    "late_capture",
    "mark_comprehension_targets",
    "mark_target",
    "memoized",
    "node_fields",
    "own_nodes",
    "own_statements",
    "parameter_names",
    "target_names",
]

# Calls whose meaning depends on the frame they run in: moving them into a helper
# function (a task) would change what they see.
FRAME_SENSITIVE = frozenset({"locals", "vars", "eval", "exec", "dir", "globals", "super"})

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

# Classes asked about together (tuples: ``isinstance(x, A | B)`` would build a union
# object at every call, and these checks run for every node the analysis visits).
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_CALL_OR_AWAIT = (ast.Call, ast.Await)
_YIELDS = (ast.Yield, ast.YieldFrom)
_SEQUENCES = (ast.Tuple, ast.List)
_STORE_OR_DEL = (ast.Store, ast.Del)
_IMPORTS = (ast.Import, ast.ImportFrom)
_CAPTURES = (ast.MatchAs, ast.MatchStar)
_ASSIGNMENTS = (ast.Assign, ast.AnnAssign, ast.AugAssign)
_FOR_LOOPS = (ast.For, ast.AsyncFor)
_WITHS = (ast.With, ast.AsyncWith)
_FOR_OR_WITH = (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)
_LOOPS = (ast.For, ast.While, ast.AsyncFor)
_IF_OR_WHILE = (ast.If, ast.While)
_ITEM_OR_ATTRIBUTE = (ast.Attribute, ast.Subscript)
_DECLARATIONS = (ast.Global, ast.Nonlocal)


# NOTE: [Analysis memo]
# The rewriter asks the same questions about the same nodes many times (is there a
# call in this statement? what does it read?), from every candidate start of a fork
# run and from every enclosing region. Within one compile the answers are memoized
# by node identity, one table per question. The memo also holds every node it has an
# answer for, so no id is reused while it lives; it exists only inside
# ``memoized()``, never across compiles. Compile time is part of the contract
# (bench/jit.py), so these walks are written for speed: children are read through a
# per-class table of the fields that can hold nodes, and the leaves that carry no
# information of their own (``Load``, ``Add``, ``Eq``...) are never visited.


class _Memo:
    __slots__ = ("all", "bound", "call", "keep", "kids", "loads", "own")

    def __init__(self) -> None:
        self.kids: dict[int, list[ast.AST]] = {}
        self.all: dict[int, list[ast.AST]] = {}
        self.own: dict[int, list[ast.AST]] = {}
        self.call: dict[int, bool] = {}
        self.bound: dict[int, frozenset[str]] = {}
        self.loads: dict[int, frozenset[str]] = {}
        self.keep: list[ast.AST] = []


_memo: ContextVar[_Memo | None] = ContextVar("xcs_analysis_memo", default=None)


@contextmanager
def memoized() -> Iterator[None]:
    """Memoize the analysis of nodes for the duration of one compile."""
    token = _memo.set(_Memo())
    try:
        yield
    finally:
        _memo.reset(token)


# Nodes that are only markers of their parent (a Name's ``ctx``, a BinOp's ``op``).
MARKERS = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
# Fields that never hold a node worth visiting.
_SCALAR_FIELDS = frozenset(
    {"ctx", "op", "ops", "id", "attr", "arg", "kind", "type_comment", "is_async", "level"}
    | {"module", "conversion", "asname", "simple", "tag", "type_ignores"}
)
_node_fields: dict[type, tuple[str, ...]] = {}
NODE_FIELDS = _node_fields  # the table ``node_fields`` fills, for walks that read it inline


def node_fields(cls: type) -> tuple[str, ...]:
    """The fields of an AST class that can hold nodes (not names, flags or markers)."""
    fields = _node_fields.get(cls)
    if fields is None:
        names: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
        if cls is ast.Constant:
            names = ()
        fields = tuple(name for name in names if name not in _SCALAR_FIELDS)
        _node_fields[cls] = fields
    return fields


def children(node: ast.AST) -> list[ast.AST]:
    """The child nodes of ``node`` (``ast.iter_child_nodes`` without the markers, which
    only ever sit in the fields ``node_fields`` leaves out)."""
    found: list[ast.AST] = []
    names = _node_fields.get(node.__class__)
    if names is None:
        names = node_fields(node.__class__)
    for name in names:
        value = getattr(node, name, None)
        if value.__class__ is list:
            if not value or value[0].__class__ is str:
                continue  # the names of ``global``, of a class pattern's keywords
            if None in value:  # a ``**d`` in a dict display, a keyword without default
                found.extend(item for item in value if item is not None)
            else:
                found.extend(value)
        elif isinstance(value, ast.AST):
            found.append(value)
    return found


def _children(node: ast.AST, memo: _Memo | None) -> list[ast.AST]:
    """``children(node)``, memoized (the analysis walks read each node many times)."""
    if memo is None:
        return children(node)
    found = memo.kids.get(id(node))
    if found is None:
        found = memo.kids[id(node)] = children(node)
        memo.keep.append(node)
    return found


def all_nodes(node: ast.AST) -> list[ast.AST]:
    """``node`` and every descendant, nested scopes included (a memoized ``ast.walk``,
    markers such as ``Load`` left out)."""
    memo = _memo.get()
    if memo is None:
        return _walk(node)
    found = memo.all.get(id(node))
    if found is None:
        found = [node]
        for child in _children(node, memo):
            found.extend(all_nodes(child))
        memo.all[id(node)] = found
        memo.keep.append(node)
    return found


def _walk(node: ast.AST) -> list[ast.AST]:
    found = [node]
    index = 0
    while index < len(found):
        found.extend(children(found[index]))
        index += 1
    return found


def own_nodes(node: ast.AST) -> list[ast.AST]:
    """``node`` and its descendants, not entering nested functions, lambdas or classes
    (their bodies run later, in their own scope). Comprehensions are entered."""
    memo = _memo.get()
    if memo is not None:
        found = memo.own.get(id(node))
        if found is not None:
            return found
    found = [node]
    if isinstance(node, _SCOPES):
        # A function or lambda itself: only what is evaluated where it is defined.
        found.extend(_definition_parts(node))
    else:
        # Pre-order, by a stack (children pushed last first): one list per question,
        # not one per node under it.
        stack = children(node)
        stack.reverse()
        while stack:
            child = stack.pop()
            if isinstance(child, _SCOPES):
                # Defaults and decorators are evaluated here; bodies are not.
                found.extend(_definition_parts(child))
                found.append(child)  # the definition itself binds a name here
                continue
            found.append(child)
            grandchildren = children(child)
            if grandchildren:
                grandchildren.reverse()
                stack.extend(grandchildren)
    if memo is not None:
        memo.own[id(node)] = found
        memo.keep.append(node)
    return found


def _definition_parts(node: ast.AST) -> Iterator[ast.AST]:
    if isinstance(node, ast.Lambda):
        yield from _walk_all(node.args.defaults)
        yield from _walk_all(d for d in node.args.kw_defaults if d is not None)
    elif isinstance(node, _FUNCTIONS):
        yield from _walk_all(node.decorator_list)
        yield from _walk_all(node.args.defaults)
        yield from _walk_all(d for d in node.args.kw_defaults if d is not None)
    elif isinstance(node, ast.ClassDef):
        yield from _walk_all(node.decorator_list)
        yield from _walk_all(node.bases)


def late_capture(nodes: Iterable[ast.AST], names: set[str]) -> str | None:
    """The first of ``names`` that a function, lambda or escaping generator expression
    made inside ``nodes`` reads, or None.

    Such a closure reads the variable when it is *called*: in the plain program every
    closure made by a loop shares one variable (and sees its last value), while in a
    region each item runs in a frame of its own and its closures would see that
    item's value. A generator expression passed straight to a call is taken to be
    consumed there, at once.
    """
    if not names:
        return None
    consumed: set[int] = set()
    for root in nodes:
        for node in all_nodes(root):
            if isinstance(node, ast.Call):
                consumed.update(id(a) for a in node.args if isinstance(a, ast.GeneratorExp))
    for root in nodes:
        for node in all_nodes(root):
            late = isinstance(node, _SCOPES) or (
                isinstance(node, ast.GeneratorExp) and id(node) not in consumed
            )
            if not late:
                continue
            reads = free_loads(node)
            if isinstance(node, ast.GeneratorExp):
                # Its first iterable is evaluated at once, where it stands.
                reads -= free_loads(node.generators[0].iter) - _later_reads(node)
            captured = sorted(reads & names)
            if captured:
                return captured[0]
    return None


def _later_reads(node: ast.GeneratorExp) -> set[str]:
    parts: list[ast.AST] = [node.elt, *node.generators[0].ifs]
    for generator in node.generators[1:]:
        parts += [generator.iter, *generator.ifs]
    found: set[str] = set()
    for part in parts:
        found |= free_loads(part)
    return found


def _walk_all(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    for node in nodes:
        yield from own_nodes(node)


def has_call(node: ast.AST) -> bool:
    """True if evaluating ``node`` calls something (or awaits), here, not later."""
    memo = _memo.get()
    if memo is not None:
        found = memo.call.get(id(node))
        if found is not None:
            return found
    found = any(isinstance(n, _CALL_OR_AWAIT) for n in own_nodes(node))
    if memo is not None:
        memo.call[id(node)] = found
        memo.keep.append(node)
    return found


def target_names(target: ast.AST) -> list[str] | None:
    """Names bound by an assignment target, or None if it stores elsewhere
    (an attribute or a subscript)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return target_names(target.value)
    if isinstance(target, _SEQUENCES):
        names: list[str] = []
        for element in target.elts:
            inner = target_names(element)
            if inner is None:
                return None
            names.extend(inner)
        return names
    return None


def bound_names(nodes: Iterable[ast.AST]) -> set[str]:
    """Names bound in the current scope by these nodes (assignments, loop targets,
    imports, definitions, ``with ... as``, ``except ... as``, walrus targets)."""
    names: set[str] = set()
    memo = _memo.get()
    for root in nodes:
        if memo is None:
            names.update(_bound_by(root))
            continue
        bound = memo.bound.get(id(root))
        if bound is None:
            bound = memo.bound[id(root)] = _bound_by(root)
            memo.keep.append(root)
        names.update(bound)
    return names


def _bound_by(root: ast.AST) -> frozenset[str]:
    names: set[str] = set()
    for node in own_nodes(root):
        if isinstance(node, ast.Name) and isinstance(node.ctx, _STORE_OR_DEL):
            if not _inside_comprehension_target(node):
                names.add(node.id)
        elif isinstance(node, _DEFINITIONS):
            names.add(node.name)
        elif isinstance(node, _IMPORTS):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif (isinstance(node, ast.ExceptHandler) and node.name) or (
            isinstance(node, _CAPTURES) and node.name
        ):
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return frozenset(names)


def _inside_comprehension_target(node: ast.Name) -> bool:
    # Comprehension variables are local to the comprehension. ``own_nodes`` enters
    # comprehensions, so their targets are filtered here; walrus targets inside them
    # (NamedExpr) bind the enclosing scope and are kept.
    return getattr(node, "_xcs_comp_target", False)


def mark_comprehension_targets(tree: ast.AST) -> None:
    """Tag the Name nodes that comprehension clauses bind (call once per tree)."""
    for node in _walk(tree):  # once, unmemoized: most subtrees are never asked about
        if isinstance(node, ast.comprehension):
            mark_target(node.target)


def mark_target(target: ast.AST) -> None:
    """Tag the Name nodes of one comprehension clause's target."""
    for name in _walk(target):
        if isinstance(name, ast.Name):
            name._xcs_comp_target = True  # type: ignore[attr-defined]


def free_loads(node: ast.AST) -> set[str]:
    """Names read by ``node`` from outside it, at any depth: loads inside nested
    lambdas, functions and comprehensions count, except of the names those bind
    themselves. Conservative: a nested scope's read counts as a read here."""
    memo = _memo.get()
    if memo is None:
        return _free_loads(node, frozenset())
    return set(_memo_free_loads(node, memo))


def _free_loads(node: ast.AST, local: frozenset[str]) -> set[str]:
    found: set[str] = set()
    if isinstance(node, ast.Name):
        if isinstance(node.ctx, ast.Load) and node.id not in local:
            found.add(node.id)
        return found
    if isinstance(node, ast.Lambda):
        for default in (*node.args.defaults, *(d for d in node.args.kw_defaults if d)):
            found |= _free_loads(default, local)
        return found | _free_loads(node.body, local | _params(node.args))
    if isinstance(node, _FUNCTIONS):
        for decorator in (*node.decorator_list, *node.args.defaults):
            found |= _free_loads(decorator, local)
        for keyword_default in node.args.kw_defaults:
            if keyword_default is not None:
                found |= _free_loads(keyword_default, local)
        scope = local | _params(node.args) | bound_names(node.body)
        for stmt in node.body:
            found |= _free_loads(stmt, scope)
        return found
    if isinstance(node, _COMPREHENSIONS):
        inner: set[str] = set(local)
        for index, generator in enumerate(node.generators):
            # The first iterable is evaluated outside the comprehension's scope.
            found |= _free_loads(generator.iter, frozenset(inner) if index else local)
            inner |= {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
            for condition in generator.ifs:
                found |= _free_loads(condition, frozenset(inner))
        frozen = frozenset(inner)
        if isinstance(node, ast.DictComp):
            found |= _free_loads(node.key, frozen) | _free_loads(node.value, frozen)
        else:
            found |= _free_loads(node.elt, frozen)
        return found
    memo = _memo.get()
    for child in _children(node, memo):
        if local or memo is None:
            found |= _free_loads(child, local)
        else:
            found |= _memo_free_loads(child, memo)
    return found


def _memo_free_loads(node: ast.AST, memo: _Memo) -> frozenset[str]:
    found = memo.loads.get(id(node))
    if found is None:
        found = memo.loads[id(node)] = frozenset(_free_loads(node, frozenset()))
        memo.keep.append(node)
    return found


def parameter_names(args: ast.arguments) -> tuple[str, ...]:
    """The parameters' names, in the order a code object lists them
    (positional, keyword-only, ``*args``, ``**kwargs``)."""
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    if args.vararg:
        names.append(args.vararg.arg)
    if args.kwarg:
        names.append(args.kwarg.arg)
    return tuple(names)


def code_parameter_names(code: types.CodeType) -> tuple[str, ...]:
    """The same, read off a code object."""
    count = code.co_argcount + code.co_kwonlyargcount
    count += bool(code.co_flags & inspect.CO_VARARGS)
    count += bool(code.co_flags & inspect.CO_VARKEYWORDS)
    return code.co_varnames[:count]


def _params(args: ast.arguments) -> frozenset[str]:
    return frozenset(parameter_names(args))


def frame_sensitive_call(node: ast.AST) -> str | None:
    """The name of a call in ``node`` that depends on its frame (``locals()``,
    zero-argument ``super()``...), at any depth, or None."""
    for inner in all_nodes(node):
        if (
            isinstance(inner, ast.Call)
            and isinstance(inner.func, ast.Name)
            and inner.func.id in FRAME_SENSITIVE
            and not (inner.func.id == "super" and inner.args)
        ):
            return inner.func.id
    return None


def comprehension_obstacle(node: ast.AST) -> str | None:
    """Why a comprehension cannot become a region, or None if it can."""
    generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
    if any(g.is_async for g in generators):
        return "an async comprehension"
    for inner in all_nodes(node):
        if isinstance(inner, ast.NamedExpr):
            return "it assigns with := (the name outlives the comprehension)"
        if isinstance(inner, _YIELDS):
            return "it yields"
        if isinstance(inner, ast.Await):
            return "it awaits (async functions are compiled separately)"
    for generator in generators:
        if target_names(generator.target) is None:
            return "a loop target stores into an attribute or an item"
    called = frame_sensitive_call(node)
    if called is not None:
        return f"it calls {called}(), which depends on the frame it runs in"
    for generator in generators:
        lazy = lazy_items_obstacle(generator.iter)
        if lazy is not None:
            return lazy
    last = generators[-1]
    parts: list[ast.AST] = list(last.ifs)
    if isinstance(node, ast.DictComp):
        parts += [node.key, node.value]
    else:
        parts.append(node.elt)  # type: ignore[attr-defined]
    if not any(has_call(p) for p in parts):
        return "its items make no call"
    targets = {n.id for g in generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
    advanced = advanced_iterator(parts, targets)
    if advanced is not None:
        return advanced
    captured = late_capture(parts, targets)
    if captured is not None:
        return (
            f"a function made in it captures {captured!r} (in order, every item's "
            "function sees the same variable)"
        )
    return None


# ---------------------------------------------------------------------------
# Loops


class EffectKind:
    CALL = "call"  # out.append(x), s.add(x), out.extend(x), print(...)
    SETITEM = "setitem"  # d[k] = v
    AUG = "aug"  # total += x


_EFFECT_METHODS = frozenset({"append", "add", "extend"})


@dataclass
class LoopAnalysis:
    """The verdict on one ``for`` loop."""

    obstacle: str | None = None  # why it runs in order, or None
    assigned: list[str] = field(default_factory=list)  # names the body binds (in order)
    effect_targets: set[str] = field(default_factory=set)  # out, d, s, ...
    aug_targets: list[str] = field(default_factory=list)  # total, ...
    effects: dict[int, str] = field(default_factory=dict)  # id(stmt) -> EffectKind


def _chain_root(expr: ast.AST) -> str | None:
    """``a`` for ``a``, ``a.b``, ``a.b.c``; None for anything else."""
    while isinstance(expr, ast.Attribute):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


#: Compiled loop bodies name their record ``__xcs_<RECORD_STEM><n>__``.
RECORD_STEM = "rec"
_RECORD_PREFIX = f"__xcs_{RECORD_STEM}"


def effect_of(stmt: ast.stmt) -> tuple[str, str] | None:
    """(kind, target root name) if ``stmt`` is a deferrable effect, else None."""
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        call = stmt.value
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ("call", "aug")
            and isinstance(func.value, ast.Name)
            and func.value.id.startswith(_RECORD_PREFIX)
        ):
            # An effect of an enclosing parallel loop, already made a record entry
            # (this loop is inside its body): deferred here too, so that it reaches
            # the enclosing record in this loop's order.
            return EffectKind.CALL, func.value.id
        if (
            isinstance(func, ast.Attribute)
            and func.attr in _EFFECT_METHODS
            and len(call.args) == 1
            and not call.keywords
            and not isinstance(call.args[0], ast.Starred)
        ):
            root = _chain_root(func.value)
            if root is not None:
                return EffectKind.CALL, root
        if isinstance(func, ast.Name) and func.id == "print":
            return EffectKind.CALL, "print"
        return None
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Subscript)
        and not isinstance(stmt.targets[0].slice, ast.Slice)
    ):
        root = _chain_root(stmt.targets[0].value)
        if root is not None:
            return EffectKind.SETITEM, root
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        return EffectKind.AUG, stmt.target.id
    return None


class _WriteCheck:
    """DESIGN §1.6 for one loop body: every write that leaves the iteration is an
    accumulation XCS replays in order into a local nothing else reaches, or a write to
    an object the iteration made itself; anything else keeps the loop in order."""

    def __init__(
        self,
        statements: list[ast.stmt],
        loop: ast.For,
        local: set[str],
        effects: dict[int, str],
        aliases: AliasFacts | None,
    ) -> None:
        self.statements = statements
        self.loop = loop
        self.local = local  # names the iteration binds itself
        self.effects = effects
        self.aliases = aliases
        self._fresh: dict[str, bool] = {}

    def obstacle(self) -> str | None:
        for stmt in self.statements:
            kind = self.effects.get(id(stmt))
            if kind is not None:
                found = effect_of(stmt)
                assert found is not None
                problem = self._accumulation(found[1], augmented=kind == EffectKind.AUG)
            elif isinstance(stmt, ast.Expr):
                problem = self._effect_only(stmt)
            elif isinstance(stmt, _ASSIGNMENTS):
                targets: list[ast.expr] = (
                    stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                )
                problem = self._stores(targets)
            elif isinstance(stmt, _FOR_LOOPS):
                problem = self._stores([stmt.target])
            elif isinstance(stmt, _WITHS):
                problem = self._stores([i.optional_vars for i in stmt.items if i.optional_vars])
            else:
                problem = None
            if problem is not None:
                return problem
        return None

    def _accumulation(self, root: str, *, augmented: bool) -> str | None:
        if root == "print" or root.startswith(_RECORD_PREFIX):
            return None
        if self.aliases is not None and self.aliases.deferrable(
            root, augmented=augmented, loop=self.loop
        ):
            return None
        return (
            f"it accumulates into {root!r}, which may be reached another way (an alias such "
            "as a bound method, a callee it was passed to, or it came from a parameter or "
            "an attribute): its writes stay in program order"
        )

    def _effect_only(self, stmt: ast.Expr) -> str | None:
        value = stmt.value
        if not has_call(value):
            return None  # a docstring, a bare name
        found = effect_of(stmt)
        if found is not None and found[1] in self.local and self._fresh_here(found[1]):
            return None  # into an object this iteration made
        return (
            f"it calls {_describe_call(value)} only for its effect (the value is "
            "discarded): such calls stay in program order"
        )

    def _stores(self, targets: list[ast.expr]) -> str | None:
        for target in targets:
            for node in _store_targets(target):
                root = _chain_root(node.value)
                if root is not None and root in self.local and self._fresh_here(root):
                    continue
                shown = " ".join(ast.unparse(node).split())
                return (
                    f"it stores into {shown}, which other iterations may share or read: "
                    "its writes stay in program order"
                )
        return None

    def _fresh_here(self, name: str) -> bool:
        """True if every binding of ``name`` in the body makes a new object."""
        known = self._fresh.get(name)
        if known is None:
            known = True
            for stmt in self.statements:
                if isinstance(stmt, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == name for t in stmt.targets
                ):
                    if len(stmt.targets) != 1 or not fresh_value(stmt.value):
                        known = False
                elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
                    continue
                elif name in bound_names([stmt]) and not isinstance(stmt, _COMPOUND):
                    known = False
                elif isinstance(stmt, _FOR_OR_WITH):
                    heads: list[ast.AST] = (
                        [stmt.target]
                        if isinstance(stmt, _FOR_LOOPS)
                        else [i.optional_vars for i in stmt.items if i.optional_vars]
                    )
                    if name in bound_names(heads):
                        known = False
            self._fresh[name] = known
        return known


def _store_targets(target: ast.AST) -> Iterator[ast.Attribute | ast.Subscript]:
    """The attribute and item stores of an assignment target (``a.x``, ``d[k]``)."""
    if isinstance(target, _ITEM_OR_ATTRIBUTE):
        yield target
    elif isinstance(target, ast.Starred):
        yield from _store_targets(target.value)
    elif isinstance(target, _SEQUENCES):
        for element in target.elts:
            yield from _store_targets(element)


def _describe_call(value: ast.expr) -> str:
    call = next((n for n in own_nodes(value) if isinstance(n, ast.Call)), value)
    func = call.func if isinstance(call, ast.Call) else call
    text = " ".join(ast.unparse(func).split())
    return (text[:40] + "...") if len(text) > 40 else text + "()"


def _call_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def lazy_items_obstacle(iterable: ast.AST) -> str | None:
    """Why the items of ``iterable`` must not be read ahead, or None: the groups of
    ``itertools.groupby`` are emptied when the iterator moves on (DESIGN §1.6)."""
    for node in all_nodes(iterable):
        if isinstance(node, ast.Call) and _call_name(node) == "groupby":
            return (
                "its items come from groupby(), whose groups are emptied when it moves "
                "on: they must not be read ahead"
            )
    return None


#: Methods that move an iterator on (also checked on receivers at run time, ``_rt``).
ADVANCING_METHODS = frozenset({"__next__", "send", "throw"})


def positional_arguments(call: ast.Call) -> list[ast.expr]:
    """``call``'s positional arguments, in their positions: ``f(*[x, log])`` passes
    ``x`` and ``log`` as the first two. Ends at any other starred argument (``*args``),
    past which positions are not known."""
    found: list[ast.expr] = []
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            if not isinstance(arg.value, ast.List | ast.Tuple):
                break
            for element in arg.value.elts:
                if isinstance(element, ast.Starred):
                    return found
                found.append(element)
        else:
            found.append(arg)
    return found


def advanced_iterator(body: Iterable[ast.AST], local: set[str] | frozenset[str]) -> str | None:
    """``next(it)`` (or ``it.send(...)``) of an iterator the items share: each call
    takes what the one before it left, so the items must run in order."""
    for root in body:
        for node in own_nodes(root):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            shared: str | None = None
            if isinstance(func, ast.Name) and func.id == "next" and node.args:
                first = node.args[0]
                shared = first.id if isinstance(first, ast.Name) else None
            elif isinstance(func, ast.Attribute) and func.attr in ADVANCING_METHODS:
                shared = _chain_root(func.value)
            if shared is not None and shared not in local:
                return (
                    f"it advances the iterator {shared!r}, which every item shares: each "
                    "call takes what the one before it left"
                )
    return None


def _only_aug_bound(name: str, statements: list[ast.stmt]) -> bool:
    """True if every binding of ``name`` among ``statements`` is ``name op= ...``."""
    for stmt in statements:
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            continue
        if isinstance(stmt, _COMPOUND):
            # Compound statements bind through their own targets only.
            heads: list[ast.AST] = []
            if isinstance(stmt, _FOR_LOOPS):
                heads.append(stmt.target)
            elif isinstance(stmt, _WITHS):
                heads.extend(i.optional_vars for i in stmt.items if i.optional_vars)
            elif isinstance(stmt, ast.Try) and any(h.name == name for h in stmt.handlers):
                return False
            if name in bound_names(heads):
                return False
            continue
        if name in bound_names([stmt]):
            return False
    return True


def own_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement in ``body`` at any nesting depth, not entering nested scopes."""
    return _statements(body)


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    for stmt in body:
        yield stmt
        if isinstance(stmt, _SCOPES):
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from _statements(getattr(stmt, name, []) or [])
        for handler in getattr(stmt, "handlers", []) or []:
            yield from _statements(handler.body)
        for case in getattr(stmt, "cases", []) or []:
            yield from _statements(case.body)


def analyze_loop(
    loop: ast.For,
    function_cells: frozenset[str],
    declared: frozenset[str],
    rebinders: frozenset[str] = frozenset(),
    aliases: AliasFacts | None = None,
) -> LoopAnalysis:
    """May the iterations of ``loop`` run concurrently? (DESIGN §1.5, §1.6)

    Args:
        loop: the ``for`` statement.
        function_cells: names of the enclosing function captured by closures.
        declared: names declared ``global`` or ``nonlocal`` in the function.
        rebinders: nested functions of the function that rebind its variables.
        aliases: which of the function's locals nothing else can reach (None: no
            accumulation is deferred, NOTE: [Unaliased locals]).
    """
    result = LoopAnalysis()
    target = target_names(loop.target)
    if target is None:
        result.obstacle = "its target stores into an attribute or an item"
        return result
    reason = _loop_control_obstacle(loop.body)
    if reason is not None:
        result.obstacle = reason
        return result
    called = frame_sensitive_call(ast.Module(body=loop.body, type_ignores=[]))
    if called is not None:
        result.obstacle = f"it calls {called}(), which depends on the frame it runs in"
        return result
    if not any(has_call(stmt) for stmt in loop.body):
        result.obstacle = "its body makes no call"
        return result
    rebinder = rebinder_called(ast.Module(body=loop.body, type_ignores=[]), rebinders)
    if rebinder is not None:
        result.obstacle = rebinder_obstacle(rebinder)
        return result
    lazy = lazy_items_obstacle(loop.iter)
    if lazy is not None:
        result.obstacle = lazy
        return result

    # Effects: statements whose only outside write is to an accumulator.
    statements = list(_statements(loop.body))
    all_bound = bound_names([loop.target, *loop.body])
    body_bound = bound_names(loop.body)
    other_bound = set(target) | {n for n in body_bound if not _only_aug_bound(n, statements)}
    effects: dict[int, str] = {}
    effect_roots: set[str] = set()
    aug_names: list[str] = []
    for stmt in statements:
        found = effect_of(stmt)
        if found is None:
            continue
        kind, root = found
        if root in other_bound:
            continue  # the body binds it: an iteration-local object, not an effect
        effects[id(stmt)] = kind
        if kind == EffectKind.AUG:
            if root not in aug_names:
                aug_names.append(root)
        elif root != "print":
            effect_roots.add(root)
    assigned = all_bound - set(aug_names)

    captured_name = late_capture(loop.body, assigned)
    if captured_name is not None:
        result.obstacle = (
            f"a function made in it captures {captured_name!r} (in order, every "
            "iteration's function sees the same variable)"
        )
        return result
    declared_here = declared & (assigned | effect_roots | set(aug_names))
    if declared_here:
        name = sorted(declared_here)[0]
        result.obstacle = f"it writes {name!r}, declared global or nonlocal"
        return result
    captured = function_cells & (assigned | effect_roots | set(aug_names))
    if captured:
        name = sorted(captured)[0]
        result.obstacle = (
            f"{name!r} is written in the loop and read by a nested function, which could "
            "see another iteration's value"
        )
        return result

    # Writes: only accumulations XCS replays in order, into locals nothing else
    # reaches, or into objects the iteration made (DESIGN §1.6).
    problem = _WriteCheck(statements, loop, other_bound, effects, aliases).obstacle()
    if problem is None:
        problem = advanced_iterator(loop.body, all_bound)
    if problem is not None:
        result.obstacle = problem
        return result

    # Reads: accumulators may be read only where they are accumulated into; a name
    # the body binds must be bound, in this iteration, before it is read.
    checker = _CarriedReads(
        assigned=assigned,
        accumulators=effect_roots | set(aug_names),
        effects=effects,
        defined=set(target),
    )
    problem = checker.check_block(loop.body)
    if problem is not None:
        result.obstacle = problem
        return result
    result.assigned = sorted(assigned)
    result.effect_targets = effect_roots
    result.aug_targets = aug_names
    result.effects = effects
    return result


_COMPOUND = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.Match, ast.AsyncFor, ast.AsyncWith)


def _loop_control_obstacle(body: list[ast.stmt]) -> str | None:
    """break/return/yield/await/global/del in the body (break and continue of inner
    loops are theirs, not this loop's)."""

    def visit(stmts: list[ast.stmt], inner_loop: bool) -> str | None:
        for stmt in stmts:
            if isinstance(stmt, ast.Break) and not inner_loop:
                return "it may break out early (later iterations must not start)"
            if isinstance(stmt, ast.Return):
                return "it may return from the function"
            if isinstance(stmt, _DECLARATIONS):
                return "it declares global or nonlocal names"
            if isinstance(stmt, ast.Delete):
                return "it deletes names or items"
            for node in own_nodes(stmt):
                if isinstance(node, _YIELDS):
                    return "it yields"
                if isinstance(node, ast.Await):
                    return "it awaits"
            if isinstance(stmt, _SCOPES):
                continue
            nested_loop = inner_loop or isinstance(stmt, _LOOPS)
            for name in ("body", "orelse"):
                block = getattr(stmt, name, None)
                if block:
                    loop_body = nested_loop if name == "body" else inner_loop
                    found = visit(block, loop_body)
                    if found:
                        return found
            for handler in getattr(stmt, "handlers", []) or []:
                found = visit(handler.body, inner_loop)
                if found:
                    return found
            final = getattr(stmt, "finalbody", None)
            if final:
                found = visit(final, inner_loop)
                if found:
                    return found
            for case in getattr(stmt, "cases", []) or []:
                found = visit(case.body, inner_loop)
                if found:
                    return found
        return None

    return visit(body, False)


class _CarriedReads:
    """Definite-assignment check of one iteration of a loop body."""

    def __init__(
        self,
        assigned: set[str],
        accumulators: set[str],
        effects: dict[int, str],
        defined: set[str],
    ) -> None:
        self.assigned = assigned
        self.accumulators = accumulators
        self.effects = effects
        self.defined = defined

    def check_block(self, stmts: list[ast.stmt]) -> str | None:
        for stmt in stmts:
            problem = self.check_stmt(stmt)
            if problem is not None:
                return problem
        return None

    def _reads(self, node: ast.AST | None, *, skip_root: str | None = None) -> str | None:
        if node is None:
            return None
        for name in sorted(free_loads(node)):
            if name == skip_root:
                continue
            if name in self.accumulators:
                return (
                    f"it reads {name!r}, which the loop accumulates into "
                    "(a later iteration would see earlier ones)"
                )
            if name in self.assigned and name not in self.defined:
                return (
                    f"it reads {name!r} before assigning it in the same iteration "
                    "(the value comes from an earlier iteration)"
                )
        return None

    def check_stmt(self, stmt: ast.stmt) -> str | None:
        kind = self.effects.get(id(stmt))
        if kind == EffectKind.CALL:
            call = stmt.value  # type: ignore[attr-defined]
            root = _chain_root(call.func.value) if isinstance(call.func, ast.Attribute) else None
            problem = self._reads(call.func, skip_root=root) or self._reads_all(call.args)
            return problem or self._reads_all([k.value for k in call.keywords])
        if kind == EffectKind.SETITEM:
            target = stmt.targets[0]  # type: ignore[attr-defined]
            root = _chain_root(target.value)
            return (
                self._reads(stmt.value)  # type: ignore[attr-defined]
                or self._reads(target.value, skip_root=root)
                or self._reads(target.slice)
            )
        if kind == EffectKind.AUG:
            return self._reads(stmt.value)  # type: ignore[attr-defined]
        if isinstance(stmt, _IF_OR_WHILE):
            problem = self._reads(stmt.test)
            if problem:
                return problem
            before = set(self.defined)
            problem = self.check_block(stmt.body)
            if problem:
                return problem
            after_body = self.defined
            self.defined = set(before)
            problem = self.check_block(stmt.orelse)
            if problem:
                return problem
            if isinstance(stmt, ast.While):
                self.defined = before
            else:
                self.defined = after_body & self.defined
            return None
        if isinstance(stmt, _FOR_LOOPS):
            problem = self._reads(stmt.iter)
            if problem:
                return problem
            before = set(self.defined)
            self.defined |= bound_names([stmt.target])
            problem = self.check_block(stmt.body) or self.check_block(stmt.orelse)
            self.defined = before
            return problem
        if isinstance(stmt, _WITHS):
            for item in stmt.items:
                problem = self._reads(item.context_expr)
                if problem:
                    return problem
                if item.optional_vars is not None:
                    self.defined |= bound_names([item.optional_vars])
            return self.check_block(stmt.body)
        if isinstance(stmt, ast.Try):
            before = set(self.defined)
            problem = self.check_block(stmt.body)
            if problem:
                return problem
            for handler in stmt.handlers:
                self.defined = set(before)
                if handler.name:
                    self.defined.add(handler.name)
                problem = self._reads(handler.type) or self.check_block(handler.body)
                if problem:
                    return problem
            self.defined = set(before)
            problem = self.check_block(stmt.orelse) or self.check_block(stmt.finalbody)
            self.defined = before
            return problem
        if isinstance(stmt, ast.Match):
            return f"it contains a match statement (line {stmt.lineno})"
        if isinstance(stmt, _DEFINITIONS):
            problem = self._reads(stmt)
            self.defined.add(stmt.name)
            return problem
        # Simple statements: reads first, then what they bind.
        if isinstance(stmt, ast.Assign):
            problem = self._reads(stmt.value) or self._reads_all(
                [t for t in stmt.targets if not isinstance(t, ast.Name)]
            )
        elif isinstance(stmt, ast.AnnAssign):
            problem = self._reads(stmt.value)
        elif isinstance(stmt, ast.AugAssign):
            if not isinstance(stmt.target, ast.Name):
                # An item or attribute updated in place: read-modify-write of shared state.
                return "it updates an item or attribute in place with an augmented assignment"
            # A local accumulator of this iteration: it reads its own earlier value.
            problem = self._reads(ast.Name(id=stmt.target.id, ctx=ast.Load())) or self._reads(
                stmt.value
            )
        else:
            problem = self._reads(stmt)
        if problem:
            return problem
        self.defined |= bound_names([stmt])
        return None

    def _reads_all(self, nodes: Iterable[ast.AST]) -> str | None:
        for node in nodes:
            problem = self._reads(node)
            if problem:
                return problem
        return None


@dataclass
class FunctionScope:
    """What the compiler needs to know about the function being compiled."""

    params: frozenset[str]
    local: frozenset[str]  # params and names bound in the function's own scope
    declared: frozenset[str]  # global / nonlocal
    cells: frozenset[str]  # locals captured by nested functions
    # Nested functions (defined in this function) that rebind its variables through
    # ``nonlocal``: calls to them share state, so regions that call them run in order.
    rebinders: frozenset[str] = frozenset()
    node: ast.AST | None = None  # the function, for the alias facts (on first need)
    _aliases: AliasFacts | None = None

    @property
    def aliases(self) -> AliasFacts:
        """Which locals nothing else reaches (NOTE: [Unaliased locals])."""
        if self._aliases is None:
            node = self.node
            self._aliases = AliasFacts(node if isinstance(node, _FUNCTIONS) else None)
        return self._aliases

    @classmethod
    def of(cls, node: ast.FunctionDef | ast.Lambda, code: types.CodeType) -> FunctionScope:
        """The scope of the function ``node`` whose compiled code is ``code``.

        The code object already knows its locals (``co_varnames``, ``co_cellvars``),
        which saves walking the whole function for them; only ``global`` and
        ``nonlocal`` statements are looked for in the source.
        """
        params = _params(node.args)
        cells = frozenset(code.co_cellvars)
        local = frozenset(code.co_varnames) | cells
        if cells:
            cells = _closed_over(node, cells)
        if isinstance(node, ast.Lambda):
            return cls(params, local, frozenset(), cells, node=node)
        declared: set[str] = set()
        rebinders: set[str] = set()
        for stmt in _statements(node.body):
            if isinstance(stmt, _DECLARATIONS):
                declared.update(stmt.names)
            elif (
                cells
                and isinstance(stmt, _FUNCTIONS)
                and any(
                    isinstance(inner, ast.Nonlocal) and cells.intersection(inner.names)
                    for inner in ast.walk(stmt)
                )
            ):
                rebinders.add(stmt.name)
        return cls(params, local - declared, frozenset(declared), cells, frozenset(rebinders), node)


_CLOSURES = (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.GeneratorExp)
_INLINE_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp)


def _closed_over(function: ast.FunctionDef | ast.Lambda, cells: frozenset[str]) -> frozenset[str]:
    """The ``cells`` of ``function`` that a closure may read or write at another time.

    Before Python 3.12 a list, set or dict comprehension is a nested function too, so
    the variables it reads are cells; but it runs where
    it stands, reading them then, as an inlined comprehension does on 3.12. Only a
    real closure (``def``, ``lambda``, class body, generator expression, which may run
    later) or an assignment expression in a comprehension (which writes the enclosing
    function's variable) makes a cell matter to the regions.
    """
    found: set[str] = set()
    # The fast walks (``children``, ``_walk``): no markers, which are neither
    # closures nor names.
    stack: list[ast.AST] = children(function)
    while stack:
        node = stack.pop()
        if isinstance(node, _CLOSURES):
            found.update(n.id for n in _walk(node) if n.__class__ is ast.Name)
            continue
        if isinstance(node, _INLINE_COMPREHENSIONS):
            found.update(
                n.target.id
                for n in _walk(node)
                if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name)
            )
        stack.extend(children(node))
    return cells & found


def rebinder_called(node: ast.AST, rebinders: frozenset[str]) -> str | None:
    """The first of ``rebinders`` that ``node`` reads (and so may call), or None."""
    if not rebinders:
        return None
    for inner in ast.walk(node):
        if (
            isinstance(inner, ast.Name)
            and isinstance(inner.ctx, ast.Load)
            and inner.id in rebinders
        ):
            return inner.id
    return None


def rebinder_obstacle(name: str) -> str:
    return (
        f"it uses {name}(), a nested function that rebinds this function's variables "
        "(nonlocal): its calls share them"
    )
