"""Spans and traces: what ran, where, when, and what it cost.

A ``Span`` is one piece of work with a start and an end: a region of a jitted
function (``region``), one task of it (``task``), a model call (``model``), an
operator call (``operator``), or anything else XCS's own layers mark with ``span``.
A ``Trace`` collects the spans started while it is active (``xcs.trace()``).

NOTE: [Tracing costs nothing when off]
The hooks in the scheduler, the compiled regions and the model layer first read
``active`` (a module attribute, the number of traces open in the process). Only when
it is non-zero do they look at the context variable that says whether *this* code
runs inside a trace. Everything else (a span object, its clock reads, the lock that
appends it) happens only then. Tasks run in a copy of the context that spawned them
(``_runtime._scheduler.Task``), so a trace and the current parent span follow work
onto pool threads; threads the user starts do not inherit them.

This module imports nothing from XCS: every other layer may use it.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "KINDS",
    "Span",
    "Trace",
    "active",
    "begin",
    "current_span",
    "span",
    "tracing",
    "wrap_task",
]

# The kinds of span XCS records (Chrome's "cat" field; the timeline's label).
KINDS = ("region", "task", "model", "operator", "span")

# NOTE: [Tracing costs nothing when off]
active = 0  # traces open in the process, in any thread
_active_lock = threading.Lock()

# The traces the current code records into (innermost last) and its parent span.
_traces: contextvars.ContextVar[tuple[Trace, ...]] = contextvars.ContextVar(
    "xcs_traces", default=()
)
_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar("xcs_span", default=None)

_ids = itertools.count(1)
_ERROR_CHARS = 300


class Span:
    """One piece of work in a trace. Not constructed by users: spans come from
    ``Trace.spans`` (or ``Trace.load``).

    Attributes:
        id: unique in the process (in a loaded trace: as saved).
        parent: the id of the enclosing span, or None for a top-level one.
        kind: ``region``, ``task``, ``model``, ``operator`` or ``span``.
        name: what ran (``ensemble:comprehension@12 #3``, ``local:smollm2``).
        start, end: seconds on the trace's clock (``time.perf_counter``); ``end`` is
            None while the span is open.
        thread: the name of the thread it ran on; ``thread_id`` its ident.
        attrs: what is known about it: the call site, tokens, cost, cached,
            attempts, retries, ``error`` (type and message) and so on. Never a key;
            prompts and responses only under ``xcs.trace(record_content=True)``.
    """

    __slots__ = ("attrs", "end", "id", "kind", "name", "parent", "start", "thread", "thread_id")

    def __init__(
        self,
        id: int,
        kind: str,
        name: str,
        parent: int | None,
        start: float,
        thread: str,
        thread_id: int,
        attrs: dict[str, Any] | None = None,
        end: float | None = None,
    ) -> None:
        self.id = id
        self.kind = kind
        self.name = name
        self.parent = parent
        self.start = start
        self.end = end
        self.thread = thread
        self.thread_id = thread_id
        self.attrs: dict[str, Any] = attrs if attrs is not None else {}

    @property
    def duration(self) -> float:
        """Seconds from start to end (0 while open)."""
        return 0.0 if self.end is None else self.end - self.start

    def finish(self, error: BaseException | None = None) -> None:
        """Close the span (once; later calls do nothing), noting ``error`` if given."""
        if error is not None:
            self.fail(error)
        if self.end is None:
            self.end = time.perf_counter()

    def fail(self, error: BaseException) -> None:
        text = f"{type(error).__name__}: {error}"
        if len(text) > _ERROR_CHARS:
            text = text[: _ERROR_CHARS - 1] + "…"
        self.attrs["error"] = text

    def __repr__(self) -> str:
        took = "open" if self.end is None else f"{self.duration * 1e3:.1f} ms"
        return f"<Span {self.id} {self.kind} {self.name!r} on {self.thread}: {took}>"


class Trace:
    """The spans recorded inside one ``xcs.trace()`` block.

    Not constructed directly: use ``with xcs.trace() as t:`` (or ``Trace.load`` for
    a saved one). The spans are complete once the block has exited; reading them
    earlier shows the ones finished so far.

    Example::

        with xcs.trace() as t:
            answer = pipeline(question)
        print(t.summary())
        print(t.timeline())
        t.to_chrome("pipeline.json")      # chrome://tracing or ui.perfetto.dev
    """

    def __init__(self, *, record_content: bool = False) -> None:
        self.record_content = record_content
        self._spans: list[Span] = []
        self.started = time.perf_counter()
        self.started_epoch_ns = time.time_ns()
        self.ended: float | None = None
        self.pid = os.getpid()

    def _add(self, span: Span) -> None:
        # No lock: list.append and list(...) are atomic in CPython, and a lock here
        # is contended by every pool thread that finishes a task.
        self._spans.append(span)

    @property
    def spans(self) -> list[Span]:
        """Every span, ordered by start. Spans still open when the trace ended are
        closed at the end of their last child (or at the trace's end)."""
        spans = list(self._spans)
        _close_open(spans, self.ended)
        spans.sort(key=lambda s: (s.start, s.id))
        return spans

    @property
    def wall_s(self) -> float:
        """Seconds the trace was open (up to now, while it is)."""
        end = self.ended if self.ended is not None else time.perf_counter()
        return end - self.started

    # Rendering and export live in their own modules; these are the entry points.

    def summary(self) -> Any:
        """What ran, what overlapped, and the time saved (a ``TraceSummary``; its
        ``str`` is a short text report)."""
        from xcs._observe._render import summarize

        return summarize(self)

    def timeline(self, *, width: int = 100, max_rows: int = 200, ascii_only: bool = False) -> str:
        """A text timeline: one row per span (indented under its parent), its bar on
        a time axis shared by all rows, its duration, thread and details; ``width``
        characters wide, at most ``max_rows`` rows; ``ascii_only`` draws ``#``/``.``."""
        from xcs._observe._render import timeline

        return timeline(self, width=width, max_rows=max_rows, ascii_only=ascii_only)

    def to_chrome(self, path: str | os.PathLike[str]) -> str:
        """Write the trace as Chrome/Perfetto trace JSON (``traceEvents``, complete
        ``X`` events, microseconds) and return the path written.

        Raises:
            OSError: the file cannot be written.
        """
        from xcs._observe._chrome import write_chrome

        return write_chrome(self, path)

    def to_otel(self, tracer_provider: Any = None) -> int:
        """Send the spans to OpenTelemetry (the ``otel`` extra) as spans with their
        real start and end times and parent links; return how many were sent.

        Raises:
            ProviderNotInstalledError: ``opentelemetry-api`` is not installed.
        """
        from xcs._observe._otel import export

        return export(self, tracer_provider)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """A trace saved by ``to_chrome``.

        Raises:
            ValidationError: the file is not a Chrome trace written by XCS.
            OSError: the file cannot be read.
        """
        from xcs._observe._chrome import read_chrome

        return read_chrome(path)

    def __repr__(self) -> str:
        state = "open" if self.ended is None else f"{self.wall_s:.3f} s"
        return f"<Trace {len(self._spans)} spans, {state}>"


def _close_open(spans: list[Span], ended: float | None) -> None:
    """Close spans left open (a group whose owner never joined it): at the end of
    their last child, else at the trace's end, else now."""
    children_end: dict[int, float] = {}
    for s in spans:
        if s.end is not None and s.parent is not None:
            children_end[s.parent] = max(children_end.get(s.parent, s.end), s.end)
    fallback = ended if ended is not None else time.perf_counter()
    for s in sorted(spans, key=lambda s: -s.start):  # children before parents
        if s.end is None:
            s.end = max(children_end.get(s.id, fallback), s.start)
            if s.parent is not None:
                children_end[s.parent] = max(children_end.get(s.parent, s.end), s.end)


# ---------------------------------------------------------------------------
# Recording


def tracing() -> bool:
    """True when the calling code runs inside an ``xcs.trace()`` block."""
    return active > 0 and bool(_traces.get())


def current_span() -> Span | None:
    """The innermost open span of the calling code (None outside any)."""
    return _current.get() if active else None


def begin(kind: str, name: str, *, parent: Span | None = None, **attrs: Any) -> Span | None:
    """Open a span in every trace the calling code records into; None if none.

    ``parent`` defaults to the calling code's current span. The span is not made
    current; ``span`` (the context manager) does that.
    """
    traces = _traces.get()
    if not traces:
        return None
    if parent is None:
        parent = _current.get()
    thread = threading.current_thread()
    new = Span(
        next(_ids),
        kind,
        name,
        None if parent is None else parent.id,
        time.perf_counter(),
        thread.name,
        threading.get_ident(),
        attrs,
    )
    for t in traces:
        t._add(new)
    return new


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def call_site() -> str:
    """``file:line`` of the innermost frame outside XCS (and its generated code): the
    user's line that made the call being recorded. Only called inside a trace."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE) and not filename.startswith("<xcs"):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


def record_content() -> bool:
    """True if a trace the calling code records into asked for prompts and responses."""
    return any(t.record_content for t in _traces.get())


@contextmanager
def span(kind: str, name: str, **attrs: Any) -> Iterator[Span | None]:
    """A span around a block, current inside it, with the block's error noted.

    For XCS's own layers (operators use ``span("operator", ...)``). Yields None
    (and costs two attribute reads) when no trace is active.

    Example::

        with span("operator", "Judge", spec="JudgeSpec") as s:
            result = self.forward(inputs)
            if s is not None:
                s.attrs["choices"] = len(result.choices)
    """
    if not active:
        yield None
        return
    opened = begin(kind, name, **attrs)
    if opened is None:
        yield None
        return
    token = _current.set(opened)
    try:
        yield opened
    except BaseException as exc:
        opened.fail(exc)
        raise
    finally:
        _current.reset(token)
        opened.finish()


def wrap_task(fn: Callable[..., Any], group: Span, name: str, index: int) -> Callable[..., Any]:
    """``fn`` as a task of ``group``: a ``task`` span around each run, current
    inside it (so model calls made by the task are its children)."""

    def task(*args: Any) -> Any:
        opened = begin("task", f"{name} #{index}", parent=group, index=index)
        if opened is None:  # pragma: no cover - the trace ended before the task ran
            return fn(*args)
        token = _current.set(opened)
        try:
            return fn(*args)
        except BaseException as exc:
            opened.fail(exc)
            raise
        finally:
            _current.reset(token)
            opened.finish()

    return task


# ---------------------------------------------------------------------------
# xcs.trace()


def _open(trace: Trace) -> contextvars.Token[tuple[Trace, ...]]:
    global active
    with _active_lock:
        active += 1
    return _traces.set((*_traces.get(), trace))


def _close(trace: Trace, token: contextvars.Token[tuple[Trace, ...]]) -> None:
    global active
    trace.ended = time.perf_counter()
    _traces.reset(token)
    with _active_lock:
        active -= 1
