"""Programs for the differential tests of ``xcs.jit``: simulated ops, a loader, a grammar.

A *program* is the source text of a small module whose function ``prog(xs, ys, n)``
calls simulated operations ("ops"). Each op records its call (name and arguments) in
a thread-safe ``Recorder``, sleeps a latency chosen by the example, raises ``OpError``
for the inputs the example marks as failing, and otherwise returns a small int (or,
for ``label``, a short string) that depends only on its name and arguments. Running
``prog`` plainly and through ``xcs.jit`` must then give the same value or error, the
same calls, and the same ``global``/``nonlocal`` state (DESIGN §1).

The ops and helpers a program may use::

    op_a(*ints, k=0), op_b(...), op_c(...) -> int   # the workhorses
    svc.ask(*ints) -> int                           # a method call
    label(int) -> str                               # for "".join
    record(int) -> None                             # a call made only for its effect
    Span(tag)                                       # context manager; records enter/exit
    nullcontext, suppress, OpError, TALLY (a global int)

The grammar (``programs(family)``) strings 1-3 *blocks* together; later blocks read
earlier results, and names like ``a``, ``x`` are reused across blocks on purpose::

    comprehension  list/set/dict comprehensions; generator expressions consumed by
                   list/tuple/set/frozenset/sorted/sum/min/max/join/dict; nested
                   (flat, grid, row sums, dependent, pipelines); conditions that call;
                   walrus; any/all/next; sorted(key=lambda); late-binding lambdas
    loop           independent for loops accumulating by append/add/extend/d[k] = v/
                   += / += [..] (and d.get counting); continue, if/else, try, with,
                   suppress in the body; enumerate/zip/range(len)/items/nested
                   targets; for-else; loop variables and temporaries read afterwards
    ordered        break (outer, inner, for-else), return in a loop, loop-carried
                   values, while loops, global and nonlocal writes
    straight       independent statements, chains, diamonds, if/else branches, call-free
                   and call statements in between, rebinding, tuple assignment
    mixed          all of the above, wrapped in try/except/else/finally or with, and
                   helpers (``helper_1``...: functions, or bound methods, classmethods,
                   staticmethods of a ``Tool_i`` class; ``helper_2`` may call
                   ``helper_1``) called inside regions, jitted or reached through the
                   call tree (test_differential draws which)

Iterables are lists, slices, ranges, ``reversed``, and lazy ones that call
(``map(op_a, xs)``, ``(op_b(v) for v in xs)``); expressions include calls nested in
calls, keyword arguments, method calls, ``a if c else b`` and ``and``/``or`` over
calls, and ``n // op(x)`` (a ZeroDivisionError that is not an op's).

Generated sources are registered in ``linecache`` under a unique filename, so
``inspect.getsource`` (which ``xcs.jit`` reads) finds them like a file on disk.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import linecache
import threading
import time
import traceback
import types
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import strategies as st

__all__ = [
    "FIXED_PROGRAMS",
    "Args",
    "Loaded",
    "OpConfig",
    "OpError",
    "Outcome",
    "Program",
    "arguments",
    "load",
    "op_configs",
    "programs",
    "run",
    "same",
]

T = TypeVar("T")
Args = tuple[list[int], list[int], int]
Call = tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]]

# -- the simulated world ------------------------------------------------------------------

INT_OPS = ("op_a", "op_b", "op_c")
#: Every name a call is recorded under; only these may be configured to fail or sleep.
OPS = (*INT_OPS, "ask", "label", "record")
#: Op results (and list items) stay in range(MODULUS): small, hashable, often repeated.
MODULUS = 12
_SEEDS = {name: i * 5 + 1 for i, name in enumerate(OPS)}


class OpError(Exception):
    """Raised by a simulated op for a failing input; ``args`` are ``(op name, call args)``."""


def _key(args: tuple[Any, ...]) -> int:
    first = args[0] if args else 0
    return first if type(first) is int else 0


def op_value(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The deterministic result of one call."""
    total = _SEEDS[name] + sum((i + 2) * a for i, a in enumerate(args))
    total += 5 * sum(kwargs.values())
    if name == "label":
        return f"L{total % MODULUS}"
    if name == "record":
        return None
    return total % MODULUS


@dataclass(frozen=True)
class OpConfig:
    """Per-example behaviour of the ops: base latency and failing first arguments."""

    latency: tuple[tuple[str, float], ...] = ()
    failing: tuple[tuple[str, frozenset[int]], ...] = ()

    def delay(self, name: str, args: tuple[Any, ...]) -> float:
        base = dict(self.latency).get(name, 0.0)
        # Alternate 1x and 2x so that later items often finish before earlier ones.
        return base * (1 + _key(args) % 2)

    def fails(self, name: str, args: tuple[Any, ...]) -> bool:
        return _key(args) in dict(self.failing).get(name, frozenset())

    def without_latency(self) -> OpConfig:
        return OpConfig(failing=self.failing)

    def __repr__(self) -> str:
        latency = {name: s for name, s in self.latency if s}
        failing = {name: sorted(bad) for name, bad in self.failing if bad}
        return f"OpConfig(latency={latency}, failing={failing})"


class Recorder:
    """The calls of one run; worker threads append under the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.raised: list[BaseException] = []  # the OpError objects ops raised, by identity
        self.in_flight = 0

    def enter(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            self.in_flight += 1

    def leave(self, error: BaseException | None) -> None:
        with self._lock:
            self.in_flight -= 1
            if error is not None:
                self.raised.append(error)


class World:
    """The ops of one example, bound to its config and to the recorder of the current run.

    A call records into the recorder that was current when it *started*, so a call that
    is still running when a run ends can never leak into the next run's record.
    """

    def __init__(self, config: OpConfig) -> None:
        self.config = config
        self.recorder = Recorder()

    def begin(self) -> Recorder:
        self.recorder = Recorder()
        return self.recorder

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        recorder = self.recorder
        recorder.enter((name, args, tuple(sorted(kwargs.items()))))
        error: OpError | None = None
        try:
            delay = self.config.delay(name, args)
            if delay:
                time.sleep(delay)
            if self.config.fails(name, args):
                error = OpError(name, args)
                raise error
            return op_value(name, args, kwargs)
        finally:
            recorder.leave(error)

    def mark(self, name: str, tag: Any) -> None:
        """Record a context manager's enter/exit; these never sleep or fail."""
        recorder = self.recorder
        recorder.enter((name, (tag,), ()))
        recorder.leave(None)

    def namespace(self) -> dict[str, Any]:
        """The globals a program runs with."""
        world = self

        def make_op(name: str) -> Callable[..., Any]:
            def op(*args: Any, **kwargs: Any) -> Any:
                return world.call(name, args, kwargs)

            op.__name__ = op.__qualname__ = name
            return op

        class Service:
            def ask(self, *args: Any, **kwargs: Any) -> Any:
                return world.call("ask", args, kwargs)

        class Span:
            def __init__(self, tag: Any) -> None:
                self.tag = tag

            def __enter__(self) -> Any:
                world.mark("enter", self.tag)
                return self.tag

            def __exit__(self, *exc_info: object) -> None:
                world.mark("exit", self.tag)

        ns: dict[str, Any] = {name: make_op(name) for name in (*INT_OPS, "label", "record")}
        ns.update(
            __name__="xcs_differential",
            svc=Service(),
            Span=Span,
            nullcontext=contextlib.nullcontext,
            suppress=contextlib.suppress,
            OpError=OpError,
        )
        return ns


