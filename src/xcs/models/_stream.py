"""Streaming: ``xcs.models.stream(model_id, prompt, **params)`` yields text chunks.

A stream is one ordinary model call (``_engine.call``: limits, breaker, retries,
deadlines, cache, span, statistics), made on a thread of its own, whose attempts are
made with ``Provider.stream`` instead of ``complete`` (``_send``): each chunk goes
through a queue to the caller as it arrives. Its async twin,
``xcs.models.astream``, is one ``_engine.acall`` made in a task of its own, whose
attempts are made with ``Provider.astream``; the same notes hold for both.

NOTE: [Streams retry before the first chunk]
An attempt that fails before any chunk reached the caller is retried as any call's
would be. Once a chunk was delivered, a failure ends the stream: it is raised as a
``ProviderError`` of the failure's class, marked not retryable, with the delivered
text as ``partial``, because a retry would deliver that text again.

NOTE: [Stream accounting]
A stream holds its concurrency slot from its request until its last chunk is read,
or until it is closed (``close()`` / ``await aclose()``, ``with`` / ``async with``,
or the garbage collector). It is
charged tokens and cost as a call is. A cache hit (or an identical call in flight)
is one chunk (``cached=True``); a stream read to the end is stored like any answer.
Inside ``xcs.trace()`` its ``model`` span also has ``streamed`` and ``ttft_s``, the
seconds from the span's start to the first chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
import time
from types import TracebackType
from typing import Any

from xcs._observe import _spans
from xcs.errors import ValidationError
from xcs.models import _engine
from xcs.models._params import ModelId, Params, parse_messages
from xcs.models._registry import registry
from xcs.models._send import chunk_sink
from xcs.models._types import Response

__all__ = ["AsyncStream", "Stream", "open_astream", "open_stream"]


class _Closed(BaseException):
    """Raised into the stream's call when the caller closed the stream: it unwinds
    the attempt (the connection closed, the slot released, the breaker not told)."""


_CHUNK, _DONE, _ERROR = "chunk", "done", "error"


class _Chunks:
    """What a stream and its async twin share: the chunks delivered, the answer."""

    def __init__(self, model: ModelId, prompt: object, params: Params) -> None:
        self.model = model.base
        self._call = (model, prompt, params)
        self._chunks: list[str] = []
        self._response: Response | None = None
        self._finished = False

    def _event(self, kind: str, value: Any) -> str | None:
        """The chunk an event delivers, or None when the stream has ended (raised
        if it ended with an error)."""
        if kind == _CHUNK:
            self._chunks.append(value)
            return str(value)
        self._finished = True
        if kind == _ERROR:
            raise value
        response: Response = value
        self._response = response
        if not self._chunks and response.text:
            # Answered without chunks (the cache, an identical call): one chunk.
            self._chunks.append(response.text)
            return response.text
        return None

    @property
    def text(self) -> str:
        """The text delivered so far."""
        return "".join(self._chunks)

    @property
    def response(self) -> Response:
        """The whole answer, once the stream has ended.

        Raises:
            ValidationError: the stream has not ended yet (iterate it to the end).
        """
        if self._response is None or (
            self._response.text and not self._chunks  # the one chunk not yet read
        ):
            raise ValidationError(
                f"stream of {self.model}: .response is known once the stream has ended; "
                "iterate it to the end first"
            )
        return self._response

    def __repr__(self) -> str:
        state = "ended" if self._finished else f"{len(self._chunks)} chunks so far"
        return f"<{type(self).__name__} {self.model}: {state}>"


class Stream(_Chunks):
    """The chunks of one streamed model call: iterate for ``str`` chunks; once the
    iteration has ended, ``response`` is the whole answer (a ``Response`` with usage
    and cost), and ``"".join(chunks) == response``.

    Not constructed by users: ``xcs.models.stream(...)`` or ``binding.stream(...)``.
    Nothing is sent until the first chunk is asked for. A context manager: leaving
    the block closes the stream (releasing its connection and its slot).

    Example::

        stream = xcs.models.stream("openai:gpt-4o-mini", "Tell me a story")
        for chunk in stream:
            print(chunk, end="", flush=True)
        stream.response.usage, stream.response.cost_usd
    """

    def __init__(self, model: ModelId, prompt: object, params: Params) -> None:
        super().__init__(model, prompt, params)
        self._events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Shared with the call's thread, which holds no reference to the stream, so an
        # abandoned stream is collected (and closes) while its call runs.
        self._closing = threading.Event()

    # -- the caller's side ----------------------------------------------------------

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> str:
        if self._finished or self._closing.is_set():
            raise StopIteration
        if self._thread is None:
            self._start()
        chunk = self._event(*self._events.get())
        if chunk is None:
            raise StopIteration
        return chunk

    def close(self) -> None:
        """Stop reading. Returns at once; the call stops at its next chunk (its
        connection closed, its slot released) without waiting for the rest."""
        self._closing.set()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self._closing.set()  # an abandoned stream stops at its next chunk

    # -- the call's side --------------------------------------------------------------

    def _start(self) -> None:
        # The call runs in a copy of the caller's context: its deadline, its cache and
        # its trace (the model span's parent is the caller's current span).
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run,
            args=(_produce, self._call, self._events, self._closing),
            name="xcs-stream",
            daemon=True,
        )
        self._thread.start()


def _produce(
    call: tuple[ModelId, object, Params],
    events: queue.SimpleQueue[tuple[str, Any]],
    closing: threading.Event,
) -> None:
    """The stream's model call, on its own thread: chunks, then the answer or the
    error, into ``events``."""
    first = True

    def sink(chunk: str) -> None:
        nonlocal first
        if closing.is_set():
            raise _Closed("the caller closed the stream")
        if first:
            first = False
            _first_chunk()
        events.put((_CHUNK, chunk))

    chunk_sink.set(sink)
    model, prompt, params = call
    try:
        response = _engine.call(model, prompt, params)
    except _Closed:
        return
    except BaseException as exc:  # handed to the caller, raised by __next__
        events.put((_ERROR, exc))
    else:
        events.put((_DONE, response))


def _first_chunk() -> None:
    """Record time to first token on the model span (the current span of the call)."""
    span = _spans.current_span()
    if span is not None and span.kind == "model":
        span.attrs["streamed"] = True
        span.attrs["ttft_s"] = time.perf_counter() - span.start


# ---------------------------------------------------------------------------
# The async twin


class AsyncStream(_Chunks):
    """``Stream`` for asyncio: ``async for chunk in stream``; then ``response``.

    Not constructed by users: ``xcs.models.astream(...)`` or ``binding.astream(...)``.
    Nothing is sent until the first chunk is awaited. The call is one
    ``xcs.models.acall`` (the same limits, breaker, retries, cache, deadline and
    span as every call), made in a task of its own on the running event loop, whose
    attempts are made with the provider's ``astream``; chunks come through a queue.
    An async context manager: leaving the block closes the stream (the task is
    cancelled: its connection closed, its slot released).

    Example::

        async with xcs.models.astream("openai:gpt-4o-mini", "Tell me a story") as stream:
            async for chunk in stream:
                print(chunk, end="", flush=True)
        stream.response.usage
    """

    def __init__(self, model: ModelId, prompt: object, params: Params) -> None:
        super().__init__(model, prompt, params)
        self._events: asyncio.Queue[tuple[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> str:
        if self._finished or self._closed:
            raise StopAsyncIteration
        if self._events is None:
            self._events = asyncio.Queue()
            # create_task runs the call in a copy of this context: the caller's
            # deadline, cache and trace, as for the sync stream's thread.
            self._task = asyncio.create_task(_aproduce(self._call, self._events))
        chunk = self._event(*await self._events.get())
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Stop reading: the call is cancelled (its connection closed, its slot
        released) and awaited. A stream that has ended is left as it is."""
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # An abandoned stream: cancel its call (the task holds no reference to the
        # stream, so this runs while the call does). From the loop's own thread or
        # another, so through call_soon_threadsafe; a closed loop has nothing left.
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):
                task.get_loop().call_soon_threadsafe(task.cancel)


