"""A generator of valid Python functions for fuzzing ``xcs.jit``, and the world they run in.

Broader than the differential grammar (``tests/compiler/_programs.py``), which
builds the patterns XCS overlaps: here any statement may appear anywhere, nested to
a few levels — assignments, augmented and starred assignments, ``if``/``elif``,
``for``/``else`` with ``break``/``continue``, bounded ``while`` loops, ``try`` with
``except``/``else``/``finally``, ``with``, ``match`` (literal, or-, sequence and
capture patterns, guards), ``assert``, ``raise``, ``return``, ``del``, ``global``,
nested functions with ``nonlocal``, lambdas with defaults and star-args, list, set
and dict comprehensions and generator expressions, the walrus, calls with ``*args``
and ``**kwargs``. Programs may fail in their own ways (an op's ``OpError``,
``ZeroDivisionError``, ``UnboundLocalError`` after a ``del``, ``AssertionError``...),
which is fine: the jitted run must fail the same way.

Each generated function is ``prog(xs, n, *rest, k=2, **kw)``; it calls ``op`` (a
recorded, deterministic, optionally slow call), ``fail`` (raises ``OpError`` for
multiples of 5) and ``Rec`` (a context manager recording its enter and exit).
"""

from __future__ import annotations

import itertools
import linecache
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

__all__ = ["Fuzzed", "OpError", "Outcome", "World", "functions", "load", "run"]


class OpError(Exception):
    """Raised by ``fail(v)`` for multiples of 5; ``args`` are ``(v,)``."""


class World:
    """The ops of one program, recording every call (thread-safe)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.calls: list[tuple[Any, ...]] = []
        self.log: list[Any] = []

    def begin(self) -> None:
        with self.lock:
            self.calls = []
            self.log = []  # what the program wrote to its sink, in order

    def _record(self, call: tuple[Any, ...]) -> None:
        call = _hashable(call)  # ops may get lists (op(x, *grp), op(len(alias), ...))
        with self.lock:
            self.calls.append(call)

    def namespace(self) -> dict[str, Any]:
        world = self

        def op(*args: Any, **kwargs: Any) -> int:
            world._record(("op", args, tuple(sorted(kwargs.items()))))
            if world.latency:
                time.sleep(world.latency)
            total = 3 + sum((i + 2) * a for i, a in enumerate(args) if type(a) is int)
            return (total + 5 * sum(v for v in kwargs.values() if type(v) is int)) % 23

        def fail(v: Any, *more: Any) -> Any:
            world._record(("fail", (v, *more), ()))
            if world.latency:
                time.sleep(world.latency)
            if type(v) is int and v % 5 == 0:
                raise OpError(v)
            return v

        class Rec:
            def __init__(self, tag: Any) -> None:
                self.tag = tag

            def __enter__(self) -> Any:
                world._record(("enter", (self.tag,), ()))
                return self.tag

            def __exit__(self, *exc: object) -> None:
                world._record(("exit", (self.tag,), ()))

        class Sink:
            """A stream-like object: ``write`` is an effect whose order matters."""

            def write(self, v: Any) -> int:
                world._record(("write", (v,), ()))
                if world.latency:
                    time.sleep(world.latency)
                with world.lock:
                    world.log.append(v)
                return 1

        class Box:
            """An object accumulated through its attributes (``o.n = o.n + op(x)``)."""

            def __init__(self) -> None:
                self.n = 0
                self.items: list[Any] = []

        return {
            "__name__": "xcs_fuzz",
            "op": op,
            "fail": fail,
            "Rec": Rec,
            "OpError": OpError,
            "G": 0,
            "sink": Sink(),
            "Box": Box,
            "groupby": itertools.groupby,
        }


def _hashable(value: Any) -> Any:
    """``value`` with its lists, sets and dicts made tuples (calls are counted)."""
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, set | frozenset):
        return ("set", tuple(sorted(map(repr, value))))
    if isinstance(value, dict):
        return ("dict", tuple((repr(k), _hashable(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        return ("unhashable", repr(value))
    return value


_serial = itertools.count()


@dataclass
class Fuzzed:
    """A generated program, exec'd so that ``inspect.getsource`` finds its source."""

    source: str
    latency: float
    world: World = field(init=False)
    namespace: dict[str, Any] = field(init=False)
    filename: str = field(init=False)

    def __post_init__(self) -> None:
        self.filename = f"<xcs-fuzz-{next(_serial)}>"
        linecache.cache[self.filename] = (
            len(self.source),
            None,
            self.source.splitlines(True),
            self.filename,
        )
        self.world = World(self.latency)
        self.namespace = self.world.namespace()
        exec(compile(self.source, self.filename, "exec"), self.namespace)

    @property
    def fn(self) -> Callable[..., Any]:
        fn: Callable[..., Any] = self.namespace["prog"]
        return fn

    def close(self) -> None:
        linecache.cache.pop(self.filename, None)

    def __repr__(self) -> str:
        lines = self.source.strip("\n").splitlines()
        listing = "\n".join(f"  {i:3} | {line}" for i, line in enumerate(lines, 1))
        return f"Fuzzed(latency={self.latency})\n{listing}"


