"""What an HTTP failure means for a retry, shared by every HTTP provider.

See NOTE: [Failure classes] in ``_base``. The status decides, never the SDK's class
name, so a provider behind a proxy that answers 503 is treated like one that
answers 503 itself.
"""

from __future__ import annotations

import contextvars
import email.utils
import json
import re
import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from xcs.errors import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)
from xcs.models._base import mark, redact

__all__ = [
    "RETRYABLE_STATUS",
    "LoopClients",
    "account_limit_seconds",
    "broken_stream",
    "capture_headers",
    "hooks",
    "malformed",
    "map_sdk_error",
    "retry_after_seconds",
    "status_error",
    "token_count",
    "transport_errors",
]

# 408 request timeout, 409 a lock conflict, 499 the connection was cut, 5xx (529 is
# Anthropic's "overloaded"): all worth another try.
RETRYABLE_STATUS = frozenset({408, 409, 499})


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a response asks for: ``retry-after-ms``, else ``retry-after`` (seconds
    or an HTTP date, RFC 9110 §10.2.3). None when absent or unreadable."""
    if not headers:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# ---------------------------------------------------------------------------
# Account-wide rate limits (NOTE: [Adaptive concurrency] in ``_limits``)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(raw: str | None) -> float | None:
    """``1s``, ``6m0s``, ``20ms``, ``0.5`` (seconds), or an RFC 3339 / HTTP date."""
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    parts = _DURATION.findall(raw)
    if parts and "".join(n + u for n, u in parts) == raw:
        return sum(float(n) * _UNIT[u] for n, u in parts)
    try:
        import datetime

        when = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
    return max(0.0, when.timestamp() - time.time())


# (remaining, reset) header pairs: OpenAI's and OpenAI-compatible servers', Anthropic's.
_ACCOUNT_HEADERS = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"),
)


def account_limit_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds until the account may send again when a response says its request or
    token allowance is used up (``x-ratelimit-remaining-requests: 0`` and the like),
    else None. An unreadable reset header counts as one second."""
    if not headers:
        return None
    # httpx's headers (every SDK's): one pass over the raw names, since a lookup by
    # name scans them all, and most responses have none of these (about 11 µs a
    # response for the four lookups; every name below contains "ratelimit").
    raw = getattr(headers, "raw", None)
    if isinstance(raw, list) and not any(b"ratelimit" in name.lower() for name, _ in raw):
        return None
    wait: float | None = None
    for remaining, reset in _ACCOUNT_HEADERS:
        raw = headers.get(remaining)
        if raw is None:
            continue
        try:
            left = float(raw)
        except ValueError:
            continue
        if left > 0:
            continue
        seconds = _duration(headers.get(reset))
        seconds = 1.0 if seconds is None else seconds
        wait = seconds if wait is None else max(wait, seconds)
    return wait


_seen: contextvars.ContextVar[list[Mapping[str, str]] | None] = contextvars.ContextVar(
    "xcs_response_headers", default=None
)


@contextmanager
def capture_headers() -> Iterator[list[Mapping[str, str]]]:
    """Collect the headers of the HTTP responses the SDK receives in this context
    (one attempt): the engine reads account-wide limits from them."""
    box: list[Mapping[str, str]] = []
    token = _seen.set(box)
    try:
        yield box
    finally:
        _seen.reset(token)


def _observe(response: Any) -> None:
    box = _seen.get()
    if box is not None:
        box.append(response.headers)


async def _aobserve(response: Any) -> None:
    _observe(response)


def hooks(asynchronous: bool = False) -> dict[str, list[Any]]:
    """``event_hooks`` for an SDK's httpx client that feed ``capture_headers``."""
    return {"response": [_aobserve if asynchronous else _observe]}


class LoopClients:
    """One async SDK client per event loop, closed while its loop shuts down.

    An async connection pool belongs to the loop that opened it, so each loop gets
    its own client. It is closed by an async generator's ``finally``: the loop
    finalises unfinished async generators as it shuts down (``asyncio.run`` does,
    through ``loop.shutdown_asyncgens``), while it can still await, so no socket is
    left for the garbage collector (and its ``ResourceWarning``).
    """

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._keepers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    async def get(self) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:  # no await until stored: no other task of this loop interleaves
            client = self._clients[loop] = self._make()
            keeper = _keep(client)
            self._keepers[loop] = keeper
            await keeper.__anext__()
        return client