async def _aproduce(
    call: tuple[ModelId, object, Params], events: asyncio.Queue[tuple[str, Any]]
) -> None:
    """The async stream's model call, in its own task: chunks, then the answer or
    the error, into ``events``."""
    first = True

    def sink(chunk: str) -> None:
        nonlocal first
        if first:
            first = False
            _first_chunk()
        events.put_nowait((_CHUNK, chunk))

    chunk_sink.set(sink)  # in this task's own context
    model, prompt, params = call
    try:
        response = await _engine.acall(model, prompt, params)
    except BaseException as exc:  # handed to the caller, raised by __anext__
        # Cancelled by aclose (nobody reads), or by someone else: the reader then
        # sees the CancelledError rather than waiting for ever.
        events.put_nowait((_ERROR, exc))
        if isinstance(exc, asyncio.CancelledError):
            raise
    else:
        events.put_nowait((_DONE, response))


def _check_streamable(model: ModelId, prompt: object, params: Params) -> None:
    given = [name for name in ("response_model", "tools") if getattr(params, name)]
    if given:
        raise ValidationError(
            f"{model.base}: a stream yields text; {' and '.join(given)} "
            "cannot be streamed (call xcs.models(...) instead)",
            parameters=tuple(given),
        )
    cls = registry.provider_class(model.provider)
    _engine._check_supported(cls, model, params)
    parse_messages(prompt, params.system)


def open_astream(model: ModelId, prompt: object, params: Params) -> AsyncStream:
    """Check everything a call would (nothing is sent) and return the ``AsyncStream``.

    Raises: as ``open_stream``.
    """
    _check_streamable(model, prompt, params)
    return AsyncStream(model, prompt, params)


def open_stream(model: ModelId, prompt: object, params: Params) -> Stream:
    """Check everything a call would (nothing is sent) and return the ``Stream``.

    Raises:
        ValidationError: as ``xcs.models``; also ``response_model=`` or ``tools=``,
            which a stream does not take.
    """
    _check_streamable(model, prompt, params)
    return Stream(model, prompt, params)
