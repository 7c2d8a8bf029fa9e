"""Compiling ``async def`` functions: the regions whose items await become asyncio tasks.

The rewriter is the sync one (``_codegen._Rewriter``) with the parts that differ
overridden; the run-time half is ``_async_rt``. What differs:

- A region qualifies only if its items *await*. Sync calls in an async function run
  in order, in the event loop's thread, exactly as written: XCS never moves them to
  threads, and ``xcs.explain`` says so.
- Lambdas cannot await, so a region's item is a generated ``async def`` (a helper)::

      results = [await ask(q) for q in qs]

  becomes::

      async def __xcs_item1__(q):
          return await ask(q)
      results = ([await ask(q) for q in qs] if __xcs_rt__.original(0)
                 else await __xcs_rt__.acomp(0, None, 0, __xcs_item1__, ((q,) for q in qs)))

  The helper is defined just before the statement that uses it, in the same scope,
  and reads the function's variables as a comprehension does (through the closure,
  when its item runs). A helper of a region nested in another region's item is
  defined inside the outer helper; one in a forked statement, inside that
  statement's own helper, which received the locals it reads by value.
- A loop region's body is an ``async def`` and its driver
  ``async with __xcs_rt__.aloop(...) as r: async for record in r: <replay>``, for
  ``for`` and ``async for`` loops alike (the iterable is read in order, by the
  region; only the bodies overlap).
- A run of independent ``a = await f(x); b = await g(x)`` spawns and joins with
  ``await``.

``async with xcs.deadline(...)`` is as transparent as ``with xcs.deadline(...)``.
"""

from __future__ import annotations

import ast
import copy
import types
from typing import Any, cast

from xcs._compiler._analysis import (
    FunctionScope,
    LoopAnalysis,
    analyze_loop,
    comprehension_obstacle,
    free_loads,
    has_call,
    mark_comprehension_targets,
    memoized,
    own_nodes,
    own_statements,
    target_names,
)
from xcs._compiler._codegen import (
    _KIND,
    Rewrite,
    _arguments,
    _Context,
    _is_deadline,
    _located,
    _loop_header,
    _may_spawn,
    _name,
    _rebuild,
    _Rewriter,
    _rt_attr,
    _rt_call,
    _unique,
)

__all__ = ["rewrite_async_function"]

_SYNC_CALLS = (
    "its calls are not awaited (XCS never moves an async function's sync calls to "
    "threads; await them, with asyncio.to_thread if they block, to overlap them)"
)
_NO_CALL = "its items make no call"
_AWAIT_FUNC = "__xcs_await__"  # stands for ``await`` in the copies the sync analysis reads


# ---------------------------------------------------------------------------
# Analysis


def awaits(node: ast.AST) -> bool:
    """True if evaluating ``node`` awaits, here (``await``, ``async for`` in a
    comprehension), not in a nested function."""
    return any(
        isinstance(n, ast.Await) or (isinstance(n, ast.comprehension) and n.is_async)
        for n in own_nodes(node)
    )


class _AwaitAsCall(ast.NodeTransformer):
    """``await e`` -> ``__xcs_await__(e)`` and ``async for`` clauses -> ``for``: a copy
    the sync analysis can read (an await is a call for every question it asks)."""

    def visit_Await(self, node: ast.Await) -> ast.AST:
        value = self.visit(node.value)
        return ast.copy_location(ast.Call(func=_name(_AWAIT_FUNC), args=[value], keywords=[]), node)

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        self.generic_visit(node)
        node.is_async = 0
        return node


def _as_sync(node: Any) -> Any:
    if isinstance(node, list):
        return [_as_sync(item) for item in node]
    return _AwaitAsCall().visit(copy.deepcopy(node))


def async_comprehension_obstacle(node: ast.expr) -> str | None:
    """Why a comprehension of an async function cannot become a region, or None."""
    generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
    last = generators[-1]
    parts: list[ast.AST] = list(last.ifs)
    if isinstance(node, ast.DictComp):
        parts += [node.key, node.value]
    else:
        parts.append(node.elt)  # type: ignore[attr-defined]
    if not any(awaits(p) for p in parts):
        return _SYNC_CALLS if any(has_call(p) for p in parts) else _NO_CALL
    early: list[ast.AST] = [g.iter for g in generators]
    for generator in generators[:-1]:
        early += generator.ifs
    if any(awaits(p) for p in early[1:]) or any(
        isinstance(n, ast.Await) for n in own_nodes(early[0])
    ):
        return "it awaits in a for clause or an early condition (those run in order)"
    return comprehension_obstacle(_as_sync(node))


