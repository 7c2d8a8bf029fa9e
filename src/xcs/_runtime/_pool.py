"""The one shared thread pool for blocking work: bounded, lazy, reused, gone at exit.

Why not ``concurrent.futures.ThreadPoolExecutor``: its futures cannot be *claimed* by
a waiting thread (NOTE: [Waiting threads help] in ``_scheduler``), its threads are
joined at interpreter exit (a hung model call would hang the exit), and it refuses
work after the exit hooks ran, while non-daemon user threads may still call jitted
functions. This pool runs *jobs*: objects with a ``run_from_pool()`` method that
decide for themselves whether they still need running (a job stolen by a waiter, or
cancelled, returns at once).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Protocol

from xcs._config import DEFAULT_MAX_WORKERS, THREAD_NAME_PREFIX, env_int

__all__ = ["Job", "WorkerPool", "current_pool", "get_pool", "in_worker_thread"]

logger = logging.getLogger("xcs")


class Job(Protocol):
    def run_from_pool(self) -> None:
        """Run if still wanted; never raise (failures are stored on the job)."""


_thread_state = threading.local()


def in_worker_thread() -> bool:
    """True when the calling thread is one of a pool's workers."""
    return getattr(_thread_state, "pool", None) is not None


def current_pool() -> WorkerPool | None:
    """The pool whose worker the calling thread is, or None."""
    return getattr(_thread_state, "pool", None)


class WorkerPool:
    """A bounded pool of daemon threads named ``xcs-worker-N``.

    Threads start only when a job arrives and no thread is idle, up to
    ``max_workers``; idle threads wait for the next job and are reused, so the thread
    count never grows past the bound however many jobs run. At interpreter exit the
    idle threads are told to stop after the work already queued; threads still busy
    are daemons and cannot delay the exit.

    NOTE: [Stranded threads are replaced]
    A thread can be lost to work nobody waits for any more: a call that hangs past
    an ``xcs.deadline`` (or a Ctrl-C) is abandoned by its group, but a thread cannot
    be interrupted, so it stays busy until the call returns, if ever. The scheduler
    tells the pool (``strand``), and the pool may start one more thread in its place
    (``unstrand`` when the call ends), so hung work does not shrink the capacity left
    for new work. The replacements are bounded: at most ``max_workers`` of them, so
    the pool never has more than ``2 * max_workers`` threads. Past that (more than
    ``max_workers`` calls hung at once), new work waits for a thread, as it would in
    a full pool. A thread that finishes a job while the pool has more threads than
    its present capacity exits, so the pool shrinks back to its bound as the
    stranded calls end and work goes on.

    Not constructed by users: the runtime uses the process-wide pool of ``get_pool()``.
    """

    def __init__(self, max_workers: int, *, name: str = THREAD_NAME_PREFIX) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.max_workers = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        # Counts threads that finished a job and went back to waiting. Over-counting
        # is harmless (a job then waits a moment for a busy thread); a missing count
        # would only start one more thread, still within the bound.
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._started = 0  # threads ever started (names them)
        # Threads busy with abandoned work (NOTE: [Stranded threads are replaced]).
        # May dip below zero for a moment: a call can end before its strand() lands.
        self._stranded = 0

    # -- submitting -------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue ``job`` for a worker. After the pool closed, run it in the caller."""
        if self._closed:
            # Interpreter exit has begun but some thread still submits work (a
            # non-daemon user thread, say). Running it here is slower, never wrong.
            job.run_from_pool()
            return
        self._queue.put(job)
        if self._idle.acquire(blocking=False):
            return
        self._start_thread()

    def _capacity(self) -> int:
        # Call with the lock held.
        return self.max_workers + min(max(self._stranded, 0), self.max_workers)

    def _start_thread(self) -> None:
        with self._lock:
            if len(self._threads) < self._capacity() and not self._closed:
                thread = threading.Thread(
                    target=self._work,
                    name=f"{self._name}-{self._started}",
                    daemon=True,
                )
                self._started += 1
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        _thread_state.pool = self
        get = self._queue.get
        while True:
            job = get()
            if job is None:
                return
            try:
                job.run_from_pool()
            except BaseException:  # pragma: no cover - jobs store their own failures
                logger.exception("xcs worker: a job raised outside its own handler")
            del job
            if len(self._threads) > self.max_workers and self._retire():
                return
            self._idle.release()

    def _retire(self) -> bool:
        """Leave the pool if it has more threads than its capacity now."""
        with self._lock:
            if self._closed or len(self._threads) <= self._capacity():
                return False
            self._threads.remove(threading.current_thread())
            return True

    # -- abandoned work (NOTE: [Stranded threads are replaced]) -------------------

    def strand(self) -> None:
        """One of this pool's threads runs a call that was abandoned: make room for
        one more thread (within the bound), and start it if work is waiting.

        Should only be called by the scheduler, once per abandoned call, and matched
        by one ``unstrand`` when that call ends.
        """
        with self._lock:
            self._stranded += 1
        if not self._queue.empty():
            self._start_thread()

    def unstrand(self) -> None:
        """An abandoned call on one of this pool's threads has ended."""
        with self._lock:
            self._stranded -= 1

    @property
    def stranded(self) -> int:
        """How many of the pool's threads run abandoned calls now."""
        return max(self._stranded, 0)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def thread_count(self) -> int:
        """How many worker threads are alive: at most ``max_workers``, plus one per
        thread stranded by abandoned work, up to ``2 * max_workers``."""
        return len(self._threads)

    def close(self) -> None:
        """Let idle workers exit after the queued work; later jobs run in the caller.

        Does not wait for busy workers: they are daemon threads, and a hung call in
        one of them must not hang the interpreter's exit.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker threads of a closed pool; True if all have exited."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in threads)


# ---------------------------------------------------------------------------
# The process-wide pool

_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> WorkerPool:
    """The process-wide pool, created at first use (``XCS_MAX_WORKERS`` sizes it)."""
    pool = _pool
    if pool is not None:
        return pool
    return _create_pool()


def _create_pool() -> WorkerPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = WorkerPool(env_int("XCS_MAX_WORKERS", DEFAULT_MAX_WORKERS))
        return _pool


def _close_pool_at_exit() -> None:
    pool = _pool
    if pool is not None:
        pool.close()


def _forget_pool_in_child() -> None:
    # After fork() the child has none of the parent's threads; a fresh pool starts
    # lazily there. The old lock may be held by a thread that no longer exists.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


# threading's own exit hooks run before the interpreter joins non-daemon threads,
# which is when concurrent.futures stops its pools too.
_register_atexit = getattr(threading, "_register_atexit", None)
if _register_atexit is not None:
    _register_atexit(_close_pool_at_exit)
else:  # pragma: no cover - CPython < 3.9 has no such hook
    import atexit

    atexit.register(_close_pool_at_exit)

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)