# -- loading and running ------------------------------------------------------------------

_serial = itertools.count()


@dataclass
class Loaded:
    """A program exec'd into its own namespace, with handles on its state."""

    source: str
    filename: str
    world: World
    namespace: dict[str, Any]
    fn: Callable[..., Any]
    helpers: dict[str, Callable[..., Any]]

    def use_helpers(self, wrap: Callable[[Callable[..., Any]], Callable[..., Any]] | None) -> None:
        """Make ``helper_*`` globals plain (wrap=None) or wrapped, e.g. by ``xcs.jit``.

        Only functions are wrapped: a helper that is a bound method stays as it is (the
        call tree compiles it), since ``xcs.jit(obj.method)`` runs as written and warns
        (findings F9)."""
        for name, helper in self.helpers.items():
            plain = wrap is None or type(helper) is not types.FunctionType
            self.namespace[name] = helper if plain else wrap(helper)

    def reset_state(self) -> None:
        if "TALLY" in self.namespace:
            self.namespace["TALLY"] = 0
        if "set_count" in self.namespace:
            self.namespace["set_count"](0)

    def state(self) -> tuple[Any, Any]:
        tally = self.namespace.get("TALLY")
        count = self.namespace["get_count"]() if "get_count" in self.namespace else None
        return tally, count

    def close(self) -> None:
        linecache.cache.pop(self.filename, None)


def load(source: str, config: OpConfig) -> Loaded:
    """Exec ``source`` as a module whose ``inspect.getsource`` works."""
    filename = f"<xcs-differential-{next(_serial)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    world = World(config)
    ns = world.namespace()
    exec(compile(source, filename, "exec"), ns)
    helpers = {name: value for name, value in ns.items() if name.startswith("helper_")}
    return Loaded(source, filename, world, ns, ns["prog"], helpers)


@dataclass
class Outcome:
    """What one run of a program did."""

    value: Any
    error: BaseException | None
    calls: Counter[Call]
    raised: list[BaseException]
    state: tuple[Any, Any]
    still_running: int
    traceback: str = ""

    def describe(self) -> str:
        if self.error is not None:
            return f"raised {type(self.error).__name__}{self.error.args!r}"
        return f"returned {self.value!r}"


def run(loaded: Loaded, fn: Callable[..., Any], args: Args) -> Outcome:
    """Call ``fn(*args)`` on fresh copies of the arguments, with a fresh recorder."""
    recorder = loaded.world.begin()
    loaded.reset_state()
    value: Any = None
    error: BaseException | None = None
    tb = ""
    try:
        value = fn(*copy.deepcopy(args))
    except Exception as exc:
        error = exc
        tb = traceback.format_exc()
    still_running = recorder.in_flight
    return Outcome(
        value, error, Counter(recorder.calls), recorder.raised, loaded.state(), still_running, tb
    )


