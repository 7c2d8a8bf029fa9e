"""``xcs.Trace`` is public: docs/observability.md loads saved traces with ``Trace.load``."""

from __future__ import annotations

from pathlib import Path

import xcs
from xcs._observe._spans import Trace


def test_a_saved_trace_loads_back_through_the_public_name(tmp_path: Path) -> None:
    assert xcs.Trace is Trace
    with xcs.trace() as t:
        xcs.models("sim:echo", "hi")
    t.to_chrome(tmp_path / "t.json")
    loaded = xcs.Trace.load(tmp_path / "t.json")
    assert [(s.kind, s.name) for s in loaded.spans] == [("model", "sim:echo")]
