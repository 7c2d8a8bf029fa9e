"""Programs for the differential tests of ``xcs.jit`` over call trees (issue 15).

A *tree program* is the source of a small module: several module-level *units* (plain
functions, a class's instance method, classmethod and staticmethod, an
``xcs.Operator``'s ``forward``, ``@xcs.sequential`` functions, directly and mutually
recursive functions with a base case, keyword/default parameters, an override calling
``super()``, a callable object, a function behind a user decorator, a generator, a
function returning a list) that call one another, often 2-4 levels deep, and an entry
``prog(xs, n, log, store)``. Only the entry is jitted by the test; every other
unit is reached through the call tree (NOTE: [Call tree] in ``_compiler/_codegen.py``).

The module's world::

    model(tag, *ints) -> int    # the counted fake model: records (tag, ints), blocks
                                # briefly, raises ModelError for the inputs the example
                                # marks as failing, else returns an int in range(97)
    ModelError                  # (tag, ints) as args
    oops(*args) -> ValueError   # ``raise oops(...)``: the error, recorded as raised
    xcs                         # for xcs.Operator and @xcs.sequential
    jitted                      # xcs.jit, or nothing in the plain run: a function or
                                # a recursive one jitted itself, reached from compiled
                                # code (NOTE: [Jitted callees] in _rt)

Units raise ``ValueError("<unit>", k, value)`` (through ``oops``) at data-dependent
points (distinct args per unit and point, so the first error in program order is
recognisable), and some re-raise it as ``KeyError`` (chained). *Effectful* units take
the shared ``log`` (a list) and ``store`` (a dict) that ``prog`` receives, and append
to / update them: the order of those effects is what the sequential program makes
observable. Pure units take only ints and call only pure units.

Units are numbered; a unit calls only units with a higher number (and itself or its
partner, for recursion, with a depth argument that decreases), so every program
terminates. The source is written to a real file in a temporary directory, and each
``load`` execs it anew: every run mode gets fresh function objects.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import strategies as st

import xcs

__all__ = [
    "STRICT",
    "ModelError",
    "TreeArgs",
    "TreeConfig",
    "TreeLoaded",
    "TreeOutcome",
    "TreeProgram",
    "load_tree",
    "remove_source_dir",
    "run_tree",
    "tree_arguments",
    "tree_programs",
]

T = TypeVar("T")
#: ``(xs, n, log, store)``: the entry's arguments; ``log`` and ``store`` start empty.
TreeArgs = tuple[list[int], int]
Call = tuple[str, tuple[int, ...]]
MODULUS = 97
#: Strict (the default since findings F3d and F12 were fixed): the order of effects on
#: a mutable every item of a region passes in is checked, with order-dependent
#: ``store`` writes drawn too, and F12 (``ast.parse`` on two threads at once) fails.
#: ``XCS_TREE_STRICT=0`` relaxes both, should a new finding need it.
STRICT = os.environ.get("XCS_TREE_STRICT", "1") == "1"


class ModelError(Exception):
    """Raised by the fake model for a failing input; ``args`` are ``(tag, ints)``."""


@dataclass(frozen=True)
class TreeConfig:
    """The model's latency (seconds; 1x or 2x by input parity) and failing inputs."""

    latency: float = 0.0
    failing: frozenset[int] = frozenset()  # a call fails if sum(ints) % 23 is in here

    def __repr__(self) -> str:
        return f"TreeConfig(latency={self.latency}, failing={sorted(self.failing)})"


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.raised: list[BaseException] = []
        self.in_flight = 0


