"""Cached: a bounded, thread-safe LRU around an operator."""

from __future__ import annotations

import pickle
import threading
from collections import Counter

import pytest
from _operator_defs import shout

import xcs
from xcs.operators import Cached, CachedStatistics


class Square:
    def __init__(self) -> None:
        self.calls: Counter[object] = Counter()
        self.lock = threading.Lock()

    def __call__(self, x: object) -> object:
        with self.lock:
            self.calls[x if not isinstance(x, list) else tuple(x)] += 1
        if x == "boom":
            raise ValueError(x)
        return x * 2 if not isinstance(x, list) else x + x  # type: ignore[operator]


def test_hits_misses_and_lru_eviction() -> None:
    square = Square()
    cached = Cached(square, maxsize=2)
    assert [cached(1), cached(2), cached(1)] == [2, 4, 2]
    assert square.calls == Counter({1: 1, 2: 1})
    cached(3)  # evicts 2, the least recently used
    cached(1)
    cached(2)
    assert square.calls == Counter({1: 1, 2: 2, 3: 1})
    assert cached.statistics() == CachedStatistics(
        hits=2, misses=4, uncacheable=0, size=2, maxsize=2
    )


def test_types_are_part_of_the_key_and_keywords_count() -> None:
    square = Square()
    cached = Cached(square)
    assert (cached(1), cached(1.0), cached(x=1)) == (2, 2.0, 2)
    assert type(cached(1.0)) is float
    assert cached.statistics().misses == 3


def test_unhashable_inputs_are_computed_not_stored() -> None:
    square = Square()
    cached = Cached(square)
    assert cached([1]) == [1, 1]
    assert cached([1]) == [1, 1]
    assert square.calls[(1,)] == 2
    stats = cached.statistics()
    assert (stats.uncacheable, stats.size) == (2, 0)


def test_errors_are_not_stored() -> None:
    square = Square()
    cached = Cached(square)
    for _ in range(2):
        with pytest.raises(ValueError, match="boom"):
            cached("boom")
    assert square.calls["boom"] == 2
    assert cached.statistics().size == 0


def test_thread_safe_under_contention() -> None:
    square = Square()
    cached = Cached(square, maxsize=8)
    threads = 8
    barrier = threading.Barrier(threads, timeout=30)
    wrong: list[object] = []

    def hammer(seed: int) -> None:
        barrier.wait()
        for i in range(400):
            x = (i * 7 + seed) % 20
            if cached(x) != x * 2:
                wrong.append(x)

    workers = [threading.Thread(target=hammer, args=(s,)) for s in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not wrong
    stats = cached.statistics()
    assert stats.hits + stats.misses == threads * 400
    assert stats.size <= 8
    assert sum(square.calls.values()) == stats.misses


def test_wraps_operators_and_pickles_empty() -> None:
    cached = Cached(shout, maxsize=4)
    assert cached("a", times=2) == "AA"
    assert cached("a", times=2) == "AA"
    back = pickle.loads(pickle.dumps(cached))
    assert back.statistics() == CachedStatistics(0, 0, 0, 0, 4)
    assert back("b") == "B"
    assert back.operator is shout
    cached.clear()
    assert cached.statistics().size == 0


def test_construction_errors() -> None:
    with pytest.raises(xcs.ValidationError, match="maxsize must be a positive integer"):
        Cached(shout, maxsize=0)
    with pytest.raises(xcs.ValidationError, match="operator must be callable"):
        Cached(3)
