"""What the providers built on an official SDK share (``openai:``, ``anthropic:``).

Both SDKs have the same outline: a sync and an async client over httpx, one base
error class, a ``create`` that streams with ``stream=True``. So one class makes the
clients, sends an attempt sync or async, reads a stream sync or async and maps the
SDK's errors; each provider only says how it writes a request (``request_kwargs``),
reads an answer (``read_completion``) and adds up stream events (``events``).

One client per endpoint (base URL and key), shared by every thread for its
connection pool, with the SDK's own retries off: the model layer retries, so that
limits, the breaker and ``xcs.deadline`` see every attempt. ``xcs.models.acall``
and ``astream`` use the async client, one per event loop (an async connection pool
belongs to the loop that opened it). Both report their responses' headers to the
engine (``_http.hooks``: account-wide rate limits).
"""

from __future__ import annotations

import abc
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, ClassVar, Protocol

from xcs.errors import ProviderError
from xcs.models._base import EndpointConfig, Provider, scrub
from xcs.models._http import LoopClients, broken_stream, hooks, map_sdk_error, transport_errors
from xcs.models._types import Completion, Request

__all__ = ["SDKProvider", "StreamEvents"]


class StreamEvents(Protocol):
    """What the events of one streamed answer add up to."""

    def feed(self, event: Any) -> list[str]:
        """The text chunks ``event`` adds."""

    def completion(self) -> Completion:
        """The whole answer, once the events have ended (a retryable
        ``ProviderError`` if they ended too soon)."""


class SDKProvider(Provider):
    """One endpoint of a service with an official SDK. Not constructed by users;
    subclassed by ``OpenAIProvider`` and ``AnthropicProvider``."""

    takes_base_url = True
    defaults: ClassVar[Mapping[str, Any]] = {"concurrency": 64}
    warm_up = True  # the SDK import and client: made at bind, in the background
    # The SDK's client classes (sync, async) and its base error class, by name.
    client_classes: ClassVar[tuple[str, str]] = ("", "")
    error_class: ClassVar[str] = ""

    def __init__(self, endpoint: EndpointConfig) -> None:
        sdk = self.import_sdk()
        self.endpoint = endpoint
        self._key = endpoint.api_key
        self._sdk = sdk
        self._errors: tuple[type[BaseException], ...] = (
            getattr(sdk, self.error_class),
            json.JSONDecodeError,
        )
        sync_class, async_class = (getattr(sdk, name) for name in self.client_classes)
        self._client = sync_class(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            max_retries=0,  # the model layer retries (see the module docstring)
            http_client=sdk.DefaultHttpxClient(event_hooks=hooks()),
        )
        self._aclients = LoopClients(
            lambda: async_class(
                api_key=endpoint.api_key,
                base_url=endpoint.base_url,
                max_retries=0,
                http_client=sdk.DefaultAsyncHttpxClient(event_hooks=hooks(asynchronous=True)),
            )
        )

    # -- what each provider says --------------------------------------------------------

    @staticmethod
    @abc.abstractmethod
    def import_sdk() -> Any:
        """The SDK's module, or ``ProviderNotInstalledError`` naming the extra."""

    @staticmethod
    @abc.abstractmethod
    def create(client: Any, kwargs: dict[str, Any]) -> Any:
        """The SDK's create call on ``client`` (sync: the answer; async: awaitable)."""

    @abc.abstractmethod
    def request_kwargs(self, request: Request) -> dict[str, Any]:
        """The keyword arguments of ``create`` for ``request``."""

    @abc.abstractmethod
    def read_completion(self, out: Any, request: Request) -> Completion:
        """The ``Completion`` of the SDK's answer (``malformed`` if it is not one)."""

    @abc.abstractmethod
    def events(self, request: Request) -> StreamEvents:
        """A fresh accumulator of ``request``'s stream events."""

    def stream_kwargs(self, request: Request) -> dict[str, Any]:
        """``request_kwargs`` for a streamed answer."""
        return {**self.request_kwargs(request), "stream": True}

    # -- one attempt -------------------------------------------------------------------

    def price(self, model: str) -> tuple[float, float] | None:
        # Prices are the service's own: another server's (base_url) are unknown.
        return None if self.endpoint.base_url is not None else super().price(model)

    def complete(self, request: Request) -> Completion:
        kwargs = self.request_kwargs(request)
        try:
            out = self.create(self._client, kwargs)
        except self._errors as exc:
            raise self._failure(exc, request) from exc
        return self.read_completion(out, request)

    async def acomplete(self, request: Request) -> Completion:
        kwargs = self.request_kwargs(request)
        try:
            client = await self._aclients.get()
            out = await self.create(client, kwargs)
        except self._errors as exc:
            raise self._failure(exc, request) from exc
        return self.read_completion(out, request)

    def stream(self, request: Request) -> Iterator[str | Completion]:
        """The SDK's stream: each event's text as it arrives, then the answer."""
        state = self.events(request)
        try:
            events = self.create(self._client, self.stream_kwargs(request))
            try:
                for event in events:
                    yield from state.feed(event)
            finally:
                events.close()
        except (*self._errors, *transport_errors()) as exc:
            raise self._failure(exc, request) from exc
        yield state.completion()

    async def astream(self, request: Request) -> AsyncIterator[str | Completion]:
        """``stream`` on the async client (``xcs.models.astream``)."""
        state = self.events(request)
        try:
            client = await self._aclients.get()
            events = await self.create(client, self.stream_kwargs(request))
            try:
                async for event in events:
                    for text in state.feed(event):
                        yield text
            finally:
                await events.close()
        except (*self._errors, *transport_errors()) as exc:
            raise self._failure(exc, request) from exc
        yield state.completion()

    def _failure(self, exc: BaseException, request: Request) -> ProviderError:
        """The XCS error for what the SDK raised (its transport's errors, httpx's,
        are a connection that broke mid-stream). Keys are scrubbed from it first."""
        scrub(exc, self._key)
        if isinstance(exc, self._errors):
            return map_sdk_error(
                self._sdk, self.name, exc, request.model, self._key, timeout=request.timeout
            )
        return broken_stream(self.name, request.model, exc)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.endpoint.name}>"