class _World:
    """The fake model of one loaded program, recording into the current run's recorder."""

    def __init__(self, config: TreeConfig) -> None:
        self.config = config
        self.recorder = _Recorder()

    def oops(self, *args: Any) -> ValueError:
        """The ValueError a unit raises, recorded (the run met a failure, even if caught)."""
        error = ValueError(*args)
        recorder = self.recorder
        with recorder.lock:
            recorder.raised.append(error)
        return error

    def model(self, tag: str, *ints: int) -> int:
        recorder = self.recorder  # the run this call started in
        with recorder.lock:
            recorder.calls.append((tag, ints))
            recorder.in_flight += 1
        try:
            total = sum(ints)
            if self.config.latency:
                time.sleep(self.config.latency * (1 + total % 2))
            if total % 23 in self.config.failing:
                error = ModelError(tag, ints)
                with recorder.lock:
                    recorder.raised.append(error)
                raise error
            return (len(tag) * 7 + sum((i + 3) * a for i, a in enumerate(ints))) % MODULUS
        finally:
            with recorder.lock:
                recorder.in_flight -= 1


# -- loading and running ------------------------------------------------------------------

_serial = itertools.count()
_directory: str | None = None


def _source_dir() -> str:
    global _directory
    if _directory is None:
        _directory = tempfile.mkdtemp(prefix="xcs-tree-programs-")
    return _directory


def remove_source_dir() -> None:
    """Remove the directory of generated sources (a session fixture calls this)."""
    global _directory
    if _directory is not None:
        shutil.rmtree(_directory, ignore_errors=True)
        _directory = None


@dataclass
class TreeLoaded:
    """A tree program exec'd from its own file into a fresh namespace."""

    path: str
    world: _World
    namespace: dict[str, Any]

    @property
    def prog(self) -> Callable[..., Any]:
        fn: Callable[..., Any] = self.namespace["prog"]
        return fn


def load_tree(source: str, config: TreeConfig, *, plain: bool = False) -> TreeLoaded:
    """Write ``source`` to a new file and exec it: fresh function objects, real source.
    ``@jitted`` units are jitted unless ``plain`` (the reference run: plain Python)."""
    serial = next(_serial)
    path = os.path.join(_source_dir(), f"tree_program_{os.getpid()}_{serial}.py")
    with open(path, "w", encoding="utf-8") as file:
        file.write(source)
    world = _World(config)

    def model(tag: str, *ints: int) -> int:
        return world.model(tag, *ints)

    namespace: dict[str, Any] = {
        "__name__": f"xcs_tree_program_{serial}",
        "__file__": path,
        "model": model,
        "oops": world.oops,
        "ModelError": ModelError,
        "xcs": xcs,
        "jitted": (lambda fn: fn) if plain else xcs.jit,
    }
    exec(compile(source, path, "exec"), namespace)
    return TreeLoaded(path, world, namespace)


@dataclass
class TreeOutcome:
    """What one run of a tree program did."""

    value: Any
    error: BaseException | None
    calls: Counter[Call]
    raised: list[BaseException]
    log: list[Any]
    store: dict[Any, Any]
    still_running: int
    traceback: str = ""

    def describe(self) -> str:
        if self.error is not None:
            return f"raised {type(self.error).__name__}{self.error.args!r}"
        return f"returned {self.value!r}"


def run_tree(loaded: TreeLoaded, fn: Callable[..., Any], args: TreeArgs) -> TreeOutcome:
    """``fn(xs, n, log, store)`` on fresh copies, a fresh recorder, an empty log and store."""
    recorder = loaded.world.recorder = _Recorder()
    xs, n = copy.deepcopy(args)
    log: list[Any] = []
    store: dict[Any, Any] = {}
    value: Any = None
    error: BaseException | None = None
    tb = ""
    try:
        value = fn(xs, n, log, store)
    except Exception as exc:
        error = exc
        tb = traceback.format_exc()
    with recorder.lock:
        still_running = recorder.in_flight
        calls = Counter(recorder.calls)
        raised = list(recorder.raised)
    return TreeOutcome(value, error, calls, raised, list(log), dict(store), still_running, tb)


# -- the grammar --------------------------------------------------------------------------

#: The kinds of unit, simplest first (hypothesis shrinks toward plain functions).
KINDS = (
    "function",
    "method",
    "classmethod",
    "staticmethod",
    "operator",
    "sequential",
    "recursive",
    "mutual",
    "keywords",
    "super",
    "lister",
    "callable_object",
    "decorated",
    "generator",
)