def analyze_async_loop(loop: ast.For | ast.AsyncFor, scope: FunctionScope) -> LoopAnalysis:
    """May the iterations of ``loop`` (whose body awaits) run as concurrent tasks?
    The sync analysis (DESIGN §1.5) on a copy where awaits read as calls."""
    if not any(awaits(stmt) for stmt in loop.body):
        calls = any(has_call(stmt) for stmt in loop.body)
        return LoopAnalysis(obstacle=_SYNC_CALLS if calls else "its body makes no call")
    as_sync = ast.For(
        target=_as_sync(loop.target),
        iter=_as_sync(loop.iter),
        body=_as_sync(loop.body),
        orelse=[],
    )
    ast.copy_location(as_sync, loop)
    mark_comprehension_targets(as_sync)
    analysis = analyze_loop(as_sync, scope.cells, scope.declared, scope.rebinders, scope.aliases)
    # The effects are known by the copy's statements; name the originals instead.
    effects = analysis.effects
    analysis.effects = {
        id(original): effects[id(twin)]
        for twin, original in zip(
            own_statements(as_sync.body), own_statements(loop.body), strict=True
        )
        if id(twin) in effects
    }
    return analysis


# ---------------------------------------------------------------------------
# The rewriter


class _AsyncRewriter(_Rewriter):
    def __init__(self, scope: FunctionScope, function: ast.AsyncFunctionDef) -> None:
        super().__init__(scope, function)
        # Helpers made while rewriting; each block takes those of its statements and
        # defines them just before the statement.
        self._helpers: list[ast.stmt] = []
        self._defs_of: dict[int, list[ast.stmt]] = {}  # a rewritten statement's helpers

    def _take(self, mark: int) -> list[ast.stmt]:
        taken = self._helpers[mark:]
        del self._helpers[mark:]
        return taken

    # -- statements ------------------------------------------------------------------------

    def _piece(self, stmt: ast.stmt, ctx: _Context) -> tuple[list[ast.stmt], list[ast.stmt]]:
        """(helpers, rewritten statements) of one statement."""
        mark = len(self._helpers)
        if isinstance(stmt, ast.AsyncFor):
            out = self.for_loop(stmt, ctx)  # type: ignore[arg-type]
        elif isinstance(stmt, ast.AsyncWith):
            out = [self._async_with(stmt, ctx)]
        else:
            out = super().statement(stmt, ctx)
        return self._take(mark), out

    def statement(self, stmt: ast.stmt, ctx: _Context) -> list[ast.stmt]:
        helpers, out = self._piece(stmt, ctx)
        return [*helpers, *out]

    def block(self, stmts: list[ast.stmt], ctx: _Context) -> list[ast.stmt]:
        pieces = [self._piece(stmt, ctx) for stmt in stmts]
        rewritten = [s for _, out in pieces for s in out]
        if ctx.forks and sum(_may_spawn(s) for s in stmts) >= 2 and len(rewritten) == len(stmts):
            self._note_sync_run(stmts)
            for (helpers, _), new in zip(pieces, rewritten, strict=True):
                self._defs_of[id(new)] = helpers
            forked = self.forks(stmts, rewritten)
            result: list[ast.stmt] = []
            for stmt in forked:
                result.extend(self._defs_of.pop(id(stmt), ()))
                result.append(stmt)
            return result
        return [s for helpers, out in pieces for s in (*helpers, *out)]

    def _note_sync_run(self, stmts: list[ast.stmt]) -> None:
        sync = [
            s
            for s in stmts
            if isinstance(s, ast.Assign) and has_call(s.value) and not awaits(s.value)
        ]
        if len(sync) >= 2:
            self._note(sync[0], "statements", f"run in order: {_SYNC_CALLS}")

    def _async_with(self, stmt: ast.AsyncWith, ctx: _Context) -> ast.stmt:
        safe = all(_is_deadline(item) for item in stmt.items)
        inner = ctx if safe else ctx.inside_with()
        new = copy.copy(stmt)
        new.items = [self._withitem(item, ctx) for item in stmt.items]
        new.body = self.block(stmt.body, inner)
        if not safe and any(has_call(s) for s in stmt.body):
            self._note(stmt, "async with block", f"its calls run in order: {inner.why}")
        return new

    # -- expressions: comprehensions --------------------------------------------------------

    def expr(self, node: ast.expr, ctx: _Context) -> ast.expr:
        if not ctx.comps:
            return super().expr(node, ctx)  # notes what stays in order
        if not any(
            isinstance(inner, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp)
            for inner in own_nodes(node)
        ):
            return node
        rewritten: ast.expr = _AsyncExprRewriter(self).visit(node)
        return rewritten

    def async_comprehension(
        self, node: ast.expr, original: ast.expr, inner_helpers: list[ast.stmt]
    ) -> ast.expr:
        """The region of a comprehension whose items await (checked by the caller)."""
        kind = _KIND[type(node)]
        info = self._new_site("comprehension", original, node)
        generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        params = _unique([n for g in generators for n in target_names(g.target) or []])
        last = generators[-1]
        if isinstance(node, ast.DictComp):
            value: ast.expr = ast.Tuple(elts=[node.key, node.value], ctx=ast.Load())
        else:
            value = node.elt  # type: ignore[attr-defined]
        if last.ifs:
            test = last.ifs[0] if len(last.ifs) == 1 else ast.BoolOp(op=ast.And(), values=last.ifs)
            value = ast.IfExp(test=test, body=value, orelse=_rt_attr("SKIP"))
        helper = self._fresh("item")
        self._helpers.append(
            _located(
                ast.AsyncFunctionDef(
                    name=helper,
                    args=_arguments(params),
                    body=[*inner_helpers, ast.Return(value=value)],
                    decorator_list=[],
                    returns=None,
                    type_comment=None,
                ),
                original,
            )
        )
        clauses = [copy.copy(g) for g in generators]
        clauses[-1].ifs = []
        items = ast.GeneratorExp(
            elt=ast.Tuple(elts=[_name(p) for p in params], ctx=ast.Load()), generators=clauses
        )
        region = ast.Await(
            _rt_call(
                "acomp",
                ast.Constant(info.site.index),
                self._roots(info),
                ast.Constant(kind),
                _name(helper),
                _located(items, original),
            )
        )
        info.reads = free_loads(original)
        return self._two_paths(info.site.index, original, region)

    # -- loops ------------------------------------------------------------------------------

    def for_loop(self, loop: ast.For, ctx: _Context) -> list[ast.stmt]:
        analysis = analyze_async_loop(loop, self.scope)
        if analysis.obstacle is None and not ctx.loops:
            analysis.obstacle = ctx.why
        what = "async for loop" if isinstance(loop, ast.AsyncFor) else "for loop"
        if analysis.obstacle is not None:
            if analysis.obstacle != "its body makes no call":
                self._note(loop, what, f"runs in order: {analysis.obstacle}")
            rewritten = copy.copy(loop)
            rewritten.iter = self.expr(loop.iter, ctx)
            rewritten.body = self.block(loop.body, ctx)
            rewritten.orelse = self.block(loop.orelse, ctx)
            return [rewritten]
        # The sync region, made async: the body an async def, the driver an async for.
        as_for = loop
        if isinstance(loop, ast.AsyncFor):
            as_for = ast.For(target=loop.target, iter=loop.iter, body=loop.body, orelse=loop.orelse)
            ast.copy_location(as_for, loop)
        first_site = len(self.sites)
        (choice,) = self._loop_region(as_for, analysis, ctx)
        info = self.sites[first_site]
        if isinstance(loop, ast.AsyncFor):
            info.site.source = "async " + _loop_header(as_for)
        assert isinstance(choice, ast.If)
        choice.body = [loop]  # the original path: the loop as written
        parallel = choice.orelse
        function, driver = parallel[0], parallel[1]
        assert isinstance(function, ast.FunctionDef)
        assert isinstance(driver, ast.For)
        parallel[0] = _located(
            ast.AsyncFunctionDef(
                name=function.name,
                args=function.args,
                body=function.body,
                decorator_list=[],
                returns=None,
                type_comment=None,
            ),
            loop,
        )
        assert isinstance(driver.iter, ast.Call)
        assert isinstance(driver.iter.func, ast.Attribute)
        driver.iter.func.attr = "aloop"
        region = self._fresh("region")
        parallel[1] = _located(
            ast.AsyncWith(
                items=[
                    ast.withitem(context_expr=driver.iter, optional_vars=_name(region, ast.Store()))
                ],
                body=[
                    ast.AsyncFor(
                        target=driver.target, iter=_name(region), body=driver.body, orelse=[]
                    )
                ],
                type_comment=None,
            ),
            loop,
        )
        return [choice]

    # -- independent statements ---------------------------------------------------------------

    def _spawnable(self, stmt: ast.stmt) -> list[str] | None:
        """Target names if ``stmt`` is ``names = <value that awaits>``, forkable."""
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            return None
        if not awaits(stmt.value):
            return None  # sync calls run in order
        names = target_names(stmt.targets[0])
        if not names:
            return None
        if any(n in self.scope.declared or n in self.scope.cells for n in names):
            return None
        return super()._spawnable(_as_sync(stmt))

    def _emit_fork(
        self, originals: list[ast.stmt], rewritten: list[ast.stmt], plan: list[Any]
    ) -> list[ast.stmt]:
        own = {id(new): self._defs_of.pop(id(new), []) for new in rewritten}
        helpers = [d for new in rewritten for d in own[id(new)]]
        # The parallel path defines a statement's helpers again inside the statement's
        # own helper, where the locals they read are its parameters (values taken
        # when the statement was spawned).
        by_value = {id(new.value): own[id(new)] for new in rewritten if isinstance(new, ast.Assign)}
        (choice,) = super()._emit_fork(originals, rewritten, plan)
        assert isinstance(choice, ast.If)
        parallel = choice.orelse
        start, _, attempt = parallel[0], parallel[1], parallel[2]
        assert isinstance(start, ast.Assign)
        assert isinstance(start.value, ast.Call)
        assert isinstance(start.value.func, ast.Attribute)
        start.value.func.attr = "afork"
        assert isinstance(attempt, ast.Try)
        statement_helpers: list[ast.stmt] = []
        for stmt in attempt.body:
            if isinstance(stmt, ast.Expr) and (
                _is_fork_call(stmt.value, "spawn") or _is_fork_call(stmt.value, "flow")
            ):
                call = stmt.value
                assert isinstance(call, ast.Call)
                spawned = call.args[0]
                assert isinstance(spawned, ast.Lambda)
                name = self._fresh("statement")
                statement_helpers.append(
                    _located(
                        ast.AsyncFunctionDef(
                            name=name,
                            args=spawned.args,
                            body=[*by_value.get(id(spawned.body), ()), ast.Return(spawned.body)],
                            decorator_list=[],
                            returns=None,
                            type_comment=None,
                        ),
                        stmt,
                    )
                )
                call.args[0] = _name(name)
                stmt.value = _located(ast.Await(call), stmt)
            elif isinstance(stmt, ast.Assign) and _is_fork_call(stmt.value, "result"):
                stmt.value = _located(ast.Await(stmt.value), stmt)
        settle = attempt.handlers[0].body[0]
        assert isinstance(settle, ast.Assign)
        settle.value = _located(ast.Await(settle.value), settle)
        choice.orelse = [*statement_helpers, *parallel]
        return [*helpers, choice]


