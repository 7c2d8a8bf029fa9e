"""The opt-in response cache: an in-memory LRU in front of an optional SQLite file.

Values are JSON (never pickle: a cache file is data, and loading it must not run
code). Identical requests that are in flight at the same time *coalesce*: the
first one calls the provider, the others wait for its answer, which the cache
would have given them anyway a moment later.

NOTE: [Sample indices]
The key covers the model id, the endpoint's base URL, the messages, every model
parameter and a *sample index*, ``sample=`` (default 0). The index is a value the
program passes, never a counter XCS keeps, so a program produces the same keys
whether it runs in order or under ``@xcs.jit``::

    answers = [model(question, temperature=0.8, sample=i) for i in range(5)]

gives keys ``sample=0..4`` in both runs, and the same answers at the same
positions when the cache answers them. A counter of identical calls cannot do
that: under ``@xcs.jit`` identical calls start in whatever order the threads
reach them, so the k-th *arrival* is not the k-th call of the program, and a
rerun would see the cached samples shuffled (a judge picking "the first best"
would then pick differently). ``seed=`` is part of the key too, so ensembles
written with ``seed=i`` are distinct samples already. Calls that differ in
nothing, not even ``sample``, are the same request and get the same answer:
the cache makes that visible (one sample repeated), which is why a cache hit at
temperature > 0 without an explicit ``sample`` or ``seed`` is logged once.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from xcs._runtime._deadline import current_deadline
from xcs.errors import ValidationError
from xcs.models._base import EndpointConfig
from xcs.models._params import ModelId
from xcs.models._types import Request

__all__ = ["Cache", "CacheStatistics", "cache_key", "current_cache", "set_cache"]

logger = logging.getLogger("xcs.models")

_SCHEMA = 1

T = TypeVar("T")


def cache_key(model: ModelId, endpoint: EndpointConfig, request: Request) -> str:
    """The key of a request: a hash of everything that can change the answer.

    Left out on purpose: the API key (never stored, and it does not change the
    answer), the timeout, the attempt count, and whether the cache is used.
    """
    payload: dict[str, Any] = {
        "v": _SCHEMA,
        "model": str(model),
        "base_url": endpoint.base_url,
        "messages": [[m.role, m.content] for m in request.messages],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "seed": request.seed,
        "sample": request.sample,
    }
    # Added only when set, so the keys of plain calls stay what they were.
    if request.output is not None:
        payload["response_model"] = request.output.key
    if request.tools:
        payload["tools"] = [tool.key for tool in request.tools]
    if request.tool_choice not in (None, "auto"):
        payload["tool_choice"] = request.tool_choice
    if any(m.tool_calls or m.tool_call_id for m in request.messages):
        payload["messages"] = [m.to_dict() for m in request.messages]
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class CacheStatistics:
    """A snapshot of a cache's counters."""

    __slots__ = ("coalesced", "hits", "misses", "size", "stores")

    def __init__(self, hits: int, misses: int, coalesced: int, stores: int, size: int) -> None:
        self.hits = hits
        self.misses = misses
        self.coalesced = coalesced  # calls answered by an identical call in flight
        self.stores = stores
        self.size = size  # entries in memory

    def __repr__(self) -> str:
        return (
            f"CacheStatistics(hits={self.hits}, misses={self.misses}, "
            f"coalesced={self.coalesced}, stores={self.stores}, size={self.size})"
        )