@dataclass
class Unit:
    """One callable of the program: how to define it and how to call it."""

    index: int
    kind: str
    effectful: bool
    name: str  # the def's name
    owner: str = ""  # class name for methods and operators
    partner: Unit | None = None  # the other half of a mutual recursion
    jitted: bool = False  # decorated ``@jitted``: xcs.jit, except in the plain run
    lines: list[str] = field(default_factory=list)  # its def, without decorators

    @property
    def recursive(self) -> bool:
        return self.kind in ("recursive", "mutual")

    def params(self) -> str:
        own = {
            "method": ["self"],
            "classmethod": ["cls"],
            "operator": ["self"],
            "super": ["self"],
            "callable_object": ["self"],
        }
        params = [*own.get(self.kind, []), "v"]
        if self.recursive:
            params.append("d")
        if self.effectful:
            params += ["log", "store"]
        if self.kind == "keywords":
            params += ["k=2", "*", "scale=1"]
        return ", ".join(params)

    def names(self) -> list[str]:
        """The int names its body may read."""
        return {"method": ["v", "self.k"], "keywords": ["v", "k", "scale"]}.get(self.kind, ["v"])

    def call(self, arg: str, caller: Unit | None, depth: str) -> str:
        """The source of a call to this unit with int argument ``arg``."""
        rest = [arg]
        if self.recursive:
            rest.append(depth)
        if self.effectful:
            rest += ["log", "store"]
        if self.kind == "keywords":
            if len(arg) < 3:  # all by keyword (the drawn argument decides, for variety)
                rest = [f"{p}={a}" for p, a in zip(["v", "log", "store"], rest, strict=False)]
            if len(arg) % 2:
                rest.append(f"scale={len(arg) + 1}")
            elif len(arg) > 1:
                rest.append("k=5")
        args = ", ".join(rest)
        if self.kind == "super":
            return f"{self.name}_one.step({args})"
        if self.kind == "callable_object":
            return f"{self.name.lower()}_obj({args})"
        if self.kind == "generator":
            return f"sum({self.name}({args})) % {MODULUS}"
        if self.kind == "function" and len(arg) % 3 == 2:
            return f"{self.name}(*[{args}])"  # unpacked at the call site
        if self.kind == "lister":
            return f"sum({self.name}({args})) % {MODULUS}"
        same_class = caller is not None and caller.owner and caller.owner == self.owner
        if self.kind == "operator":
            return f"{self.name.lower()}_op({args})"
        if self.kind == "method":
            receiver = "self" if same_class and caller.kind == "method" else f"{self.owner}_one"
            return f"{receiver}.{self.name}({args})"
        if self.kind in ("classmethod", "staticmethod"):
            if same_class and caller.kind == "method":
                return f"self.{self.name}({args})"
            if same_class and caller.kind == "classmethod":
                return f"cls.{self.name}({args})"
            return f"{self.owner}.{self.name}({args})"
        return f"{self.name}({args})"


@dataclass
class TreeProgram:
    """One generated tree program: module source, model behaviour, the shapes it uses."""

    source: str
    config: TreeConfig
    features: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"TreeProgram({self.config!r}, source=\n{self.source})"


def _indent(lines: Sequence[str], levels: int = 1) -> list[str]:
    pad = "    " * levels
    return [pad + line if line else line for line in lines]


def _fold(name: str) -> str:
    """An order-sensitive int of a list of ints."""
    return f"sum(i * r for i, r in enumerate({name}, 1)) % {MODULUS}"


