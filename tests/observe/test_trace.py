"""xcs.trace(): spans for region tasks and model calls, the Chrome file, the summary."""

from __future__ import annotations

import itertools
import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from _gated import TIMEOUT, GatedModel, force_overlap

import xcs
from xcs._observe import Trace, _spans, span

N = 5


def ensemble(question: str) -> list[str]:
    model = xcs.models.bind("gated:m", temperature=0)
    return [model(f"{question} {i}") for i in range(N)]


@xcs.sequential
def one_at_a_time(prompt: str) -> str:
    return xcs.models("gated:m", prompt)


def in_order(question: str) -> list[str]:
    return [one_at_a_time(f"{question} {i}") for i in range(N)]


def intervals(document: dict[str, Any], cat: str) -> list[tuple[float, float]]:
    return [
        (e["ts"], e["ts"] + e["dur"])
        for e in document["traceEvents"]
        if e.get("ph") == "X" and e.get("cat") == cat
    ]


def all_overlap(spans: list[tuple[float, float]]) -> bool:
    return max(a for a, _ in spans) < min(b for _, b in spans)


def none_overlap(spans: list[tuple[float, float]]) -> bool:
    ordered = sorted(spans)
    return all(b <= c for (_, b), (c, _) in itertools.pairwise(ordered))


def test_barrier_proven_overlap_shows_in_the_chrome_file(gated: GatedModel, tmp_path: Path) -> None:
    jitted = xcs.jit(ensemble)
    expected = ensemble("q")
    force_overlap(jitted)
    gated.barrier = threading.Barrier(N, timeout=TIMEOUT)  # passes only if all N overlap
    with xcs.trace() as recorded:
        assert jitted("q") == expected
    assert gated.peak == N

    document = json.loads(Path(recorded.to_chrome(tmp_path / "t.json")).read_text())
    assert isinstance(document["traceEvents"], list)
    complete = [e for e in document["traceEvents"] if e["ph"] == "X"]
    for event in complete:
        assert {"name", "cat", "ts", "dur", "pid", "tid"} <= set(event)
        assert event["dur"] >= 0
    tasks, calls = intervals(document, "task"), intervals(document, "model")
    assert len(tasks) == N
    assert len(calls) == N
    # What the barrier proved (all N in flight at once) is what the file shows.
    assert all_overlap(tasks)
    assert all_overlap(calls)
    assert len({e["tid"] for e in complete if e["cat"] == "model"}) == N

    # Parent links: region -> tasks -> model calls.
    by_id = {e["args"]["xcs_id"]: e for e in complete}
    (region,) = [e for e in complete if e["cat"] == "region"]
    assert region["name"].endswith(f"ensemble:comprehension@{ensemble.__code__.co_firstlineno + 2}")
    for e in complete:
        if e["cat"] == "task":
            assert e["args"]["xcs_parent"] == region["args"]["xcs_id"]
        if e["cat"] == "model":
            assert by_id[e["args"]["xcs_parent"]]["cat"] == "task"
            assert e["args"]["prompt_tokens"] == 3
            assert e["args"]["completion_tokens"] == 2
            assert e["args"]["model"] == "gated:m"


def test_calls_kept_in_order_do_not_overlap_in_the_file(gated: GatedModel, tmp_path: Path) -> None:
    jitted = xcs.jit(in_order)
    expected = in_order("q")
    with xcs.trace() as recorded:
        assert jitted("q") == expected
    assert gated.peak == 1
    document = json.loads(Path(recorded.to_chrome(tmp_path / "t.json")).read_text())
    calls = intervals(document, "model")
    assert len(calls) == N
    assert none_overlap(calls)
    assert recorded.summary().peak_model_calls == 1


def test_summary_and_timeline(gated: GatedModel) -> None:
    jitted = xcs.jit(ensemble)
    force_overlap(jitted)
    gated.barrier = threading.Barrier(N, timeout=TIMEOUT)
    with xcs.trace() as recorded:
        jitted("q")
    summary = recorded.summary()
    assert summary.spans == {"region": 1, "task": N, "model": N}
    assert summary.peak_tasks == N
    assert summary.peak_model_calls == N
    assert summary.model_calls == N
    assert (summary.prompt_tokens, summary.completion_tokens) == (3 * N, 2 * N)
    assert summary.sequential_s >= summary.wall_s
    assert summary.errors == []
    text = str(summary)
    assert "peak concurrency   5 tasks, 5 model calls at once" in text
    lines = recorded.timeline(width=100).splitlines()
    assert len(lines) == 2 + 1 + 2 * N  # axis, rule, region, tasks and their calls
    assert lines[2].startswith("region ")
    assert max(len(line) for line in lines) <= 100
    assert recorded.timeline(width=100, ascii_only=True).count("#") > 0


