"""``xcs.pmap``: vmap on a chosen backend: threads, processes, Ray, any Executor.

NOTE: [Shards]
Every backend but ``"threads"`` cuts the items into *shards* (contiguous slices, in
order) and sends each shard to a worker, where ``run_shard`` runs it with the local
scheduler (many blocking calls at once on the worker's thread pool). The driver
keeps a bounded window of shards in flight with the same ordered map vmap uses: each
shard is one task on the local pool that submits it and waits for its outcome.
Shards report failures as values (``ShardOutcome``), never by raising across the
backend, so the driver sees the first failing shard in order, whose first failing
item is the first failure of the whole batch; it then cancels every shard still
queued or running on the backend before it raises that item's exception.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import multiprocessing
import os
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, cast

from xcs._runtime._scheduler import ordered_imap
from xcs._transforms._axes import ItemPlan
from xcs._transforms._shard import Shard, ShardOutcome, run_pickled_shard, run_shard
from xcs._transforms._vmap import RAISE, Mapped, check_max_workers, progress_bar
from xcs.errors import ExtraNotInstalledError, ValidationError

__all__ = ["pmap"]

_BACKENDS = ("threads", "processes", "ray")
_LAZY_SHARD_SIZE = 64  # items per shard when the number of items is not known
_MAX_SHARD_SIZE = 1024
_SHARDS_PER_SLOT = 4  # shards per window slot, so a slow shard holds back a fraction


# ---------------------------------------------------------------------------
# Backends: submit a shard, wait for its outcome, cancel it, clean up


class _Backend:
    name = "backend"

    def start(self) -> None:
        pass

    def default_max_shards(self) -> int:
        raise NotImplementedError

    def submit(self, shard: Shard) -> Any:
        raise NotImplementedError

    def wait(self, handle: Any) -> ShardOutcome:
        raise NotImplementedError

    def cancel(self, handle: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _ExecutorBackend(_Backend):
    """Any ``concurrent.futures.Executor``. Process pools get shards as cloudpickle
    bytes, so functions from ``__main__`` or a test module travel by value; other
    executors (threads, Dask's ``client.get_executor()``) get the shard object."""

    def __init__(self, executor: Executor, *, own: bool, name: str) -> None:
        self.executor = executor
        self.own = own
        self.name = name
        self.pickled = isinstance(executor, ProcessPoolExecutor)

    def start(self) -> None:
        if self.pickled:
            _import_cloudpickle()

    def default_max_shards(self) -> int:
        workers = getattr(self.executor, "_max_workers", None)
        if isinstance(workers, int) and workers > 0:
            return workers
        return 2 * (os.cpu_count() or 1)

    def submit(self, shard: Shard) -> Future[Any]:
        if self.pickled:
            import cloudpickle  # type: ignore[import-untyped]

            return self.executor.submit(run_pickled_shard, cloudpickle.dumps(shard))
        return self.executor.submit(run_shard, shard)

    def wait(self, handle: Future[Any]) -> ShardOutcome:
        value = handle.result()
        if self.pickled:
            import cloudpickle

            value = cloudpickle.loads(value)
        assert isinstance(value, ShardOutcome)
        return value

    def cancel(self, handle: Future[Any]) -> None:
        handle.cancel()  # a shard already running on a worker finishes; it is discarded

    def close(self) -> None:
        if self.own:
            self.executor.shutdown(wait=True, cancel_futures=True)


def _import_cloudpickle() -> None:
    try:
        import cloudpickle  # noqa: F401
    except ImportError as exc:
        raise ExtraNotInstalledError(
            "pmap(backend='processes') needs cloudpickle: pip install 'xcs-jit[processes]'",
            extra="processes",
        ) from exc


_ray_remote: Any = None
_ray_lock = threading.Lock()


class _RayBackend(_Backend):
    """Ray tasks, one per shard, each asking for a fraction of a CPU: a shard's calls
    block (on the network), so a whole CPU slot per shard would cap the cluster at
    one shard per core, while the shard's own threads do the waiting."""

    name = "ray"

    def __init__(self, address: str | None, num_cpus: float) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.ray: Any = None

    def start(self) -> None:
        global _ray_remote
        try:
            import ray
        except ImportError as exc:
            raise ExtraNotInstalledError(
                "pmap(backend='ray') needs Ray: pip install 'xcs-jit[ray]'", extra="ray"
            ) from exc
        self.ray = ray
        if not ray.is_initialized():
            if self.address is None:
                # A local cluster on this machine, as big as its CPUs.
                ray.init(include_dashboard=False)
            else:
                ray.init(address=self.address)
        with _ray_lock:
            if _ray_remote is None:
                # No automatic retries: a retried shard would repeat model calls that
                # were made (and paid for); a worker that dies is reported instead.
                _ray_remote = ray.remote(max_retries=0)(run_shard)
        self.remote = _ray_remote.options(num_cpus=self.num_cpus)

    def default_max_shards(self) -> int:
        cpus = float(self.ray.cluster_resources().get("CPU", 1.0))
        return max(1, int(cpus / self.num_cpus))

    def submit(self, shard: Shard) -> Any:
        return self.remote.remote(shard)

    def wait(self, handle: Any) -> ShardOutcome:
        value = self.ray.get(handle)
        assert isinstance(value, ShardOutcome)
        return value

    def cancel(self, handle: Any) -> None:
        # force=True ends the worker process running the shard. Without it Ray raises
        # KeyboardInterrupt in the task at once but took ~25 s to report the task
        # cancelled (Ray 2.60, measured), and the driver waits for that report. The
        # calls running there are abandoned; their results were to be discarded.
        # A task that already finished cannot be cancelled; that is fine.
        with contextlib.suppress(Exception):
            self.ray.cancel(handle, force=True)


class _Runner:
    """Submits shards and waits for them from the local pool; cancels every live one
    when the driver stops. ``run`` never raises: a backend failure is an outcome."""

    def __init__(self, backend: _Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._live: dict[int, Any] = {}
        self._stopped = False

    def run(self, shard: Shard) -> ShardOutcome:
        try:
            handle = self.backend.submit(shard)
        except BaseException as exc:
            return ShardOutcome([], exc, shard.start)
        key = id(handle)
        with self._lock:
            if self._stopped:
                self.backend.cancel(handle)
                return ShardOutcome([], None)
            self._live[key] = handle
        try:
            return self.backend.wait(handle)
        except BaseException as exc:
            return ShardOutcome([], exc, shard.start)
        finally:
            with self._lock:
                self._live.pop(key, None)

    def cancel_all(self) -> None:
        with self._lock:
            self._stopped = True
            live = list(self._live.values())
        for handle in live:
            self.backend.cancel(handle)


# ---------------------------------------------------------------------------
# The mapped function


class ParallelMapped(Mapped):
    """A function mapped over a batch on a backend. Not constructed directly: use
    ``xcs.pmap``."""

    _what = "xcs.pmap"

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        backend: Any,
        in_axes: Any,
        max_workers: int | None,
        progress: bool,
        errors: str,
        shard_size: int | None,
        max_shards: int | None,
        address: str | None,
        num_cpus: float | None,
    ) -> None:
        if not (isinstance(backend, Executor) or backend in _BACKENDS):
            raise ValidationError(
                f"xcs.pmap: backend={backend!r}; use 'threads', 'processes', 'ray' or a "
                "concurrent.futures.Executor (for example Dask's client.get_executor())"
            )
        check_max_workers(shard_size, self._what, "shard_size")
        check_max_workers(max_shards, self._what, "max_shards")
        if backend == "threads" and (shard_size is not None or max_shards is not None):
            raise ValidationError(
                "xcs.pmap: shard_size and max_shards apply to the sharded backends "
                "('processes', 'ray', an Executor); backend='threads' is vmap on the "
                "shared pool: use max_workers"
            )
        if backend != "ray" and (address is not None or num_cpus is not None):
            raise ValidationError("xcs.pmap: address= and num_cpus= apply to backend='ray' only")
        if num_cpus is not None and (
            isinstance(num_cpus, bool)
            or not isinstance(num_cpus, int | float)
            or not num_cpus > 0
            or math.isnan(num_cpus)
        ):
            raise ValidationError(f"xcs.pmap: num_cpus must be a number > 0, got {num_cpus!r}")
        super().__init__(
            fn, in_axes=in_axes, max_workers=max_workers, progress=progress, errors=errors
        )
        self.backend = backend
        self.shard_size = shard_size
        self.max_shards = max_shards
        self.address = address
        self.num_cpus = 0.5 if num_cpus is None else float(num_cpus)

    def _make_backend(self) -> _Backend:
        if isinstance(self.backend, Executor):
            return _ExecutorBackend(self.backend, own=False, name=type(self.backend).__name__)
        if self.backend == "ray":
            return _RayBackend(self.address, self.num_cpus)
        assert self.backend == "processes"
        _import_cloudpickle()
        workers = self.max_shards or os.cpu_count() or 1
        # spawn, not fork: forking a process that runs threads (the pool, a Ray
        # client) can copy a lock held by another thread and deadlock the child.
        executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        return _ExecutorBackend(executor, own=True, name="processes")

    def _stream(
        self, plan: ItemPlan, kwargs: dict[str, Any], total: int | None
    ) -> Generator[Any, None, None]:
        if self.backend == "threads":
            return super()._stream(plan, kwargs, total)
        return self._sharded(plan, kwargs, total)

    def _sharded(
        self, plan: ItemPlan, kwargs: dict[str, Any], total: int | None
    ) -> Generator[Any, None, None]:
        from xcs.models._cache import current_cache

        backend = self._make_backend()
        bar = None
        try:
            backend.start()
            window = self.max_shards or backend.default_max_shards()
            size = self.shard_size
            if size is None:
                size = (
                    _LAZY_SHARD_SIZE
                    if total is None
                    else min(_MAX_SHARD_SIZE, max(1, -(-total // (window * _SHARDS_PER_SLOT))))
                )
            cache = current_cache()
            # NOTE: the persistent cache travels by path: each worker opens the same
            # SQLite file, so a rerun on any backend skips the calls already made.
            cache_path = cache.path if cache is not None else None
            collect = self.errors != RAISE
            shards = (
                Shard(
                    self.fn,
                    chunk,
                    kwargs,
                    start=start,
                    max_workers=self.max_workers,
                    collect=collect,
                    cache_path=cache_path,
                )
                for start, chunk in _chunks(plan.items(), size)
            )
            bar = progress_bar(total, self.name) if self.progress else None
            runner = _Runner(backend)
            it = cast(
                Generator[ShardOutcome, None, None],
                ordered_imap(runner.run, shards, window=window, name=f"pmap[{backend.name}]"),
            )
            try:
                for outcome in it:
                    for result in outcome.results:
                        if bar is not None:
                            bar.update(1)
                        yield result
                    if outcome.error is not None:
                        # NOTE: [Shards]: stop the rest on the backend, then raise.
                        runner.cancel_all()
                        it.close()
                        error = outcome.error
                        try:
                            raise error
                        finally:
                            del error, outcome
            except BaseException:
                runner.cancel_all()
                raise
            finally:
                it.close()
        finally:
            if bar is not None:
                bar.close()
            backend.close()

    def __repr__(self) -> str:
        backend = self.backend if isinstance(self.backend, str) else type(self.backend).__name__
        return f"<xcs.pmap({self.name}) backend={backend!r} errors={self.errors!r}>"


def _chunks(items: Iterator[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    start = 0
    while True:
        chunk = list(itertools.islice(items, size))
        if not chunk:
            return
        yield start, chunk
        start += len(chunk)


def pmap(
    fn: Callable[..., Any],
    *,
    backend: str | Executor = "threads",
    in_axes: Any = 0,
    max_workers: int | None = None,
    progress: bool = False,
    errors: str = RAISE,
    shard_size: int | None = None,
    max_shards: int | None = None,
    address: str | None = None,
    num_cpus: float | None = None,
) -> Mapped:
    """Map ``fn`` over a batch like ``xcs.vmap``, on a backend of your choice.

    Same arguments, results and errors as ``vmap`` (``in_axes``, ``errors``,
    ``progress``, lazy batches streaming through a bounded window). The backend:

    - ``"threads"`` (default): exactly ``vmap``, on the shared thread pool.
    - ``"processes"``: a pool of ``max_shards`` processes (default: one per CPU),
      started for the call and stopped after. ``fn`` and the items travel with
      cloudpickle, so functions defined in ``__main__`` work (``pip install
      'xcs-jit[processes]'``). For CPU-heavy functions.
    - ``"ray"``: shards over a Ray cluster (``pip install 'xcs-jit[ray]'``). Uses the
      cluster ``ray.init`` already connected to; else connects to ``address`` (for
      example ``"ray://head:10001"`` or ``"auto"``), else starts a local one. Each
      shard is a Ray task asking for ``num_cpus`` (default 0.5) CPUs.
    - any ``concurrent.futures.Executor``: for example Dask's
      ``distributed.Client(...).get_executor()``; you own its lifetime.

    On every backend but threads the items are cut into shards of ``shard_size``
    contiguous items (NOTE: [Shards]); each shard runs on a worker with the local
    scheduler, ``max_workers`` items at a time (default: the worker's pool size), and
    at most ``max_shards`` shards are in flight (default: what the backend can run at
    once). In strict mode the first failing item raises its own exception (a copy
    made by pickling, for remote backends) and every shard still queued or running is
    cancelled. An active persistent ``xcs.models.Cache`` is opened by path on the
    workers, so resuming works on every backend that shares the file system.

    Raises:
        ValidationError: a bad backend or option (also those of ``vmap``).
        ExtraNotInstalledError: the backend's package (Ray, cloudpickle) or tqdm is
            missing.
        BaseException: the first failing item's exception (strict mode); a backend
            failure (a worker that died) as the backend raised it.

    Example::

        answers = xcs.pmap(solve, backend="ray", address="auto")(problems)
        # the same as [solve(p) for p in problems], spread over the cluster
    """
    return ParallelMapped(
        fn,
        backend=backend,
        in_axes=in_axes,
        max_workers=max_workers,
        progress=progress,
        errors=errors,
        shard_size=shard_size,
        max_shards=max_shards,
        address=address,
        num_cpus=num_cpus,
    )
