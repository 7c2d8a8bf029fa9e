"""One attempt as the engine makes it: ``send(provider, request) -> Completion``.

The engine's only hook into the features below (so the call path stays one):

- **structured output**: a reply to ``response_model=`` is checked against the
  schema here, inside the attempt, so one that does not validate is retried like a
  malformed answer (NOTE: [Invalid replies are retried] in ``_structured``);
- **streaming**: inside ``xcs.models.stream`` / ``astream`` (``chunk_sink`` is
  set), the attempt is made with ``provider.stream`` / ``provider.astream``, each
  chunk handed to the sink as it arrives (NOTE: [Streams retry before the first
  chunk] in ``_stream``).
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable
from typing import Any

from xcs.errors import ProviderError
from xcs.models._base import Provider, mark
from xcs.models._types import Completion, Request

__all__ = ["asend", "chunk_sink", "send"]

# Where the chunks of the attempt being made go: set by ``xcs.models.stream`` around
# its one model call, None otherwise.
chunk_sink: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "xcs_chunk_sink", default=None
)


def send(provider: Provider, request: Request) -> Completion:
    """Make one attempt of ``request`` with ``provider`` (see the module docstring).

    Raises:
        ProviderError: the provider's failure; ``InvalidReply`` (retryable) for a
            reply that does not fit ``request.output``; after a chunk was delivered,
            a failure marked not retryable, with ``partial`` (the text delivered).
    """
    on_chunk = chunk_sink.get()
    if on_chunk is None:
        completion = provider.complete(request)
    else:
        token = chunk_sink.set(None)  # model calls the provider makes are not streamed
        try:
            completion = _drain(provider, request, on_chunk)
        finally:
            chunk_sink.reset(token)
    if request.output is not None:
        request.output.check(completion.text)
    return completion


async def asend(provider: Provider, request: Request) -> Completion:
    """``send`` for the async driver: ``provider.acomplete``, or inside
    ``xcs.models.astream`` (``chunk_sink`` is set) ``provider.astream``."""
    on_chunk = chunk_sink.get()
    if on_chunk is None:
        acomplete: Any = getattr(provider, "acomplete")  # noqa: B009 - not on every Provider
        completion: Completion = await acomplete(request)
    else:
        token = chunk_sink.set(None)  # model calls the provider makes are not streamed
        try:
            completion = await _adrain(provider, request, on_chunk)
        finally:
            chunk_sink.reset(token)
    if request.output is not None:
        request.output.check(completion.text)
    return completion


def _drain(provider: Provider, request: Request, on_chunk: Callable[[str], None]) -> Completion:
    delivered: list[str] = []
    events = provider.stream(request)
    try:
        for event in events:
            if isinstance(event, Completion):
                return _whole(event, delivered)
            if event:
                delivered.append(event)
                on_chunk(event)
        raise _ended_early(provider, request)
    except ProviderError as err:
        if not delivered:
            raise  # nothing reached the caller: the engine may retry
        raise interrupted(err, "".join(delivered)) from err
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


async def _adrain(
    provider: Provider, request: Request, on_chunk: Callable[[str], None]
) -> Completion:
    """``_drain`` for ``provider.astream`` (the same rules, see ``send``)."""
    delivered: list[str] = []
    astream: Any = getattr(provider, "astream", None)
    events: AsyncIterator[str | Completion] = (
        astream(request) if astream is not None else Provider.astream(provider, request)
    )
    try:
        async for event in events:
            if isinstance(event, Completion):
                return _whole(event, delivered)
            if event:
                delivered.append(event)
                on_chunk(event)
        raise _ended_early(provider, request)
    except ProviderError as err:
        if not delivered:
            raise
        raise interrupted(err, "".join(delivered)) from err
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def _whole(event: Completion, delivered: list[str]) -> Completion:
    # The text is what was delivered, whatever the provider summed up.
    return Completion("".join(delivered), event.usage, event.finish_reason, event.tool_calls)


def _ended_early(provider: Provider, request: Request) -> ProviderError:
    return mark(
        ProviderError(f"{provider.name}:{request.model}: the stream ended early"),
        retryable=True,
    )


def interrupted(error: ProviderError, partial: str) -> ProviderError:
    """The error that ends a stream after text was delivered: the failure's class,
    saying so, not retryable, with the delivered text as ``partial``."""
    context = {k: v for k, v in vars(error).items() if k not in ("message", "__notes__")}
    context.update(partial=partial, retryable=False, server_fault=False)
    return type(error)(
        f"{error.message} (the stream broke after {len(partial)} characters were "
        "delivered; not retried, since a retry would deliver them again)",
        **context,
    )