class _Flight:
    """One call in flight that identical calls wait for (threads and asyncio tasks)."""

    __slots__ = ("_callbacks", "_lock", "done", "value", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: dict[str, Any] | None = None
        self.waiters = 0  # identical calls waiting for it (read by tests and statistics)
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def finish(self, value: dict[str, Any] | None) -> None:
        with self._lock:
            self.value = value
            self.done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def wait(self, what: str) -> None:
        deadline = current_deadline()
        if deadline is None:
            self.done.wait()
            return
        if not self.done.wait(max(0.0, deadline.remaining())):
            raise deadline.timeout_error(where=f"{what} (waiting for an identical call)")

    async def await_done(self, what: str) -> None:
        """``wait`` for asyncio: the task waits, its loop runs on."""
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            def resolve() -> None:
                if not future.done():
                    future.set_result(None)

            with contextlib.suppress(RuntimeError):  # the loop closed
                loop.call_soon_threadsafe(resolve)

        with self._lock:
            if self.done.is_set():
                return
            self._callbacks.append(wake)
        deadline = current_deadline()
        if deadline is None:
            await future
            return
        try:
            async with asyncio.timeout(max(0.0, deadline.remaining())):
                await future
        except TimeoutError:
            raise deadline.timeout_error(where=f"{what} (waiting for an identical call)") from None


class Cache:
    """A response cache: an in-memory LRU of ``maxsize`` entries, backed by an SQLite
    file when ``path`` is given (created if missing; safe to share between processes).

    Use it for a block of code, or for the whole process::

        with xcs.models.Cache("answers.sqlite"):
            run_experiment()                  # every model call in here is cached

        xcs.models.set_cache(xcs.models.Cache("answers.sqlite"))   # process-wide

    A call passes ``cache=False`` to bypass it. See NOTE: [Sample indices] for how
    ensembles get distinct cached samples.

    Args:
        path: the SQLite file, or None for memory only.
        maxsize: entries kept in memory (the file keeps everything).

    Raises:
        ValidationError: ``maxsize`` < 1, or ``path`` is not an SQLite cache file.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, maxsize: int = 4096) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValidationError(f"Cache(maxsize=...) must be an int >= 1, got {maxsize!r}")
        self.path = None if path is None else os.fspath(path)
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._inflight: dict[str, _Flight] = {}
        self._tokens = threading.local()  # per thread: the stack of `with` tokens
        self._hits = self._misses = self._coalesced = self._stores = 0
        self._warned = False
        self._faults = 0  # stored rows that were not an answer XCS wrote (misses)
        self._unstorable = 0  # answers returned but not stored
        self._fault_logged = False
        self._db: sqlite3.Connection | None = None
        if self.path is not None:
            self._db = self._open(self.path)

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                "key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
            )
        except sqlite3.DatabaseError as exc:
            raise ValidationError(f"cannot use {path!r} as a cache file: {exc}") from exc
        return db

    # -- lookups ----------------------------------------------------------------------

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value for ``key``, or None."""
        with self._lock:
            value = self._memory.get(key)
            if value is not None:
                self._memory.move_to_end(key)
                return value
            if self._db is None:
                return None
            try:
                row = self._db.execute(
                    "SELECT value FROM responses WHERE key = ?", (key,)
                ).fetchone()
            except sqlite3.Error:
                # The cache only saves calls: a file it cannot read is a miss, not a
                # failed model call.
                logger.warning("xcs.models cache: reading %s failed", self.path, exc_info=True)
                return None
            if row is None:
                return None
            try:
                stored = json.loads(row[0])
            except (TypeError, ValueError):  # JSONDecodeError is a ValueError
                stored = None
            if not isinstance(stored, dict):
                self._bad_row(key, "not the JSON object XCS writes")
                return None
            self._remember(key, stored)
            return stored

    def _bad_row(self, key: str, why: str) -> None:
        """A stored row XCS cannot use: a miss, logged once per cache. Under the lock."""
        self._faults += 1
        if self._fault_logged:
            return
        self._fault_logged = True
        logger.warning(
            "xcs.models cache: the row for key %s... in %s is %s; treated as a miss "
            "(the call is made and the row replaced). Logged once per cache.",
            key[:12],
            self.path or "memory",
            why,
        )

    def reject(self, key: str, why: str) -> None:
        """Forget a stored value the caller cannot use (see ``claim``'s ``check``)."""
        with self._lock:
            self._memory.pop(key, None)
            self._bad_row(key, why)

    def put(self, key: str, value: dict[str, Any]) -> bool:
        """Store ``value`` (a JSON-serialisable dict) under ``key``. Returns whether it
        was stored; never raises for the value or the file.

        Losing an answer the provider gave (and was paid for) because it cannot be
        stored (text with a lone surrogate, which SQLite's UTF-8 cannot hold; a file
        locked or full) would be worse than not caching it: such a value is logged
        and left out, and the caller still returns it.
        """
        try:
            blob = json.dumps(value, sort_keys=True, ensure_ascii=False)
            blob.encode("utf-8")  # what SQLite will need; a lone surrogate fails here
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
            with self._lock:
                self._unstorable += 1
            logger.warning("xcs.models cache: an answer was not stored (%s)", exc)
            return False
        with self._lock:
            self._remember(key, value)
            self._stores += 1
            if self._db is not None:
                try:
                    self._db.execute(
                        "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
                        (key, blob, time.time()),
                    )
                except (sqlite3.Error, ValueError):
                    logger.warning("xcs.models cache: writing %s failed", self.path, exc_info=True)
                    return False
        return True

    def _remember(self, key: str, value: dict[str, Any]) -> None:
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self.maxsize:
            self._memory.popitem(last=False)

    def claim(
        self, key: str, check: Callable[[dict[str, Any]], bool] | None = None
    ) -> tuple[str, Any]:
        """One step of a cached call: ``("hit", value)``, ``("wait", flight)`` (an
        identical call is in flight: wait for it, then claim again if it failed), or
        ``("lead", flight)`` (make the call, then ``settle``). ``check`` rejects a
        stored value the caller cannot use (a miss, logged once).

        The sync and the async call paths share it; ``get_or_compute`` is the
        sync form.
        """
        value = self.get(key)
        if value is not None and check is not None and not check(value):
            self.reject(key, "not an answer XCS wrote")
            value = None
        with self._lock:
            if value is not None:
                self._hits += 1
                return "hit", value
            flight = self._inflight.get(key)
            if flight is None:
                flight = self._inflight[key] = _Flight()
                self._misses += 1
                return "lead", flight
            flight.waiters += 1
            return "wait", flight

    def settle(self, key: str, flight: _Flight, value: dict[str, Any] | None) -> None:
        """The leader's call ended: store its value (None: it failed) and wake the
        identical calls waiting for it."""
        try:
            if value is not None:
                self.put(key, value)
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            flight.finish(value)

    def coalesced(self) -> None:
        """Count a call answered by an identical call in flight."""
        with self._lock:
            self._coalesced += 1

    def get_or_compute(
        self,
        key: str,
        compute: Callable[[], tuple[dict[str, Any], T]],
        *,
        what: str,
        check: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[dict[str, Any], T | None]:
        """The value for ``key``: stored, or from an identical call in flight, or
        computed (``compute()`` returns the value to store and a result of its own).

        Returns ``(value, result)``: ``result`` is ``compute``'s own result when this
        caller computed the value, None when the value came from the cache or from an
        identical call. If the call in flight fails, one waiting caller calls again
        (the sequential program would have made its own call). Waiting is bounded by
        the active deadline.
        """
        while True:
            state, found = self.claim(key, check)
            if state == "hit":
                return found, None
            if state == "lead":
                value: dict[str, Any] | None = None
                try:
                    value, result = compute()
                finally:
                    self.settle(key, found, value)
                assert value is not None
                return value, result
            found.wait(what)
            if found.value is not None:
                self.coalesced()
                return found.value, None

    def waiting(self) -> int:
        """Calls now waiting for an identical call in flight."""
        with self._lock:
            return sum(f.waiters for f in self._inflight.values())

    def warn_repeated_sample(self, model: str) -> None:
        """Log, once per cache, that a sampled call was answered from the cache
        without an explicit sample index (NOTE: [Sample indices])."""
        if self._warned:
            return
        self._warned = True
        logger.warning(
            "xcs.models cache: a call to %s at temperature > 0 with neither sample= nor "
            "seed= was answered from the cache, so identical calls get the same sample; "
            "pass sample=i (or seed=i) to get distinct samples",
            model,
        )

    # -- management ---------------------------------------------------------------------

    def statistics(self) -> CacheStatistics:
        with self._lock:
            return CacheStatistics(
                self._hits, self._misses, self._coalesced, self._stores, len(self._memory)
            )

    def clear(self) -> None:
        """Forget every entry, in memory and in the file."""
        with self._lock:
            self._memory.clear()
            if self._db is not None:
                self._db.execute("DELETE FROM responses")

    def close(self) -> None:
        """Close the SQLite file (the memory part keeps working)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __len__(self) -> int:
        with self._lock:
            if self._db is not None:
                return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
            return len(self._memory)

    def __enter__(self) -> Cache:
        stack = self._tokens.__dict__.setdefault("stack", [])
        stack.append(_active.set(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _active.reset(self._tokens.stack.pop())

    def __repr__(self) -> str:
        where = self.path if self.path is not None else "memory only"
        return f"<xcs.models.Cache {where}, maxsize={self.maxsize}>"


# The cache of the current context (``with cache:``), else the process-wide one.
_active: contextvars.ContextVar[Cache | None] = contextvars.ContextVar(
    "xcs_models_cache", default=None
)
_process_cache: Cache | None = None


def current_cache() -> Cache | None:
    """The cache model calls here use, or None."""
    active = _active.get()
    return active if active is not None else _process_cache


def set_cache(cache: Cache | None) -> None:
    """Use ``cache`` for every model call of the process (None: no cache).

    A ``with cache:`` block overrides it for the code inside.

    Raises:
        ValidationError: ``cache`` is neither a ``Cache`` nor None.
    """
    global _process_cache
    if cache is not None and not isinstance(cache, Cache):
        raise ValidationError(f"set_cache takes an xcs.models.Cache or None, got {cache!r}")
    _process_cache = cache
