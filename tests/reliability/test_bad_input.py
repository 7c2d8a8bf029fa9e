"""Bad input: a table of inputs XCS must meet with a clear error or the correct behaviour.

Each row is one input and its expected outcome: an exception (type and a phrase of
its message), the plain Python result (the input runs as written), or a check. The
same rows, by id, make the table in ``docs/reliability.md``; a test keeps the two in
step.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.models._fake_openai import FakeOpenAIServer, Reply, chat_reply

import xcs
from xcs.models import bind, models
from xcs.operators import Chain, Ensemble, MajorityVote

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


# -- the inputs --------------------------------------------------------------------------


def fan_out(x: Any) -> list[Any]:
    return [x for _ in range(3)]


def counting(n: int) -> Iterator[int]:
    yield from range(n)


async def acounting(n: int) -> Any:
    for i in range(n):
        yield i


def factorial(n: int) -> int:
    return 1 if n <= 1 else n * factorial(n - 1)


def forever(n: int) -> int:
    return forever(n + 1)


def total(a: int, b: int, c: int) -> list[int]:
    return [a + b + c for _ in range(2)]


class Widget:
    def twice(self, x: int) -> list[int]:
        return [x * 2 for _ in range(2)]


@xcs.op
def shout(text: str) -> str:
    return text.upper()


def stops_at_2(i: int) -> int:
    if i == 2:
        raise SystemExit(3)
    return i


def interrupted_at_1(i: int) -> int:
    if i == 1:
        raise KeyboardInterrupt("stop")
    return i


def fails_at_1_exits_at_2(i: int) -> int:
    if i == 1:
        time.sleep(0.05)  # item 2 raises first in time; item 1 is first in program order
        raise ValueError("item 1")
    if i == 2:
        raise SystemExit(4)
    return i


def over(fn: Callable[[int], int]) -> list[int]:
    return [fn(i) for i in range(5)]


def collect(agen: Any) -> list[Any]:
    async def drain() -> list[Any]:
        return [item async for item in agen]

    return asyncio.run(drain())


# -- expectations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Raises:
    """The row raises this exception, its message matching ``match`` (a regex)."""

    error: type[BaseException]
    match: str


@dataclass(frozen=True)
class Same:
    """The row gives what ``plain()`` gives: the input runs as written (with ``warns``,
    and says so with that warning)."""

    plain: Callable[[Ctx], Any]
    warns: type[Warning] | None = None


@dataclass(frozen=True)
class Check:
    """The row's result passes ``check`` (which asserts)."""

    check: Callable[[Any], None]


@dataclass
class Ctx:
    """What rows may use: a fake OpenAI-compatible server on 127.0.0.1."""

    server: FakeOpenAIServer

    def ask(self, reply: Reply) -> Any:
        self.server.behaviour = lambda body, index: reply
        binding = bind("openai:fake", base_url=self.server.base_url, api_key="sk-test")
        return binding("hello", max_attempts=1)


@dataclass(frozen=True)
class Row:
    id: str
    run: Callable[[Ctx], Any]
    expect: Raises | Same | Check
    xfail: str = ""


def _explains(*phrases: str) -> Check:
    def check(fn: Any) -> None:
        text = xcs.explain(fn)
        for phrase in phrases:
            assert phrase in text, text

    return Check(check)


def _usage(**counts: object) -> dict[str, Any]:
    body = chat_reply("hi")
    body["usage"].update(counts)
    return body


def _exits_cleanly(script: str) -> Check:
    """Run ``script`` in a fresh interpreter: it must exit 0 and print 'done'."""

    def check(result: subprocess.CompletedProcess[str]) -> None:
        assert result.returncode == 0, result.stderr
        assert "done" in result.stdout, result.stdout
        assert "Traceback" not in result.stderr, result.stderr

    return Check(check)


def _subprocess(script: str) -> Callable[[Ctx], subprocess.CompletedProcess[str]]:
    def run(ctx: Ctx) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    return run


# A daemon thread is mid-way through a jitted ensemble of 5 s calls when the main
# thread returns: the interpreter must exit at once, without a traceback.
SHUTDOWN_IN_FLIGHT = """
    import threading, xcs
    started = threading.Event()
    def slow(i):
        started.set()
        return xcs.models("sim:chat?latency=5", f"q{i}")
    @xcs.jit
    def ensemble():
        return [slow(i) for i in range(8)]
    threading.Thread(target=ensemble, daemon=True).start()
    started.wait(30)
    print("done")
"""

