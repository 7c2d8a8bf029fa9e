"""``xcs.stats()``: the process's counters in one plain dict, and their reset.

The counters live where the work happens and are read here, never copied on the hot
path: the compiler counts compiles and fallbacks (``_compiler._jit.statistics``),
each call site of a jitted function counts its executions (``_compiler._rt.Site``),
the model layer counts calls, retries, 429s, tokens and cost per model
(``models._engine``), each endpoint's breaker keeps its state, the active cache its
hits. Each source is read, and reset with ``reset=True``, in one step under its own
lock, so no count is lost or counted twice between snapshots. Region counts are
read from the sites of the jitted functions still alive, and reset by remembering
each site's counts at the reset.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

__all__ = ["reset", "stats"]

_lock = threading.Lock()
# Site counts at the last reset: runtime -> [(executions, overlapped) per site].
_baselines: weakref.WeakKeyDictionary[Any, list[tuple[int, int]]] = weakref.WeakKeyDictionary()


def _regions(reset: bool) -> dict[str, Any]:
    from xcs._compiler._rt import live_runtimes

    executions = overlapped = 0
    sites: list[dict[str, Any]] = []
    with _lock:
        for runtime in live_runtimes():
            base = _baselines.get(runtime)
            read: list[tuple[int, int]] = []
            for number, site in enumerate(runtime.sites):
                read.append((site.executions, site.overlapped))
                ran, over = read[-1]
                if base is not None and number < len(base):
                    ran, over = ran - base[number][0], over - base[number][1]
                executions += ran
                overlapped += over
                if ran:
                    sites.append(
                        {
                            "site": site.label,
                            "mode": site.mode.value,
                            "reason": site.reason,
                            "executions": ran,
                            "overlapped": over,
                        }
                    )
            if reset:
                _baselines[runtime] = read
    sites.sort(key=lambda s: str(s["site"]))
    return {
        "executions": executions,
        "overlapped": overlapped,
        "in_order": max(executions - overlapped, 0),
        "sites": sites,
    }


def _compile(reset: bool) -> dict[str, Any]:
    from xcs._compiler._jit import _compile_lock, statistics

    with _compile_lock:
        row = {
            "compiled": statistics.compiled,
            "fallbacks": statistics.fallbacks,
            "seconds": statistics.seconds,
            "fallback_reasons": dict(statistics.reasons),
        }
        if reset:
            statistics.reset()
        return row


def _models(reset: bool) -> dict[str, Any]:
    from xcs.models import _engine
    from xcs.models._cache import current_cache
    from xcs.models._registry import registry

    per_model: dict[str, dict[str, Any]] = {}
    totals = dict.fromkeys(
        (
            "calls",
            "attempts",
            "retries",
            "rate_limited",
            "failures",
            "cache_hits",
            "prompt_tokens",
            "completion_tokens",
        ),
        0,
    )
    cost = 0.0
    for name, record in sorted(_engine.statistics(reset=reset).items()):
        row = {key: getattr(record, key) for key in totals}
        row["cost_usd"] = record.cost_usd
        per_model[name] = row
        for key in totals:
            totals[key] += row[key]
        cost += record.cost_usd
    breakers = {}
    adaptive = {}
    for endpoint in registry.endpoints():
        for breaker in endpoint.breakers():
            snap = breaker.statistics()
            breakers[snap.endpoint] = {
                "state": snap.state.value,
                "times_opened": snap.times_opened,
                "rejected": snap.rejected,
                "consecutive_failures": snap.consecutive_failures,
            }
        for limit in endpoint.adaptive_limits():
            window = limit.statistics()
            adaptive[window.scope] = window.as_dict()
    cache = current_cache()
    cache_row = None
    if cache is not None:
        c = cache.statistics()
        cache_row = {"hits": c.hits, "misses": c.misses, "coalesced": c.coalesced, "size": c.size}
    return {
        "models": per_model,
        "totals": {**totals, "cost_usd": cost},
        "breakers": breakers,
        "adaptive": adaptive,
        "cache": cache_row,
    }


def reset() -> None:
    """Zero the counters (breaker *states* stay: they are state, not statistics)."""
    stats(reset=True)


def stats(*, reset: bool = False) -> dict[str, Any]:
    """XCS's counters for this process, as a plain dict (JSON-serialisable).

    Keys:

    - ``compile``: ``compiled`` (functions compiled), ``fallbacks`` (run as
      written), ``seconds`` (time spent compiling), ``fallback_reasons``
      (function -> why it runs as written).
    - ``regions``: ``executions`` of the parallel regions of live jitted functions,
      how many ``overlapped`` and how many ran ``in_order``, and per ``sites`` the
      current decision and its reason.
    - ``models``: per model id, ``calls``, ``attempts``, ``retries``,
      ``rate_limited`` (429 answers), ``failures``, ``cache_hits``,
      ``prompt_tokens``, ``completion_tokens``, ``cost_usd``; ``totals``: their sums.
    - ``adaptive``: per model at an endpoint (``provider:model@where``), the
      adaptive concurrency window: ``window`` (requests allowed in flight now;
      None: unlimited), ``cap`` (the configured concurrency), ``in_flight``,
      ``max_in_flight``, ``decreases``, ``rate_limited``, ``pauses``.
    - ``breakers``: per model at an endpoint (``provider:model@where``), ``state``
      (``closed``, ``open``, ``half-open``), ``times_opened``, ``rejected``;
      ``cache``: hits, misses, coalesced, size of the active response cache (None
      without one).

    Thread-safe: each source is read under its own lock.

    Args:
        reset: zero the counters as they are read (each source in one step under
            its lock: a call counted in this snapshot is not in the next).

    Returns:
        A new dict; changing it changes nothing.

    Example::

        xcs.stats(reset=True)                 # start from zero
        pipeline(question)
        print(xcs.stats()["models"]["totals"]["prompt_tokens"])
    """
    return {"compile": _compile(reset), "regions": _regions(reset), **_models(reset)}
