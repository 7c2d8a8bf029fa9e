"""The definite-assignment and late-read analyses that decide whether a statement of
a run may be forked (``_binding.py``)."""

from __future__ import annotations

import ast
import textwrap

import pytest

from xcs._compiler._binding import bound_before, late_reads


def _bound_at(source: str, marker: str = "probe()") -> frozenset[str]:
    tree = ast.parse(textwrap.dedent(source))
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    table = bound_before(function)
    for node in ast.walk(function):
        if isinstance(node, ast.Expr) and ast.unparse(node) == marker:
            return table.get(id(node), frozenset())
    raise AssertionError(f"no {marker} in the source")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(p, *a, k, **kw):\n    probe()", {"p", "a", "k", "kw"}),
        ("def f(p):\n    if p:\n        b = 1\n    else:\n        b = 2\n    probe()", {"p", "b"}),
        ("def f(p):\n    if p:\n        b = 1\n    probe()", {"p"}),
        ("def f(p):\n    if p:\n        return\n    else:\n        b = 2\n    probe()", {"p", "b"}),
        ("def f(p):\n    b = 1\n    del b\n    probe()", {"p"}),
        ("def f(p):\n    for x in p:\n        b = 1\n    probe()", {"p"}),
        ("def f(p):\n    for x in p:\n        probe()\n        del p", {"x"}),
        ("def f(p):\n    while p:\n        probe()\n        b = 1", {"p"}),
        ("def f(p):\n    with p as (c, d):\n        e = 1\n    probe()", {"p", "c", "d"}),
        (
            "def f(p):\n    try:\n        b = 1\n    except E as e:\n        b = 2\n    probe()",
            {"p", "b"},
        ),
        ("def f(p):\n    try:\n        b = 1\n    except E:\n        pass\n    probe()", {"p"}),
        ("def f(p):\n    try:\n        b = 1\n    except E as e:\n        probe()", {"p", "e"}),
        ("def f(p):\n    import os.path as q, sys.x\n    probe()", {"p", "q", "sys"}),
        ("def f(p):\n    a, (b, *c) = p\n    p.x, d = p\n    probe()", {"p", "a", "b", "c"}),
        ("def f(p):\n    def g(): del p\n    class C: pass\n    probe()", {"p", "g", "C"}),
        (
            "def f(p):\n    match p:\n        case [a, *b] | {'k': a, **b} if a:\n"
            "            probe()",
            {"p", "a", "b"},
        ),
        ("def f(p):\n    match p:\n        case [a]:\n            pass\n    probe()", {"p"}),
    ],
)
def test_surely_bound_names(source: str, expected: set[str]) -> None:
    assert _bound_at(source) == expected


@pytest.mark.parametrize(
    ("expression", "late"),
    [
        ("f(a, b)", set()),
        ("f(g(), b)", {"b"}),
        ("f(a) + b", {"b"}),
        ("a or b and c", {"b", "c"}),
        ("x if c else y", {"x", "y"}),
        ("a < b < c", {"c"}),
        ("[f(v, w) for v in xs]", {"f", "w"}),
        ("{k: f(v) for k, v in d}", {"f"}),
        ("[[v for v in u] for u in g(w) if h(u)]", {"h"}),
        ("{a: f(), b: c}", {"b", "c"}),
        ("(lambda: z)(a)", set()),
    ],
)
def test_late_reads(expression: str, late: set[str]) -> None:
    assert late_reads(ast.parse(expression, mode="eval").body) == late