def test_errors_are_recorded_on_spans(gated: GatedModel) -> None:
    def fails(i: int) -> str:
        if i == 2:
            raise KeyError("boom")
        return xcs.models("gated:m", str(i))

    @xcs.jit
    def pipeline() -> list[str]:
        return [fails(i) for i in range(4)]

    force_overlap(pipeline)
    with pytest.raises(KeyError), xcs.trace() as recorded:
        pipeline()
    failed = [s for s in recorded.spans if "error" in s.attrs]
    assert [s.kind for s in failed] == ["task"]
    assert failed[0].attrs["error"] == "KeyError: 'boom'"
    assert recorded.summary().errors


def test_prompts_and_responses_only_when_asked(gated: GatedModel) -> None:
    with xcs.trace() as plain:
        xcs.models("gated:m", "secret question")
    (model_span,) = plain.spans
    assert "prompt" not in model_span.attrs
    assert "response" not in model_span.attrs
    assert "secret" not in json.dumps(model_span.attrs)

    with xcs.trace(record_content=True) as full:
        xcs.models("gated:m", "secret question")
    (model_span,) = full.spans
    assert model_span.attrs["prompt"] == "secret question"
    assert model_span.attrs["response"] == "SECRET QUESTION"


def test_keys_are_never_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ENV-SECRET-1234")
    # Nothing listens on port 1: each call fails at once, after its key was used.
    where = {"base_url": "http://127.0.0.1:1/v1", "max_attempts": 2, "timeout": 5}
    with xcs.trace(record_content=True) as recorded:
        for extra in ({}, {"api_key": "sk-ARG-SECRET-5678"}):
            with pytest.raises(xcs.ProviderError):
                xcs.models("openai:gpt-4o-mini", "hello", **where, **extra)
    assert [s.attrs["attempts"] for s in recorded.spans] == [2, 2]
    text = Path(recorded.to_chrome(tmp_path / "t.json")).read_text()
    assert "hello" in text  # content was asked for...
    assert "SECRET" not in text  # ...keys never
    assert "SECRET" not in recorded.timeline() + str(recorded.summary())


def test_nested_traces_both_see_the_inner_spans(gated: GatedModel) -> None:
    with xcs.trace() as outer:
        xcs.models("gated:m", "a")
        with xcs.trace() as inner:
            xcs.models("gated:m", "b")
    assert len(outer.spans) == 2
    assert len(inner.spans) == 1
    assert inner.spans[0] is outer.spans[1]
    assert _spans.active == 0


def test_no_trace_no_spans_and_the_switch_is_off(gated: GatedModel) -> None:
    assert _spans.active == 0
    assert not _spans.tracing()
    with span("operator", "Judge") as nothing:
        assert nothing is None
    with xcs.trace() as recorded:
        assert _spans.active == 1
        with span("operator", "Judge", spec="JudgeSpec") as opened:
            assert opened is not None
            xcs.models("gated:m", "x")
    assert _spans.active == 0
    operator, call = recorded.spans
    assert (operator.kind, operator.name, operator.attrs["spec"]) == (
        "operator",
        "Judge",
        "JudgeSpec",
    )
    assert call.parent == operator.id


def test_threads_started_by_the_program_are_not_traced(gated: GatedModel) -> None:
    with xcs.trace() as recorded:
        worker = threading.Thread(target=xcs.models, args=("gated:m", "x"))
        worker.start()
        worker.join(TIMEOUT)
    assert recorded.spans == []