class _TreeWriter:
    """Draws the units and the entry. Simplest choices first, so failures shrink."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.features: set[str] = set()
        self._sites = itertools.count(1)
        self._errors = itertools.count(1)
        self.edges: dict[int, set[int]] = {}  # unit index -> indices it calls; -1: prog

    def depth(self) -> int:
        """The longest chain of distinct units below ``prog`` (recursion not counted)."""

        def longest(index: int, seen: frozenset[int]) -> int:
            below = [longest(i, seen | {i}) for i in self.edges.get(index, ()) if i not in seen]
            return 1 + max(below, default=0)

        return longest(-1, frozenset({-1})) - 1

    def pick(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))

    def coin(self) -> bool:
        return self.draw(st.booleans())

    def feature(self, name: str) -> None:
        self.features.add(name)

    # -- expressions

    def atom(self, names: Sequence[str]) -> str:
        return self.pick([names[0], names[0], *names, f"{names[0]} + 1"])

    def expr(self, me: Unit | None, callees: Sequence[Unit], names: Sequence[str]) -> str:
        """An int expression that makes at least one call."""
        owner = me.name if me is not None else "prog"
        # A call to a unit is the simplest form where there is one: programs shrink
        # toward call trees, not toward flat calls to the model.
        forms = ["unit", "unit", "unit", "model"] if callees else ["model"]
        form = self.pick([*forms, "sum"])
        if form == "sum":
            left = self.expr(me, callees, names) if callees else self._model(owner, names)
            return f"({left} + {self._model(owner, names)}) % {MODULUS}"
        if form == "model":
            return self._model(owner, names)
        # Often the next unit down: deep chains (2-3 levels and more) are the point.
        target = callees[0] if self.coin() else self.pick(callees)
        self.edges.setdefault(me.index if me is not None else -1, set()).add(target.index)
        depth = "d - 1" if me is not None and me.recursive and target.recursive else "2"
        if target.recursive and not (me is not None and me.recursive):
            depth = self.pick(["2", "1", f"{names[0]} % 3"])
        if me is not None and target is me:
            self.feature("direct recursion")
        elif me is not None and target is me.partner:
            self.feature("mutual recursion")
        else:
            self.feature(f"calls a {target.kind}")
        return target.call(self.atom(names), me, depth)

    def _model(self, owner: str, names: Sequence[str]) -> str:
        args = [self.atom(names)]
        if self.coin():
            args.append(self.atom(names))
        return f'model("{owner}.{next(self._sites)}", {", ".join(args)})'

    def raise_check(self, owner: str, value: str) -> list[str]:
        """A data-dependent ``raise ValueError`` (with args unique to this point), or nothing."""
        if self.pick(["none", "none", "none", "raise"]) == "none":
            return []
        self.feature("callee raises ValueError")
        modulus = self.pick([5, 3, 7])
        hit = self.pick(range(modulus))
        return [
            f"if {value} % {modulus} == {hit}:",
            f'    raise oops("{owner}", {next(self._errors)}, {value})',
        ]

    def effect(self, owner: str, value: str) -> list[str]:
        forms = ["log", "read_modify_write", "none", "log_iadd"]
        if STRICT:
            forms.append("store")  # the last writer wins: order-dependent
        form = self.pick(forms)
        if form == "none":
            return []
        self.feature(f"effect on a passed-in {form}")
        if form == "log":
            return [f'log.append(("{owner}", {value}))']
        if form == "log_iadd":  # changes the caller's list too (findings F3c)
            return [f'log += [("{owner}", {value}, "+=")]']
        if form == "store":
            return [f"store[{value} % 4] = {value}"]
        return [f"store[{value} % 3] = store.get({value} % 3, 0) + {value}"]

    # -- bodies

    def body(self, me: Unit, callees: Sequence[Unit]) -> list[str]:
        """The statements of a unit's body after its base case: ends with a return."""
        owner = me.name
        names = me.names()
        lines = self.raise_check(owner, "v")
        if me.effectful and self.coin():
            lines += self.effect(owner, "v")
        form = self.pick(
            [
                "single",
                "comp",
                "loop",
                "statements",
                "chain",
                "try",
                "dict_comp",
                "genexp",
                "while_break",
                "finally",
                "reraise",
            ]
        )
        loop_names = ["w", *names]
        if me.kind == "lister":  # returns a list of ints
            e = self.expr(me, callees, loop_names)
            return [*lines, f"return [{e} for w in range(v % 3 + 1)]"]
        if me.kind == "generator":  # yields ints: runs as written, never compiled
            e = self.expr(me, callees, loop_names)
            return [*lines, "for w in range(v % 3 + 1):", f"    yield {e}"]
        self.feature(f"callee body: {form}")
        if form == "while_break":
            e = self.expr(me, callees, loop_names)
            return [
                *lines,
                "rs = []",
                "w = 0",
                "while w < v % 3 + 1:",
                f"    r = {e}",
                f"    if r % 4 == {self.pick(range(4))}:",
                "        break",
                "    rs.append(r)",
                "    w += 1",
                f"return {_fold('rs')}",
            ]
        if form == "reraise":  # a chained error: __cause__ or __context__ must match too
            a = self.expr(me, callees, names)
            cause = " from err" if self.coin() else ""
            return [
                *lines,
                "try:",
                f"    a = {a}",
                "except ValueError as err:",
                f'    raise KeyError("{owner}", len(err.args)){cause}',
                "return a",
            ]
        if form == "finally" and me.effectful:
            a = self.expr(me, callees, names)
            return [
                *lines,
                "try:",
                f"    a = {a}",
                "finally:",
                f'    log.append(("{owner}", "finally", v))',
                "return a",
            ]
        if form == "genexp":
            e = self.expr(me, callees, loop_names)
            return [*lines, f"return sum({e} for w in range(v % 3 + 1)) % {MODULUS}"]
        if form == "single":
            return [*lines, f"return {self.expr(me, callees, names)}"]
        if form == "comp":
            cond = " if w != 1" if self.coin() else ""
            e = self.expr(me, callees, loop_names)
            return [*lines, f"rs = [{e} for w in range(v % 3 + 1){cond}]", f"return {_fold('rs')}"]
        if form == "dict_comp":
            e = self.expr(me, callees, loop_names)
            return [
                *lines,
                f"rs = {{w: {e} for w in range(v % 3 + 1)}}",
                f"return {_fold('list(rs.values())')}",
            ]
        if form == "loop":
            inner = [*self.raise_check(owner, "w")]
            if me.effectful:
                inner += self.effect(owner, "w")
            inner.append(f"rs.append({self.expr(me, callees, loop_names)})")
            if me.effectful and self.coin():
                inner += self.effect(owner, "rs[-1]")
            return [
                *lines,
                "rs = []",
                "for w in range(v % 3 + 1):",
                *_indent(inner),
                f"return {_fold('rs')}",
            ]
        if form == "statements":
            a = self.expr(me, callees, names)
            b = self.expr(me, callees, names)
            mid = self.raise_check(owner, "a")
            if me.effectful:
                mid += self.effect(owner, "a")
            return [*lines, f"a = {a}", *mid, f"b = {b}", f"return (a * 2 + b) % {MODULUS}"]
        if form == "chain":
            a = self.expr(me, callees, names)
            mid = self.raise_check(owner, "a")
            b = self.expr(me, callees, ["a", *names])
            return [*lines, f"a = {a}", *mid, f"return {b}"]
        # try: catches the ValueErrors of callees (and its own), not ModelError
        a = self.expr(me, callees, names)
        b = self.expr(me, callees, names)
        return [
            *lines,
            "try:",
            f"    a = {a}",
            f"    b = {b}",
            "except ValueError as err:",
            "    return len(err.args) + 50",
            f"return (a + b) % {MODULUS}",
        ]

    def unit_def(self, me: Unit, callees: Sequence[Unit]) -> list[str]:
        head = f"def {me.name}({me.params()}):"
        body: list[str] = []
        if me.recursive:
            base = self._model(me.name, ["v"])
            body += ["if d <= 0:", f"    return {base}"]
            # The recursive call goes to itself or the partner (the depth decreases).
            partner = me.partner if me.kind == "mutual" else me
            assert partner is not None
            callees = [partner, partner, *callees]
        body += self.body(me, callees)
        return [head, *_indent(body)]

    # -- the entry

    def block(self, callees: Sequence[Unit], k: int) -> tuple[list[str], str]:
        r = f"r{k}"
        listers = [u for u in callees if u.kind == "lister" and not u.effectful]
        forms = ["comp", "loop", "statements", "nested", "try", "effect_loop", "genexp", "handler"]
        form = self.pick(forms + (["over_a_list"] if listers else []))
        self.feature(f"entry: {form}")
        names = ["x", "n"]
        if form == "genexp":
            return [f"{r} = sum({self.expr(None, callees, names)} for x in xs)"], r
        if form == "handler":  # a region inside an except block: errors get __context__
            e = self.expr(None, callees, names)
            return [
                "try:",
                '    raise LookupError("primary", n)',
                "except LookupError:",
                f"    {r} = [{e} for x in xs]",
            ], r
        if form == "over_a_list":
            lister = self.pick(listers)
            e = self.expr(None, callees, ["y", "x"])
            return [f"{r} = [{e} for x in xs for y in {lister.name}(x)]"], r
        if form == "comp":
            return [f"{r} = [{self.expr(None, callees, names)} for x in xs]"], r
        if form == "loop":
            return [
                f"{r} = []",
                "for x in xs:",
                f"    {r}.append({self.expr(None, callees, names)})",
            ], r
        if form == "effect_loop":
            return [
                f"{r} = []",
                "for x in xs:",
                '    log.append(("prog", x))',
                f"    {r}.append({self.expr(None, callees, names)})",
            ], r
        if form == "statements":
            a = self.expr(None, callees, ["n"])
            b = self.expr(None, callees, ["n", "a"] if self.coin() else ["n"])
            c = self.expr(None, callees, ["n"])
            return [f"a = {a}", f"b = {b}", f"c = {c}", f"{r} = (a, b, c)"], r
        if form == "nested":
            e = self.expr(None, callees, ["x", "y", "n"])
            return [f"{r} = [[{e} for y in range(x % 2 + 1)] for x in xs]"], r
        e = self.expr(None, callees, names)
        return [
            "try:",
            f"    {r} = [{e} for x in xs]",
            "except ValueError as err:",
            f'    {r} = ("caught", err.args)',
        ], r