# A non-daemon thread starts jitted work *after* the main thread has returned (while
# the interpreter runs its exit hooks): the work still runs and gives its result.
WORK_AFTER_MAIN_RETURNS = """
    import threading, time, xcs
    main_done = threading.Event()
    def fan(x):
        return [xcs.models("sim:echo?latency=0.01", f"{x} {i}") for i in range(4)]
    def late():
        main_done.wait(30)
        time.sleep(0.2)
        print(xcs.jit(fan)("late"))
        print("done")
    threading.Thread(target=late).start()
    xcs.jit(fan)("warm")
    main_done.set()
"""


def _closed_loop_current(ctx: Ctx) -> Any:
    loop = asyncio.new_event_loop()
    loop.close()
    asyncio.set_event_loop(loop)
    try:
        return xcs.jit(fan_out)(models("sim:echo", "still works"))
    finally:
        asyncio.set_event_loop(None)


def _coroutine_on_closed_loop(ctx: Ctx) -> Any:
    async def twice(x: int) -> list[int]:
        return [x for _ in range(2)]

    loop = asyncio.new_event_loop()
    loop.close()
    coro = xcs.jit(twice)(1)
    try:
        return loop.run_until_complete(coro)
    finally:
        coro.close()  # never started: close it, as asyncio would not


