"""``xcs.stats()``: the process's counters in one plain dict, and their reset.

The counters live where the work happens and are read here, never copied on the hot
path: the compiler counts compiles and fallbacks (``_compiler._jit.statistics``),
each call site of a jitted function counts its executions (``_compiler._rt.Site``),
the model layer counts calls, retries, 429s, tokens and cost per model
(``models._engine``), each endpoint's breaker keeps its state, the active cache its
hits. Each layer registers its reader when it is imported (NOTE: [Layers register
their counters] in ``_counters``); the readers are built here, from the sources a
layer hands over, so the shape of the dict is defined in one place and this module
imports no other layer. Each source is read, and reset with ``reset=True``, in one
step under its own lock, so no count is lost or counted twice between snapshots.
Region counts are read from the sites of the jitted functions still alive, and
reset by remembering each site's counts at the reset.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from xcs._observe._counters import Reader, read_all

__all__ = ["compile_counters", "model_counters", "region_counters", "reset", "stats"]

_MODEL_COUNTERS = (
    "calls",
    "attempts",
    "retries",
    "rate_limited",
    "failures",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
)


def _zeros() -> dict[str, Any]:
    """``xcs.stats()`` of a process that has counted nothing (and the order of its keys)."""
    return {
        "compile": {"compiled": 0, "fallbacks": 0, "seconds": 0.0, "fallback_reasons": {}},
        "regions": {"executions": 0, "overlapped": 0, "in_order": 0, "sites": []},
        "models": {},
        "totals": {**dict.fromkeys(_MODEL_COUNTERS, 0), "cost_usd": 0.0},
        "breakers": {},
        "adaptive": {},
        "cache": None,
    }


# -- readers, built for the layers that register them ------------------------------------


def compile_counters(statistics: Any, lock: AbstractContextManager[Any]) -> Reader:
    """The ``compile`` reader over the compiler's ``CompileStatistics`` and its lock."""

    def read(reset: bool) -> dict[str, Any]:
        with lock:
            row = {
                "compiled": statistics.compiled,
                "fallbacks": statistics.fallbacks,
                "seconds": statistics.seconds,
                "fallback_reasons": dict(statistics.reasons),
            }
            if reset:
                statistics.reset()
        return {"compile": row}

    return read


def region_counters(live_runtimes: Callable[[], Iterable[Any]]) -> Reader:
    """The ``regions`` reader over the runtimes of the jitted functions alive (each
    with ``sites``: ``executions``, ``overlapped``, ``label``, ``mode``, ``reason``)."""
    lock = threading.Lock()
    # Site counts at the last reset: runtime -> [(executions, overlapped) per site].
    baselines: weakref.WeakKeyDictionary[Any, list[tuple[int, int]]] = weakref.WeakKeyDictionary()

    def read(reset: bool) -> dict[str, Any]:
        executions = overlapped = 0
        sites: list[dict[str, Any]] = []
        with lock:
            for runtime in live_runtimes():
                base = baselines.get(runtime)
                counts: list[tuple[int, int]] = []
                for number, site in enumerate(runtime.sites):
                    counts.append((site.executions, site.overlapped))
                    ran, over = counts[-1]
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
                    baselines[runtime] = counts
        sites.sort(key=lambda s: str(s["site"]))
        return {
            "regions": {
                "executions": executions,
                "overlapped": overlapped,
                "in_order": max(executions - overlapped, 0),
                "sites": sites,
            }
        }

    return read


def model_counters(
    statistics: Callable[..., dict[str, Any]],
    endpoints: Callable[[], Iterable[Any]],
    current_cache: Callable[[], Any],
) -> Reader:
    """The ``models``, ``totals``, ``breakers``, ``adaptive`` and ``cache`` reader over the model
    engine's ``statistics(reset=...)``, the registry's endpoints and the active cache."""

    def read(reset: bool) -> dict[str, Any]:
        per_model: dict[str, dict[str, Any]] = {}
        totals = dict.fromkeys(_MODEL_COUNTERS, 0)
        cost = 0.0
        for name, record in sorted(statistics(reset=reset).items()):
            row = {key: getattr(record, key) for key in _MODEL_COUNTERS}
            row["cost_usd"] = record.cost_usd
            per_model[name] = row
            for key in _MODEL_COUNTERS:
                totals[key] += row[key]
            cost += record.cost_usd
        breakers = {}
        adaptive = {}
        for endpoint in endpoints():
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
            cache_row = {
                "hits": c.hits,
                "misses": c.misses,
                "coalesced": c.coalesced,
                "size": c.size,
            }
        return {
            "models": per_model,
            "totals": {**totals, "cost_usd": cost},
            "breakers": breakers,
            "adaptive": adaptive,
            "cache": cache_row,
        }

    return read


# -- the public face ---------------------------------------------------------------------


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
    - ``breakers``: per model at an endpoint (``provider:model@where``), ``state``
      (``closed``, ``open``, ``half-open``), ``times_opened``, ``rejected``.
    - ``adaptive``: per model at an endpoint, the adaptive concurrency window:
      ``window`` (requests allowed in flight now; None: unlimited), ``cap`` (the
      configured concurrency), ``in_flight``, ``max_in_flight``, ``waited``,
      ``decreases``, ``rate_limited``, ``pauses``.
    - ``cache``: hits, misses, coalesced, size of the active response cache (None
      without one).

    Thread-safe: each source is read under its own lock, while other threads call,
    compile and count. A layer the program never imported (the model layer, say)
    shows zeros; calling ``stats()`` does not import it.

    Args:
        reset: zero the counters as they are read (each source in one step under
            its lock: a call counted in this snapshot is not in the next).

    Returns:
        A new dict; changing it changes nothing.

    Example::

        xcs.stats(reset=True)                 # start from zero
        pipeline(question)
        print(xcs.stats()["totals"]["prompt_tokens"])
    """
    counters = _zeros()
    counters.update(read_all(reset))
    return counters