def test_load_round_trip(gated: GatedModel, tmp_path: Path) -> None:
    jitted = xcs.jit(ensemble)
    with xcs.trace() as recorded:
        jitted("q")
    path = recorded.to_chrome(tmp_path / "t.json")
    loaded = Trace.load(path)
    assert [(s.kind, s.name, s.thread) for s in loaded.spans] == [
        (s.kind, s.name, s.thread) for s in recorded.spans
    ]
    for a, b in zip(loaded.spans, recorded.spans, strict=True):
        assert a.duration == pytest.approx(b.duration, abs=1e-5)
        assert a.parent == b.parent
    assert loaded.summary().model_calls == N
    assert (
        loaded.timeline(width=100).splitlines()[2:] == recorded.timeline(width=100).splitlines()[2:]
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "is not JSON"), ('{"events": []}', "no traceEvents"), ("[1, 2]", "")],
)
def test_load_rejects_what_is_not_a_trace(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    if not message:  # a bare list of non-events: a trace with no spans
        assert Trace.load(path).spans == []
        return
    with pytest.raises(xcs.ValidationError, match=message):
        Trace.load(path)


def test_record_content_is_checked() -> None:
    with (
        pytest.raises(xcs.ValidationError, match="record_content"),
        xcs.trace(record_content="yes"),
    ):  # type: ignore[arg-type]
        pass


def test_otel_export(gated: GatedModel) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    jitted = xcs.jit(ensemble)
    force_overlap(jitted)
    with xcs.trace() as recorded:
        jitted("q")
    assert recorded.to_otel(provider) == len(recorded.spans)
    exported = {s.name: s for s in exporter.get_finished_spans()}
    finished = exporter.get_finished_spans()
    assert len(finished) == len(recorded.spans)
    ids = {s.context.span_id: s for s in finished}
    for s in finished:
        assert s.end_time >= s.start_time
        if s.attributes["xcs.kind"] == "model":
            assert s.parent is not None
            assert ids[s.parent.span_id].attributes["xcs.kind"] == "task"
            assert s.attributes["xcs.completion_tokens"] == 2
    assert exported


def test_operator_calls_are_spans_over_their_model_calls(gated: GatedModel) -> None:
    from xcs.operators import Chain, Ensemble, MajorityVote

    qa = Chain(Ensemble(xcs.models.bind("gated:m", temperature=0), n=3), MajorityVote())
    expected = qa("q")
    with xcs.trace() as recorded:
        assert qa("q") == expected
    spans = {s.id: s for s in recorded.spans}
    operators = [s for s in recorded.spans if s.kind == "operator"]
    assert [s.name for s in operators] == ["Chain", "Ensemble", "MajorityVote"]
    chain = operators[0]

    def ancestors(s: Any) -> list[str]:
        names = []
        while s.parent is not None:
            s = spans[s.parent]
            names.append(s.name)
        return names

    calls = [s for s in recorded.spans if s.kind == "model"]
    assert len(calls) == 3
    for call in calls:
        assert "Ensemble" in ancestors(call)
        assert "Chain" in ancestors(call)
    assert ancestors(operators[2]) == ["Chain"]
    assert chain.parent is None


def synthetic(spans: list[tuple[int, int | None, str, float, float]], end: float) -> Trace:
    """A trace from (id, parent, kind, start, end) rows, on a clock starting at 0."""
    from xcs._observe._spans import Span

    made = Trace()
    made.started = 0.0
    for sid, parent, kind, a, b in spans:
        made._add(Span(sid, kind, f"{kind}{sid}", parent, a, "t", 0, {}, end=b))
    made.ended = end
    return made


def test_the_sequential_estimate_counts_overlapped_children_one_after_another() -> None:
    # 0.5 s of the owner alone, then a region of four 1 s tasks side by side, each
    # waiting on a 0.9 s model call, then 0.5 s more: 2 s of wall, 0.5 + 4 + 0.5 = 5 s
    # in order.
    rows: list[tuple[int, int | None, str, float, float]] = [(1, None, "region", 0.5, 1.5)]
    for task in range(4):
        rows.append((10 + task, 1, "task", 0.5, 1.5))
        rows.append((20 + task, 10 + task, "model", 0.55, 1.45))
    summary = synthetic(rows, end=2.0).summary()
    assert summary.wall_s == pytest.approx(2.0)
    assert summary.sequential_s == pytest.approx(5.0)
    assert summary.saved_s == pytest.approx(3.0)
    assert summary.speedup == pytest.approx(2.5)
    assert (summary.peak_tasks, summary.peak_model_calls) == (4, 4)


def test_the_sequential_estimate_of_calls_in_order_is_the_wall_time() -> None:
    rows: list[tuple[int, int | None, str, float, float]] = [
        (1, None, "model", 0.0, 1.0),
        (2, None, "model", 1.0, 2.5),  # touching, not overlapping
        (3, None, "model", 2.5, 3.0),
    ]
    summary = synthetic(rows, end=3.0).summary()
    assert summary.sequential_s == pytest.approx(3.0)
    assert summary.saved_s == pytest.approx(0.0)
    assert summary.peak_model_calls == 1


def test_nested_regions_count_each_level() -> None:
    # Two outer tasks side by side (0..1 s), each running an inner region of two
    # 1 s tasks side by side: 4 s in order, 1 s of wall.
    rows: list[tuple[int, int | None, str, float, float]] = [(1, None, "region", 0.0, 1.0)]
    for outer in (10, 11):
        rows.append((outer, 1, "task", 0.0, 1.0))
        rows.append((outer * 10, outer, "region", 0.0, 1.0))
        rows.append((outer * 10 + 1, outer * 10, "task", 0.0, 1.0))
        rows.append((outer * 10 + 2, outer * 10, "task", 0.0, 1.0))
    summary = synthetic(rows, end=1.0).summary()
    assert summary.sequential_s == pytest.approx(4.0)
    assert summary.peak_tasks == 6


def test_model_and_operator_spans_name_the_calling_line(gated: GatedModel) -> None:
    from xcs.operators import MajorityVote

    vote = MajorityVote()
    with xcs.trace() as recorded:
        line = sys._getframe().f_lineno + 1
        xcs.models("gated:m", "x")
        vote(["a", "a", "b"])
    call, operator = recorded.spans
    assert call.attrs["site"] == f"test_trace.py:{line}"
    assert operator.attrs["site"] == f"test_trace.py:{line + 1}"
