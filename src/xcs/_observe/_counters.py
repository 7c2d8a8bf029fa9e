"""The registry behind ``xcs.stats()``: each layer registers the function that reads
its counters, and a thread-safe set of weak references for the objects it counts.

NOTE: [Layers register their counters]
``_observe`` is the bottom layer: every other layer imports it, so it may import none
of them (``xcs.stats()`` once imported the compiler and the model layer from here,
a cycle, and loaded the model layer just to report that it had counted nothing). A
layer registers a *reader* when it is imported: a named function that takes
``reset`` and returns its part of the ``xcs.stats()`` dict, read (and, with
``reset``, zeroed) in one step under the layer's own lock. ``xcs.stats()`` calls
every registered reader. A layer never imported has registered nothing, counted
nothing, and its keys show their zero values.

Registering and reading are thread-safe: readers are called on a copy of the
registry taken under its lock, and the objects a reader walks (the runtimes of the
jitted functions alive) are kept in a ``LiveSet``, whose snapshot is taken under its
own lock, so a thread compiling a new function while another reads the counters
changes nothing that is being iterated.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["LiveSet", "Reader", "read_all", "register"]

T = TypeVar("T")

# A layer's reader: reset -> its keys of the ``xcs.stats()`` dict.
Reader = Callable[[bool], dict[str, Any]]

_lock = threading.Lock()
_readers: dict[str, Reader] = {}


def register(name: str, read: Reader) -> None:
    """Make ``read`` part of ``xcs.stats()`` under ``name`` (registering a name
    again replaces its reader: a module reloaded registers afresh).

    Should only be called by XCS's own layers, once, when they are imported.
    """
    with _lock:
        _readers[name] = read


def read_all(reset: bool) -> dict[str, Any]:
    """Every registered reader's keys, merged in the order of registration."""
    with _lock:
        readers = list(_readers.values())
    merged: dict[str, Any] = {}
    for read in readers:
        merged.update(read(reset))
    return merged


class LiveSet(Generic[T]):
    """The objects added and still alive, held weakly; ``add`` and ``snapshot`` may be
    called from any threads at once.

    Why not ``weakref.WeakSet``: iterating one while another thread adds to it raises
    ``RuntimeError: Set changed size during iteration``. Here references to dead
    objects are only dropped under the lock, by ``add`` (now and then) and
    ``snapshot``, never by a weakref callback, which could run in the middle of
    either, in any thread.
    """

    __slots__ = ("_keys", "_lock", "_prune_at", "_refs")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[int, weakref.ReferenceType[T]] = {}
        self._keys = itertools.count()
        self._prune_at = 64

    def add(self, item: T) -> None:
        ref = weakref.ref(item)
        with self._lock:
            self._refs[next(self._keys)] = ref
            if len(self._refs) >= self._prune_at:
                self._prune()
                # Amortised: prune again when the set has doubled since.
                self._prune_at = max(64, 2 * len(self._refs))

    def snapshot(self) -> list[T]:
        """The items still alive, in the order they were added."""
        with self._lock:
            return self._prune()

    def _prune(self) -> list[T]:
        alive: list[T] = []
        dead: list[int] = []
        for key, ref in self._refs.items():
            item = ref()
            if item is None:
                dead.append(key)
            else:
                alive.append(item)
        for key in dead:
            del self._refs[key]
        return alive

    def __len__(self) -> int:
        return len(self.snapshot())