ROWS: list[Row] = [
    # -- what xcs.jit is given
    Row("jit-int", lambda c: xcs.jit(42), Raises(xcs.ValidationError, "needs a function")),
    Row("jit-str", lambda c: xcs.jit("fan_out"), Raises(xcs.ValidationError, "needs a function")),
    Row("jit-class", lambda c: xcs.jit(Widget), Raises(xcs.ValidationError, "not to the class")),
    Row(
        "jit-max-workers-0",
        lambda c: xcs.jit(fan_out, max_workers=0),
        Raises(xcs.ValidationError, "positive integer"),
    ),
    Row("builtin", lambda c: xcs.jit(len)([1, 2, 3]), Same(lambda c: 3, xcs.JitWarning)),
    Row("builtin-explained", lambda c: xcs.jit(len), _explains("runs as written", "builtin")),
    Row("c-function", lambda c: xcs.jit(math.hypot)(3, 4), Same(lambda c: 5.0, xcs.JitWarning)),
    Row(
        "method-descriptor",
        lambda c: xcs.jit(str.upper)("a"),
        Same(lambda c: "A", xcs.JitWarning),
    ),
    Row(
        "partial",
        lambda c: xcs.jit(functools.partial(total, 1, c=3))(2),
        Same(lambda c: functools.partial(total, 1, c=3)(2), xcs.JitWarning),
    ),
    Row(
        "partial-explained",
        lambda c: xcs.jit(functools.partial(total, 1)),
        _explains("runs as written", "functools.partial"),
    ),
    Row("bound-method", lambda c: xcs.jit(Widget().twice)(4), Same(lambda c: [8, 8])),
    Row("lambda", lambda c: xcs.jit(lambda x: [x, x])(1), Same(lambda c: [1, 1])),
    Row(
        "generator",
        lambda c: list(xcs.jit(counting)(4)),
        Same(lambda c: [0, 1, 2, 3], xcs.JitWarning),
    ),
    Row("generator-explained", lambda c: xcs.jit(counting), _explains("generator function")),
    Row(
        "async-generator",
        lambda c: collect(xcs.jit(acounting)(3)),
        Same(lambda c: [0, 1, 2], xcs.JitWarning),
    ),
    Row(
        "async-generator-explained",
        lambda c: xcs.jit(acounting),
        _explains("async generator function"),
    ),
    Row("recursion", lambda c: xcs.jit(factorial)(30), Same(lambda c: factorial(30))),
    Row(
        "runaway-recursion",
        lambda c: xcs.jit(forever)(0),
        Raises(RecursionError, "maximum recursion depth"),
    ),
    Row(
        "unhashable-argument",
        lambda c: xcs.jit(fan_out)({"k": [1, {2}]}),
        Same(lambda c: fan_out({"k": [1, {2}]})),
    ),
    Row(
        "huge-argument",
        lambda c: [len(s) for s in xcs.jit(fan_out)("x" * 20_000_000)],
        Same(lambda c: [20_000_000] * 3),
    ),
    Row(
        "huge-fan-out",
        lambda c: [*xcs.jit(total)(1, 2, 3), len(xcs.jit(fan_out)(list(range(10**6)))[2])],
        Same(lambda c: [6, 6, 10**6]),
    ),
    Row("system-exit-in-region", lambda c: xcs.jit(over)(stops_at_2), Raises(SystemExit, "3")),
    Row(
        "keyboard-interrupt-in-region",
        lambda c: xcs.jit(over)(interrupted_at_1),
        Raises(KeyboardInterrupt, "stop"),
    ),
    Row(
        "system-exit-after-an-earlier-error",
        lambda c: xcs.jit(over)(fails_at_1_exits_at_2),
        Raises(ValueError, "item 1"),
    ),
    Row(
        "explain-non-callable",
        lambda c: xcs.explain(42),
        Raises(xcs.ValidationError, "function"),
    ),
    # -- deadlines
    Row(
        "deadline-negative",
        lambda c: xcs.deadline(-1).__enter__(),
        Raises(xcs.ValidationError, ">= 0"),
    ),
    Row(
        "deadline-nan",
        lambda c: xcs.deadline(math.nan).__enter__(),
        Raises(xcs.ValidationError, ">= 0"),
    ),
    Row(
        "deadline-not-a-number",
        lambda c: xcs.deadline("1").__enter__(),  # type: ignore[arg-type]
        Raises(xcs.ValidationError, "number of seconds"),
    ),
    Row(
        "deadline-zero",
        lambda c: xcs.deadline(0).__enter__(),
        Raises(xcs.ExecutionTimeout, "expired on entry"),
    ),
    # -- model ids, prompts, parameters
    Row(
        "unknown-provider",
        lambda c: models("nope:x", "hi"),
        Raises(xcs.ValidationError, "unknown model provider 'nope'.*known providers"),
    ),
    Row(
        "model-id-without-provider",
        lambda c: models("gpt-4o", "hi"),
        Raises(xcs.ValidationError, "not of the form 'provider:model'"),
    ),
    Row(
        "model-id-not-a-string",
        lambda c: models(3, "hi"),  # type: ignore[arg-type]
        Raises(xcs.ValidationError, "model id is a string"),
    ),
    Row(
        "unknown-sim-option",
        lambda c: models("sim:echo?bogus=1", "hi"),
        Raises(xcs.ValidationError, "unknown option bogus"),
    ),
    Row(
        "prompt-not-text",
        lambda c: models("sim:echo", 3),  # type: ignore[arg-type]
        Raises(xcs.ValidationError, "prompt string or a list of messages"),
    ),
    Row(
        "message-bad-role",
        lambda c: models("sim:echo", [{"role": "robot", "content": "hi"}]),
        Raises(xcs.ValidationError, r"messages\[0\]"),
    ),
    Row(
        "misspelt-parameter",
        lambda c: models("sim:echo", "hi", temprature=0.2),
        Raises(xcs.ValidationError, "unknown parameter temprature"),
    ),
    Row(
        "max-tokens-zero",
        lambda c: models("sim:echo", "hi", max_tokens=0),
        Raises(xcs.ValidationError, "max_tokens"),
    ),
    Row(
        "negative-timeout-setting",
        lambda c: models.configure("sim", timeout=-1),
        Raises(xcs.ValidationError, "timeout"),
    ),
    # -- malformed provider responses (a fake OpenAI-compatible server on 127.0.0.1)
    Row(
        "response-not-json",
        lambda c: c.ask(Reply(200, b"<html>oops</html>")),
        Raises(xcs.ProviderError, "malformed response"),
    ),
    Row(
        "response-truncated-json",
        lambda c: c.ask(Reply(200, b'{"choices": [{"mess')),
        Raises(xcs.ProviderError, "malformed response"),
    ),
    Row(
        "response-without-choices",
        lambda c: c.ask(Reply(200, {"id": "x"})),
        Raises(xcs.ProviderError, "malformed response: no choices"),
    ),
    Row(
        "response-choices-not-a-list",
        lambda c: c.ask(Reply(200, {**chat_reply("hi"), "choices": "hi"})),
        Raises(xcs.ProviderError, "malformed response: no choices"),
    ),
    Row(
        "response-token-count-not-a-number",
        lambda c: c.ask(Reply(200, _usage(prompt_tokens="lots"))),
        Raises(xcs.ProviderError, "malformed response: bad token counts"),
    ),
    Row(
        "response-negative-token-count",
        lambda c: c.ask(Reply(200, _usage(completion_tokens=-5))),
        Raises(xcs.ProviderError, "malformed response: bad token counts"),
    ),
    Row(
        "response-without-usage",
        lambda c: c.ask(Reply(200, {k: v for k, v in chat_reply("hi").items() if k != "usage"})),
        Check(lambda r: (r == "hi" and r.usage.prompt_tokens == 0) or pytest.fail(repr(r))),
    ),
    Row(
        "response-html-502",
        lambda c: c.ask(Reply(502, b"<html>bad gateway</html>", {"content-type": "text/html"})),
        Raises(xcs.ProviderError, "HTTP 502"),
    ),
    # -- event loops and interpreter shutdown
    Row(
        "closed-event-loop-current",
        _closed_loop_current,
        Same(lambda c: ["still works"] * 3),
    ),
    Row(
        "coroutine-on-closed-loop",
        _coroutine_on_closed_loop,
        Raises(RuntimeError, "Event loop is closed"),
    ),
    Row(
        "shutdown-with-work-in-flight",
        _subprocess(SHUTDOWN_IN_FLIGHT),
        _exits_cleanly(SHUTDOWN_IN_FLIGHT),
    ),
    Row(
        "work-after-main-returns",
        _subprocess(WORK_AFTER_MAIN_RETURNS),
        _exits_cleanly(WORK_AFTER_MAIN_RETURNS),
    ),
    # -- transforms and operators
    Row(
        "vmap-non-callable", lambda c: xcs.vmap(3), Raises(xcs.ValidationError, "takes a callable")
    ),
    Row(
        "vmap-ragged",
        lambda c: xcs.vmap(lambda a, b: a + b)([1, 2], [1]),
        Raises(xcs.ValidationError, "differ in length"),
    ),
    Row(
        "graph-cycle",
        lambda c: _cyclic_graph(),
        Raises(xcs.ValidationError, "has a cycle"),
    ),
    Row(
        "operator-wrong-input-type",
        lambda c: shout(42),
        Raises(xcs.ValidationError, "shout: input 'text'"),
    ),
    Row(
        "operator-wrong-input-type-jitted",
        lambda c: xcs.jit(shout)(42),
        Raises(xcs.ValidationError, "shout: input 'text'"),
    ),
    Row(
        "operator-unexpected-argument",
        lambda c: shout("a", loud=True),
        Raises(xcs.ValidationError, "unexpected argument"),
    ),
    Row(
        "majority-vote-not-a-list",
        lambda c: MajorityVote()(42),
        Raises(xcs.ValidationError, "MajorityVote: input 'candidates'"),
    ),
    Row(
        "ensemble-member-not-callable",
        lambda c: Ensemble(3, n=2),  # type: ignore[arg-type]
        Raises(xcs.ValidationError, "Ensemble: a member must be"),
    ),
    Row(
        "chain-step-not-callable",
        lambda c: Chain(3),  # type: ignore[arg-type]
        Raises(xcs.ValidationError, "step 0 is not callable"),
    ),
]