def load(source: str, latency: float) -> Fuzzed:
    return Fuzzed(source, latency)


ARGS: tuple[tuple[Any, ...], dict[str, Any]] = (([3, 1, 4, 1, 5], 7, 2, 8), {"k": 3, "z": 6})


@dataclass
class Outcome:
    value: Any
    error: BaseException | None
    calls: Counter[tuple[Any, ...]]
    g: Any
    log: list[Any] = field(default_factory=list)  # the sink's writes, in order

    def describe(self) -> str:
        if self.error is not None:
            return f"raised {type(self.error).__name__}{self.error.args!r}"
        return f"returned {self.value!r}"


def run(program: Fuzzed, fn: Callable[..., Any]) -> Outcome:
    program.world.begin()
    program.namespace["G"] = 0
    args, kwargs = ARGS
    value: Any = None
    error: BaseException | None = None
    try:
        value = fn(list(args[0]), *args[1:], **kwargs)
    except Exception as exc:
        error = exc
    with program.world.lock:
        calls = Counter(program.world.calls)
        log = list(program.world.log)
    return Outcome(value, error, calls, program.namespace["G"], log)


# -- the generator -------------------------------------------------------------------------

LOCALS = ("a", "b", "c", "d")
#: ``del v`` with no new assignment after it, so that later reads may raise
#: UnboundLocalError (the fuzzer found the compiler's late-read bug with it; see
#: ``test_fuzz_jit.test_a_local_read_late_may_be_unbound``).
UNBOUND_AFTER_DEL = True


