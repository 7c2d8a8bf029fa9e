"""Callees compiled ahead, off the first call's critical path (NOTE: [Compiled ahead]
in ``xcs._compiler._jit``): a function called after a region is compiled by the
background thread while the region's calls are still in flight; one that cannot
compile is reported by the call that reaches it, not by the thread; nothing changes
what the program computes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.compiler._forget import forget

import xcs
from xcs._compiler import _jit

TIMEOUT = 10.0
AHEAD = "xcs-compile-ahead"


def _compiled(fn: Any) -> bool:
    store = _jit._cached(fn)
    return store is not None and None in store


class WaitsUntilCompiled:
    """A model whose calls return only once ``watched`` has a compiled form: a call
    that ran until then proves the compile did not wait for the call to finish."""

    def __init__(self) -> None:
        self.watched: Any = None
        self.saw_it: list[bool] = []

    def __call__(self, prompt: str) -> str:
        end = time.monotonic() + TIMEOUT
        while not _compiled(self.watched) and time.monotonic() < end:
            time.sleep(0.001)
        self.saw_it.append(_compiled(self.watched))
        return prompt[0]


model = WaitsUntilCompiled()


def ask(q: str) -> str:
    return model(q)


def vote(answers: list[str]) -> str:
    counts: dict[str, int] = {}
    for answer in answers:
        counts[answer] = counts.get(answer, 0) + 1
    return max(counts, key=counts.__getitem__)


def consensus(q: str) -> str:
    answers = [ask(f"{q}{i}") for i in range(3)]
    return vote(answers)


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(function, thread) for each compile of this module's functions."""
    seen: list[tuple[str, str]] = []
    real = _jit._try_compile

    def recording(fn: Any, window: Any) -> Any:
        if fn.__module__ == __name__:
            seen.append((fn.__name__, threading.current_thread().name))
        return real(fn, window)

    monkeypatch.setattr(_jit, "_try_compile", recording)
    return seen


def test_a_function_called_after_a_region_is_compiled_while_the_region_runs(
    compiles: list[tuple[str, str]],
) -> None:
    forget(consensus, ask, vote)
    model.watched, model.saw_it = vote, []
    assert xcs.jit(consensus)("abc") == consensus("abc") == "a"
    # Every call of the region (3 jitted, 3 plain) saw `vote` compiled before it
    # returned: the compile did not wait for the region.
    assert model.saw_it == [True] * 6
    assert ("vote", AHEAD) in compiles
    assert [name for name, _ in compiles].count("vote") == 1  # compiled once, reused
    assert "ask" not in [name for name, _ in compiles]  # a leaf: never compiled


class Panel:
    def __init__(self, n: int) -> None:
        self.n = n

    def drafts(self, q: str) -> list[str]:
        return [model(f"{q}{i}") for i in range(self.n)]

    def tally(self, drafts: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for draft in drafts:
            counts[draft] = counts.get(draft, 0) + 1
        return counts

    def run(self, q: str) -> dict[str, int]:
        drafts = self.drafts(q)
        return self.tally(drafts)


def panel_of_three(q: str) -> dict[str, int]:
    return Panel(3).run(q)


def test_a_method_of_the_callers_own_class_is_compiled_ahead(
    compiles: list[tuple[str, str]],
) -> None:
    forget(panel_of_three, Panel.run, Panel.drafts, Panel.tally)
    model.watched, model.saw_it = Panel.tally, []
    assert xcs.jit(panel_of_three)("xy") == panel_of_three("xy") == {"x": 3}
    assert model.saw_it == [True] * 6
    assert ("tally", AHEAD) in compiles
    assert [name for name, _ in compiles].count("tally") == 1


class Echo:
    def __call__(self, x: int) -> int:
        return abs(x)


echo = Echo()


def rarely_called(xs: list[int]) -> list[int]:
    return [x * 2 for x in xs]


def sometimes(xs: list[int], flag: bool) -> list[int]:
    doubled = [echo(x) for x in xs]
    if flag:
        return rarely_called(doubled)
    return doubled


def test_a_callee_that_cannot_compile_is_reported_by_the_call_that_reaches_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forget(sometimes, rarely_called)
    real = _jit._try_compile
    tried: list[str] = []

    def refusing(fn: Any, window: Any) -> Any:
        if fn is rarely_called:
            tried.append(threading.current_thread().name)
            raise _jit._Fallback("refused by the test")
        return real(fn, window)

    monkeypatch.setattr(_jit, "_try_compile", refusing)
    jitted = xcs.jit(sometimes)
    xcs.stats(reset=True)
    assert jitted([-1, 2], False) == sometimes([-1, 2], False) == [1, 2]
    assert _jit._ahead.drain(TIMEOUT)
    assert tried == [AHEAD]  # tried ahead: it failed quietly and stored nothing
    assert not _compiled(rarely_called)
    assert xcs.stats()["compile"]["fallbacks"] == 0
    assert jitted([-1, 2], True) == sometimes([-1, 2], True) == [2, 4]
    # The call that reached it compiled it again, and reported it:
    assert tried == [AHEAD, threading.current_thread().name]
    stats = xcs.stats()["compile"]
    assert stats["fallbacks"] == 1
    assert stats["fallback_reasons"]["rarely_called"] == "refused by the test"


def test_drain_reports_a_queue_that_does_not_empty_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    real = _jit._compile_ahead

    def stuck(fn: Any) -> None:
        release.wait(TIMEOUT)
        real(fn)

    monkeypatch.setattr(_jit, "_compile_ahead", stuck)
    forget(vote)
    _jit._ahead.submit([vote])
    try:
        assert not _jit._ahead.drain(0.05)
    finally:
        release.set()
    assert _jit._ahead.drain(TIMEOUT)


_FORKS_MID_COMPILE = """
import gc, os, sys, threading, time
import xcs
from xcs._compiler import _jit


def work(xs):
    return [abs(x) for x in xs]


held, release = threading.Event(), threading.Event()


def compiling():  # as a compile (ahead, or on a pool thread) holds the lock
    with _jit._compile_lock, _jit._collections_off():
        held.set()
        release.wait(30)


thread = threading.Thread(target=compiling)
thread.start()
assert held.wait(10)
threading.Timer(0.2, release.set).start()
pid = os.fork()  # waits for the compile to end
if pid == 0:
    ok = gc.isenabled() and xcs.jit(work)([-1, -2]) == [1, 2]
    os._exit(0 if ok else 3)
deadline = time.monotonic() + 30
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print(os.waitstatus_to_exitcode(status))
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print("the child hung")
        break
    time.sleep(0.02)
thread.join()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_fork_while_another_thread_compiles_leaves_the_child_able_to_compile(
    tmp_path: Path,
) -> None:
    script = tmp_path / "forks_mid_compile.py"
    script.write_text(_FORKS_MID_COMPILE)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"
