"""Rewriting: a function's AST -> the AST of its compiled form -> a code object that
keeps the original file name, line numbers, globals, closure cells and defaults.

Each parallel region becomes two paths, the original code and the region through
``__xcs_rt__`` (see ``_rt``). A comprehension::

    results = [call(x) for x in xs if keep(x)]

becomes::

    results = ([call(x) for x in xs if keep(x)] if __xcs_rt__.original(0)
               else __xcs_rt__.comp(0, 0, lambda x: call(x) if keep(x) else __xcs_rt__.SKIP,
                                    ((x,) for x in xs)))

A loop whose iterations are independent becomes a body function per iteration
(writes to accumulators recorded, not made), run by ``__xcs_rt__.loop``, and a replay
of each iteration's writes, in order, in the function's own frame. A run of
independent statements ``a = f(x); b = g(x)`` becomes spawns on a fork and joins at
the first use of each name, in program order.

Generated names start with ``__xcs_`` and end with ``__``, which also exempts them
from class-private name mangling.
"""

from __future__ import annotations

import ast
import copy
import functools
import types
from dataclasses import dataclass, field
from typing import Any

from xcs._compiler._analysis import (
    MARKERS,
    NODE_FIELDS,
    RECORD_STEM,
    EffectKind,
    FunctionScope,
    LoopAnalysis,
    all_nodes,
    analyze_loop,
    bound_names,
    children,
    comprehension_obstacle,
    frame_sensitive_call,
    free_loads,
    has_call,
    mark_target,
    memoized,
    node_fields,
    own_nodes,
    own_statements,
    positional_arguments,
    rebinder_called,
    rebinder_obstacle,
    target_names,
)
from xcs._compiler._binding import bound_before, late_reads
from xcs._compiler._rt import Site

__all__ = ["Rewrite", "rewrite_function"]

RT = "__xcs_rt__"
_KIND = {ast.ListComp: 0, ast.SetComp: 1, ast.DictComp: 2}
_CONSUMER_NAMES = frozenset({"list", "tuple", "set", "frozenset", "sorted", "sum", "min", "max"})


@dataclass
class Note:
    """A construct kept in order, and why (shown by ``xcs.explain``)."""

    line: int
    what: str
    reason: str


@dataclass
class SiteInfo:
    """Compile-time facts about a region, for the plan."""

    site: Site
    reads: set[str] = field(default_factory=set)
    writes: list[str] = field(default_factory=list)
    # (source text maker, names written, names read, line) per forked statement
    statements: list[tuple[Any, list[str], set[str], int]] = field(default_factory=list)


@dataclass
class Rewrite:
    """The result of rewriting one function."""

    node: ast.FunctionDef
    sites: list[SiteInfo]
    notes: list[Note]
    dispatches: int = 0  # calls that go through ``__xcs_rt__.callee`` (NOTE: [Call tree])
    # Every call in ``node``, when the rewrite is the function as written (NOTE:
    # [Plain functions]): ``add_dispatch`` needs no walk of its own. None: walk.
    calls: list[ast.Call] | None = None


# ---------------------------------------------------------------------------
# Small AST builders


def _name(id_: str, ctx: ast.expr_context | None = None) -> ast.Name:
    return ast.Name(id=id_, ctx=ctx or ast.Load())


def _rt_attr(attr: str) -> ast.Attribute:
    return ast.Attribute(value=_name(RT), attr=attr, ctx=ast.Load())


def _rt_call(method: str, *args: ast.expr, keywords: list[ast.keyword] | None = None) -> ast.Call:
    return ast.Call(func=_rt_attr(method), args=list(args), keywords=keywords or [])


def _const(value: Any) -> ast.Constant:
    return ast.Constant(value=value)


def _arguments(params: list[str]) -> ast.arguments:
    """Plain positional parameters ``(a, b, ...)``."""
    return ast.arguments(
        posonlyargs=[],
        args=[ast.arg(arg=p) for p in params],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )


def _lambda(params: list[str], body: ast.expr) -> ast.Lambda:
    return ast.Lambda(
        args=_arguments(params),
        body=body,
    )


def _located(node: ast.AST, like: ast.AST) -> Any:
    """Give a generated node, and every generated node under it, the position of the
    user's code it stands for. Nodes taken from the user's code keep their own
    positions, and the walk does not enter them: every generated node passes through
    here when it is made, so nothing under a user's node is left without one."""
    try:
        position = (like.lineno, like.col_offset, like.end_lineno, like.end_col_offset)  # type: ignore[attr-defined]
    except AttributeError:
        return node
    _position(node, position)
    return node


def _position(node: ast.AST, position: tuple[int, int, int | None, int | None]) -> None:
    lineno, col_offset, end_lineno, end_col_offset = position
    stack: list[Any] = [node]
    placed = _placed
    while stack:
        node = stack.pop()
        cls = node.__class__
        has_position = placed.get(cls)
        if has_position is None:
            has_position = placed[cls] = "lineno" in cls._attributes
        if has_position:
            if hasattr(node, "lineno"):
                continue  # the user's node (or one already placed): not entered
            node.lineno = lineno  # type: ignore[attr-defined]
            node.col_offset = col_offset  # type: ignore[attr-defined]
            node.end_lineno = end_lineno  # type: ignore[attr-defined]
            node.end_col_offset = end_col_offset  # type: ignore[attr-defined]
        stack.extend(children(node))


_placed: dict[type, bool] = {}  # AST class -> whether its nodes have a position