class _Writer:
    def __init__(self, draw: st.DrawFn, shapes: tuple[str, ...] = ()) -> None:
        self.draw = draw
        self.shapes = shapes
        self.tmp = itertools.count()
        self.has_inner = False
        self.in_inner = False

    def pick(self, options: Any) -> Any:
        return self.draw(st.sampled_from(list(options)))

    def coin(self, p: float = 0.5) -> bool:
        return self.draw(st.floats(0, 1)) < p

    # -- expressions
    def expr(self, names: list[str], depth: int = 0, walrus: bool = True) -> str:
        leaf = depth >= 2 or self.coin(0.35)
        if leaf:
            return self.pick([*names, "n", str(self.draw(st.integers(0, 9)))])
        kind = self.pick(
            [
                "call",
                "call",
                "call_kw",
                "call_star",
                "fail",
                "binop",
                "floordiv",
                "ifexp",
                "lambda",
                "listcomp",
                "setcomp",
                "dictcomp",
                "genexp",
                "walrus",
                "index",
                "boolop",
                "rest",
            ]
        )
        e = lambda: self.expr(names, depth + 1, walrus)  # noqa: E731
        if kind == "call":
            return f"op({', '.join(e() for _ in range(self.draw(st.integers(0, 3))))})"
        if kind == "call_kw":
            return f"op({e()}, k={e()})"
        if kind == "call_star":
            return self.pick(
                [f"op(*xs, {e()})", f"op(*[{e()}, {e()}], **{{'k': {e()}}})", "op(*rest, **kw)"]
            )
        if kind == "fail":
            return f"fail({e()})"
        if kind == "binop":
            operator = self.pick(["+", "-", "*", "%"])
            # Values must not grow exponentially in a loop: a = a * a makes an integer
            # of billions of bits within a few dozen iterations, in the plain run as
            # much as under jit (seed 23 ran out of memory so), and a = a + a doubles
            # a list. Multiply by constants only; add what op() returns (an int).
            options = {"*": ["3", "7"], "%": ["3", "7", e()]}
            right = self.pick(options.get(operator, ["3", "7", f"op({e()})"]))
            return f"({e()} {operator} {right})".replace("% 0", "% 1")
        if kind == "floordiv":
            return f"({e()} // ({e()} % 3))"  # ZeroDivisionError one time in three
        if kind == "ifexp":
            return f"({e()} if {self.cond(names, depth + 1)} else {e()})"
        if kind == "lambda":
            body = self.expr(["v", *names], depth + 1, walrus=False)
            return self.pick(
                [
                    f"(lambda v: {body})({e()})",
                    f"(lambda v, *more, w=1: {body} + len(more) + w)({e()}, {e()}, w={e()})",
                ]
            )
        inner = ["x", *names]
        item = lambda: self.expr(inner, depth + 1, walrus=False)  # noqa: E731
        it = self.iterable(names)
        if kind == "listcomp":
            return f"sum([{item()} for x in {it}{self.comp_if(inner, depth)}])"
        if kind == "setcomp":
            return f"len({{{item()} for x in {it}{self.comp_if(inner, depth)}}})"
        if kind == "dictcomp":
            return f"sum({{x: {item()} for x in {it}}}.values())"
        if kind == "genexp":
            return self.pick(
                [
                    f"sum({item()} for x in {it}{self.comp_if(inner, depth)})",
                    f"max(({item()} for x in {it}), default=-1)",
                    f"(1 if any({item()} > 10 for x in {it}) else 0)",
                ]
            )
        if kind == "walrus" and walrus:
            return f"({self.pick(names or ['a'])} := {e()})"
        if kind == "index":
            return f"xs[{e()} % len(xs)]"
        if kind == "boolop":
            return f"({e()} {self.pick(['and', 'or'])} {e()})"
        if kind == "rest":
            return self.pick(["len(rest)", "kw.get('z', 0)", "k", "len(xs)"])
        return e()

    def comp_if(self, names: list[str], depth: int) -> str:
        return f" if {self.cond(names, depth + 1)}" if self.coin(0.3) else ""

    def cond(self, names: list[str], depth: int = 0) -> str:
        kind = self.pick(["cmp", "mod", "not", "bool"])
        e = lambda: self.expr(names, depth + 1, walrus=False)  # noqa: E731
        if kind == "cmp":
            return f"{e()} {self.pick(['<', '>', '==', '!=', '<='])} {e()}"
        if kind == "mod":
            return f"{e()} % 2 == 0"
        if kind == "not":
            return f"not {e()}"
        return f"({e()} > 3 {self.pick(['and', 'or'])} {e()} < 9)"

    def iterable(self, names: list[str]) -> str:
        return self.pick(
            [
                "xs",
                "range(n % 4)",
                "xs[1:]",
                "reversed(xs)",
                "[op(v) for v in xs]",
                "map(op, xs)",
                "rest",
                f"range({self.pick(names or ['n'])} % 3)",
            ]
        )

    # -- statements
    def block(
        self, names: list[str], depth: int, loop: bool, count: int | None = None
    ) -> list[str]:
        n = count if count is not None else self.draw(st.integers(1, 3))
        lines: list[str] = []
        for _ in range(n):
            lines += self.statement(names, depth, loop)
        return lines

    def statement(self, names: list[str], depth: int, loop: bool) -> list[str]:
        simple = [
            "assign",
            "assign",
            "augassign",
            "append",
            "append",
            "star_assign",
            "global",
            "del",
            "assert",
            "pass",
            "lambda_def",
        ]
        compound = [
            "if",
            "for",
            "while",
            "try",
            "with",
            "match",
            "inner",
            "return",
            "raise",
            "region_loop",
            "region_loop",
            "region_straight",
            "region_straight",
            *self.shapes,
        ]
        if loop:
            simple += ["break", "continue"]
        kind = self.pick(simple + (compound if depth < 3 else []))
        if kind == "return" and self.in_inner:
            kind = "assign"
        e = lambda: self.expr(names, depth)  # noqa: E731
        nested = lambda: indent(self.block(names, depth + 1, loop))  # noqa: E731
        in_loop = lambda: indent(self.block([*names, "x"], depth + 1, True))  # noqa: E731
        target = self.pick(LOCALS)
        if kind == "assign":
            return [f"{target} = {e()}"]
        if kind == "augassign":
            operator = self.pick(["+=", "-=", "*=", "%=", "|="])
            # As for binop: no a *= a, no a += a.
            options = {"*=": ["2", "3", "7"], "%=": [e()], "|=": [e()]}
            value = self.pick(options.get(operator, ["2", f"op({e()})"]))
            return [f"{target} {operator} {value}".replace("%= 0", "%= 1")]
        if kind == "append":
            return [f"out.append({e()})"]
        if kind == "star_assign":
            return [f"{target}, *_rest = [{e()}, {e()}, {e()}]"]
        if kind == "global":
            return [f"G += {e()}"]
        if kind == "del":
            lines = [f"del {target}"]
            if not UNBOUND_AFTER_DEL or self.coin(0.8):
                lines.append(f"{target} = {e()}")
            return lines
        if kind == "assert":
            return [f"assert {self.cond(names)}, 'assertion {next(self.tmp)}'"]
        if kind == "pass":
            return ["pass"]
        if kind == "lambda_def":
            body = self.expr(["v", "w", *names], depth + 1, walrus=False)
            return [
                f"f_{target} = lambda v, w={e()}, *args, **opts: {body}",
                f"{target} = f_{target}({e()})",
            ]
        if kind == "break":
            return [f"if {self.cond(names)}:", "    break"]
        if kind == "continue":
            return [f"if {self.cond(names)}:", "    continue"]
        if kind == "return":
            return [f"if {self.cond(names)}:", f"    return {e()}"]
        if kind == "raise":
            return [f"if {self.cond(names)}:", f"    raise OpError({e()})"]
        if kind == "region_loop":
            # A loop whose iterations are independent: a parallel region for xcs.jit,
            # with whatever else the body holds (which may make it ordered again).
            it = self.iterable(names)
            body = [f"out.append(op(x, {e()}))"]
            if self.coin(0.5):
                body = [f"y = {self.pick(['op(x)', 'fail(x)', 'op(x, k=n)'])}", "out.append(y)"]
            if self.coin(0.4):
                body += self.block([*names, "x"], depth + 1, True, 1)
            return [f"for x in {it}:", *indent(body)]
        if kind == "region_straight":
            # Consecutive statements whose calls are independent, joined at a use.
            targets = self.draw(st.permutations(list(LOCALS)))[: self.draw(st.integers(2, 4))]
            lines = [
                f"{t} = {self.pick(['op', 'fail'])}({e()}, {i})" for i, t in enumerate(targets)
            ]
            if self.coin(0.5):
                lines.append(f"out.append({' + '.join(targets)})")
            return lines
        if kind in SHAPES:
            return self.shape(kind, names, depth)
        if kind == "if":
            lines = [f"if {self.cond(names)}:", *nested()]
            if self.coin(0.4):
                lines += [f"elif {self.cond(names)}:", *nested()]
            if self.coin(0.5):
                lines += ["else:", *nested()]
            return lines
        if kind == "for":
            it = self.iterable(names)
            if self.coin(0.25):
                lines = [f"for i, x in enumerate({it}):", *in_loop()]
            else:
                lines = [f"for x in {it}:", *in_loop()]
            if self.coin(0.2):
                lines += ["else:", *nested()]
            return lines
        if kind == "while":
            w = f"_w{next(self.tmp)}"
            body = self.block([*names, w], depth + 1, True)
            return [f"{w} = 0", f"while {w} < 3:", f"    {w} += 1", *indent(body)]
        if kind == "try":
            lines = ["try:", *nested()]
            handler = self.pick(
                [
                    "except OpError as err:",
                    "except (ZeroDivisionError, OpError):",
                    "except Exception:",
                ]
            )
            lines += [handler, *indent(["out.append(-1)", *self.block(names, depth + 1, loop, 1)])]
            if self.coin(0.3):
                lines += ["else:", *nested()]
            if self.coin(0.3):
                lines += ["finally:", *nested()]
            return lines
        if kind == "with":
            tag = next(self.tmp)
            return [f"with Rec({tag}) as t{tag}:", *nested()]
        if kind == "match":
            lines = [f"match {self.pick([f'{e()} % 4', f'[{e()}, {e()}]'])}:"]
            lines += ["    case 0:", *indent(nested())]
            lines += ["    case 1 | 2:", *indent(nested())]
            lines += [
                f"    case [p, q] if p {self.pick(['>', '<='])} q:",
                *indent(indent(self.block([*names, "p", "q"], depth + 1, loop))),
            ]
            lines += ["    case _:", *indent(nested())]
            return lines
        if kind == "inner" and not self.has_inner:
            self.has_inner = True
            v = self.pick(LOCALS)
            self.in_inner = True
            body = self.block([*names], depth + 2, False)
            self.in_inner = False
            return [
                "def inner(v2):",
                f"    nonlocal {v}",
                f"    {v} = {v} + v2",
                *indent(body),
                f"    return op({v}, v2)",
                f"out.append(inner({e()}))",
            ]
        return [f"{target} = {e()}"]

    # -- the shapes real code writes (found by running the standard library jitted)
    def shape(self, kind: str, names: list[str], depth: int) -> list[str]:
        e = lambda: self.expr(names, depth + 1)  # noqa: E731
        it = lambda: self.iterable(names)  # noqa: E731
        target = self.pick(LOCALS)
        extra = lambda: (  # noqa: E731
            self.block([*names, "x"], depth + 2, True, 1) if self.coin(0.3) else []
        )
        if kind == "alias_loop":
            # An accumulator reached through an alias, read or called in a loop.
            variant = self.pick(["push", "get", "alias", "view"])
            if variant == "push":
                body = [f"push(op(x, {e()}))"]
                head = ["push = out.append"]
            elif variant == "get":
                body = ["counts[x % 3] = get(x % 3, 0) + op(x)"]
                head = ["get = counts.get"]
            elif variant == "alias":
                body = [f"out.append(op(x, {e()}))", f"{target} = {target} + len(alias)"]
                head = ["alias = out"]
            else:
                body = ["counts[x] = op(x)", "out.append(len(view))"]
                head = ["view = counts"]
            return [*head, f"for x in {it()}:", *indent([*body, *extra()])]
        if kind == "nested_alias":
            # Nested loops: the inner loop writes, the outer iteration reads through
            # an alias (statistics._sum: partials_get = partials.get).
            inner_it = self.iterable([*names, "x"])
            if self.coin(0.5):
                inner = ["counts[y % 3] = get(y % 3, 0) + op(x, y)"]
                after = [self.pick(["out.append(sum(view.values()))", "out.append(len(view))"])]
                head = ["view = counts", "get = counts.get"]
            else:
                inner = ["out.append(op(x, y))"]
                after = [f"{target} = op(len(alias), {target})"]
                head = ["alias = out"]
            return [
                *head,
                f"for x in {it()}:",
                f"    for y in {inner_it}:",
                *indent(inner, 2),
                *indent(after),
            ]
        if kind == "attr_acc":
            # Attribute read-modify-write: o.n = o.n + op(x).
            stmt = self.pick(
                [
                    "o.n = o.n + op(@)",
                    f"o.items = o.items + [op(@, {e()})]",
                    "o.n += op(@, o.n)",
                ]
            )  # @: the item (the generated expressions never hold an @)
            if self.coin(0.3):
                return [stmt.replace("@", str(i)) for i in range(self.draw(st.integers(2, 3)))]
            return [f"for x in {it()}:", *indent([stmt.replace("@", "x"), *extra()])]
        if kind == "groupby":
            # The groups of itertools.groupby are invalidated when it moves on.
            use = self.pick(
                [
                    "out.append(op(x, *grp))",
                    "out.append(sum(op(v) for v in grp))",
                    f"{target} = op(x, len(list(grp)))",
                    "out.append([x, [op(v) for v in grp]])",
                ]
            )
            key = self.pick(["lambda v: v % 2", "lambda v: v > 2", "None"])
            return [f"for x, grp in groupby({it()}, key={key}):", *indent([use, *extra()])]
        if kind == "shared_iter":
            # One iterator consumed by two statements (or twice in one).
            variant = self.pick(["next", "break", "zip", "rest"])
            head = [f"it = iter({it()})"]
            if variant == "next":
                t1, t2 = self.draw(st.permutations(list(LOCALS)))[:2]
                return [
                    *head,
                    f"{t1} = op(next(it, -1))",
                    f"{t2} = op(next(it, -1))",
                    f"out.append([{t1}, {t2}, *it])",
                ]
            if variant == "break":
                return [
                    *head,
                    "for x in it:",
                    "    out.append(op(x))",
                    f"    if x > {self.draw(st.integers(0, 5))}:",
                    "        break",
                    "for x in it:",
                    f"    out.append(op(x, {e()}))",
                ]
            if variant == "zip":
                return [*head, "out.append([op(p, q) for p, q in zip(it, it)])"]
            return [
                *head,
                f"{target} = op(next(it, 0))",
                "out.append(sum(op(v) for v in it))",
            ]
        if kind == "recurse":
            # The function calls itself by name. The inner call (k=-1) returns at once
            # (see ``functions``): a whole inner run would write G and the sink from
            # calls whose values are used, which may overlap (DESIGN §1.5), so their
            # order is not the sequential one and the comparison would be meaningless.
            call = self.pick(["prog(xs[1:], 0, k=-1)[0]", f"prog([x, {e()}], 0, k=-1)[4]"])
            if "x," in call:
                return [
                    f"for x in {it()}:",
                    f"    out.append({call} if n > 0 else x)",
                ]
            return ["if n > 0:", f"    {target} = {call}"]
        if kind == "sink":
            # Effect-only calls on a shared object whose order matters.
            variant = self.pick(["loop", "straight", "chunks", "emit"])
            if variant == "emit":  # a call made for its effect on the sink it is given
                return [f"for x in {it()}:", f"    emit(sink, op(x, {e()}))"]
            if variant == "loop":
                return [f"for x in {it()}:", *indent([f"sink.write(op(x, {e()}))", *extra()])]
            if variant == "straight":
                return [f"sink.write(op({i}, {e()}))" for i in range(self.draw(st.integers(2, 3)))]
            return [f"for chunk in [op(x) for x in {it()}]:", "    sink.write(chunk)"]
        # kind == "method": methods calling super() / ClassName.attr, a recursive helper
        call = self.pick(["Child().step({})", "Child.make({})", "walk({}, 2)", "Child.twice({})"])
        if self.coin(0.5):
            return [f"for x in {it()}:", f"    out.append({call.format('x')})"]
        return [f"{target} = {call.format(e())}"]


