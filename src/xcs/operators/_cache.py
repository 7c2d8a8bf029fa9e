"""``Cached``: an operator's results kept in a bounded, thread-safe LRU."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Any

from xcs.errors import ValidationError
from xcs.operators._base import Operator

__all__ = ["Cached", "CachedStatistics"]


@dataclasses.dataclass(frozen=True)
class CachedStatistics:
    """Counters of one ``Cached`` operator (``Cached.statistics()``)."""

    hits: int
    misses: int  # computed and stored
    uncacheable: int  # computed, not stored: an argument was not hashable
    size: int  # entries now
    maxsize: int


class Cached(Operator):
    """Remember the results of ``operator`` for the last ``maxsize`` distinct inputs.

    The key is the call's arguments, each with its type (``1`` and ``1.0`` are two
    keys). A call with an unhashable argument (a list, a dict) is computed and not
    stored, never an error. Errors are not stored: the next call tries again. The
    least recently used entry goes first when the cache is full.

    Thread-safe: one lock guards the entries, and is never held while ``operator``
    runs, so different inputs compute concurrently. Two concurrent calls with the
    same new input both compute (both results are returned; the later one stays).

    A copy made by pickling starts empty (the entries stay in this process).

    Args:
        operator: any operator or callable.
        maxsize: the most entries kept (>= 1).

    Raises:
        ValidationError: ``operator`` not callable, ``maxsize`` not a positive int.

    Example::

        answer = Cached(Answer(model), maxsize=1024)
        answer("Why is the sky blue?")    # computed
        answer("Why is the sky blue?")    # from the cache
        answer.statistics()               # CachedStatistics(hits=1, misses=1, ...)
    """

    def __init__(self, operator: Any, *, maxsize: int = 128) -> None:
        if not callable(operator):
            raise ValidationError(
                f"Cached: operator must be callable, got {type(operator).__name__}",
                operator="Cached",
            )
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValidationError(
                f"Cached: maxsize must be a positive integer, got {maxsize!r}",
                operator="Cached",
            )
        self.operator = operator
        self.maxsize = maxsize
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Any, Any] = OrderedDict()
        self._hits = self._misses = self._uncacheable = 0

    @staticmethod
    def _key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key = (
            tuple((type(a), a) for a in args),
            tuple(sorted((k, type(v), v) for k, v in kwargs.items())),
        )
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        key = self._key(args, kwargs)
        if key is None:
            with self._lock:
                self._uncacheable += 1
            return self.operator(*args, **kwargs)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self._hits += 1
                return self._entries[key]
        value = self.operator(*args, **kwargs)
        with self._lock:
            self._misses += 1
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return value

    def statistics(self) -> CachedStatistics:
        """Hits, misses, uncacheable calls, size and bound, read under the lock."""
        with self._lock:
            return CachedStatistics(
                self._hits, self._misses, self._uncacheable, len(self._entries), self.maxsize
            )

    def clear(self) -> None:
        """Forget every entry (the counters stay)."""
        with self._lock:
            self._entries.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = {"operator": self.operator, "maxsize": self.maxsize}
        if "_xcs_jit_window_" in vars(self):
            state["_xcs_jit_window_"] = self._xcs_jit_window_
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._reset()

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        return [(None, self.operator), ("maxsize", self.maxsize)]
