"""A grammar of ``async def`` programs for the differential tests of ``xcs.jit``.

The async twin of ``_programs``: the same deterministic ops (``op_value``), the same
``OpConfig`` of latencies and failing inputs and the same comparison (``same``), but
the ops are coroutines that await (``asyncio.sleep``, so that they always suspend,
for 0 s or a fraction of a millisecond) and every run happens inside an event loop
that the test starts. Blocks cover what XCS overlaps (comprehensions, set and dict
comprehensions, ``async for`` clauses, loops and ``async for`` loops with
accumulators, runs of independent awaits) and what must stay in order (carried
loops, breaks, sync calls, awaits in a ``for`` clause).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import linecache
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from _programs import OpConfig, OpError, Recorder, op_value
from hypothesis import strategies as st

import xcs

Args = tuple[list[int], list[int], int]
ASYNC_OPS = ("op_a", "op_b", "op_c")


class AsyncWorld:
    """The ops of one example, bound to its config and to the current run's recorder."""

    def __init__(self, config: OpConfig) -> None:
        self.config = config
        self.recorder = Recorder()

    def begin(self) -> Recorder:
        self.recorder = Recorder()
        return self.recorder

    async def call(self, name: str, args: tuple[Any, ...]) -> Any:
        recorder = self.recorder
        recorder.enter((name, args, ()))
        error: OpError | None = None
        try:
            await asyncio.sleep(self.config.delay(name, args))
            if self.config.fails(name, args):
                error = OpError(name, args)
                raise error
            return op_value(name, args, {})
        finally:
            recorder.leave(error)

    def sync_call(self, name: str, args: tuple[Any, ...]) -> Any:
        recorder = self.recorder
        recorder.enter((name, args, ()))
        recorder.leave(None)
        return op_value(name, args, {})

    def namespace(self) -> dict[str, Any]:
        world = self

        def make_op(name: str) -> Callable[..., Any]:
            async def op(*args: Any) -> Any:
                return await world.call(name, args)

            op.__name__ = op.__qualname__ = name
            return op

        def sop(*args: Any) -> Any:
            return world.sync_call("sop", args)

        async def agen(values: list[int]) -> AsyncIterator[int]:
            for value in values:
                world.sync_call("agen", (value,))
                await asyncio.sleep(0)
                yield value

        ns: dict[str, Any] = {name: make_op(name) for name in ASYNC_OPS}
        ns.update(
            __name__="xcs_async_differential",
            sop=sop,
            agen=agen,
            OpError=OpError,
            deadline=xcs.deadline,
        )
        return ns


_serial = itertools.count()


@dataclass
class AsyncLoaded:
    source: str
    filename: str
    world: AsyncWorld
    fn: Callable[..., Any]

    def close(self) -> None:
        linecache.cache.pop(self.filename, None)


def load(source: str, config: OpConfig) -> AsyncLoaded:
    """Exec ``source`` as a module whose ``inspect.getsource`` works."""
    filename = f"<xcs-async-differential-{next(_serial)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    world = AsyncWorld(config)
    ns = world.namespace()
    exec(compile(source, filename, "exec"), ns)
    return AsyncLoaded(source, filename, world, ns["prog"])


@dataclass
class AsyncOutcome:
    value: Any
    error: BaseException | None
    calls: Counter[Any]
    raised: list[BaseException]
    still_running: int
    left_pending: int
    traceback: str = ""

    def describe(self) -> str:
        if self.error is not None:
            return f"raised {type(self.error).__name__}{self.error.args!r}"
        return f"returned {self.value!r}"


async def _run(loaded: AsyncLoaded, fn: Callable[..., Any], args: Args) -> AsyncOutcome:
    recorder = loaded.world.begin()
    value: Any = None
    error: BaseException | None = None
    tb = ""
    try:
        value = await fn(*copy.deepcopy(args))
    except Exception as exc:
        error = exc
        tb = traceback.format_exc()
    pending = len(asyncio.all_tasks() - {asyncio.current_task()})
    return AsyncOutcome(
        value, error, Counter(recorder.calls), recorder.raised, recorder.in_flight, pending, tb
    )


def run(
    runner: asyncio.Runner, loaded: AsyncLoaded, fn: Callable[..., Any], args: Args
) -> AsyncOutcome:
    """Await ``fn(*args)`` in ``runner``'s loop, on fresh copies of the arguments."""
    return runner.run(_run(loaded, fn, args))


# -- the grammar --------------------------------------------------------------------------


@dataclass
class AsyncProgram:
    source: str
    config: OpConfig
    features: set[str] = field(default_factory=set)


def _op(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(ASYNC_OPS))