#: Statement kinds written for the shapes of real code (``_Writer.shape``).
SHAPES = (
    "alias_loop",
    "nested_alias",
    "attr_acc",
    "groupby",
    "shared_iter",
    "recurse",
    "sink",
    "method",
)

#: Module-level definitions every program may use: methods calling super() and
#: ClassName.attr, static and class methods, a recursive function. The jitted runs
#: jit them too (``HELPERS``).
PRELUDE = """\
class Base:
    tag = 1

    def step(self, v):
        return op(v, Base.tag)


class Child(Base):
    tag = 2

    def step(self, v):
        acc = [Base.step(self, x) for x in range(v % 3)]
        for x in range(v % 4):
            acc.append(super().step(x) + op(x, Child.tag))
        return super(Child, self).step(v) + Child.tag + sum(acc)

    @staticmethod
    def twice(v):
        return [Child.tag * op(x) for x in range(v % 3)]

    @classmethod
    def make(cls, v):
        parts = [op(x) for x in range(v % 3)]
        return cls.tag + sum(parts) + len(cls.twice(v))


def emit(stream, v):
    stream.write(v)
    stream.write(-v)


def walk(v, depth):
    if depth <= 0:
        return op(v)
    parts = [walk(v + i, depth - 1) for i in range(2)]
    return sum(parts) + op(v, depth)


"""
HELPERS = ("Base", "Child", "emit", "walk")


