"""Chrome / Perfetto trace JSON: write a ``Trace``, read one back.

The format is the Trace Event Format that ``chrome://tracing`` and
``ui.perfetto.dev`` load: ``{"traceEvents": [...]}`` with one *complete* event
(``"ph": "X"``) per span, ``ts`` and ``dur`` in microseconds from the trace's start,
``pid`` the process and ``tid`` a small number per thread, named by metadata events
(``"ph": "M"``, ``thread_name``). XCS puts what it needs to read a file back in each
event's ``args``: ``xcs_id``, ``xcs_parent``, ``thread`` and the span's attributes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from xcs._observe._spans import Span, Trace
from xcs.errors import ValidationError

__all__ = ["chrome_events", "read_chrome", "write_chrome"]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def chrome_events(trace: Trace) -> dict[str, Any]:
    """The trace as a Chrome trace document (a dict ready for ``json.dump``)."""
    spans = trace.spans
    origin = trace.started
    tids: dict[int, int] = {}
    names: dict[int, str] = {}
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": trace.pid, "args": {"name": "xcs"}}
    ]
    body: list[dict[str, Any]] = []
    for s in spans:
        tid = tids.setdefault(s.thread_id, len(tids) + 1)
        names.setdefault(tid, s.thread)
        args = {k: _jsonable(v) for k, v in s.attrs.items()}
        args.update(xcs_id=s.id, xcs_parent=s.parent, thread=s.thread)
        body.append(
            {
                "name": s.name,
                "cat": s.kind,
                "ph": "X",
                "ts": round((s.start - origin) * 1e6, 3),
                "dur": round(s.duration * 1e6, 3),
                "pid": trace.pid,
                "tid": tid,
                "args": args,
            }
        )
    for tid, name in names.items():
        events.append(
            {"name": "thread_name", "ph": "M", "pid": trace.pid, "tid": tid, "args": {"name": name}}
        )
    end = (
        trace.ended
        if trace.ended is not None
        else max((s.end or s.start for s in spans), default=origin)
    )
    return {
        "traceEvents": events + body,
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "xcs",
            "wall_us": round((end - origin) * 1e6, 3),
            "start_epoch_ns": trace.started_epoch_ns,
        },
    }


def write_chrome(trace: Trace, path: str | os.PathLike[str]) -> str:
    target = Path(path)
    document = chrome_events(trace)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False)
    tmp.replace(target)
    return str(target)


def read_chrome(path: str | os.PathLike[str]) -> Trace:
    """Read a Chrome trace (XCS's or any other with complete events) into a Trace."""
    where = str(path)
    with open(path, encoding="utf-8") as handle:
        try:
            document = json.load(handle)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"{where} is not JSON ({exc.msg}, line {exc.lineno}); a Chrome trace "
                "written by Trace.to_chrome is expected",
                path=where,
            ) from None
    events = document.get("traceEvents") if isinstance(document, dict) else document
    if not isinstance(events, list):
        raise ValidationError(
            f"{where} has no traceEvents list: it is not a Chrome trace file", path=where
        )
    threads: dict[tuple[Any, Any], str] = {}
    for e in events:
        if isinstance(e, dict) and e.get("ph") == "M" and e.get("name") == "thread_name":
            threads[(e.get("pid"), e.get("tid"))] = str(e.get("args", {}).get("name", e.get("tid")))
    trace = Trace()
    trace.started = 0.0
    trace.started_epoch_ns = 0
    if isinstance(document, dict):
        other = document.get("otherData") or {}
        trace.started_epoch_ns = int(other.get("start_epoch_ns", 0) or 0)
    spans: list[Span] = []
    next_id = -1
    for number, e in enumerate(events):
        if not isinstance(e, dict) or e.get("ph") != "X":
            continue
        try:
            ts = float(e["ts"]) / 1e6
            dur = float(e.get("dur", 0.0)) / 1e6
        except (KeyError, TypeError, ValueError):
            raise ValidationError(
                f"{where}: event {number} is a complete event without a numeric ts/dur",
                path=where,
            ) from None
        args = dict(e.get("args") or {})
        sid = args.pop("xcs_id", None)
        parent = args.pop("xcs_parent", None)
        thread = args.pop("thread", None)
        if not isinstance(sid, int):
            sid, next_id = next_id, next_id - 1
        tid = e.get("tid", 0)
        spans.append(
            Span(
                sid,
                str(e.get("cat") or "span").split(",")[0],
                str(e.get("name", "?")),
                parent if isinstance(parent, int) else None,
                ts,
                str(thread or threads.get((e.get("pid"), tid), f"thread {tid}")),
                tid if isinstance(tid, int) else 0,
                args,
                end=ts + dur,
            )
        )
    for s in spans:
        trace._add(s)
    wall = None
    if isinstance(document, dict):
        wall = (document.get("otherData") or {}).get("wall_us")
    last = max((s.end or s.start for s in spans), default=0.0)
    if isinstance(wall, int | float):
        trace.ended = max(float(wall) / 1e6, last)
    else:  # not written by XCS: the axis starts at the first event
        trace.started = min((s.start for s in spans), default=0.0)
        trace.ended = last
    return trace
