"""One shard of a pmap: a slice of the items, run on a worker by the local scheduler.

This module is what a remote worker (a process of a pool, a Ray worker, a Dask
worker) imports: it must stay importable without any optional package.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, cast

from xcs._runtime._scheduler import ordered_imap
from xcs._transforms._axes import Failed
from xcs.errors import ValidationError

__all__ = ["Shard", "ShardOutcome", "call_items", "run_pickled_shard", "run_shard"]


class Shard:
    """What a worker needs to run a slice of the items. Internal."""

    __slots__ = ("cache_path", "collect", "fn", "items", "kwargs", "max_workers", "start")

    def __init__(
        self,
        fn: Callable[..., Any],
        items: list[tuple[Any, ...]],
        kwargs: dict[str, Any],
        *,
        start: int,
        max_workers: int | None,
        collect: bool,
        cache_path: str | None,
    ) -> None:
        self.fn = fn
        self.items = items
        self.kwargs = kwargs
        self.start = start  # index of the shard's first item in the whole batch
        self.max_workers = max_workers
        self.collect = collect
        self.cache_path = cache_path  # the driver's persistent model cache, if any

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


class ShardOutcome:
    """A shard's results, or the first failure among its items (strict mode).

    ``results`` holds one value per item (``Failed`` in place of an exception in
    collect mode). ``error`` is the first failure in item order, ``error_index`` its
    index in the whole batch. Errors travel as values, never raised across the
    backend: Ray and Dask would wrap them, and the caller must get the original
    exception (its type, args and attributes).
    """

    __slots__ = ("error", "error_index", "results")

    def __init__(
        self, results: list[Any], error: BaseException | None = None, error_index: int = -1
    ) -> None:
        self.results = results
        self.error = error
        self.error_index = error_index

    def __reduce__(self) -> tuple[Any, ...]:
        return (ShardOutcome, (self.results, self.error, self.error_index))


def call_items(
    fn: Callable[..., Any],
    items: Iterator[tuple[Any, ...]],
    kwargs: dict[str, Any],
    *,
    window: int | None,
    collect: bool,
    name: str,
    pool: Any = None,
    start: int = 0,
) -> Generator[Any, None, None]:
    """``fn(*item, **kwargs)`` for each item on the shared scheduler, results in order.

    Strict mode: the first failing item raises its own exception (the scheduler's
    note says which item of the whole batch: NOTE: [Where a task's error came from]),
    later items are cancelled. Collect mode: an ``Exception`` becomes a ``Failed``
    result and the map goes on (``KeyboardInterrupt`` and ``SystemExit`` still stop
    it).
    """

    def call(args: tuple[Any, ...]) -> Any:
        if not collect:
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            return Failed(exc)

    def note(index: int) -> str:
        return f"item {start + index} of the batch mapped over {name}"

    return cast(
        Generator[Any, None, None],
        ordered_imap(call, items, window=window, name=name, pool=pool, note=note),
    )


_caches: dict[str, Any] = {}
_caches_lock = threading.Lock()


def _worker_cache(path: str) -> Any:
    # One Cache per file per worker process, reused by every shard it runs.
    from xcs.models import Cache

    with _caches_lock:
        cache = _caches.get(path)
        if cache is None:
            cache = _caches[path] = Cache(path)
        return cache


def run_shard(shard: Shard) -> ShardOutcome:
    """Run ``shard`` here with the local scheduler; never raise (see ``ShardOutcome``)."""
    name = str(getattr(shard.fn, "__name__", "fn"))
    results: list[Any] = []
    try:
        it = call_items(
            shard.fn,
            iter(shard.items),
            shard.kwargs,
            window=shard.max_workers,
            collect=shard.collect,
            name=name,
            start=shard.start,
        )
        if shard.cache_path is not None:
            with _worker_cache(shard.cache_path):
                results.extend(it)
        else:
            results.extend(it)
    except BaseException as exc:
        return ShardOutcome(results, exc, shard.start + len(results))
    return ShardOutcome(results)


def run_pickled_shard(blob: bytes) -> bytes:
    """``run_shard`` for process pools: the shard comes and goes as cloudpickle bytes,
    so functions defined in ``__main__`` or in a test module travel by value."""
    import cloudpickle  # type: ignore[import-untyped]

    outcome = run_shard(cloudpickle.loads(blob))
    try:
        return bytes(cloudpickle.dumps(outcome))
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        # The user's exception (or result) cannot be pickled: say so rather than lose it.
        failure = outcome.error if outcome.error is not None else exc
        replacement = ValidationError(
            f"xcs.pmap: a result or exception of the shard starting at item "
            f"{outcome.error_index if outcome.error is not None else '?'} could not be "
            f"sent back from the worker ({exc}); it was {type(failure).__name__}: {failure}"
        )
        return bytes(cloudpickle.dumps(ShardOutcome([], replacement, max(outcome.error_index, 0))))