async def _keep(client: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await client.close()


def status_error(
    provider: str,
    model: str,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    """The XCS error for an HTTP error status (``detail``: the server's message,
    already redacted of keys)."""
    where = f"{provider}:{model}"
    ctx: dict[str, Any] = {"provider": provider, "model": model, "status": status}
    if status == 429:
        error = mark(
            RateLimitError(f"{where}: HTTP 429 rate limited: {detail}", **ctx),
            retryable=True,
            server_fault=False,
            retry_after=retry_after_seconds(headers),
        )
        account = account_limit_seconds(headers)
        if account is not None:
            error.account_reset = account  # type: ignore[attr-defined]
        return error
    if status in (401, 403):
        return mark(
            AuthenticationError(
                f"{where}: HTTP {status}: the provider refused the key: {detail}", **ctx
            ),
            retryable=False,
        )
    if status >= 500 or status in RETRYABLE_STATUS:
        return mark(
            ProviderError(f"{where}: HTTP {status}: {detail}", **ctx),
            retryable=True,
            retry_after=retry_after_seconds(headers),
        )
    if status == 402:  # payment required: an account matter, not the request's
        return mark(ProviderError(f"{where}: HTTP 402: {detail}", **ctx), retryable=False)
    return mark(InvalidRequestError(f"{where}: HTTP {status}: {detail}", **ctx), retryable=False)


def malformed(provider: str, model: str, detail: str, key: str | None) -> ProviderError:
    """The (retryable) error for an answer that is not what the API promises."""
    return mark(
        ProviderError(
            f"{provider}:{model}: malformed response: {redact(detail, key)[:300]}",
            provider=provider,
            model=model,
        ),
        retryable=True,
    )


def token_count(usage: Any, field: str) -> int | None:
    """``usage.<field>`` as a token count: 0 when the server left it out (some
    OpenAI-compatible servers do), None when it is there but not an int >= 0. A
    count like ``"lots"`` or ``-5`` is a malformed answer, not a number to charge to
    the token limits (a negative charge would refill the ``tpm`` bucket)."""
    value = getattr(usage, field, None)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def map_sdk_error(
    sdk: Any,
    provider: str,
    exc: BaseException,
    model: str,
    key: str | None = None,
    *,
    timeout: float | None = None,
) -> ProviderError:
    """The XCS error for an exception of an official provider SDK (``openai`` or
    ``anthropic``: they share their exception classes' names), most specific match
    first. The caller raises it ``from exc``. Messages are redacted of ``key``."""
    where = f"{provider}:{model}"
    ctx: dict[str, Any] = {"provider": provider, "model": model}
    detail = redact(str(getattr(exc, "message", None) or exc), key)[:500]
    if isinstance(exc, sdk.APITimeoutError):
        return mark(
            ProviderTimeoutError(f"{where}: request timed out", timeout=timeout, **ctx),
            retryable=True,
        )
    if isinstance(exc, sdk.APIConnectionError):
        return mark(ProviderError(f"{where}: connection failed: {detail}", **ctx), retryable=True)
    if isinstance(exc, sdk.APIStatusError):
        headers = getattr(exc.response, "headers", None)
        return status_error(provider, model, int(exc.status_code), detail, headers)
    if isinstance(exc, sdk.APIResponseValidationError | json.JSONDecodeError):
        return mark(ProviderError(f"{where}: malformed response: {detail}", **ctx), retryable=True)
    # Classes only some SDK versions have: isinstance(x, ()) is False.
    if isinstance(exc, getattr(sdk, "RetryableError", ())):
        return mark(ProviderError(f"{where}: {detail}", **ctx), retryable=True)
    if isinstance(exc, getattr(sdk, "CredentialsError", ())):
        return mark(
            AuthenticationError(f"{where}: no usable credentials: {detail}", **ctx),
            retryable=False,
        )
    # Anything else the SDK raises (a client-side check, a parse helper's finish-reason
    # error) is not transient.
    return mark(ProviderError(f"{where}: {type(exc).__name__}: {detail}", **ctx), retryable=False)


def transport_errors() -> tuple[type[BaseException], ...]:
    """httpx's errors for a connection that breaks mid-body (the SDKs' transport,
    loaded with them; never imported here)."""
    httpx = sys.modules.get("httpx")
    return (httpx.HTTPError, httpx.StreamError) if httpx is not None else ()


def broken_stream(provider: str, model: str, exc: BaseException) -> ProviderError:
    """The error of a stream whose connection broke (retryable: before the first
    chunk the engine tries again; after it, ``_send`` ends the stream)."""
    return mark(
        ProviderError(f"{provider}:{model}: the connection broke: {exc}", provider=provider),
        retryable=True,
    )
