"""Operator calls are spans in xcs.trace(): nested as the tree, errors recorded."""

from __future__ import annotations

import pytest

import xcs
from xcs.operators import Chain, Ensemble, MajorityVote, Operator


def test_operator_spans_follow_the_tree() -> None:
    qa = Chain(Ensemble(xcs.models.bind("sim:chat", temperature=0.8), n=2), MajorityVote())
    with xcs.trace() as trace:
        qa("why?")
    spans = trace.spans
    by_id = {s.id: s for s in spans}

    def parent(s: object) -> str | None:
        pid = s.parent  # type: ignore[attr-defined]
        return None if pid is None else by_id[pid].name

    operators = [(s.name, parent(s)) for s in spans if s.kind == "operator"]
    assert operators == [("Chain", None), ("Ensemble", "Chain"), ("MajorityVote", "Chain")]
    models = [s for s in spans if s.kind == "model"]
    assert len(models) == 2
    # Each model call sits in a task of the Ensemble's region, under the Ensemble span.
    for model in models:
        task = by_id[model.parent]
        region = by_id[task.parent]
        assert (task.kind, region.kind, by_id[region.parent].name) == ("task", "region", "Ensemble")


def test_a_failing_operator_span_records_the_error() -> None:
    class Fails(Operator):
        def forward(self, x: int) -> int:
            raise KeyError(x)

    with xcs.trace() as trace, pytest.raises(KeyError):
        Fails()(1)
    (span,) = trace.spans
    assert (span.kind, span.name, span.attrs["error"]) == ("operator", "Fails", "KeyError: 1")
    assert span.attrs["jitted"] is False