def same(a: Any, b: Any) -> bool:
    """Equal, of the same types all the way down, and dicts in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# -- the grammar --------------------------------------------------------------------------


@dataclass
class Program:
    """One generated program: module source, op behaviour, and the patterns it uses."""

    source: str
    config: OpConfig
    features: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        # Hypothesis prints this for a falsifying example: show the source as source.
        return f"Program({self.config!r}, source=\n{self.source})"


@dataclass
class Scope:
    """The names a block may read, by kind; ``outs`` are what the function returns."""

    ints: list[str]
    seqs: list[str]  # lists of ints
    dicts: list[str] = field(default_factory=list)  # int -> int, insertion-ordered
    outs: list[str] = field(default_factory=list)

    def add(self, name: str, kind: str) -> None:
        if kind == "int":
            self.ints.append(name)
        elif kind == "seq":
            self.seqs.append(name)
        elif kind == "dict":
            self.dicts.append(name)
        self.outs.append(name)


Out = tuple[str, str]  # (name, kind); kind is "int", "seq", "dict" or "other"
Block = tuple[list[str], list[Out]]

FALLBACK = {"int": "-1", "seq": "[]", "dict": "{}", "other": "None"}

COMPREHENSION_BLOCKS = (
    "comp",
    "genexp",
    "nested_comp",
    "walrus",
    "short_circuit",
    "sort_key",
    "lambdas",
)
LOOP_BLOCKS = ("loop",)
ORDERED_BLOCKS = ("break", "early_return", "carried", "while", "global", "nonlocal")
STRAIGHT_BLOCKS = ("straight",)
FAMILIES: dict[str, tuple[str, ...]] = {
    "comprehension": COMPREHENSION_BLOCKS,
    "loop": LOOP_BLOCKS,
    "ordered": ORDERED_BLOCKS,
    "straight": STRAIGHT_BLOCKS,
    "mixed": COMPREHENSION_BLOCKS + LOOP_BLOCKS + ORDERED_BLOCKS + STRAIGHT_BLOCKS,
}
HELPER_BLOCKS = ("comp", "genexp", "nested_comp", "loop", "straight")


def indent(lines: Sequence[str], levels: int = 1) -> list[str]:
    pad = "    " * levels
    return [pad + line if line else line for line in lines]


class _Writer:
    """Draws the source of one function, block by block.

    Every choice is a hypothesis draw whose simplest value comes first, so a failing
    program shrinks toward fewer blocks, plainer expressions and ``op_a(x)``.
    """

    def __init__(self, draw: st.DrawFn, helpers: Sequence[str] = ()) -> None:
        self.draw = draw
        self.helpers = tuple(helpers)
        self.features: set[str] = set()
        self.uses_tally = False
        self.uses_count = False
        self._outputs = itertools.count(1)
        self._tags = itertools.count(1)
        self.out_prefix = "r"

    # -- small choices

    def pick(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))

    def coin(self) -> bool:
        return self.draw(st.booleans())

    def output(self) -> str:
        return f"{self.out_prefix}{next(self._outputs)}"

    def feature(self, name: str) -> None:
        self.features.add(name)

    # -- expressions

    def atom(self, names: Sequence[str]) -> str:
        # Mostly the first name (the loop variable, where there is one): calls that do not
        # depend on the iteration are the exception, not the rule.
        return self.pick([*names[:1], *names[:1], *names, "1", "2"])

    def call(self, names: Sequence[str], depth: int = 0) -> str:
        """An int expression that makes at least one call, reading ``names``."""
        forms = ["op", "op", "op", "op2", "op2", "ask", "keyword"]
        if depth == 0:
            forms += ["nested", "arith", "div", "ternary"]
            if self.helpers:
                forms += ["helper", "helper"]
        form = self.pick(forms)
        op = self.pick(INT_OPS)
        a = self.atom(names)
        if form == "op":
            return f"{op}({a})"
        if form == "op2":
            return f"{op}({a}, {self.atom(names)})"
        if form == "ask":
            self.feature("method call")
            return f"svc.ask({a})"
        if form == "keyword":
            self.feature("keyword argument")
            return f"{op}({a}, k={self.pick(['1', '2'])})"
        if form == "nested":
            self.feature("several calls per expression")
            return f"{op}({self.call(names, depth + 1)})"
        if form == "arith":
            return f"({self.call(names, depth + 1)} + {a})"
        if form == "div":
            self.feature("non-op error (ZeroDivisionError)")
            return f"({a} // {op}({self.atom(names)}))"
        if form == "ternary":
            self.feature("conditional expression with calls")
            then, other = self.call(names, depth + 1), self.call(names, depth + 1)
            return f"({then} if {a} % 2 == 0 else {other})"
        self.feature("nested jit call")
        return f"{self.pick(self.helpers)}({a})"

    def cond(self, names: Sequence[str]) -> str:
        form = self.pick(["call_parity", "free_cmp", "call_cmp", "free_parity", "and", "or"])
        if form in ("and", "or"):
            self.feature("and/or with calls")
            k = self.pick(range(MODULUS))
            if form == "and":
                return f"{self.call(names)} > {k} and {self.call(names)} % 2 == 0"
            return f"{self.atom(names)} > {k} or {self.call(names)} % 2 == 0"
        if form == "call_parity":
            return f"{self.call(names)} % 2 == 0"
        if form == "call_cmp":
            return f"{self.call(names)} > {self.pick(range(MODULUS))}"
        if form == "free_cmp":
            return f"{self.atom(names)} > {self.pick(range(MODULUS))}"
        return f"{self.atom(names)} % 3 == 0"

    def source(self, sc: Scope) -> str:
        """An iterable of ints."""
        seq = self.pick(sc.seqs)
        form = self.pick(["plain", "slice", "range", "reversed", "call_range", "map", "genexp"])
        if form == "slice":
            return f"{seq}[:3]"
        if form == "range":
            return f"range({self.pick(sc.ints)} % 4)"
        if form == "reversed":
            return f"reversed({seq})"
        if form == "call_range":
            self.feature("a call in the iterable")
            return f"range({self.call(sc.ints)} % 4)"
        if form == "map":
            # A lazy source whose calls the consumer's iteration makes: their errors
            # and those of the items come in program order, interleaved.
            self.feature("lazy iterable that calls (map)")
            return f"map({self.pick(INT_OPS)}, {seq})"
        if form == "genexp":
            self.feature("lazy iterable that calls (generator)")
            return f"({self.pick(INT_OPS)}(v) for v in {seq})"
        return seq

    def combine(self, names: Sequence[str]) -> tuple[str, str]:
        form = self.pick(["op", "plus", "tuple"])
        if form == "op":
            return f"{self.pick(INT_OPS)}({', '.join(names)})", "int"
        if form == "plus":
            return " + ".join(names), "int"
        return f"({', '.join(names)})", "other"

    # -- blocks

    def block(self, sc: Scope, kinds: Sequence[str], wrappers: bool) -> list[str]:
        kind = self.pick(kinds)
        lines, outs = getattr(self, f"block_{kind}")(sc)
        if wrappers:
            wrapper = self.pick(["none", "try", "with"])
            if wrapper == "try":
                lines, outs = self.wrap_try(lines, outs)
            elif wrapper == "with":
                lines = self.wrap_with(lines, outs)
        for name, out_kind in outs:
            sc.add(name, out_kind)
        return lines

    def wrap_try(self, lines: list[str], outs: list[Out]) -> Block:
        form = self.pick(["fallback", "args", "return", "finally", "else"])
        self.feature(f"try/except ({form})")
        handler: list[str]
        if form == "finally":
            return ["try:", *indent(lines), "finally:", "    record(0)"], outs
        if form == "return":
            handler = ['return ("caught", err.args)']
        elif form == "args" and outs:
            (first, _), rest = outs[0], outs[1:]
            handler = [f"{first} = err.args", *(f"{name} = {FALLBACK[k]}" for name, k in rest)]
            outs = [(first, "other"), *rest]
        else:
            handler = [f"{name} = {FALLBACK[k]}" for name, k in outs] or ["pass"]
        lines = ["try:", *indent(lines), "except OpError as err:", *indent(handler)]
        if form == "else":
            lines += ["else:", "    record(1)"]
        return lines, outs

    def wrap_with(self, lines: list[str], outs: list[Out]) -> list[str]:
        form = self.pick(["span", "nullcontext", "span_as", "suppress"])
        self.feature(f"with ({form})")
        if form == "suppress":
            # The block may stop at any call; what it had not assigned keeps this value.
            preset = [f"{name} = {FALLBACK[kind]}" for name, kind in outs]
            return [*preset, "with suppress(OpError):", *indent(lines)]
        if form == "span":
            head = f"with Span({next(self._tags)}):"
        elif form == "span_as":
            head = f"with Span({next(self._tags)}) as tag:"
        else:
            head = "with nullcontext():"
        return [head, *indent(lines)]

    # -- comprehensions and generator expressions

    def block_comp(self, sc: Scope) -> Block:
        r = self.output()
        src = self.source(sc)
        e = self.call(["x", *sc.ints])
        cond = f" if {self.cond(['x', *sc.ints])}" if self.coin() else ""
        if cond:
            self.feature("conditional comprehension")
        form = self.pick(["list", "set", "dict", "dict_keys"])
        self.feature(f"{form} comprehension")
        if form == "list":
            return [f"{r} = [{e} for x in {src}{cond}]"], [(r, "seq")]
        if form == "set":
            return [f"{r} = {{{e} for x in {src}{cond}}}"], [(r, "other")]
        if form == "dict":
            return [f"{r} = {{x: {e} for x in {src}{cond}}}"], [(r, "dict")]
        key = self.call(["x", *sc.ints])
        return [f"{r} = {{{key}: {e} for x in {src}{cond}}}"], [(r, "dict")]

    def block_genexp(self, sc: Scope) -> Block:
        r = self.output()
        src = self.source(sc)
        names = ["x", *sc.ints]
        e = self.call(names)
        cond = f" if {self.cond(names)}" if self.coin() else ""
        gen = f"{e} for x in {src}{cond}"
        consumer = self.pick(
            [
                "list",
                "tuple",
                "set",
                "sorted",
                "sum",
                "min",
                "max",
                "join",
                "dict",
                "min_default",
                "max_default",
                "sorted_reverse",
                "frozenset",
                "join_fstring",
            ]
        )
        self.feature(f"genexp consumed by {consumer}")
        line, kind = {
            "list": (f"list({gen})", "seq"),
            "tuple": (f"tuple({gen})", "other"),
            "set": (f"set({gen})", "other"),
            "frozenset": (f"frozenset({gen})", "other"),
            "sorted": (f"sorted({gen})", "seq"),
            "sorted_reverse": (f"sorted(({gen}), reverse=True)", "seq"),
            "sum": (f"sum({gen})", "int"),
            "min": (f"min({gen})", "int"),
            "max": (f"max({gen})", "int"),
            "min_default": (f"min(({gen}), default=-1)", "int"),
            "max_default": (f"max(({gen}), default=-1)", "int"),
            "join": (f'"-".join(label({e}) for x in {src}{cond})', "other"),
            "join_fstring": (f'",".join(f"{{{e}}}" for x in {src}{cond})', "other"),
            "dict": (f"dict((x, {e}) for x in {src}{cond})", "dict"),
        }[consumer]
        return [f"{r} = {line}"], [(r, kind)]

    def block_nested_comp(self, sc: Scope) -> Block:
        r = self.output()
        outer, inner = self.source(sc), self.source(sc)
        names = ["x", "y", *sc.ints]
        e = self.pick([f"{self.pick(INT_OPS)}(x, y)", self.call(names)])
        form = self.pick(["flat", "grid", "row_sums", "dependent", "flat_cond", "pipeline"])
        self.feature(f"nested comprehension ({form})")
        if form == "flat":
            return [f"{r} = [{e} for x in {outer} for y in {inner}]"], [(r, "seq")]
        if form == "flat_cond":
            c1, c2 = self.cond(["x", *sc.ints]), self.cond(names)
            return [f"{r} = [{e} for x in {outer} if {c1} for y in {inner} if {c2}]"], [(r, "seq")]
        if form == "grid":
            return [f"{r} = [[{e} for y in {inner}] for x in {outer}]"], [(r, "other")]
        if form == "row_sums":
            return [f"{r} = [sum({e} for y in {inner}) for x in {outer}]"], [(r, "seq")]
        if form == "pipeline":
            inner_gen = f"({self.call(['x', *sc.ints])} for x in {outer})"
            return [f"{r} = [{self.call(['y', *sc.ints])} for y in {inner_gen}]"], [(r, "seq")]
        return [f"{r} = [{e} for x in {outer} for y in range(x % 3)]"], [(r, "seq")]

    def block_walrus(self, sc: Scope) -> Block:
        r, w = self.output(), self.output()
        src = self.source(sc)
        e = self.call(["x", *sc.ints])
        form = self.pick(["filter", "value", "sum"])
        self.feature(f"walrus in comprehension ({form})")
        if form == "filter":
            line = f"{r} = [{w} for x in {src} if ({w} := {e}) % 2 == 0]"
            kind = "seq"
        elif form == "value":
            line = f"{r} = [({w} := {e}) + x for x in {src}]"
            kind = "seq"
        else:
            line = f"{r} = sum(({w} := {e}) for x in {src})"
            kind = "int"
        return [f"{w} = -1", line], [(r, kind), (w, "int")]

    def block_short_circuit(self, sc: Scope) -> Block:
        r = self.output()
        src = self.source(sc)
        names = ["x", *sc.ints]
        form = self.pick(["any", "all", "next_default", "any_list", "next"])
        self.feature(f"short circuit ({form})")
        if form == "any":
            return [f"{r} = any({self.cond(names)} for x in {src})"], [(r, "other")]
        if form == "all":
            return [f"{r} = all({self.cond(names)} for x in {src})"], [(r, "other")]
        if form == "any_list":
            return [f"{r} = any([{self.cond(names)} for x in {src}])"], [(r, "other")]
        e = self.call(names)
        if form == "next":
            return [f"{r} = next({e} for x in {src})"], [(r, "int")]
        c = self.cond(names)
        return [f"{r} = next(({e} for x in {src} if {c}), -1)"], [(r, "int")]

    def block_sort_key(self, sc: Scope) -> Block:
        r = self.output()
        self.feature("sorted with a key lambda")
        key = self.call(["v", *sc.ints])
        reverse = ", reverse=True" if self.coin() else ""
        return [f"{r} = sorted({self.source(sc)}, key=lambda v: {key}{reverse})"], [(r, "seq")]

    def block_lambdas(self, sc: Scope) -> Block:
        r = self.output()
        src = self.source(sc)
        op = self.pick(INT_OPS)
        form = self.pick(["late_binding", "immediate", "loop_late_binding"])
        self.feature(f"lambdas ({form})")
        # Late binding: every lambda sees the *last* x when it is finally called.
        if form == "late_binding":
            lines = [f"fs = [lambda: {op}(x) for x in {src}]"]
        elif form == "loop_late_binding":
            lines = ["fs = []", f"for x in {src}:", f"    fs.append(lambda: {op}(x))"]
        else:
            call = self.call(["v", *sc.ints])
            return [f"{r} = [(lambda v: {call})(x) for x in {src}]"], [(r, "seq")]
        return [*lines, f"{r} = [f() for f in fs]"], [(r, "seq")]

    # -- loops with independent iterations

    def block_loop(self, sc: Scope) -> Block:
        r = self.output()
        acc = self.pick(
            ["append", "add", "extend", "setitem", "sum", "iadd", "setitem_key", "count_get"]
        )
        targets = ["plain", "enumerate", "zip", "range_len", "nested"]
        target = self.pick(targets + (["items"] if sc.dicts else []))
        self.feature(f"loop accumulating by {acc}")
        self.feature(f"loop over {target}")
        pre_body: list[str] = []
        if target == "plain":
            header, loop_vars = [f"for x in {self.source(sc)}:"], ["x"]
        elif target == "enumerate":
            header, loop_vars = [f"for i, x in enumerate({self.source(sc)}):"], ["x", "i"]
        elif target == "zip":
            header = [f"for x, y in zip({self.pick(sc.seqs)}, {self.pick(sc.seqs)}):"]
            loop_vars = ["x", "y"]
        elif target == "range_len":
            seq = self.pick(sc.seqs)
            header, loop_vars = [f"for i in range(len({seq})):"], ["x", "i"]
            pre_body = [f"x = {seq}[i]"]
        elif target == "nested":
            header = [f"for x in {self.source(sc)}:", f"    for y in {self.source(sc)}:"]
            loop_vars = ["x", "y"]
        else:
            header, loop_vars = [f"for x, y in {self.pick(sc.dicts)}.items():"], ["x", "y"]
        init, kind = {
            "add": ("set()", "other"),
            "sum": ("0", "int"),
            "setitem": ("{}", "dict"),
            "setitem_key": ("{}", "dict"),
            "count_get": ("{}", "dict"),
        }.get(acc, ("[]", "seq"))
        names = [*loop_vars, *sc.ints]

        key = self.call(names) if acc == "setitem_key" else "x"

        def accumulate(value: str) -> str:
            if acc == "append":
                return f"{r}.append({value})"
            if acc == "add":
                return f"{r}.add({value})"
            if acc == "extend":
                return f"{r}.extend([{value}, {self.atom(names)}])"
            if acc in ("setitem", "setitem_key"):
                return f"{r}[{key}] = {value}"
            if acc == "count_get":
                # Reads what earlier iterations wrote whenever a key repeats.
                return f"{r}[{key}] = {r}.get({key}, 0) + {value}"
            if acc == "sum":
                return f"{r} += {value}"
            return f"{r} += [{value}]"

        def value() -> str:
            if self.pick(["call", "call", "call", "region"]) == "call":
                return self.call(names)
            self.feature("a comprehension inside a loop body")
            return f"sum({self.call(['w', *names])} for w in {self.source(sc)})"

        body = list(pre_body)
        if self.coin():
            self.feature("continue in loop")
            body += [f"if {self.cond(names)}:", "    continue"]
        inner: list[str] = []
        temps = ("a", "b")[: self.pick([0, 1, 2])]
        for temp in temps:
            inner.append(f"{temp} = {self.call(names)}")
            names = [temp, *names]
        shape = self.pick(["simple", "if_else", "try", "with", "suppress"])
        self.feature(f"loop body ({shape})")
        if shape == "if_else":
            inner += [
                f"if {self.cond(names)}:",
                "    " + accumulate(value()),
                "else:",
                "    " + accumulate(value()),
            ]
        else:
            inner.append(accumulate(value()))
        if shape == "try":
            fallback = accumulate(self.pick(["-1", "len(err.args)"]))
            inner = ["try:", *indent(inner), "except OpError as err:", "    " + fallback]
        elif shape == "with":
            inner = [f"with Span({next(self._tags)}):", *indent(inner)]
        elif shape == "suppress":
            inner = ["with suppress(OpError):", *indent(inner)]
        body += inner
        lines = [f"{r} = {init}"]
        outs: list[Out] = [(r, kind)]
        # Names the loop binds, read after it: the last iteration's values.
        after_names: list[str] = []
        if self.coin():
            self.feature("loop variable used after the loop")
            after_names.append(self.pick(loop_vars))
        if temps and self.coin():
            self.feature("loop body temporary used after the loop")
            after_names.append(self.pick(temps))
        if after_names:
            lines += [f"{v} = -1" for v in dict.fromkeys([*loop_vars, *temps])]
        lines += [*header, *indent(body, len(header))]
        if self.coin():
            self.feature("for-else")
            lines += ["else:", "    record(-1)"]
        for name in after_names:
            after = self.output()
            lines.append(f"{after} = {name}")
            outs.append((after, "int"))
        return lines, outs

    # -- what must stay in order

    def block_break(self, sc: Scope) -> Block:
        r = self.output()
        form = self.pick(["outer", "inner"])
        self.feature(f"break on a result ({form} loop)")
        names = ["x", *sc.ints] if form == "outer" else ["x", "y", *sc.ints]
        e = self.call(names)
        header = [f"for x in {self.source(sc)}:"]
        if form == "inner":
            header.append(f"    for y in {self.source(sc)}:")
        body = [
            f"v = {e}",
            f"if {self.cond(['v', *names])}:",
            "    break",
            f"{r}.append(v)",
        ]
        lines = [f"{r} = []", *header, *indent(body, len(header))]
        if self.coin():
            self.feature("for-else after a break")
            lines += indent(["else:", f"    {r}.append(-1)"], len(header) - 1)
        return lines, [(r, "seq")]

    def block_early_return(self, sc: Scope) -> Block:
        self.feature("return inside a loop")
        e = self.call(["x", *sc.ints])
        values = ", ".join(["x", "v", *sc.outs])
        return [
            f"for x in {self.source(sc)}:",
            f"    v = {e}",
            f"    if {self.cond(['v', 'x', *sc.ints])}:",
            f'        return ("early", {values})',
        ], []

    def block_carried(self, sc: Scope) -> Block:
        r = self.output()
        src = self.source(sc)
        form = self.pick(["fold", "prev", "len_arg", "dedupe", "running"])
        self.feature(f"loop-carried ({form})")
        if form == "fold":
            op = self.pick(INT_OPS)
            lines = [f"{r} = {self.atom(sc.ints)}", f"for x in {src}:", f"    {r} = {op}({r}, x)"]
            return lines, [(r, "int")]
        if form == "prev":
            return [
                f"prev = {self.atom(sc.ints)}",
                f"{r} = []",
                f"for x in {src}:",
                f"    prev = {self.call(['prev', 'x'])}",
                f"    {r}.append(prev)",
            ], [(r, "seq")]
        if form == "len_arg":
            op = self.pick(INT_OPS)
            lines = [f"{r} = []", f"for x in {src}:", f"    {r}.append({op}(x, len({r})))"]
            return lines, [(r, "seq")]
        if form == "dedupe":
            return [
                "seen = set()",
                f"{r} = []",
                f"for x in {src}:",
                f"    v = {self.call(['x', *sc.ints])}",
                "    if v in seen:",
                "        continue",
                "    seen.add(v)",
                f"    {r}.append(v)",
            ], [(r, "seq")]
        return [
            "total = 0",
            f"{r} = []",
            f"for x in {src}:",
            f"    total += {self.call(['x', *sc.ints])}",
            f"    {r}.append(total)",
        ], [(r, "seq")]

    def block_while(self, sc: Scope) -> Block:
        r = self.output()
        form = self.pick(["index", "converge", "queue"])
        self.feature(f"while loop ({form})")
        if form == "index":
            seq = self.pick(sc.seqs)
            return [
                f"{r} = []",
                "k = 0",
                f"while k < len({seq}):",
                f"    {r}.append({self.call([f'{seq}[k]', 'k', *sc.ints])})",
                "    k += 1",
            ], [(r, "seq")]
        if form == "converge":
            return [
                f"{r} = {self.atom(sc.ints)}",
                "k = 0",
                f"while {r} % 3 != 0 and k < 4:",
                f"    {r} = {self.pick(INT_OPS)}({r}, k)",
                "    k += 1",
            ], [(r, "int")]
        return [
            f"queue = list({self.pick(sc.seqs)})",
            f"{r} = []",
            "while queue:",
            "    x = queue.pop(0)",
            f"    {r}.append({self.call(['x', *sc.ints])})",
        ], [(r, "seq")]

    def _state_block(self, sc: Scope, var: str) -> Block:
        r = self.output()
        form = self.pick(["loop", "straight", "read_in_loop"])
        if form == "loop":
            lines = [f"for x in {self.source(sc)}:", f"    {var} += {self.call(['x', *sc.ints])}"]
            return [*lines, f"{r} = {var}"], [(r, "int")]
        if form == "straight":
            lines = [f"{var} = {var} + {self.call(sc.ints)}", f"{r} = {var}"]
            return lines, [(r, "int")]
        return [
            f"{r} = []",
            f"for x in {self.source(sc)}:",
            f"    {var} += 1",
            f"    {r}.append({self.pick(INT_OPS)}(x, {var}))",
        ], [(r, "seq")]

    def block_global(self, sc: Scope) -> Block:
        self.uses_tally = True
        self.feature("global write")
        return self._state_block(sc, "TALLY")

    def block_nonlocal(self, sc: Scope) -> Block:
        self.uses_count = True
        self.feature("nonlocal write")
        return self._state_block(sc, "count")

    # -- consecutive statements

    def block_straight(self, sc: Scope) -> Block:
        r = self.output()
        s = self.pick(sc.ints)
        names = [s, *sc.ints]
        form = self.pick(
            [
                "independent",
                "chain",
                "diamond",
                "branches",
                "free_between",
                "record_between",
                "ensemble",
                "rebind",
                "augmented",
                "tuple_assign",
                "comprehension_between",
            ]
        )
        self.feature(f"statements ({form})")
        lines: list[str]
        if form == "independent":
            lines = [f"a = {self.call(names)}", f"b = {self.call(names)}"]
            value, kind = self.combine(["a", "b"])
        elif form == "chain":
            lines = [f"a = {self.call(names)}", f"b = {self.call(['a', *names])}"]
            value, kind = self.call(["b", "a", *names]), "int"
        elif form == "diamond":
            lines = [
                f"a = {self.call(names)}",
                f"b = {self.call(['a', *names])}",
                f"c = {self.call(['a', *names])}",
            ]
            value, kind = self.combine(["b", "c"])
        elif form == "branches":
            lines = [
                f"if {self.cond(names)}:",
                f"    a = {self.call(names)}",
                f"    b = {self.call(names)}",
                "else:",
                f"    a = {self.call(names)}",
                f"    b = {self.call(['a', *names])}",
            ]
            value, kind = self.combine(["a", "b"])
        elif form == "free_between":
            lines = [
                f"a = {self.call(names)}",
                f"t = {s} * 2 + 1",
                f"b = {self.call(['t', *names])}",
            ]
            value, kind = self.combine(["a", "b"])
        elif form == "record_between":
            lines = [f"a = {self.call(names)}", "record(a)", f"b = {self.call(names)}"]
            value, kind = self.combine(["a", "b"])
        elif form == "ensemble":
            members = ["a", "b", "c", "t"][: self.pick([3, 4])]
            lines = [f"{m} = {self.call(names)}" for m in members]
            value, kind = self.combine(members)
        elif form == "rebind":
            lines = [
                f"a = {self.call(names)}",
                f"b = {self.call(['a', *names])}",
                f"a = {self.call(names)}",
            ]
            value, kind = self.combine(["a", "b"])
        elif form == "tuple_assign":
            lines = [f"a, b = {self.call(names)}, {self.call(names)}"]
            value, kind = self.combine(["a", "b"])
        elif form == "comprehension_between":
            # A statement that is itself a region, reading the function's parameters,
            # next to independent call statements (findings F2, issue 15: on 3.11 it is
            # kept in order today; this guards the day it forks).
            seq = self.pick(sc.seqs)
            lines = [
                f"a = {self.call(names)}",
                f"c = [{self.call(['x', *names])} for x in {seq}]",
                f"b = {self.call(names)}",
            ]
            value, kind = self.combine(["a", "b", "len(c)"])
        else:
            lines = [f"a = {self.call(names)}", f"a += {self.call(['a', *names])}"]
            value, kind = "a", "int"
        return [*lines, f"{r} = {value}"], [(r, kind)]


#: How a helper is defined: ``helper_i`` is a function, or a method of a class ``Tool_i``
#: bound to the global name (``helper_i = Tool_i().run``), so the call tree meets bound
#: methods, classmethods and staticmethods (issue 15) under the same call sites.
HELPER_FORMS = ("function", "method", "classmethod", "staticmethod")


def _helper_source(draw: st.DrawFn, name: str, writer: _Writer, callable_helpers: list[str]) -> str:
    """``name``'s definition; it may call the helpers defined before it (a call tree)."""
    sub = _Writer(draw, callable_helpers)
    sub.out_prefix = "h"
    sc = Scope(ints=["v"], seqs=["vs"])
    lines = ["vs = [v, v + 1, v + 2][: v % 3 + 1]", *sub.block(sc, HELPER_BLOCKS, wrappers=False)]
    first = sc.outs[0]
    lines.append(f"return {first}" if first in sc.ints else f"return len({first})")
    writer.features |= {f"helper: {f}" for f in sub.features}
    form = draw(st.sampled_from(HELPER_FORMS))
    writer.feature(f"helper defined as a {form}")
    if form == "function":
        return "\n".join([f"def {name}(v):", *indent(lines)]) + "\n"
    owner = f"Tool_{name.rsplit('_', 1)[1]}"
    head = {"method": "def run(self, v):", "classmethod": "def run(cls, v):"}
    decorator = {"classmethod": ["@classmethod"], "staticmethod": ["@staticmethod"]}
    method = [*decorator.get(form, []), head.get(form, "def run(v):"), *indent(lines)]
    bound = f"{owner}().run" if form == "method" else f"{owner}.run"
    return "\n".join([f"class {owner}:", *indent(method), "", "", f"{name} = {bound}"]) + "\n"


