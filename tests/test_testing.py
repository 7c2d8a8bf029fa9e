"""xcs.testing.force_overlap(): every region on its concurrent path, whatever was measured."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import pytest

import xcs
import xcs.testing

N = 4
TIMEOUT = 10.0


class Switchable:
    """Computes (returns at once) until ``barrier`` is set; then every call waits there,
    so the calls can only all return if they are in flight together."""

    def __init__(self) -> None:
        self.barrier: threading.Barrier | None = None
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __call__(self, x: int) -> int:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.barrier is not None:
                self.barrier.wait()
            return x * 2
        finally:
            with self.lock:
                self.now -= 1


def _learn_in_order(jitted: Any, arg: Any) -> None:
    """Call until the region has measured calls that compute and runs in order."""
    for _ in range(3):
        jitted(arg)
    entry = jitted.__xcs_jit__.compiled()
    assert entry.runtime is not None
    assert all(site.mode.value == "in order" for site in entry.runtime.sites)


def test_a_region_measured_in_order_overlaps_under_force_overlap() -> None:
    call = Switchable()

    @xcs.jit
    def double_all(xs: list[int]) -> list[int]:
        return [call(x) for x in xs]

    _learn_in_order(double_all, list(range(N)))
    call.barrier = threading.Barrier(N, timeout=TIMEOUT)
    with xcs.testing.force_overlap():
        assert xcs.testing.overlap_forced()
        assert double_all(list(range(N))) == [0, 2, 4, 6]
    assert call.peak == N
    assert not xcs.testing.overlap_forced()


def test_without_force_overlap_the_same_region_stays_in_order() -> None:
    call = Switchable()

    @xcs.jit
    def double_all(xs: list[int]) -> list[int]:
        return [call(x) for x in xs]

    _learn_in_order(double_all, list(range(N)))
    call.barrier = threading.Barrier(N, timeout=0.2)
    with pytest.raises(threading.BrokenBarrierError):
        double_all(list(range(N)))
    assert call.peak == 1


def test_loops_and_statements_overlap_from_the_first_call_when_forced() -> None:
    call = Switchable()
    call.barrier = threading.Barrier(2, timeout=TIMEOUT)

    @xcs.jit
    def pair(x: int) -> tuple[int, int]:
        a = call(x)
        b = call(x + 1)
        return a, b

    @xcs.jit
    def loop(xs: list[int]) -> list[int]:
        out = []
        for x in xs:
            out.append(call(x))
        return out

    with xcs.testing.force_overlap():
        assert pair(1) == (2, 4)
        assert loop([1, 2]) == [2, 4]
    assert call.peak == 2


def test_force_overlap_keeps_sequential_callees_in_order() -> None:
    inner = Switchable()

    @xcs.sequential
    def save(x: int) -> int:
        return inner(x)

    @xcs.jit
    def save_all(xs: list[int]) -> list[int]:
        return [save(x) for x in xs]

    with xcs.testing.force_overlap():
        assert save_all(list(range(8))) == [x * 2 for x in range(8)]
    assert inner.peak == 1


def test_force_overlap_nests_and_decorates() -> None:
    @xcs.testing.force_overlap()
    def inside() -> bool:
        with xcs.testing.force_overlap():
            pass
        return xcs.testing.overlap_forced()

    assert inside()
    assert not xcs.testing.overlap_forced()


def test_the_environment_variable_forces_overlap_for_the_process(tmp_path: Any) -> None:
    code = (
        "import threading, xcs, xcs.testing\n"
        "assert xcs.testing.overlap_forced()\n"
        "barrier = threading.Barrier(3, timeout=10)\n"
        "def call(x):\n"
        "    barrier.wait()\n"
        "    return x\n"
        "@xcs.jit\n"
        "def f(xs):\n"
        "    return [call(x) for x in xs]\n"
        "print(f([1, 2, 3]))\n"
    )
    script = tmp_path / "forced.py"  # a file: code run with -c has no source to compile
    script.write_text(code)
    env = {"XCS_FORCE_OVERLAP": "1", "PATH": ""}
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[1, 2, 3]"