def _source(node: ast.AST, limit: int = 70) -> str:
    text = " ".join(ast.unparse(_undispatched(node)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _may_spawn(stmt: ast.stmt) -> bool:
    """A cheap first look: could ``stmt`` start a fork (``names = <a call>``)?"""
    return (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and not isinstance(stmt.value, _CONSTANT_OR_NAME)
    )


_CONSTANT_OR_NAME = (ast.Constant, ast.Name)  # a tuple: a union would be built per call


def _loop_header(loop: ast.For) -> str:
    header = ast.For(target=loop.target, iter=loop.iter, body=[ast.Pass()], orelse=[])
    ast.copy_location(header, loop)
    return _source(header).replace(": pass", ": ...")


def _statements_source(first: ast.stmt, count: int) -> str:
    return _source(first) + (f" ... ({count} statements)" if count > 1 else "")


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _is_deadline(item: ast.withitem) -> bool:
    """``with xcs.deadline(...)`` / ``with deadline(...)``: safe to overlap inside."""
    expr = item.context_expr
    if not isinstance(expr, ast.Call):
        return False
    func = expr.func
    if isinstance(func, ast.Name):
        return func.id == "deadline"
    return isinstance(func, ast.Attribute) and func.attr in ("deadline", "trace")


# ---------------------------------------------------------------------------
# The rewriter


class _Context:
    __slots__ = ("comps", "forks", "loops", "why")

    def __init__(self, comps: bool, loops: bool, forks: bool, why: str = "") -> None:
        self.comps = comps  # comprehension regions allowed
        self.loops = loops  # loop regions allowed
        self.forks = forks  # statement forks allowed
        self.why = why  # why something is disallowed here

    def inside_try(self) -> _Context:
        return _Context(
            self.comps,
            False,
            False,
            self.why or "inside a try block (its handlers must see the sequential state)",
        )

    def inside_with(self) -> _Context:
        return _Context(
            False,
            False,
            False,
            self.why or "inside a with block (the context manager may hold thread-local state)",
        )


class _Rewriter:
    def __init__(
        self, scope: FunctionScope, function: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    ) -> None:
        self.scope = scope
        self._function = function
        self._bound: dict[int, frozenset[str]] | None = None  # built on first need
        self.sites: list[SiteInfo] = []
        self.notes: list[Note] = []
        self._counter = 0
        self._fact_cache: dict[int, tuple[list[str] | None, set[str], bool, set[str]]] = {}

    # A forked statement starts when the statements whose values it reads are done,
    # not when every earlier one is (NOTE: [Statements in dataflow order]).
    dataflow = True

    # -- bookkeeping -----------------------------------------------------------------------

    def _new_site(
        self,
        kind: str,
        node: ast.AST,
        scan: ast.AST | None = None,
        deferred: frozenset[int] = frozenset(),
    ) -> SiteInfo:
        scanned = scan if scan is not None else node
        callees = self._callees(scanned, deferred)
        local_roots = tuple(sorted({root for root, _ in callees if root in self.scope.local}))
        site = Site(
            len(self.sites),
            kind,
            getattr(node, "lineno", 0),
            functools.partial(_source, node),
            callees,
            local_roots,
        )
        site.shared_args = _shared_arguments(scanned, deferred)
        info = SiteInfo(site)
        self.sites.append(info)
        return info

    def _fresh(self, stem: str) -> str:
        self._counter += 1
        return f"__xcs_{stem}{self._counter}__"

    def _note(self, node: ast.AST, what: str, reason: str) -> None:
        self.notes.append(Note(getattr(node, "lineno", 0), what, reason))

    def _callees(
        self, node: ast.AST, deferred: frozenset[int] = frozenset()
    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The callees of ``node`` that are names or attribute chains (``save``,
        ``self.store.save``): checked for ``@xcs.sequential`` and order-sensitive
        receivers when the region runs. ``deferred``: ids of calls a loop replays in
        program order itself (``out.append(y)``), which need no check."""
        found: set[tuple[str, tuple[str, ...]]] = set()
        for call in all_nodes(node):
            if not isinstance(call, ast.Call) or id(call) in deferred:
                continue
            callee = _callee_path(call.func)
            if callee is not None:
                found.add(callee)
        return tuple(sorted(found))

    def _roots(self, info: SiteInfo) -> ast.expr:
        """``lambda: (a, b)`` for the callee roots that are this function's locals."""
        if not info.site.local_roots:
            return _const(None)
        values = ast.Tuple(elts=[_name(n) for n in info.site.local_roots], ctx=ast.Load())
        return _lambda([], values)

    # -- statements --------------------------------------------------------------------------

    def block(self, stmts: list[ast.stmt], ctx: _Context) -> list[ast.stmt]:
        rewritten: list[ast.stmt] = []
        for stmt in stmts:
            rewritten.extend(self.statement(stmt, ctx))
        # A fork needs two assignments that call; most blocks have fewer.
        if ctx.forks and sum(_may_spawn(s) for s in stmts) >= 2:
            return self.forks(stmts, rewritten)
        return rewritten

    def statement(self, stmt: ast.stmt, ctx: _Context) -> list[ast.stmt]:
        original = stmt
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return [stmt]  # bodies run later, in their own scope: not compiled here
        if isinstance(stmt, ast.For):
            return self.for_loop(stmt, ctx)
        if isinstance(stmt, ast.Try | ast.TryStar):
            inner = ctx.inside_try()
            stmt = copy.copy(stmt)
            stmt.body = self.block(stmt.body, inner)
            stmt.handlers = [self._handler(h, inner) for h in stmt.handlers]
            stmt.orelse = self.block(stmt.orelse, inner)
            stmt.finalbody = self.block(stmt.finalbody, inner)
            return [stmt]
        if isinstance(stmt, ast.With):
            safe = all(_is_deadline(item) for item in stmt.items)
            inner = ctx if safe else ctx.inside_with()
            stmt = copy.copy(stmt)
            stmt.items = [self._withitem(item, ctx) for item in stmt.items]
            stmt.body = self.block(stmt.body, inner)
            if not safe and any(has_call(s) for s in stmt.body):
                self._note(stmt, "with block", f"its calls run in order: {inner.why}")
            return [stmt]
        if isinstance(stmt, ast.If):
            stmt = copy.copy(stmt)
            stmt.test = self.expr(stmt.test, ctx)
            stmt.body = self.block(stmt.body, ctx)
            stmt.orelse = self.block(stmt.orelse, ctx)
            return [stmt]
        if isinstance(stmt, ast.While):
            stmt = copy.copy(stmt)
            stmt.test = self.expr(stmt.test, ctx)
            stmt.body = self.block(stmt.body, ctx)
            stmt.orelse = self.block(stmt.orelse, ctx)
            if has_call(original):
                self._note(
                    stmt,
                    "while loop",
                    "runs in order: a while loop's next test depends on the iteration before it",
                )
            return [stmt]
        if isinstance(stmt, ast.Match):
            # Patterns make no calls; the subject, the guards and the case bodies are
            # compiled like an if-elif chain's tests and branches.
            stmt = copy.copy(stmt)
            stmt.subject = self.expr(stmt.subject, ctx)
            stmt.cases = [self._case(case, ctx) for case in stmt.cases]
            return [stmt]
        if isinstance(stmt, ast.AsyncFor | ast.AsyncWith):
            return [stmt]
        first_new_site = len(self.sites)
        rewritten = self._simple(stmt, ctx)
        if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            # Regions in the value produce what the statement assigns (for the plan).
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            written = [n for t in targets for n in (target_names(t) or [])]
            for info in self.sites[first_new_site:]:
                info.writes = _unique([*info.writes, *written])
        return [rewritten]

    def _case(self, case: ast.match_case, ctx: _Context) -> ast.match_case:
        case = copy.copy(case)
        if case.guard is not None:
            case.guard = self.expr(case.guard, ctx)
        case.body = self.block(case.body, ctx)
        return case

    def _handler(self, handler: ast.ExceptHandler, ctx: _Context) -> ast.ExceptHandler:
        handler = copy.copy(handler)
        handler.body = self.block(handler.body, ctx)
        return handler

    def _withitem(self, item: ast.withitem, ctx: _Context) -> ast.withitem:
        item = copy.copy(item)
        item.context_expr = self.expr(item.context_expr, ctx)
        return item

    def _simple(self, stmt: ast.stmt, ctx: _Context) -> ast.stmt:
        stmt = copy.copy(stmt)
        for name in node_fields(type(stmt)):
            value = getattr(stmt, name, None)
            if isinstance(value, ast.expr):
                setattr(stmt, name, self.expr(value, ctx))
            elif isinstance(value, list) and value and isinstance(value[0], ast.expr):
                setattr(stmt, name, [self.expr(v, ctx) for v in value])
        return stmt

    # -- expressions: comprehensions and consumed generator expressions ------------------------

    def expr(self, node: ast.expr, ctx: _Context) -> ast.expr:
        if not ctx.comps:
            for inner in own_nodes(node):
                if isinstance(inner, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
                    if has_call(inner):
                        self._note(inner, "comprehension", f"runs in order: {ctx.why}")
                    break
            return node
        if not any(isinstance(inner, _REGION_NODES) for inner in own_nodes(node)):
            return node
        rewritten: ast.expr = _ExprRewriter(self).visit(node)
        return rewritten

    def _region_obstacle(self, node: ast.AST) -> str | None:
        """Why an expression region (a comprehension or a consumed generator
        expression) cannot be one, beyond its own shape."""
        rebinder = rebinder_called(node, self.scope.rebinders)
        return None if rebinder is None else rebinder_obstacle(rebinder)

    def comprehension(self, node: ast.expr, original: ast.expr) -> ast.expr:
        obstacle = comprehension_obstacle(original) or self._region_obstacle(original)
        if obstacle is not None:
            if obstacle != "its items make no call":
                self._note(original, "comprehension", f"runs in order: {obstacle}")
            return node
        kind = _KIND[type(node)]
        info = self._new_site("comprehension", original, node)
        body, items = self._comprehension_parts(node)
        region = _rt_call(
            "comp", _const(info.site.index), self._roots(info), _const(kind), body, items
        )
        info.reads = free_loads(original)
        return self._two_paths(info.site.index, original, region)

    def consumed(self, call: ast.Call, original: ast.Call) -> ast.expr | None:
        genexp = call.args[0]
        assert isinstance(genexp, ast.GeneratorExp)
        obstacle = comprehension_obstacle(original.args[0]) or self._region_obstacle(original)
        if obstacle is not None:
            if obstacle != "its items make no call":
                self._note(original, "generator expression", f"runs in order: {obstacle}")
            return None
        info = self._new_site("consume", original, genexp)
        body, items = self._comprehension_parts(genexp)
        region = _rt_call(
            "consume",
            _const(info.site.index),
            self._roots(info),
            call.func,
            body,
            items,
            *call.args[1:],
            keywords=call.keywords,
        )
        info.reads = free_loads(original)
        return self._two_paths(info.site.index, original, region)

    def _comprehension_parts(self, node: Any) -> tuple[ast.Lambda, ast.GeneratorExp]:
        generators: list[ast.comprehension] = node.generators
        params: list[str] = []
        for generator in generators:
            params.extend(target_names(generator.target) or [])
        params = _unique(params)
        last = generators[-1]
        if isinstance(node, ast.DictComp):
            value: ast.expr = ast.Tuple(elts=[node.key, node.value], ctx=ast.Load())
        else:
            value = node.elt
        if last.ifs:
            test = last.ifs[0] if len(last.ifs) == 1 else ast.BoolOp(op=ast.And(), values=last.ifs)
            value = ast.IfExp(test=test, body=value, orelse=_rt_attr("SKIP"))
        body = _located(_lambda(params, value), node)
        clauses = [copy.copy(g) for g in generators]
        clauses[-1].ifs = []
        items = ast.GeneratorExp(
            elt=ast.Tuple(elts=[_name(p) for p in params], ctx=ast.Load()), generators=clauses
        )
        return body, _located(items, node)

    def _two_paths(self, index: int, original: ast.expr, region: ast.expr) -> ast.expr:
        test = _rt_call("original", _const(index))
        choice: ast.expr = _located(ast.IfExp(test=test, body=original, orelse=region), original)
        return choice

    # -- loops --------------------------------------------------------------------------------

    def for_loop(self, loop: ast.For, ctx: _Context) -> list[ast.stmt]:
        analysis = analyze_loop(
            loop, self.scope.cells, self.scope.declared, self.scope.rebinders, self.scope.aliases
        )
        if analysis.obstacle is None and not ctx.loops:
            analysis.obstacle = ctx.why
        if analysis.obstacle is not None:
            if analysis.obstacle != "its body makes no call":
                self._note(loop, "for loop", f"runs in order: {analysis.obstacle}")
            rewritten = copy.copy(loop)
            rewritten.iter = self.expr(loop.iter, ctx)
            rewritten.body = self.block(loop.body, ctx)
            rewritten.orelse = self.block(loop.orelse, ctx)
            return [rewritten]
        return self._loop_region(loop, analysis, ctx)

    def _loop_region(self, loop: ast.For, analysis: LoopAnalysis, ctx: _Context) -> list[ast.stmt]:
        deferred = frozenset(
            id(stmt.value)
            for stmt in own_statements(loop.body)
            if analysis.effects.get(id(stmt)) == EffectKind.CALL and isinstance(stmt, ast.Expr)
        )
        info = self._new_site("loop", loop, deferred=deferred)
        info.site.source = functools.partial(_loop_header, loop)
        body_reads = set().union(*(free_loads(s) for s in loop.body))
        info.reads = free_loads(loop.iter) | body_reads
        # A body that reads what the loop iterates (``next(it)`` inside ``for x in it``)
        # would race the loop for the iterator's items; checked at run time.
        info.site.shares_iterable = bool(free_loads(loop.iter) & body_reads)
        info.writes = _unique([*analysis.assigned, *sorted(analysis.effect_targets)])
        index = info.site.index
        body_name = self._fresh("loop_body")
        # Fresh names: a loop region inside this one's body has a record of its own,
        # and must still see this one's (its effects replay into it, in order).
        rec, item = self._fresh(RECORD_STEM), self._fresh("item")

        # The iteration, as a function of (record, item). Effects are marked on the
        # original nodes (the analysis knows them by identity) before copying.
        for stmt in own_statements(loop.body):
            kind = analysis.effects.get(id(stmt))
            if kind is not None:
                stmt._xcs_effect = kind  # type: ignore[attr-defined]
        aug_kinds: list[ast.AugAssign] = []
        transformer = _EffectRewriter(analysis, rec, aug_kinds)
        inner_ctx = _Context(True, True, False, "inside a parallel loop's body")
        body = [transformer.visit_block(s) for s in loop.body]
        body_stmts: list[ast.stmt] = [
            ast.Assign(targets=[loop.target], value=_name(item)),
        ]
        for group in body:
            for stmt in group:
                body_stmts.extend(self.statement(stmt, inner_ctx))
        capture = ast.Assign(
            targets=[ast.Attribute(value=_name(rec), attr="bindings", ctx=ast.Store())],
            value=_rt_call(
                "capture",
                ast.Call(func=_rt_attr("LOCALS"), args=[], keywords=[]),
                ast.Tuple(elts=[_const(n) for n in analysis.assigned], ctx=ast.Load()),
            ),
        )
        # The body reads the function's locals as free variables: an unbound one
        # raises NameError ("free variable") where the sequential loop raised
        # UnboundLocalError. The runtime gives back the sequential error.
        caught = "__xcs_unbound__"
        unbound = ast.ExceptHandler(
            type=_name("NameError"),
            name=caught,
            body=[
                # caught = rt.unbound_local(caught); if caught is None: raise
                # raise caught from None
                ast.Assign(
                    targets=[_name(caught, ast.Store())],
                    value=_rt_call("unbound_local", _name(caught)),
                ),
                ast.If(
                    test=ast.Compare(
                        left=_name(caught), ops=[ast.Is()], comparators=[_const(None)]
                    ),
                    body=[ast.Raise(exc=None, cause=None)],
                    orelse=[],
                ),
                ast.Raise(exc=_name(caught), cause=_const(None)),
            ],
        )
        function = ast.FunctionDef(
            name=body_name,
            args=_arguments([rec, item]),
            body=[ast.Try(body=body_stmts, handlers=[unbound], orelse=[], finalbody=[capture])],
            decorator_list=[],
            returns=None,
        )

        # The owner: run the iterations, replay their writes in order.
        record, kind, payload, bound = "__xcs_r__", "__xcs_k__", "__xcs_p__", "__xcs_b__"
        replay: list[ast.stmt] = []
        cases: list[tuple[ast.expr, list[ast.stmt]]] = [
            (
                _const(0),
                [
                    ast.Expr(
                        ast.Call(
                            func=ast.Subscript(
                                value=_name(payload), slice=_const(0), ctx=ast.Load()
                            ),
                            args=[
                                ast.Starred(
                                    value=ast.Subscript(
                                        value=_name(payload), slice=_const(1), ctx=ast.Load()
                                    ),
                                    ctx=ast.Load(),
                                )
                            ],
                            keywords=[
                                ast.keyword(
                                    arg=None,
                                    value=ast.Subscript(
                                        value=_name(payload), slice=_const(2), ctx=ast.Load()
                                    ),
                                )
                            ],
                        )
                    )
                ],
            )
        ]
        for number, aug in enumerate(aug_kinds, start=1):
            assert isinstance(aug.target, ast.Name)
            cases.append(
                (
                    _const(number),
                    [
                        _located(
                            ast.AugAssign(
                                target=_name(aug.target.id, ast.Store()),
                                op=aug.op,
                                value=_name(payload),
                            ),
                            aug,
                        )
                    ],
                )
            )
        chain: list[ast.stmt] = []
        for test_value, stmts in reversed(cases):
            test = ast.Compare(left=_name(kind), ops=[ast.Eq()], comparators=[test_value])
            chain = [ast.If(test=test, body=stmts, orelse=chain)]
        if analysis.effects:
            replay.append(
                ast.For(
                    target=ast.Tuple(
                        elts=[_name(kind, ast.Store()), _name(payload, ast.Store())],
                        ctx=ast.Store(),
                    ),
                    iter=ast.Attribute(value=_name(record), attr="effects", ctx=ast.Load()),
                    body=chain,
                    orelse=[],
                )
            )
        if analysis.assigned:
            replay.append(
                ast.Assign(
                    targets=[_name(bound, ast.Store())],
                    value=ast.Attribute(value=_name(record), attr="bindings", ctx=ast.Load()),
                )
            )
        for position, name in enumerate(analysis.assigned):
            value = ast.Subscript(value=_name(bound), slice=_const(position), ctx=ast.Load())
            replay.append(
                ast.If(
                    test=ast.Compare(
                        left=value, ops=[ast.IsNot()], comparators=[_rt_attr("UNBOUND")]
                    ),
                    body=[ast.Assign(targets=[_name(name, ast.Store())], value=value)],
                    orelse=[],
                )
            )
        if not replay:
            replay.append(ast.Pass())
        driver = ast.For(
            target=_name(record, ast.Store()),
            iter=_rt_call(
                "loop",
                _const(index),
                self._roots(info),
                _name(body_name),
                self.expr(loop.iter, ctx),
            ),
            body=replay,
            orelse=[],
        )
        parallel: list[ast.stmt] = [function, driver, *self.block(loop.orelse, ctx)]
        for stmt in parallel:
            _located(stmt, loop)
        original = loop
        return [
            _located(
                ast.If(test=_rt_call("original", _const(index)), body=[original], orelse=parallel),
                loop,
            )
        ]

    # -- independent statements --------------------------------------------------------------

    def forks(self, originals: list[ast.stmt], rewritten: list[ast.stmt]) -> list[ast.stmt]:
        """Find runs of independent assignments in a block and fork them."""
        if len(originals) != len(rewritten):
            # A statement became several (a loop region): keep the block as it is, but
            # look for runs between such statements.
            return rewritten
        out: list[ast.stmt] = []
        start = 0
        while start < len(originals):
            run = self._fork_run(originals, start)
            if run is None:
                out.append(rewritten[start])
                start += 1
                continue
            end, plan = run
            out.extend(self._emit_fork(originals[start:end], rewritten[start:end], plan))
            start = end
        return out

    def _spawnable(self, stmt: ast.stmt) -> list[str] | None:
        """Target names if ``stmt`` is ``names = <value that calls>``, forkable."""
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            return None
        names = target_names(stmt.targets[0])
        if not names or not has_call(stmt.value):
            return None
        if any(n in self.scope.declared or n in self.scope.cells for n in names):
            return None
        for node in all_nodes(stmt.value):
            if isinstance(node, ast.NamedExpr | ast.Yield | ast.YieldFrom | ast.Await):
                return None
            if isinstance(node, ast.Lambda):
                # The spawned value captures the locals it reads by value; a lambda
                # made inside it must see the variables themselves, as it would here.
                return None
        if frame_sensitive_call(stmt.value) is not None:
            return None
        if rebinder_called(stmt.value, self.scope.rebinders) is not None:
            return None  # its calls share variables with the other statements' calls
        return names

    def _keepable(self, stmt: ast.stmt) -> bool:
        """A statement that may run between spawns: no call, and it writes only
        plain locals (nothing a spawned call could see)."""
        if isinstance(stmt, ast.Pass):
            return True
        if isinstance(stmt, ast.Expr):
            return isinstance(stmt.value, ast.Constant)
        if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            if has_call(stmt):
                return False
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                names = target_names(target)
                if names is None or any(
                    n in self.scope.declared or n in self.scope.cells for n in names
                ):
                    return False
            return not any(isinstance(n, ast.NamedExpr) for n in all_nodes(stmt))
        return False

    def _facts(self, stmt: ast.stmt) -> tuple[list[str] | None, set[str], bool, set[str]]:
        """(spawnable target names, names read, keepable?, names bound) of ``stmt``,
        computed once per statement (runs are searched from every start)."""
        facts = self._fact_cache.get(id(stmt))
        if facts is None:
            names = self._spawnable(stmt)
            if names is not None and self._unsure_late_reads(stmt):
                names = None
            keepable = names is None and self._keepable(stmt)
            binds = bound_names([stmt]) if keepable else set()
            facts = (names, free_loads(stmt), keepable, binds)
            self._fact_cache[id(stmt)] = facts
        return facts

    def _unsure_late_reads(self, stmt: ast.stmt) -> list[str]:
        """Locals a spawnable ``stmt`` reads late (short-circuited, or after a call)
        that may be unbound when it starts. A spawn reads its locals up front, so it
        would raise UnboundLocalError where the sequential program does not, or
        before calls the program makes first: such a statement runs in order."""
        assert isinstance(stmt, ast.Assign)
        late = late_reads(stmt.value) & self.scope.local
        if not late:
            return []
        if self._bound is None:
            function = self._function
            self._bound = bound_before(function) if function is not None else {}
        unsure = sorted(late - (self._bound.get(id(stmt), frozenset()) - self.scope.cells))
        if unsure:
            self._note(
                stmt,
                "statement",
                f"runs in order: it reads {', '.join(unsure)} after a call or only on "
                "some paths, and it may be unbound here",
            )
        return unsure

    def _fork_run(self, stmts: list[ast.stmt], start: int) -> tuple[int, list[Any]] | None:
        """From ``start``, the longest run worth forking: (end, per-statement plan).

        NOTE: [Statements in dataflow order]
        In ``a = f(x); b = g(x); c = h(a); d = k(x)``, ``c`` starts as soon as ``a`` is
        done: the owner does not join ``a`` before spawning ``c`` (which would hold
        back ``d`` until ``a`` is done, and ``c`` until ``b`` is, had ``b`` come
        first), but passes the spawn of ``a`` to ``fork.flow``, which starts ``c``'s
        task when that spawn finishes, given its value. The owner joins every spawn
        in program order at the end of the run (or where a statement it runs itself
        reads one), so the first error in program order is the one raised, and a
        statement whose input failed never starts. Only a whole value flows: a name
        bound by unpacking (``a, b = f(x)``) is joined first, as before.
        """
        if self._facts(stmts[start])[0] is None:
            return None
        plan: list[Any] = []
        pending: dict[str, int] = {}  # name -> spawn number
        spawns = 0
        joined = -1  # every spawn up to this one is joined when the statement starts
        after: list[set[int]] = []  # per spawn: the spawns it starts after, transitively
        whole: set[int] = set()  # spawns whose value is their target's (``a = ...``)
        overlapping = False
        position = start
        while position < len(stmts):
            names, reads, keepable, binds = self._facts(stmts[position])
            needed = [pending[n] for n in reads if n in pending]
            if names is not None:
                if self.dataflow:
                    # NOTE: [Statements in dataflow order]
                    inputs = {n: pending[n] for n in reads if pending.get(n) in whole}
                    unpacked = [pending[n] for n in reads if n in pending and n not in inputs]
                    join_to = max(unpacked, default=-1)  # ``a, b = ...``: joined
                    inputs = {n: k for n, k in inputs.items() if k > join_to}
                else:
                    inputs = {}
                    clobbered = [pending[n] for n in names if n in pending]
                    join_to = max(needed + clobbered, default=-1)
                joined = max(joined, join_to)
                ancestors = set(inputs.values())
                for number in inputs.values():
                    ancestors |= after[number]
                after.append(ancestors)
                if any(n not in ancestors for n in range(joined + 1, spawns)):
                    overlapping = True  # an earlier spawn is still open beside this one
                plan.append(("spawn", names, join_to, reads, inputs))
                for name in [n for n in list(pending) if pending[n] <= join_to]:
                    del pending[name]
                for name in names:
                    pending[name] = spawns
                stmt = stmts[position]
                if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
                    whole.add(spawns)
                spawns += 1
            elif keepable:
                clobbered = [pending[n] for n in binds if n in pending]
                join_to = max(needed + clobbered, default=-1)
                joined = max(joined, join_to)
                plan.append(("keep", None, join_to, reads, {}))
                for name in [n for n in list(pending) if pending[n] <= join_to]:
                    del pending[name]
            else:
                break
            position += 1
        # The run ends with every open spawn joined.
        while plan and plan[-1][0] == "keep" and plan[-1][2] == -1:
            plan.pop()
            position -= 1
        if not overlapping or spawns < 2:
            return None
        return position, plan

    def _emit_fork(
        self, originals: list[ast.stmt], rewritten: list[ast.stmt], plan: list[Any]
    ) -> list[ast.stmt]:
        first = originals[0]
        info = self._new_site("statements", first, ast.Module(originals, []))
        info.site.source = functools.partial(_statements_source, first, len(originals))
        index = info.site.index
        fork = self._fresh("fork")
        error, caught = self._fresh("error"), self._fresh("caught")
        targets: dict[int, ast.expr] = {}  # spawn number -> its assignment target
        joined = -1  # every spawn up to this one has been joined
        body: list[ast.stmt] = []
        spawn_number = 0

        def join_until(limit: int, like: ast.AST) -> None:
            nonlocal joined
            for number in range(joined + 1, limit + 1):
                body.append(
                    _located(
                        ast.Assign(
                            targets=[targets[number]],
                            value=ast.Call(
                                func=ast.Attribute(
                                    value=_name(fork), attr="result", ctx=ast.Load()
                                ),
                                args=[_const(number)],
                                keywords=[],
                            ),
                        ),
                        like,
                    )
                )
            joined = max(joined, limit)

        for original, new, (action, names, join_to, reads, inputs) in zip(
            originals, rewritten, plan, strict=True
        ):
            join_until(join_to, original)
            if action == "keep":
                body.append(new)
                continue
            assert isinstance(new, ast.Assign)
            params = sorted(n for n in reads if n in self.scope.local and n not in inputs)
            if inputs:
                # fork.flow(lambda a, x: h(a, x), (0,), x): starts when spawn 0 is done,
                # given its value first (NOTE: [Statements in dataflow order]).
                ready = sorted(inputs)
                numbers = ast.Tuple(elts=[_const(inputs[n]) for n in ready], ctx=ast.Load())
                spawn = ast.Call(
                    func=ast.Attribute(value=_name(fork), attr="flow", ctx=ast.Load()),
                    args=[
                        _lambda([*ready, *params], new.value),
                        numbers,
                        *(_name(p) for p in params),
                    ],
                    keywords=[],
                )
            else:
                spawn = ast.Call(
                    func=ast.Attribute(value=_name(fork), attr="spawn", ctx=ast.Load()),
                    args=[_lambda(params, new.value), *(_name(p) for p in params)],
                    keywords=[],
                )
            body.append(_located(ast.Expr(spawn), original))
            targets[spawn_number] = new.targets[0]
            info.statements.append(
                (functools.partial(_source, original), list(names), set(reads), original.lineno)
            )
            spawn_number += 1
        join_until(spawn_number - 1, originals[-1])

        # try: <body> except BaseException as caught: error = fork.settle(caught) ...
        handler = ast.ExceptHandler(
            type=_name("BaseException"),
            name=caught,
            body=[
                ast.Assign(
                    targets=[_name(error, ast.Store())],
                    value=ast.Call(
                        func=ast.Attribute(value=_name(fork), attr="settle", ctx=ast.Load()),
                        args=[_name(caught)],
                        keywords=[],
                    ),
                ),
                ast.If(
                    test=ast.Compare(
                        left=_name(error), ops=[ast.Is()], comparators=[_name(caught)]
                    ),
                    body=[ast.Raise(exc=None, cause=None)],
                    orelse=[],
                ),
            ],
        )
        parallel: list[ast.stmt] = [
            ast.Assign(
                targets=[_name(fork, ast.Store())],
                value=_rt_call("fork", _const(index), self._roots(info)),
            ),
            ast.Assign(targets=[_name(error, ast.Store())], value=_const(None)),
            ast.Try(body=body, handlers=[handler], orelse=[], finalbody=[]),
            ast.If(
                test=ast.Compare(left=_name(error), ops=[ast.IsNot()], comparators=[_const(None)]),
                body=[ast.Raise(exc=_name(error), cause=None)],
                orelse=[],
            ),
        ]
        for stmt in parallel:
            _located(stmt, first)
        # The in-order path runs the statements with their own nested regions (a
        # comprehension in them still overlaps when its calls block).
        return [
            _located(
                ast.If(
                    test=_rt_call("original", _const(index)),
                    body=list(rewritten),
                    orelse=parallel,
                ),
                first,
            )
        ]


def _shared_arguments(
    node: ast.AST, deferred: frozenset[int]
) -> dict[tuple[str, tuple[str, ...]], frozenset[int | str]]:
    """Per callee of the region ``node`` (as in ``_callees``): the arguments, by
    position or keyword, that are a name the region does not bind, so one object is
    passed to every item's call (``log`` in ``[ask(x, log) for x in xs]``). Checked
    when the region runs: a callee of yours that changes such an argument keeps the
    region in order (NOTE: [Arguments a callee changes] in _rt)."""
    stored = {n.id for n in all_nodes(node) if isinstance(n, ast.Name) and not _loads(n)}
    found: dict[tuple[str, tuple[str, ...]], set[int | str]] = {}
    for call in all_nodes(node):
        if not isinstance(call, ast.Call) or id(call) in deferred:
            continue
        keys: set[int | str] = set()
        for position, arg in enumerate(positional_arguments(call)):
            if isinstance(arg, ast.Name) and arg.id not in stored:
                keys.add(position)
        for keyword in call.keywords:
            value = keyword.value
            if keyword.arg is not None and isinstance(value, ast.Name) and value.id not in stored:
                keys.add(keyword.arg)
        if not keys:
            continue
        callee = _callee_path(call.func)
        if callee is not None:
            found.setdefault(callee, set()).update(keys)
    return {callee: frozenset(keys) for callee, keys in found.items()}


def _callee_path(func: ast.expr) -> tuple[str, tuple[str, ...]] | None:
    """``save`` -> ("save", ()); ``self.store.save`` -> ("self", ("store", "save"));
    None for a callee that is not a name or an attribute chain on one."""
    path: list[str] = []
    while isinstance(func, ast.Attribute):
        path.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        return func.id, tuple(reversed(path))
    return None


def _loads(name: ast.Name) -> bool:
    return isinstance(name.ctx, ast.Load)


def _rebuild(node: ast.AST, visit: Any) -> ast.AST:
    """``node`` with ``visit`` applied to its children, copied only if one changed
    (copy-on-write: the original tree stays intact for the in-order path, and
    unchanged subtrees are shared, not copied)."""
    changes: dict[str, Any] = {}
    for name in node_fields(type(node)):
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            new = visit(value)
            if new is not value:
                changes[name] = new
        elif isinstance(value, list) and value:
            items = [visit(v) if isinstance(v, ast.AST) else v for v in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changes[name] = items
    if not changes:
        return node
    clone = copy.copy(node)
    for name, value in changes.items():
        setattr(clone, name, value)
    return clone


_REGION_NODES = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_UNTOUCHED = (ast.Lambda, *MARKERS)


class _ExprRewriter:
    """Rewrites the comprehension regions of one expression, innermost first,
    without changing the expression it was given."""

    def __init__(self, owner: _Rewriter) -> None:
        self.owner = owner

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, _UNTOUCHED):
            return node  # a lambda's body runs later, in its own scope
        if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp):
            inner = _rebuild(node, self.visit)
            return self.owner.comprehension(inner, node)  # type: ignore[arg-type]
        if isinstance(node, ast.Call) and _consumed_genexp(node):
            inner = _rebuild(node, self.visit)
            assert isinstance(inner, ast.Call)
            region = self.owner.consumed(inner, node)
            return region if region is not None else inner
        return _rebuild(node, self.visit)


def _consumed_genexp(node: ast.Call) -> bool:
    """``list(<genexp>)``, ``sum(<genexp>, 0)``, ``", ".join(<genexp>)``..."""
    consumer = node.func
    is_whole = (isinstance(consumer, ast.Name) and consumer.id in _CONSUMER_NAMES) or (
        isinstance(consumer, ast.Attribute) and consumer.attr == "join"
    )
    return (
        is_whole
        and bool(node.args)
        and isinstance(node.args[0], ast.GeneratorExp)
        and not any(isinstance(a, ast.Starred) for a in node.args[1:])
    )


class _EffectRewriter:
    """Turns a parallel loop body's writes to accumulators into records."""

    def __init__(self, analysis: LoopAnalysis, rec: str, aug_kinds: list[ast.AugAssign]) -> None:
        self.analysis = analysis
        self.rec = rec
        self.aug_kinds = aug_kinds

    def visit_block(self, stmt: ast.stmt, loop_depth: int = 0) -> list[ast.stmt]:
        """``stmt`` with its effects turned into records (copy-on-write)."""
        kind = getattr(stmt, "_xcs_effect", None)
        if kind is not None:
            return [_located(s, stmt) for s in self._effect(stmt, kind)]
        if isinstance(stmt, ast.Continue) and loop_depth == 0:
            return [_located(ast.Return(value=None), stmt)]
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return [stmt]
        inner_depth = loop_depth + isinstance(stmt, ast.For | ast.While | ast.AsyncFor)
        changes: dict[str, Any] = {}
        for field_name in ("body", "orelse", "finalbody"):
            block = getattr(stmt, field_name, None)
            if block:
                depth = inner_depth if field_name == "body" else loop_depth
                new_block = [s for b in block for s in self.visit_block(b, depth)]
                if any(a is not b for a, b in zip(new_block, block, strict=False)) or len(
                    new_block
                ) != len(block):
                    changes[field_name] = new_block
        handlers = getattr(stmt, "handlers", None)
        if handlers:
            new_handlers = []
            for handler in handlers:
                body = [s for b in handler.body for s in self.visit_block(b, loop_depth)]
                if len(body) != len(handler.body) or any(
                    a is not b for a, b in zip(body, handler.body, strict=False)
                ):
                    handler = copy.copy(handler)
                    handler.body = body
                new_handlers.append(handler)
            if any(a is not b for a, b in zip(new_handlers, handlers, strict=True)):
                changes["handlers"] = new_handlers
        if not changes:
            return [stmt]
        clone = copy.copy(stmt)
        for name, value in changes.items():
            setattr(clone, name, value)
        return [clone]

    def _effect(self, stmt: ast.stmt, kind: str) -> list[ast.stmt]:
        record = _name(self.rec)
        if kind == EffectKind.CALL:
            call = stmt.value  # type: ignore[attr-defined]
            args = list(call.args)
            if isinstance(call.func, ast.Attribute) and call.func.attr == "extend":
                args = [_rt_call("materialize", args[0])]
            return [
                ast.Expr(
                    ast.Call(
                        func=ast.Attribute(value=record, attr="call", ctx=ast.Load()),
                        args=[call.func, *args],
                        keywords=call.keywords,
                    )
                )
            ]
        if kind == EffectKind.SETITEM:
            target = stmt.targets[0]  # type: ignore[attr-defined]
            value_name = "__xcs_value__"
            return [
                ast.Assign(targets=[_name(value_name, ast.Store())], value=stmt.value),  # type: ignore[attr-defined]
                ast.Expr(
                    ast.Call(
                        func=ast.Attribute(value=record, attr="call", ctx=ast.Load()),
                        args=[_rt_attr("setitem"), target.value, target.slice, _name(value_name)],
                        keywords=[],
                    )
                ),
            ]
        assert isinstance(stmt, ast.AugAssign)
        self.aug_kinds.append(stmt)
        return [
            ast.Expr(
                ast.Call(
                    func=ast.Attribute(value=record, attr="aug", ctx=ast.Load()),
                    args=[_const(len(self.aug_kinds)), stmt.value],
                    keywords=[],
                )
            )
        ]


# ---------------------------------------------------------------------------
# Entry point


def rewrite_function(node: ast.FunctionDef | ast.Lambda, code: types.CodeType) -> Rewrite:
    """Rewrite a function's AST (a ``def`` or a lambda, turned into a ``def``).

    Args:
        node: the function's AST, as found by ``_source.function_node``.
        code: the function's code object (it knows the function's locals).
    """
    calls, candidate = _scan(node)
    if not candidate:
        return _as_written(node, calls)
    with memoized():
        return _rewrite_function(node, FunctionScope.of(node, code))


def _rewrite_function(node: ast.FunctionDef | ast.Lambda, scope: FunctionScope) -> Rewrite:
    rewriter = _Rewriter(scope, None if isinstance(node, ast.Lambda) else node)
    ctx = _Context(True, True, True)
    if isinstance(node, ast.Lambda):
        body: list[ast.stmt] = [
            _located(ast.Return(value=rewriter.expr(node.body, ctx)), node.body)
        ]
        name = "__xcs_lambda__"
        args = node.args
        returns = None
    else:
        body = rewriter.block(node.body, ctx)
        name, args, returns = node.name, node.args, node.returns
    function = ast.FunctionDef(
        name=name,
        args=args,
        body=body,
        decorator_list=[],
        returns=returns,
        type_comment=None,
    )
    _located(function, node)
    return Rewrite(function, rewriter.sites, rewriter.notes)


# NOTE: [Plain functions]
# Most functions have nothing the rewriter could make a region of or would note (no
# loop, no comprehension or generator expression, no with block, no block with two
# assignments that call): their rewrite is the function as written, with no site and
# no note. One walk over the function finds that out before any analysis, and
# collects on the way what the later passes need: every call (for ``add_dispatch``)
# and the comprehensions' targets (marked for the analysis, on the other path). Such a
# function costs a parse, this walk and ``compile()``; the scope, the alias facts and
# the rewriter are never built. Every test is conservative: a loop, a with block or
# a comprehension anywhere (nested functions included) sends the function through
# the rewriter, which decides.

_NOT_PLAIN = (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, *_REGION_NODES)


def _scan(node: ast.FunctionDef | ast.Lambda) -> tuple[list[ast.Call], bool]:
    """(every call in what the rewrite keeps of ``node``, whether anything in it may be
    a region or be noted), marking the comprehensions' targets (NOTE: [Plain functions])."""
    calls: list[ast.Call] = []
    candidate = False
    if isinstance(node, ast.Lambda):
        stack: list[Any] = [node.args, node.body]
    else:
        stack = [node.args, *node.body]
        if node.returns is not None:
            stack.append(node.returns)
        candidate = _forkable(node.body)
    call, comprehension, stmt, ast_node = ast.Call, ast.comprehension, ast.stmt, ast.AST
    fields_of = NODE_FIELDS.get
    while stack:
        current = stack.pop()
        if current is None:
            continue  # a ``**d`` in a dict display
        cls = current.__class__
        if cls is call:
            calls.append(current)
        elif cls is comprehension:
            mark_target(current.target)
            candidate = True
        elif not candidate and isinstance(current, _NOT_PLAIN):
            candidate = True
        names = fields_of(cls)
        if names is None:
            names = node_fields(cls)
        for name in names:
            value = getattr(current, name, None)
            if value.__class__ is list:
                if not value or value[0].__class__ is str:
                    continue  # the names of ``global``, of a class pattern's keywords
                if not candidate and isinstance(value[0], stmt):
                    candidate = _forkable(value)
                stack.extend(value)
            elif isinstance(value, ast_node):
                stack.append(value)
    return calls, candidate


def _forkable(block: list[ast.stmt]) -> bool:
    """Could the rewriter look for a fork in ``block`` (two assignments that call)?"""
    return sum(map(_may_spawn, block)) >= 2


def _as_written(node: ast.FunctionDef | ast.Lambda, calls: list[ast.Call]) -> Rewrite:
    """The rewrite of a function with no region candidate: the function as written
    (what the rewriter makes of it, without copying its statements)."""
    if isinstance(node, ast.Lambda):
        body: list[ast.stmt] = [_located(ast.Return(value=node.body), node.body)]
        name, returns = "__xcs_lambda__", None
    else:
        body, name, returns = node.body, node.name, node.returns
    function = ast.FunctionDef(
        name=name,
        args=node.args,
        body=body,
        decorator_list=[],
        returns=returns,
        type_comment=None,
    )
    _located(function, node)
    return Rewrite(function, [], [], calls=calls)


# NOTE: [Call tree]
# ``@xcs.jit`` on an entry point compiles the user's own functions that it calls,
# transitively (DESIGN §1.9): every call ``f(args)`` in compiled code becomes
# ``__xcs_rt__.callee(f)(args)``, which hands back ``f``'s compiled form if ``f`` is a
# Python function of the user's (not of the standard library, site-packages or xcs),
# compiled once and cached on ``f``, or ``f`` itself. The callee is looked up after
# ``f`` is evaluated and before its arguments are, and it runs no user code, so the
# program's order of evaluation is unchanged. Calls the compiler made itself (to the
# runtime, records, forks) are left alone.


def add_dispatch(rewrite: Rewrite, builtin_only: frozenset[str] = frozenset()) -> Rewrite:
    """``rewrite`` with its calls dispatched to compiled callees (NOTE: [Call tree]).

    ``builtin_only``: names the function can only mean as builtins (``len``,
    ``print``...: neither its globals, its closure nor its locals bind them); calls to
    them are left alone, which saves the lookup at every call. The tree is changed in
    place (one walk, no copies): it is compiled next, and ``_source`` shows the
    user's code without the dispatch.
    """
    count = 0
    calls = rewrite.calls if rewrite.calls is not None else _calls_in(rewrite.node)
    for node in calls:
        func = node.func
        if _dispatchable(func) and not (isinstance(func, ast.Name) and func.id in builtin_only):
            node.func = _located(ast.Call(func=_rt_attr("callee"), args=[func], keywords=[]), func)
            count += 1
    if count == 0:
        return rewrite
    return Rewrite(rewrite.node, rewrite.sites, rewrite.notes, count)


def _calls_in(tree: ast.AST) -> list[ast.Call]:
    """Every call in ``tree``, once each (the two paths of a region share the user's
    nodes), in one walk (written out: it visits every node of the compiled tree)."""
    calls: list[ast.Call] = []
    stack: list[Any] = [tree]
    seen: set[int] = set()
    call, ast_node, fields_of = ast.Call, ast.AST, NODE_FIELDS.get
    while stack:
        node = stack.pop()
        key = id(node)
        if key in seen or node is None:
            continue
        seen.add(key)
        cls = node.__class__
        if cls is call:
            calls.append(node)
        names = fields_of(cls)
        if names is None:
            names = node_fields(cls)
        for name in names:
            value = getattr(node, name, None)
            if value.__class__ is list:
                if value and value[0].__class__ is not str:
                    stack.extend(value)
            elif isinstance(value, ast_node):
                stack.append(value)
    return calls


def _undispatched(node: ast.AST) -> ast.AST:
    """A copy of ``node`` without the dispatch ``add_dispatch`` put in (for text)."""
    node = copy.deepcopy(node)
    for inner in ast.walk(node):
        func = getattr(inner, "func", None)
        if (
            isinstance(inner, ast.Call)
            and isinstance(func, ast.Call)
            and isinstance(func.func, ast.Attribute)
            and func.func.attr == "callee"
            and isinstance(func.func.value, ast.Name)
            and func.func.value.id == RT
            and len(func.args) == 1
        ):
            inner.func = func.args[0]
    return node


_ITEM_OR_ATTRIBUTE = (ast.Attribute, ast.Subscript)


def _dispatchable(func: ast.expr) -> bool:
    if (
        isinstance(func, ast.Call)
        and isinstance(func.func, ast.Attribute)
        and func.func.attr == "callee"
        and isinstance(func.func.value, ast.Name)
        and func.func.value.id == RT
    ):
        return False  # dispatched already
    root: ast.AST = func
    while isinstance(root, _ITEM_OR_ATTRIBUTE):
        root = root.value
    if isinstance(root, ast.Name):
        return not root.id.startswith("__xcs_")  # the compiler's own calls
    return not isinstance(root, ast.Lambda)


def build_function(
    fn: types.FunctionType,
    rewrite: Rewrite,
    runtime: Any,
) -> types.FunctionType:
    """Compile the rewritten ``def`` into a function that shares ``fn``'s globals,
    closure cells, defaults and metadata (DESIGN §5, keeping closures live)."""
    return instantiate(fn, compile_rewrite(fn, rewrite), runtime)


def compile_rewrite(fn: types.FunctionType, rewrite: Rewrite) -> types.CodeType:
    """The code of the rewritten ``def``: the same for every function object made from
    ``fn``'s code (``instantiate`` makes one of them)."""
    code = fn.__code__
    # A function defined in a compiled one may close over that one's runtime: its own
    # replaces it.
    freevars = [name for name in code.co_freevars if name != RT]
    outer_params = [*freevars, RT]
    inner: ast.stmt = rewrite.node
    class_name = _mangling_class(fn)
    if class_name is not None:
        # Private names (self.__x) were mangled with the class's name when the method
        # was compiled in its class body; compiling it inside a class of that name
        # mangles them the same way.
        inner = ast.ClassDef(
            name=class_name, bases=[], keywords=[], body=[inner], decorator_list=[]
        )
        _located(inner, rewrite.node)
    # NOTE: [Scaffold names] The scaffold's own definitions (the def, and the class
    # that gives private names their mangling) would bind their names in the outer
    # function, turning the body's global reads of them (recursion, `f.__name__`,
    # `super(C, self)`, `C.attr`) into empty cells. Declared global in the scaffold
    # (which never runs), they stay the globals the original reads.
    scaffold_names = {rewrite.node.name} | ({class_name} if class_name is not None else set())
    shadowed = sorted(scaffold_names - set(outer_params))
    outer_body: list[ast.stmt] = [ast.Global(names=shadowed)] if shadowed else []
    outer = ast.FunctionDef(
        name="__xcs_outer__",
        args=_arguments(outer_params),
        body=[*outer_body, inner, ast.Return(value=_const(None))],
        decorator_list=[],
        returns=None,
    )
    _located(outer, rewrite.node)
    module = ast.Module(body=[outer], type_ignores=[])
    try:
        compiled = compile(module, code.co_filename, "exec", dont_inherit=True)
    except (TypeError, ValueError):
        # A generated node without a position (a bug, but not worth failing over):
        # give it its parent's. fix_missing_locations walks the whole tree, so it is
        # not the first resort.
        ast.fix_missing_locations(module)
        compiled = compile(module, code.co_filename, "exec", dont_inherit=True)
    new_code = _find_code(compiled, rewrite.node.name, rewrite.node.lineno)
    if code.co_name == "<lambda>":
        return new_code.replace(co_name="<lambda>", co_qualname=code.co_qualname)
    return new_code.replace(co_qualname=code.co_qualname)


def instantiate(
    fn: types.FunctionType, new_code: types.CodeType, runtime: Any
) -> types.FunctionType:
    """The compiled function of ``fn``: ``new_code`` with ``fn``'s globals, closure
    cells, defaults and metadata, and ``runtime`` for its regions."""
    code = fn.__code__
    cells: dict[str, types.CellType] = dict(
        zip(code.co_freevars, fn.__closure__ or (), strict=True)
    )
    closure = tuple(
        types.CellType(runtime)
        if name == RT
        else cells[name]
        if name in cells
        else types.CellType()
        for name in new_code.co_freevars
    )
    function = types.FunctionType(new_code, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    function.__kwdefaults__ = copy.copy(fn.__kwdefaults__)
    function.__dict__.update(
        (key, value) for key, value in fn.__dict__.items() if key != "__xcs_compiled__"
    )
    function.__qualname__ = fn.__qualname__
    function.__module__ = fn.__module__
    function.__doc__ = fn.__doc__
    function.__annotations__ = fn.__annotations__
    return function


def _mangling_class(fn: types.FunctionType) -> str | None:
    """The class to compile ``fn`` inside of, if it needs one: for private names
    (``self.__x``, stored mangled as ``_Cls__x``) or for zero-argument ``super()``."""
    parts = fn.__qualname__.split(".")
    owner = parts[-2] if len(parts) >= 2 and parts[-2] != "<locals>" else None
    code = fn.__code__
    if "__class__" in code.co_freevars:
        return owner or "__xcs_class__"
    if owner is None:
        return None
    prefix = "_" + owner.lstrip("_") + "__"
    if any(name.startswith(prefix) for name in _all_names(code)):
        return owner
    return None


def _all_names(code: types.CodeType) -> list[str]:
    names = [*code.co_names, *code.co_varnames, *code.co_freevars, *code.co_cellvars]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_all_names(const))
    return names


def _find_code(code: types.CodeType, name: str, line: int) -> types.CodeType:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if const.co_name == name and const.co_firstlineno == line:
                return const
            try:
                return _find_code(const, name, line)
            except LookupError:
                continue
    raise LookupError(name)