def indent(lines: list[str], levels: int = 1) -> list[str]:
    return ["    " * levels + line for line in lines]


@st.composite
def functions(
    draw: st.DrawFn,
    shapes: tuple[str, ...] = SHAPES,
    lead: str | None = None,
    latencies: tuple[float, ...] = (0.0, 0.0, 0.0005),
) -> tuple[str, float]:
    """(source of a module defining ``prog``, op latency in seconds).

    ``shapes``: which of ``SHAPES`` statements may be written; ``lead``: a shape the
    function starts with (so that every program holds it); ``latencies``: the op
    latencies drawn from.
    """
    w = _Writer(draw, shapes)
    body = w.shape(lead, list(LOCALS), 0) if lead is not None else []
    body += w.block(list(LOCALS), 0, False, draw(st.integers(1, 6)))
    lines = [
        "def prog(xs, n, *rest, k=2, **kw):",
        "    global G",
        "    if k == -1:  # a recursive call",
        "        return (n, len(xs), op(n, len(xs)), 0, [n, *xs], 0, {}, 0, [])",
        "    a, b, c, d = 1, 2, 3, 4",
        "    out = []",
        "    counts = {}",
        "    o = Box()",
        *indent(body),
        "    return (a, b, c, d, out, G, counts, o.n, o.items)",
    ]
    latency = draw(st.sampled_from(latencies))
    return PRELUDE + "\n".join(lines) + "\n", latency