def block(kind: str, out: str, op: str = "op_a", op2: str = "op_b", k: int = 3) -> list[str]:
    """Lines of one block that leaves its result in ``out``."""
    if kind == "comp":
        return [f"{out} = [await {op}(x + n) for x in xs]"]
    if kind == "comp_if":
        return [f"{out} = [await {op}(x) for x in xs if x % {k}]"]
    if kind == "comp_await_if":
        return [f"{out} = [await {op}(x) for x in xs if await {op2}(x) % {k}]"]
    if kind == "set_comp":
        return [f"{out} = sorted({{await {op}(x) % {k} for x in xs}})"]
    if kind == "dict_comp":
        return [f"{out} = {{x: await {op}(x, n) for x in xs}}"]
    if kind == "nested_comp":
        return [f"{out} = [[await {op}(x, y) for y in ys] for x in xs]"]
    if kind == "two_clauses":
        return [f"{out} = [await {op}(x * {k} + y) for x in xs for y in ys if x != y]"]
    if kind == "async_clause":
        return [f"{out} = [await {op}(x) async for x in agen(xs)]"]
    if kind == "expression":
        return [f"{out} = sum([(await {op}(x)) * sop(x) + n for x in xs])"]
    if kind == "loop":
        return [
            f"{out} = []",
            "for x in xs:",
            f"    v = await {op}(x + n)",
            f"    if v % {k} == 0:",
            "        continue",
            f"    {out}.append(v)",
        ]
    if kind == "loop_dict":
        return [
            f"{out} = {{}}",
            "total = 0",
            "for i, x in enumerate(xs):",
            f"    {out}[i] = await {op}(x)",
            f"    total += await {op2}(i)",
            f"{out} = ({out}, total)",
        ]
    if kind == "async_loop":
        return [
            f"{out} = []",
            "async for x in agen(xs):",
            f"    {out}.append(await {op}(x, n))",
        ]
    if kind == "nested_loop":
        return [
            f"{out} = []",
            "for x in xs:",
            "    for y in ys:",
            f"        {out}.append(await {op}(x, y))",
        ]
    if kind == "straight":
        return [
            f"a = await {op}(n)",
            f"b = await {op2}(n + 1)",
            "c = a + b",
            f"d = await {op}(c)",
            f"e = [await {op2}(x) for x in xs]",
            f"{out} = (a, b, c, d, e)",
        ]
    if kind == "straight_tuple":
        return [
            f"a = await {op}(n)",
            "m = n * 2",
            f"b = await {op2}(m)",
            f"{out} = a - b",
        ]
    if kind == "try_comp":
        return [
            "try:",
            f"    {out} = [await {op}(x) for x in xs]",
            f"    {out}.append(await {op2}(n))",
            "except OpError as error:",
            f"    {out} = ('caught', error.args)",
        ]
    if kind == "deadline":
        return [
            "async with deadline(60):",
            f"    a = await {op}(n)",
            f"    b = [await {op2}(x) for x in ys]",
            f"    {out} = (a, b)",
        ]
    if kind == "carried":
        return [
            f"{out} = n",
            "for x in xs:",
            f"    {out} = await {op}({out} + x)",
        ]
    if kind == "break":
        return [
            f"{out} = []",
            "for x in xs:",
            f"    v = await {op}(x)",
            f"    if v > {k + 6}:",
            "        break",
            f"    {out}.append(v)",
        ]
    if kind == "sync_calls":
        return [
            f"{out} = [sop(x) for x in xs]",
            "p = sop(n)",
            "q = sop(n + 1)",
            f"{out}.append(p + q)",
        ]
    if kind == "await_in_clause":
        return [f"{out} = [await {op}(y) for x in xs for y in [x, await {op2}(x)]]"]
    raise AssertionError(kind)


FAMILIES: dict[str, tuple[str, ...]] = {
    "comprehension": (
        "comp",
        "comp_if",
        "comp_await_if",
        "set_comp",
        "dict_comp",
        "nested_comp",
        "two_clauses",
        "async_clause",
        "expression",
        "try_comp",
    ),
    "loop": ("loop", "loop_dict", "async_loop", "nested_loop"),
    "straight": ("straight", "straight_tuple", "deadline"),
    "ordered": ("carried", "break", "sync_calls", "await_in_clause"),
}
ALL_BLOCKS = tuple(b for blocks in FAMILIES.values() for b in blocks)


@st.composite
def op_configs(draw: st.DrawFn) -> OpConfig:
    latency = tuple((name, draw(st.sampled_from([0.0, 0.0, 0.0003, 0.0006]))) for name in ASYNC_OPS)
    failing = tuple(
        (name, frozenset(draw(st.lists(st.integers(0, 11), max_size=2))))
        for name in ASYNC_OPS
        if draw(st.booleans())
    )
    return OpConfig(latency=latency, failing=failing)


@st.composite
def programs(draw: st.DrawFn, family: str) -> AsyncProgram:
    """``async def prog(xs, ys, n)``: one to three blocks, the first of ``family``."""
    kinds = [draw(st.sampled_from(FAMILIES[family]))]
    kinds += draw(st.lists(st.sampled_from(ALL_BLOCKS), max_size=2))
    lines = ["async def prog(xs, ys, n):"]
    outs = []
    for number, kind in enumerate(kinds):
        out = f"r{number}"
        outs.append(out)
        op, op2, k = _op(draw), _op(draw), draw(st.integers(2, 4))
        lines += ["    " + line for line in block(kind, out, op, op2, k)]
    if draw(st.booleans()):
        lines.append("    n = n + 1")
    lines.append(f"    return ({', '.join(outs)},)")
    return AsyncProgram("\n".join(lines) + "\n", draw(op_configs()), set(kinds))


@st.composite
def arguments(draw: st.DrawFn) -> Args:
    xs = draw(st.lists(st.integers(0, 11), max_size=6))
    ys = draw(st.lists(st.integers(0, 11), max_size=3))
    return xs, ys, draw(st.integers(0, 11))
