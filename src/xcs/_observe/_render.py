"""A trace read by people: the summary (what overlapped, time saved) and the text timeline.

The *sequential estimate* is how long the traced work would have taken had nothing
overlapped: each span counts its own time (the part no child covers) plus the
sequential estimate of each child, so a region whose four tasks ran side by side for
1 s counts 4 s, and a task waiting on one model call counts once. The estimate
assumes each call would take as long alone as it took beside others: where
overlapped calls slow each other down (a local model decoding four requests on two
cores) it is higher than a real in-order run would be, and where they share a warm
cache it is lower. To know the speedup, time the in-order run (``xcs demo`` does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from xcs._observe._spans import Span, Trace

__all__ = ["TraceSummary", "summarize", "timeline"]


@dataclasses.dataclass
class TraceSummary:
    """The figures of one trace. ``str()`` gives the text report."""

    wall_s: float
    sequential_s: float  # the sequential estimate (see the module docstring)
    spans: dict[str, int]  # kind -> count
    peak_tasks: int  # most task spans running at one moment
    peak_model_calls: int  # most model calls in flight at one moment
    model_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None: no call was priced
    cached: int
    retries: int
    errors: list[str]

    @property
    def saved_s(self) -> float:
        """Seconds saved against the sequential estimate."""
        return max(self.sequential_s - self.wall_s, 0.0)

    @property
    def speedup(self) -> float:
        return self.sequential_s / self.wall_s if self.wall_s > 0 else 1.0

    def __str__(self) -> str:
        kinds = ", ".join(f"{n} {k}{'s' * (n != 1)}" for k, n in sorted(self.spans.items()))
        lines = [
            f"wall time          {_seconds(self.wall_s)}",
            f"sequential est.    {_seconds(self.sequential_s)}  "
            f"(saved {_seconds(self.saved_s)}, {self.speedup:.2f}x)",
            f"spans              {kinds or 'none'}",
            f"peak concurrency   {self.peak_tasks} task{'s' * (self.peak_tasks != 1)}, "
            f"{self.peak_model_calls} model call{'s' * (self.peak_model_calls != 1)} at once",
        ]
        if self.model_calls:
            cost = "unpriced" if self.cost_usd is None else f"${self.cost_usd:.6f}"
            lines.append(
                f"model calls        {self.model_calls}: {self.prompt_tokens}+"
                f"{self.completion_tokens} tokens, {cost}, {self.cached} cached, "
                f"{self.retries} retr{'y' if self.retries == 1 else 'ies'}"
            )
        if self.errors:
            lines.append(f"errors             {len(self.errors)}")
            lines.extend(f"  {e}" for e in self.errors[:10])
        return "\n".join(lines)


def _seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def _children(spans: Sequence[Span]) -> tuple[dict[int, list[Span]], list[Span]]:
    ids = {s.id for s in spans}
    kids: dict[int, list[Span]] = {}
    roots: list[Span] = []
    for s in spans:
        if s.parent is not None and s.parent in ids and s.parent != s.id:
            kids.setdefault(s.parent, []).append(s)
        else:
            roots.append(s)
    return kids, roots


def _covered(intervals: Iterable[tuple[float, float]], lo: float, hi: float) -> float:
    """Length of the union of ``intervals`` clipped to [lo, hi]."""
    total = 0.0
    end = lo
    for a, b in sorted(intervals):
        a, b = max(a, end), min(b, hi)
        if b > a:
            total += b - a
            end = b
    return total


def _end(s: Span) -> float:
    return s.end if s.end is not None else s.start


def _sequential(s: Span, kids: dict[int, list[Span]]) -> float:
    # Iterative post-order: nesting depth is unbounded in principle.
    memo: dict[int, float] = {}
    stack: list[tuple[Span, bool]] = [(s, False)]
    while stack:
        node, ready = stack.pop()
        children = kids.get(node.id, [])
        if not ready and children:
            stack.append((node, True))
            stack.extend((c, False) for c in children)
            continue
        own = node.duration - _covered(
            ((c.start, _end(c)) for c in children), node.start, _end(node)
        )
        memo[node.id] = own + sum(memo[c.id] for c in children)
    return memo[s.id]


def _peak(spans: Iterable[Span]) -> int:
    events: list[tuple[float, int]] = []
    for s in spans:
        events.append((s.start, 1))
        events.append((_end(s), -1))
    events.sort()  # at a tie the end (-1) sorts first: touching spans do not overlap
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def summarize(trace: Trace) -> TraceSummary:
    spans = trace.spans
    kids, roots = _children(spans)
    lo = trace.started
    hi = trace.ended if trace.ended is not None else max((_end(s) for s in spans), default=lo)
    wall = max(hi - lo, 0.0)
    sequential = wall - _covered(((r.start, _end(r)) for r in roots), lo, hi)
    sequential += sum(_sequential(r, kids) for r in roots)
    counts: dict[str, int] = {}
    for s in spans:
        counts[s.kind] = counts.get(s.kind, 0) + 1
    models = [s for s in spans if s.kind == "model"]
    priced = [float(s.attrs["cost_usd"]) for s in models if s.attrs.get("cost_usd") is not None]
    return TraceSummary(
        wall_s=wall,
        sequential_s=max(sequential, wall),
        spans=counts,
        peak_tasks=_peak(s for s in spans if s.kind == "task"),
        peak_model_calls=_peak(models),
        model_calls=len(models),
        prompt_tokens=sum(int(s.attrs.get("prompt_tokens", 0)) for s in models),
        completion_tokens=sum(int(s.attrs.get("completion_tokens", 0)) for s in models),
        cost_usd=sum(priced) if priced else None,
        cached=sum(1 for s in models if s.attrs.get("cached")),
        retries=sum(int(s.attrs.get("retries", 0)) for s in models),
        errors=[f"{s.kind} {s.name}: {s.attrs['error']}" for s in spans if "error" in s.attrs],
    )


# ---------------------------------------------------------------------------
# The timeline

_LABEL = 44


def _ordered_rows(spans: Sequence[Span]) -> list[tuple[int, Span]]:
    """Depth-first, children by start: (depth, span)."""
    kids, roots = _children(spans)
    rows: list[tuple[int, Span]] = []
    stack: list[tuple[int, Span]] = [(0, r) for r in sorted(roots, key=_key, reverse=True)]
    while stack:
        depth, s = stack.pop()
        rows.append((depth, s))
        children = sorted(kids.get(s.id, []), key=_key, reverse=True)
        stack.extend((depth + 1, c) for c in children)
    return rows


def _key(s: Span) -> tuple[float, int]:
    return (s.start, s.id)


def _name(s: Span) -> str:
    if s.kind == "task" and "#" in s.name:
        # "fn:comprehension@12 #3" under its region: the index says enough.
        return "#" + s.name.rpartition("#")[2]
    return s.name


def _detail(s: Span) -> str:
    parts = [_seconds(s.duration)]
    a = s.attrs
    if s.kind == "model":
        if "completion_tokens" in a:
            parts.append(f"{a.get('prompt_tokens', 0)}+{a['completion_tokens']} tok")
        if a.get("cached"):
            parts.append("cached")
        if a.get("retries"):
            parts.append(f"{a['retries']} retr{'y' if a['retries'] == 1 else 'ies'}")
    elif s.kind == "region" and "mode" in a:
        parts.append(str(a["mode"]))
    parts.append(s.thread)
    if "error" in a:
        parts.append("ERROR " + str(a["error"]).partition(":")[0])
    return "  ".join(parts)


def timeline(
    trace: Trace, *, width: int = 100, max_rows: int = 200, ascii_only: bool = False
) -> str:
    """One row per span (indented under its parent), a bar on a shared time axis.

    Args:
        trace: the trace to draw.
        width: the whole line's width in characters (the bars get what the label
            and the details leave, at least 20).
        max_rows: rows drawn at most; the rest are counted.
        ascii_only: ``#`` and ``.`` instead of block characters.
    """
    spans = trace.spans
    if not spans:
        return "(no spans recorded)"
    lo = trace.started
    hi = max([_end(s) for s in spans] + ([trace.ended] if trace.ended is not None else []))
    total = max(hi - lo, 1e-9)
    rows = _ordered_rows(spans)[:max_rows]
    labels = [f"{'  ' * depth}{s.kind} {_name(s)}" for depth, s in rows]
    details = [_detail(s) for _, s in rows]
    label_w = min(max(len(text) for text in labels), _LABEL)
    detail_w = min(max(len(text) for text in details), 48)
    columns = max(width - label_w - detail_w - 3, 20)
    full, empty = ("#", ".") if ascii_only else ("█", "·")
    rule = "-" if ascii_only else "─"
    head_left, head_right = "0", _seconds(total)
    pad = " " * (label_w + 1)
    lines = [
        pad + head_left + " " * max(columns - len(head_left) - len(head_right), 1) + head_right,
        pad + rule * columns,
    ]
    for (_, s), text, detail in zip(rows, labels, details, strict=True):
        a = int((s.start - lo) / total * columns)
        b = round((_end(s) - lo) / total * columns)
        a = min(max(a, 0), columns - 1)
        b = min(max(b, a + 1), columns)
        bar = empty * a + full * (b - a) + empty * (columns - b)
        if len(text) > label_w:
            text = text[: label_w - 1] + "…"
        lines.append(f"{text.ljust(label_w)} {bar}  {detail}")
    hidden = len(spans) - len(rows)
    if hidden > 0:
        lines.append(f"… {hidden} more spans (see the Chrome trace)")
    return "\n".join(lines)