def _is_fork_call(node: ast.expr, method: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == method
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id.startswith("__xcs_fork")
    )


class _AsyncExprRewriter:
    """Rewrites the comprehension regions of one expression of an async function,
    innermost first, without changing the expression it was given."""

    def __init__(self, owner: _AsyncRewriter) -> None:
        self.owner = owner

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Lambda):
            return node  # its body runs later, in its own scope
        if isinstance(node, ast.GeneratorExp):
            if awaits(node):
                self.owner._note(
                    node,
                    "generator expression",
                    "runs in order: a generator expression that awaits is an "
                    "asynchronous generator, read lazily by its consumer",
                )
            return node
        if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp):
            obstacle = async_comprehension_obstacle(node) or self.owner._region_obstacle(node)
            if obstacle is not None:
                if obstacle != _NO_CALL:
                    self.owner._note(node, "comprehension", f"runs in order: {obstacle}")
                return node
            mark = len(self.owner._helpers)
            inner = _rebuild(node, self.visit)
            return self.owner.async_comprehension(inner, node, self.owner._take(mark))  # type: ignore[arg-type]
        return _rebuild(node, self.visit)


# ---------------------------------------------------------------------------
# Entry point


def rewrite_async_function(node: ast.AsyncFunctionDef, code: types.CodeType) -> Rewrite:
    """Rewrite an ``async def``'s AST (see the module docstring).

    Args:
        node: the function's AST, as found by ``_source.function_node``.
        code: the function's code object (it knows the function's locals).
    """
    with memoized():
        scope = FunctionScope.of(cast(ast.FunctionDef, node), code)
        mark_comprehension_targets(node)
        rewriter = _AsyncRewriter(scope, node)
        body = rewriter.block(node.body, _Context(True, True, True))
        body = [*rewriter._take(0), *body]
        function = ast.AsyncFunctionDef(
            name=node.name,
            args=node.args,
            body=body,
            decorator_list=[],
            returns=node.returns,
            type_comment=None,
        )
        _located(function, node)
        return Rewrite(cast(ast.FunctionDef, function), rewriter.sites, rewriter.notes)