@st.composite
def programs(draw: st.DrawFn, family: str) -> Program:
    """A whole module whose ``prog(xs, ys, n)`` uses the patterns of ``family``."""
    helper_names: list[str] = []
    if family == "mixed":
        helper_names = [f"helper_{i}" for i in range(1, draw(st.integers(0, 2)) + 1)]
    writer = _Writer(draw, helper_names)
    helpers = [
        _helper_source(draw, name, writer, helper_names[:i]) for i, name in enumerate(helper_names)
    ]
    sc = Scope(ints=["n"], seqs=["xs", "ys"])
    body: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        body += writer.block(sc, FAMILIES[family], wrappers=family == "mixed")
    ints = [name for name in sc.outs if name in sc.ints]
    if not sc.outs:
        body.append("return None")
    elif len(sc.outs) == 1:
        body.append(f"return {sc.outs[0]}")
    elif len(ints) >= 2 and writer.coin():
        body.append(f"return {writer.pick(INT_OPS)}({', '.join(ints)})")
    else:
        body.append(f"return ({', '.join(sc.outs)})")
    decls = ["global TALLY"] if writer.uses_tally else []
    parts = ["TALLY = 0\n"] if writer.uses_tally else []
    parts += helpers
    if writer.uses_count:
        decls.append("nonlocal count")
        parts.append(
            "\n".join(
                [
                    "def make():",
                    "    count = 0",
                    "",
                    "    def get_count():",
                    "        return count",
                    "",
                    "    def set_count(value):",
                    "        nonlocal count",
                    "        count = value",
                    "",
                    "    def prog(xs, ys, n):",
                    *indent([*decls, *body], 2),
                    "",
                    "    return prog, get_count, set_count",
                    "",
                    "",
                    "prog, get_count, set_count = make()",
                ]
            )
            + "\n"
        )
    else:
        parts.append("\n".join(["def prog(xs, ys, n):", *indent([*decls, *body])]) + "\n")
    source = "\n\n".join(parts)
    return Program(source, draw(op_configs()), frozenset(writer.features))


