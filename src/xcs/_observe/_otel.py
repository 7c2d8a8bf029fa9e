"""OpenTelemetry export of a finished trace (the ``otel`` extra).

Each span becomes an OpenTelemetry span with its real start and end times (epoch
nanoseconds), its parent link, and its attributes under ``xcs.*`` (strings, numbers
and booleans only; anything else as its ``str``); a span with an error gets status
ERROR. Export happens after the fact, from ``Trace.to_otel``, so tracing itself never
waits on an exporter. Where the spans go is the application's OpenTelemetry setup
(a ``TracerProvider`` with its processors and exporters).
"""

from __future__ import annotations

import importlib
from typing import Any

from xcs._observe._spans import Trace
from xcs.errors import ProviderNotInstalledError

__all__ = ["export"]

_INSTALL = "pip install 'xcs-jit[otel]'"


def _api() -> Any:
    try:
        return importlib.import_module("opentelemetry.trace")
    except ImportError as exc:
        raise ProviderNotInstalledError(
            f"exporting a trace to OpenTelemetry needs opentelemetry-api: {_INSTALL}",
            provider="otel",
        ) from exc


def _attribute(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def export(trace: Trace, tracer_provider: Any = None) -> int:
    ot = _api()
    provider = tracer_provider if tracer_provider is not None else ot.get_tracer_provider()
    tracer = provider.get_tracer("xcs")
    offset = trace.started_epoch_ns - int(trace.started * 1e9)
    made: dict[int, Any] = {}
    count = 0
    # Parents start before their children, so in start order a parent is made first.
    for s in trace.spans:
        parent = made.get(s.parent) if s.parent is not None else None
        context = ot.set_span_in_context(parent) if parent is not None else None
        attributes = {f"xcs.{k}": _attribute(v) for k, v in s.attrs.items() if v is not None}
        attributes.update({"xcs.kind": s.kind, "xcs.thread": s.thread})
        otel_span = tracer.start_span(
            s.name,
            context=context,
            start_time=offset + int(s.start * 1e9),
            attributes=attributes,
        )
        if "error" in s.attrs:
            otel_span.set_status(ot.Status(ot.StatusCode.ERROR, str(s.attrs["error"])))
        otel_span.end(end_time=offset + int((s.end if s.end is not None else s.start) * 1e9))
        made[s.id] = otel_span
        count += 1
    return count