def _class_source(owner: str, members: Sequence[Unit]) -> list[str]:
    lines = [f"class {owner}:", "    def __init__(self, k):", "        self.k = k", ""]
    for unit in members:
        if unit.kind == "classmethod":
            lines.append("    @classmethod")
        elif unit.kind == "staticmethod":
            lines.append("    @staticmethod")
        lines += [*_indent(unit.lines), ""]
    lines += ["", f"{owner}_one = {owner}(1)"]
    return lines


@st.composite
def tree_programs(draw: st.DrawFn) -> TreeProgram:
    """A module of 2-8 units in a call tree and the entry ``prog(xs, n, log, store)``."""
    writer = _TreeWriter(draw)
    kinds: list[str] = draw(st.lists(st.sampled_from(KINDS), min_size=2, max_size=6))
    units: list[Unit] = []
    index = 0
    for kind in kinds:
        effectful = draw(st.booleans())
        if kind == "mutual":
            first = Unit(index, kind, effectful, f"p{index}")
            second = Unit(index + 1, kind, effectful, f"q{index + 1}", partner=first)
            first.partner = second
            units += [first, second]
            index += 2
            continue
        name = {"operator": f"Op{index}", "super": f"D{index}", "callable_object": f"K{index}"}.get(
            kind, f"f{index}"
        )
        if kind in ("method", "classmethod", "staticmethod"):
            name = {"method": "run", "classmethod": "build", "staticmethod": "calc"}[kind]
            name = f"{name}{index}"
        # A unit jitted itself, reached from compiled code without its wrapper's frame
        # (NOTE: [Jitted callees] in _rt); recursion through one included.
        jitted = kind in ("function", "recursive") and draw(st.sampled_from([False, True]))
        if jitted:
            writer.feature(f"{kind} under @xcs.jit")
        units.append(Unit(index, kind, effectful, name, jitted=jitted))
        index += 1
    # Methods share a class with the method units next to them.
    owner = ""
    for unit in units:
        if unit.kind in ("method", "classmethod", "staticmethod"):
            if not owner or writer.coin():
                owner = f"C{unit.index}"
            unit.owner = owner
        elif unit.kind == "operator":
            unit.owner = unit.name
    # Bodies, from the leaves up: unit i calls units j > i of a compatible effect.
    for unit in reversed(units):
        callees = [
            u
            for u in units
            if u.index > unit.index
            and (unit.effectful or not u.effectful)
            and u is not unit.partner
        ]
        unit.lines = writer.unit_def(unit, callees)
    parts: list[list[str]] = []
    if any(unit.kind == "decorated" for unit in units):
        # A decorator of the user's: the wrapper is made per function (``<locals>``) and
        # runs as written; the function it wraps is reached from it, not from compiled code.
        parts.append(
            [
                "import functools",
                "",
                "",
                "def passthrough(fn):",
                "    @functools.wraps(fn)",
                "    def wrapper(*args, **kwargs):",
                "        return fn(*args, **kwargs)",
                "",
                "    return wrapper",
            ]
        )
    emitted_classes: set[str] = set()
    for unit in units:
        if unit.kind in ("method", "classmethod", "staticmethod"):
            if unit.owner in emitted_classes:
                continue
            emitted_classes.add(unit.owner)
            parts.append(_class_source(unit.owner, [u for u in units if u.owner == unit.owner]))
        elif unit.kind == "operator":
            parts.append(
                [
                    f"class {unit.name}(xcs.Operator):",
                    *_indent(
                        [line.replace(f"def {unit.name}(", "def forward(") for line in unit.lines]
                    ),
                    "",
                    "",
                    f"{unit.name.lower()}_op = {unit.name}()",
                ]
            )
        elif unit.kind == "sequential":
            parts.append(["@xcs.sequential", *unit.lines])
        elif unit.kind == "decorated":
            parts.append(["@passthrough", *unit.lines])
        elif unit.kind == "callable_object":
            call = unit.lines[0].replace(f"def {unit.name}(", "def __call__(")
            parts.append(
                [
                    f"class {unit.name}:",
                    *_indent([call, *unit.lines[1:]]),
                    "",
                    "",
                    f"{unit.name.lower()}_obj = {unit.name}()",
                ]
            )
        elif unit.kind == "super":
            base = unit.lines[0].replace(f"def {unit.name}(", "def step(")
            parts.append(
                [
                    f"class Base{unit.index}:",
                    *_indent([base, *unit.lines[1:]]),
                    "",
                    "",
                    f"class {unit.name}(Base{unit.index}):",
                    f"    def step({unit.params()}):",
                    f"        first = super().step({unit.params().replace('self, ', '')})",
                    f'        return (first + model("{unit.name}.super", v)) % {MODULUS}',
                    "",
                    "",
                    f"{unit.name}_one = {unit.name}()",
                ]
            )
        elif unit.jitted:
            parts.append(["@jitted", *unit.lines])
        else:
            parts.append(unit.lines)
    body: list[str] = []
    outs: list[str] = []
    top = [u for u in units if u.index <= 2] or units
    for k in range(1, draw(st.integers(1, 3)) + 1):
        lines, out = writer.block(top if writer.coin() else units, k)
        body += lines
        outs.append(out)
    body.append(f"return ({', '.join(outs)},)")
    parts.append(["def prog(xs, n, log, store):", *_indent(body)])
    source = "\n\n\n".join("\n".join(part) for part in parts) + "\n"
    writer.feature(f"call depth below prog: {min(writer.depth(), 4)}")
    latency = draw(st.sampled_from([0.0, 0.0002, 0.0005]))
    failing = draw(
        st.sampled_from([frozenset(), frozenset()]) | st.frozensets(st.integers(0, 22), max_size=3)
    )
    return TreeProgram(source, TreeConfig(latency, failing), frozenset(writer.features))


@st.composite
def tree_arguments(draw: st.DrawFn) -> TreeArgs:
    """``(xs, n)``: 1-5 small ints and an int."""
    size = draw(st.sampled_from([3, 2, 4, 1, 5]))
    xs = draw(st.lists(st.integers(0, 11), min_size=size, max_size=size))
    return xs, draw(st.integers(0, 11))