@st.composite
def op_configs(draw: st.DrawFn) -> OpConfig:
    """Latency 0-1.2 ms per op (often 0) and, in some examples, failing inputs."""
    latency = tuple((name, draw(st.sampled_from([0.0, 0.0, 0.0003, 0.0006]))) for name in OPS)
    # Most examples have failing inputs: the first error in program order is half the contract.
    n_failing = draw(st.sampled_from([0, 1, 2, 3, 4]))
    failing_ops = draw(
        st.lists(st.sampled_from(OPS), min_size=n_failing, max_size=n_failing, unique=True)
    )
    failing = tuple(
        (name, draw(st.frozensets(st.integers(0, MODULUS - 1), min_size=1, max_size=5)))
        for name in failing_ops
    )
    return OpConfig(latency, failing)


@st.composite
def arguments(draw: st.DrawFn) -> Args:
    """``(xs, ys, n)``: xs has 1-6 items, ys 0-4 (empty in about one example in five)."""
    items = st.integers(0, MODULUS - 1)
    xs_size = draw(st.sampled_from([2, 3, 4, 5, 6, 1]))
    xs = draw(st.lists(items, min_size=xs_size, max_size=xs_size))
    ys_size = draw(st.sampled_from([1, 2, 3, 0, 4]))
    ys = draw(st.lists(items, min_size=ys_size, max_size=ys_size))
    return xs, ys, draw(st.integers(0, MODULUS - 1))


