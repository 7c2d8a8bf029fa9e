"""The compiler's shortcuts make exactly what the full passes make (NOTE: [Plain
functions]): a function with no region candidate skips the rewriter, and its calls are
dispatched from the list the first walk collected. Checked on every function of some
standard-library modules and on constructs that stress the walk."""

from __future__ import annotations

import ast
import importlib
import linecache
import textwrap
import types
from typing import Any

import pytest

from xcs._compiler import _codegen
from xcs._compiler._analysis import FunctionScope, memoized
from xcs._compiler._source import NoSource, function_node

MODULES = ("textwrap", "shlex", "json.decoder", "configparser", "fractions", "difflib")


def _functions(module: types.ModuleType) -> list[types.FunctionType]:
    found: list[types.FunctionType] = []
    for value in vars(module).values():
        members = vars(value).values() if isinstance(value, type) else [value]
        for member in members:
            if isinstance(member, staticmethod | classmethod):
                member = member.__func__
            if isinstance(member, types.FunctionType) and member.__module__ == module.__name__:
                found.append(member)
    return found


def _node(fn: types.FunctionType) -> ast.FunctionDef | ast.Lambda | None:
    try:
        node = function_node(fn)
    except NoSource:
        return None
    return None if isinstance(node, ast.AsyncFunctionDef) else node


def _full_rewrite(fn: types.FunctionType) -> _codegen.Rewrite:
    """What the rewriter makes of ``fn``, never taking the shortcut."""
    node = _node(fn)
    assert node is not None
    _codegen._scan(node)  # marks the comprehension targets, as rewrite_function does
    with memoized():
        return _codegen._rewrite_function(node, FunctionScope.of(node, fn.__code__))


def _check(fn: types.FunctionType) -> bool:
    """Compare the shortcut with the full passes for ``fn``; True if it was taken."""
    node = _node(fn)
    if node is None:
        return False
    calls, candidate = _codegen._scan(node)
    # The calls the first walk found are the calls a walk of the rewrite finds.
    rewrite = _codegen.rewrite_function(node, fn.__code__)
    if candidate:
        assert rewrite.calls is None
        return False
    assert rewrite.calls is not None
    assert {id(c) for c in rewrite.calls} == {id(c) for c in _codegen._calls_in(rewrite.node)}
    assert len(rewrite.calls) == len(calls)
    # The rewriter, given the same function, finds nothing and makes the same tree.
    full = _full_rewrite(fn)
    assert (full.sites, full.notes) == ([], [])
    assert ast.dump(full.node, include_attributes=True) == ast.dump(
        rewrite.node, include_attributes=True
    )
    # And dispatching through the list is dispatching through a walk.
    walked = _codegen.add_dispatch(full, frozenset({"len"}))
    listed = _codegen.add_dispatch(rewrite, frozenset({"len"}))
    assert walked.dispatches == listed.dispatches
    assert ast.dump(walked.node, include_attributes=True) == ast.dump(
        listed.node, include_attributes=True
    )
    return True


@pytest.mark.parametrize("name", MODULES)
def test_the_shortcut_makes_what_the_rewriter_makes(name: str) -> None:
    module = importlib.import_module(name)
    taken = [_check(fn) for fn in _functions(module)]
    # Both paths are exercised in every module.
    assert any(taken)
    assert not all(taken)


SOURCE = """
import re

def displays(a, b):
    merged = {**a, "k": b(1), **b(2)}
    return [*merged, *a], {*b(3)}, merged

def nested(x):
    def inner(y=helper(x)):
        return helper(y)
    return inner, lambda z=helper(2): helper(z)

def matching(point):
    match point:
        case Point(x=0, y=yy) if check(yy):
            return yy
        case {"k": v, **rest}:
            return rest
        case [first, *others]:
            return first(others)
        case None | True:
            return None
    return other(point)

def declared(x):
    global counter
    counter = bump(counter)
    return counter

def annotated(x: int) -> make_type(int):
    y: list[int] = convert(x)
    return y

def chained(s):
    return s.strip().split(",")[0].lower()(call(s))(again)

def f_strings(x):
    return f"{x!r:>{width(x)}} {fmt(x)}"

def guarded(x):
    try:
        value = risky(x)
    except (KeyError, ValueError) as exc:
        raise Wrapped(exc) from exc
    else:
        done(value)
    finally:
        cleanup()

def one_call_each(a):
    x = first(a)
    if x:
        y = second(a)
    return x

def two_calls(a):
    x = first(a)
    y = second(a)
    return x, y

def with_loop(xs):
    for x in xs:
        pass
    return xs

def with_comprehension(xs):
    return sorted(x for x in xs)

def with_while(x):
    while x:
        x = step(x)

def with_with(x):
    with opened(x) as f:
        return f

def loop_in_nested(x):
    def inner():
        for y in x:
            use(y)
    return inner

def star_assign(a):
    first, *rest = split(a)
    return rest

def walrus(a):
    if (n := count(a)) > 1:
        return n

def lambdas(a):
    return (lambda x: x(a))(call)
"""

PLAIN = {
    "displays",
    "nested",
    "matching",
    "declared",
    "annotated",
    "chained",
    "f_strings",
    "guarded",
    "one_call_each",
    "star_assign",
    "walrus",
    "lambdas",
}


def test_constructs() -> None:
    filename = "<xcs-test-compile-paths>"
    linecache.cache[filename] = (len(SOURCE), None, SOURCE.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    exec(compile(SOURCE, filename, "exec"), namespace)
    taken = {
        name for name, fn in namespace.items() if isinstance(fn, types.FunctionType) and _check(fn)
    }
    assert taken == PLAIN


def test_a_lambda() -> None:
    source = textwrap.dedent(
        """
        plain = lambda x, y=0: other(x)(y, **{"k": third(x)})
        region = lambda xs: [call(x) for x in xs]
        """
    )
    filename = "<xcs-test-compile-paths-lambda>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), namespace)
    assert _check(namespace["plain"])
    assert not _check(namespace["region"])
