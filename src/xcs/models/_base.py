"""The provider interface: one method, ``complete(request) -> Completion``.

A provider is one *endpoint* of one model service (a base URL with a key, the
simulator with its options). It makes exactly one attempt per call and reports a
failure by raising an ``xcs.ProviderError`` subclass with ``retryable`` set, the
SDK's exception chained (``raise ... from exc``). Everything else (limits,
retries, backoff, the breaker, the cache, deadlines) is the model layer's, shared
by every provider, so a provider is a thin translation of one request.

NOTE: [Failure classes]
``retryable=True`` marks what may succeed when tried again: 429, 5xx, 408/409,
timeouts, connection errors, malformed answers. ``server_fault=True`` (the default
for retryable errors other than 429) marks what counts against the endpoint's
circuit breaker: a 429 means the server is up, only busy. Anything else (400, 401,
403, 404, 422) is raised after the first attempt.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, ClassVar

from xcs.errors import ProviderError
from xcs.models._params import Params
from xcs.models._types import Completion, Request

__all__ = [
    "EndpointConfig",
    "MockProvider",
    "Provider",
    "fingerprint",
    "mark",
    "redact",
    "scrub",
]


def fingerprint(secret: str | None) -> str:
    """A short, one-way name for a key: endpoints with different keys get different
    clients without the key being kept anywhere it could be printed."""
    if not secret:
        return ""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of the given secrets replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def scrub(exc: BaseException, *secrets: str | None) -> BaseException:
    """Remove ``secrets`` from an SDK exception's message, args and body, in place.

    SDK exceptions are chained as ``__cause__`` and printed with every traceback;
    a server that quotes the key it refused ("Incorrect API key provided: sk-...")
    would otherwise put the key in the caller's logs. Only SDK exceptions are
    scrubbed, never the user's own.
    """
    if not any(secrets):
        return exc
    exc.args = tuple(_scrubbed(a, secrets) for a in exc.args)
    for name in ("message", "body"):
        value = getattr(exc, name, None)
        if value is not None:
            with contextlib.suppress(AttributeError):  # a read-only property: leave it
                setattr(exc, name, _scrubbed(value, secrets))
    return exc


def _scrubbed(value: Any, secrets: tuple[str | None, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, *secrets)
    if isinstance(value, dict):
        return {k: _scrubbed(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, secrets) for v in value]
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class EndpointConfig:
    """Where a provider sends: its name, base URL, key and options.

    The key is held out of the repr and out of equality (``key_id``, a one-way
    fingerprint, stands for it). Not constructed by users.
    """

    provider: str
    base_url: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False, compare=False)
    key_id: str = ""
    options: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        """A printable name: the provider and where it sends, never the key."""
        where = self.base_url or "default"
        opts = "&".join(f"{k}={v}" for k, v in self.options)
        return f"{self.provider}@{where}" + (f"?{opts}" if opts else "")


class Provider(abc.ABC):
    """One endpoint of one model service. Subclass it to add a provider.

    Class attributes:
        name: the provider's prefix in model ids (``"openai"``).
        simulated: True for the simulator; shown in reprs and docs.
        params: the model parameters it supports (others are a ValidationError).
        defaults: reliability settings it starts with (see ``xcs.models.configure``).
        env_key: the environment variable holding its key, if it needs one (then
            ``api_key=`` is accepted too).
        prices: USD per million (prompt, completion) tokens, by model name prefix.
    """

    name: ClassVar[str] = ""
    simulated: ClassVar[bool] = False
    params: ClassVar[frozenset[str]] = frozenset(
        {"system", "temperature", "max_tokens", "stop", "seed"}
    )
    defaults: ClassVar[Mapping[str, Any]] = {}
    env_key: ClassVar[str | None] = None
    prices: ClassVar[Mapping[str, tuple[float, float]]] = {}
    takes_base_url: ClassVar[bool] = False  # accepts base_url= (OpenAI-compatible servers)
    takes_options: ClassVar[bool] = False  # accepts "?key=value" options in the model id
    # Tokens a request reserves for its answer when it sets no max_tokens (tpm limit).
    default_completion_tokens: ClassVar[int] = 256
    # Made in the background at ``xcs.models.bind`` (an SDK import and a client that
    # take seconds), so the first call does not pay for them.
    warm_up: ClassVar[bool] = False

    @classmethod  # noqa: B027 - most providers add no checks of their own
    def check_params(cls, model: str, params: Params) -> None:
        """Raise ``xcs.ValidationError`` for a model name or parameter values this
        provider cannot take (beyond the common checks). Called before anything is sent."""

    @abc.abstractmethod
    def complete(self, request: Request) -> Completion:
        """Make one attempt. Raise an ``xcs.ProviderError`` (see NOTE: [Failure classes])."""

    def stream(self, request: Request) -> Iterator[str | Completion]:
        """Make one attempt, streamed: yield the text in chunks as it arrives, then one
        ``Completion`` (the whole text, usage, finish reason). Raise as ``complete``
        does; a failure after the first chunk ends the stream (``xcs.models.stream``).

        The default makes one ``complete`` call and yields its text as one chunk, so
        every provider can be streamed; providers that can stream override it.
        """
        completion = self.complete(request)
        if completion.text:
            yield completion.text
        yield completion

    async def acomplete(self, request: Request) -> Completion:
        """``complete`` for asyncio (``xcs.models.acall``). Providers with an async
        client override it; this default runs ``complete`` in a worker thread, so a
        provider written for threads still never blocks the event loop."""
        import asyncio

        return await asyncio.to_thread(self.complete, request)

    async def astream(self, request: Request) -> AsyncIterator[str | Completion]:
        """``stream`` for asyncio (``xcs.models.astream``): the same events, awaited.

        Providers with an async client override it. The default never blocks the
        event loop: a provider that streams only with threads (it overrides
        ``stream``) has each event read in a worker thread; one that does not stream
        at all answers with one ``acomplete`` call, its text as one chunk.
        """
        import asyncio

        if type(self).stream is Provider.stream:
            completion = await self.acomplete(request)
            if completion.text:
                yield completion.text
            yield completion
            return
        events = iter(self.stream(request))
        end = object()
        try:
            while (event := await asyncio.to_thread(next, events, end)) is not end:
                yield event  # type: ignore[misc]  # a str or a Completion, not `end`
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                # A worker may still be inside next() (this task was cancelled while
                # it waited): the generator cannot be closed then, and is closed by
                # the garbage collector once that next() returns.
                with contextlib.suppress(ValueError):
                    close()

    def close(self) -> None:  # noqa: B027 - most providers hold nothing to close
        """Release connections; called once, at exit or when the endpoint is dropped."""

    def price(self, model: str) -> tuple[float, float] | None:
        """USD per million prompt and completion tokens for ``model``, if known.

        The longest matching prefix wins, so ``gpt-4o-mini`` is not priced as ``gpt-4o``.
        """
        best: str | None = None
        for prefix in self.prices:
            if model.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return None if best is None else self.prices[best]

    def __repr__(self) -> str:
        label = " (simulator)" if self.simulated else ""
        return f"<{type(self).__name__} {self.name}{label}>"


def mark(
    error: ProviderError,
    *,
    retryable: bool,
    server_fault: bool | None = None,
    status: int | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """Set the failure class of ``error`` (NOTE: [Failure classes]) and return it."""
    # Set as context attributes (XCSError keeps context in __dict__ and pickles it).
    setattr(error, "retryable", retryable)  # noqa: B010
    setattr(error, "server_fault", retryable if server_fault is None else server_fault)  # noqa: B010
    if status is not None:
        setattr(error, "status", status)  # noqa: B010
    if retry_after is not None:
        setattr(error, "retry_after", retry_after)  # noqa: B010
    return error


class MockProvider(Provider):
    """A provider that answers with a function of the request: for tests.

    ``handler(request)`` returns a ``Completion`` or a plain ``str``, or raises (an
    ``xcs.ProviderError`` marked with ``mark`` to exercise retries). Register it
    under a name of your own::

        xcs.models.register_provider("mock", MockProvider(lambda r: r.messages[-1].content))
        xcs.models("mock:any", "hello")          # -> "hello"
    """

    name = "mock"
    params = frozenset({"system", "temperature", "max_tokens", "stop", "seed"})

    def __init__(self, handler: Callable[[Request], Completion | str]) -> None:
        self.handler = handler
        self.requests: list[Request] = []

    def complete(self, request: Request) -> Completion:
        self.requests.append(request)
        out = self.handler(request)
        return out if isinstance(out, Completion) else Completion(out)