# -- fixed programs: every pattern at least once, readable when they fail ------------------

FIXED_PROGRAMS: dict[str, str] = {
    "list_comprehension": """
def prog(xs, ys, n):
    return [op_a(x) for x in xs]
""",
    "conditional_comprehension_calls_an_op": """
def prog(xs, ys, n):
    return [op_b(x) for x in xs if op_a(x) % 2 == 0]
""",
    "set_and_dict_comprehensions": """
def prog(xs, ys, n):
    return {op_a(x) for x in xs}, {x: op_b(x, n) for x in xs}, {op_c(y): y for y in ys}
""",
    "generator_expressions_consumed_whole": """
def prog(xs, ys, n):
    return (
        list(op_a(x) for x in xs),
        tuple(op_b(x) for x in xs),
        set(op_c(y) for y in ys),
        sorted(op_a(x, 1) for x in xs),
        sum(op_b(y) for y in ys),
        min((op_c(x) for x in xs), default=-1),
        max((op_a(y) for y in ys), default=-1),
        "-".join(label(op_a(x)) for x in xs),
        dict((y, op_c(y)) for y in ys),
    )
""",
    "min_of_nothing_raises": """
def prog(xs, ys, n):
    return min(op_a(x) for x in xs)
""",
    "nested_comprehensions": """
def prog(xs, ys, n):
    flat = [op_a(x, y) for x in xs for y in ys]
    grid = [[op_b(x, y) for y in ys] for x in xs]
    return flat, grid
""",
    "several_calls_per_iteration": """
def prog(xs, ys, n):
    return [op_b(op_a(x)) + svc.ask(x, k=2) for x in xs]
""",
    "short_circuit_consumers": """
def prog(xs, ys, n):
    return (
        any(op_a(x) > 8 for x in xs),
        all(op_b(y) < 9 for y in ys),
        next((op_c(x) for x in xs if x > 3), -1),
    )
""",
    "lambdas_in_a_comprehension_bind_late": """
def prog(xs, ys, n):
    fs = [lambda: op_a(x) for x in xs]
    return [f() for f in fs]
""",
    "lambdas_in_a_loop_bind_late": """
def prog(xs, ys, n):
    fs = []
    for x in xs:
        fs.append(lambda: op_a(x))
    return [f() for f in fs]
""",
    "walrus_in_comprehension": """
def prog(xs, ys, n):
    last = -1
    kept = [last for x in xs if (last := op_a(x)) % 2 == 0]
    return kept, last
""",
    "sorted_with_key_lambda": """
def prog(xs, ys, n):
    return sorted(xs, key=lambda v: op_a(v))
""",
    "loop_append": """
def prog(xs, ys, n):
    out = []
    for x in xs:
        out.append(op_a(x))
    return out
""",
    "loop_add_extend_setitem": """
def prog(xs, ys, n):
    seen = set()
    out = []
    d = {}
    for x in xs:
        seen.add(op_a(x))
        out.extend([op_b(x), op_c(x)])
        d[x] = op_a(x, n)
    return seen, out, d
""",
    "loop_sum_and_list_accumulation": """
def prog(xs, ys, n):
    total = 0
    acc = []
    for x in xs:
        total += op_a(x)
        acc += [op_b(x)]
    return total, acc
""",
    "loop_continue_and_if": """
def prog(xs, ys, n):
    out = []
    for x in xs:
        if op_a(x) % 2:
            continue
        if x > 5:
            out.append(op_b(x))
        else:
            out.append(op_c(x))
    return out
""",
    "loop_tuple_targets_and_variable_after": """
def prog(xs, ys, n):
    i = x = -1
    out = {}
    for i, x in enumerate(xs):
        out[op_a(x, i)] = op_b(i)
    pairs = []
    for x, y in zip(xs, ys):
        pairs.append(op_c(x, y))
    return out, pairs, i, x
""",
    "break_on_a_result": """
def prog(xs, ys, n):
    out = []
    for x in xs:
        v = op_a(x)
        if v > 8:
            break
        out.append(v)
    return out
""",
    "return_inside_loop": """
def prog(xs, ys, n):
    for x in xs:
        v = op_a(x)
        if v % 5 == 0:
            return ("early", x, v)
    return "done"
""",
    "loop_carried_value": """
def prog(xs, ys, n):
    prev = n
    out = []
    for x in xs:
        prev = op_a(prev, x)
        out.append(prev)
    return out
""",
    "loop_reads_its_own_accumulator": """
def prog(xs, ys, n):
    out = []
    for x in xs:
        out.append(op_b(x, len(out)))
    return out
""",
    "while_loops": """
def prog(xs, ys, n):
    out = []
    k = 0
    while k < len(xs):
        out.append(op_a(xs[k]))
        k += 1
    v = n
    k = 0
    while v % 3 != 0 and k < 4:
        v = op_b(v, k)
        k += 1
    return out, v
""",
    "independent_statements": """
def prog(xs, ys, n):
    a = op_a(n)
    b = op_b(n)
    return op_c(a, b)
""",
    "chain_and_diamond": """
def prog(xs, ys, n):
    a = op_a(n)
    b = op_b(a)
    c = op_c(a)
    d = op_a(b, c)
    return d
""",
    "statements_in_branches": """
def prog(xs, ys, n):
    if n % 2 == 0:
        a = op_a(n)
        b = op_b(n)
    else:
        a = op_b(n)
        b = op_c(a)
    return op_c(a, b)
""",
    "call_free_and_call_statements_between": """
def prog(xs, ys, n):
    a = op_a(n)
    t = n * 2 + 1
    record(a)
    b = op_b(t)
    record(b)
    return a, b
""",
    "rebinding_after_use": """
def prog(xs, ys, n):
    a = op_a(n)
    b = op_b(a)
    a = op_c(n)
    a += op_a(a)
    return a, b
""",
    "try_except_around_calls": """
def prog(xs, ys, n):
    try:
        a = op_a(n)
        b = op_b(n)
    except OpError as err:
        return ("caught", err.args)
    return a + b
""",
    "try_except_around_a_comprehension": """
def prog(xs, ys, n):
    try:
        out = [op_a(x) for x in xs]
    except OpError:
        out = []
    return out, [op_b(y) for y in ys]
""",
    "try_except_inside_a_loop": """
def prog(xs, ys, n):
    out = []
    for x in xs:
        try:
            out.append(op_a(x))
        except OpError as err:
            out.append(len(err.args))
    return out
""",
    "with_blocks": """
def prog(xs, ys, n):
    with Span(1):
        a = op_a(n)
        b = op_b(n)
    out = []
    for x in xs:
        with nullcontext():
            out.append(op_c(x))
    return a, b, out
""",
    "global_write": """
TALLY = 0


def prog(xs, ys, n):
    global TALLY
    for x in xs:
        TALLY += op_a(x)
    return TALLY
""",
    "nonlocal_write": """
def make():
    count = 0

    def get_count():
        return count

    def set_count(value):
        nonlocal count
        count = value

    def prog(xs, ys, n):
        nonlocal count
        out = []
        for x in xs:
            count += 1
            out.append(op_a(x, count))
        return out, count

    return prog, get_count, set_count


prog, get_count, set_count = make()
""",
    "nested_jit_inside_a_region": """
def helper_1(v):
    return sum(op_a(v, y) for y in range(3))


def helper_2(v):
    return [helper_1(w) for w in range(v % 3)]


def prog(xs, ys, n):
    return [helper_1(x) for x in xs], [helper_2(y) for y in ys]
""",
    "non_op_error_in_a_region": """
def prog(xs, ys, n):
    return [n // op_a(x) for x in xs]
""",
    "ensemble_then_judge": """
def prog(xs, ys, n):
    answers = [svc.ask(n, k) for k in range(4)]
    best = max(answers)
    return op_b(best, *answers)
""",
    "dedupe_in_order": """
def prog(xs, ys, n):
    seen = set()
    out = []
    for x in xs:
        v = op_a(x)
        if v in seen:
            continue
        seen.add(v)
        out.append(v)
    return out
""",
}