def _cyclic_graph() -> Any:
    graph = xcs.Graph(inputs=["q"])
    graph.add("a", str.upper, "b")
    graph.add("b", str.upper, "a")
    return graph.run(q="x")


# -- the tests ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ctx() -> Iterator[Ctx]:
    server = FakeOpenAIServer()
    server.start()
    try:
        yield Ctx(server)
    finally:
        server.stop()


def _params() -> list[Any]:
    marks = {
        row.id: [pytest.mark.xfail(strict=True, reason=row.xfail)] if row.xfail else []
        for row in ROWS
    }
    return [pytest.param(row, id=row.id, marks=marks[row.id]) for row in ROWS]


@pytest.mark.parametrize("row", _params())
def test_bad_input(row: Row, ctx: Ctx) -> None:
    if isinstance(row.expect, Raises):
        with pytest.raises(row.expect.error, match=row.expect.match):
            row.run(ctx)
    elif isinstance(row.expect, Same) and row.expect.warns is not None:
        with pytest.warns(row.expect.warns, match="runs as written"):
            got = row.run(ctx)
        assert got == row.expect.plain(ctx)
    elif isinstance(row.expect, Same):
        assert row.run(ctx) == row.expect.plain(ctx)
    else:
        row.expect.check(row.run(ctx))


def test_the_table_has_every_kind_of_bad_input() -> None:
    assert len(ROWS) >= 25
    assert len({row.id for row in ROWS}) == len(ROWS)


def test_docs_list_every_row() -> None:
    text = DOC.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, flags=re.MULTILINE))
    assert listed == {row.id for row in ROWS}
