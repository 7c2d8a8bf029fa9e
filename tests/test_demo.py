"""The main job: `python -m xcs demo` runs to completion and agrees with itself."""

from __future__ import annotations

import subprocess
import sys

import xcs
from xcs._demo import QUESTION, build, ensemble_and_judge, run_in_order


def test_the_demo_graph_equals_its_sequential_run() -> None:
    graph = build(seed=3)
    assert graph.run(question=QUESTION) == run_in_order(graph, QUESTION)


def test_the_demo_function_jitted_equals_plain() -> None:
    assert xcs.jit(ensemble_and_judge)(QUESTION, 2) == ensemble_and_judge(QUESTION, 2)


def test_python_m_xcs_demo_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "xcs", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "(same result)" in proc.stdout
    assert "(same result; second call)" in proc.stdout
    assert "overlapping pays" in proc.stdout
    assert "simulated model latency" in proc.stdout
    assert "speedup:" in proc.stdout


def test_unknown_command_is_an_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "xcs", "bogus"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
