"""Streaming: ``xcs.models.stream(model_id, prompt, **params)`` yields text chunks.

The same call path as ``xcs.models`` (limits, breaker, retries, deadlines, the cache),
with one difference that streaming forces: an attempt may be retried only while it
has delivered nothing. Once a chunk has reached the caller, a failure ends the stream
with a ``ProviderError`` (attribute ``partial``: the text delivered), because a retry
would deliver the text again.

NOTE: [Stream accounting]
A stream holds its concurrency slot from its first request until its last chunk is
read or it is closed (an abandoned stream is closed by the garbage collector, or
at once with ``close()`` or ``with``). It is charged tokens and cost as a call is.
A cache hit is one chunk (``cached=True``); a stream read to the end is stored, so
the next call, streamed or not, gets the same answer. Inside ``xcs.trace()`` its
``model`` span also records ``ttft_s``, the seconds to the first chunk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Any

from xcs._observe import _log, _spans
from xcs._runtime._deadline import current_deadline
from xcs.errors import ProviderError, ProviderTimeoutError, ValidationError
from xcs.models import _engine
from xcs.models._cache import cache_key, current_cache
from xcs.models._clock import get_clock
from xcs.models._limits import deadline_wait, estimate_tokens, hold
from xcs.models._params import ModelId, Params, parse_messages
from xcs.models._registry import registry
from xcs.models._types import Completion, Request, Response, Usage

__all__ = ["Stream", "open_stream"]


class Stream:
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
        self.model = model.base
        self._response: Response | None = None
        self._chunks: list[str] = []
        self._gen = _run(self, model, prompt, params)

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> str:
        return next(self._gen)

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
        if self._response is None:
            raise ValidationError(
                f"stream of {self.model}: .response is known once the stream has ended; "
                "iterate it to the end first"
            )
        return self._response

    def close(self) -> None:
        """Stop reading: the connection and the concurrency slot are released."""
        self._gen.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "ended" if self._response is not None else f"{len(self._chunks)} chunks so far"
        return f"<Stream {self.model}: {state}>"


def open_stream(model: ModelId, prompt: object, params: Params) -> Stream:
    """Check everything a call would (nothing is sent) and return the ``Stream``.

    Raises:
        ValidationError: as ``xcs.models``; also ``response_model=`` or ``tools=``,
            which a stream does not take.
    """
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
    return Stream(model, prompt, params)


def _run(
    stream: Stream, model: ModelId, prompt: object, params: Params
) -> Generator[str, None, None]:
    token = _log.new_call_id()
    span = None
    if _spans.active:
        span = _spans.begin(
            "model",
            model.base,
            model=model.base,
            provider=model.provider,
            call_id=_log.current_call_id(),
            site=_spans.call_site(),
            streamed=True,
        )
    started = get_clock().now()
    try:
        for chunk in _chunks(stream, model, prompt, params):
            if not stream._chunks and span is not None:
                span.attrs["ttft_s"] = get_clock().now() - started
            stream._chunks.append(chunk)
            yield chunk
    except BaseException as exc:
        if span is not None:
            span.fail(exc)
        raise
    finally:
        _log.reset_call_id(token)
        if span is not None:
            response = stream._response
            if response is not None:
                span.attrs["prompt_tokens"] = response.usage.prompt_tokens
                span.attrs["completion_tokens"] = response.usage.completion_tokens
                span.attrs["cost_usd"] = response.cost_usd
                span.attrs["cached"] = response.cached
            span.finish()


def _chunks(stream: Stream, model: ModelId, prompt: object, params: Params) -> Iterator[str]:
    cls = registry.provider_class(model.provider)
    messages = parse_messages(prompt, params.system)
    config = registry.endpoint_config(model, params)
    settings = registry.settings.resolve(model.provider, model.name, cls.defaults)
    request = Request(
        model=model.name,
        messages=messages,
        system=params.system,
        temperature=params.temperature,
        max_tokens=params.max_tokens,
        stop=params.stop,
        seed=params.seed,
        sample=params.sample,
        timeout=params.timeout if params.timeout is not None else _engine._get(settings, "timeout"),
    )
    attempts = (
        params.max_attempts
        if params.max_attempts is not None
        else _engine._get(settings, "max_attempts")
    )
    _engine._count(model.base, calls=1)
    clock = get_clock()
    start = clock.now()
    cache = current_cache() if params.cache else None
    key = cache_key(model, config, request) if cache is not None else None
    if cache is not None and key is not None:
        value = cache.get(key)
        if value is not None:
            _engine._count(model.base, cache_hits=1)
            stream._response = Response(
                value["text"],
                usage=Usage(int(value["prompt_tokens"]), int(value["completion_tokens"])),
                model=str(value["model"]),
                latency_s=clock.now() - start,
                cost_usd=None if value.get("cost_usd") is None else 0.0,
                finish_reason=value.get("finish_reason"),
                cached=True,
            )
            if value["text"]:
                yield value["text"]
            return

    endpoint = registry.endpoint(config, model.name)
    deadline = current_deadline()
    what = f"model call {model.base} (streamed)"
    limiters = registry.limiters(model, cls.defaults)
    tokens = estimate_tokens(
        request.prompt_chars(), request.max_tokens, cls.default_completion_tokens
    )
    threshold = int(_engine._get(settings, "failure_threshold"))
    error: ProviderError | None = None
    for attempt in range(attempts):
        pause = endpoint.paused_for(model.name)
        if pause > 0:
            clock.sleep(deadline_wait(deadline, pause, f"{what} (honouring a Retry-After)"))
        delivered: list[str] = []
        with hold(limiters, tokens, deadline, what):
            timeout, cut = _engine._attempt_timeout(request.timeout, deadline, what)
            try:
                admitted = endpoint.breaker.admit(
                    _engine._get(settings, "reset_after"), model.provider, model.name
                )
            except ProviderError as open_error:
                _engine._count(model.base, failures=1)
                _engine._refund(limiters, tokens)
                raise open_error from error
            _engine._count(model.base, attempts=1, retries=1 if attempt else 0)
            completion: Completion | None = None
            try:
                events = endpoint.provider.stream(
                    dataclasses.replace(request, timeout=timeout, attempt=attempt)
                )
                try:
                    for event in events:
                        if isinstance(event, Completion):
                            completion = event
                        elif event:
                            delivered.append(event)
                            yield event
                finally:
                    close = getattr(events, "close", None)
                    if close is not None:
                        close()
                if completion is None:
                    raise ProviderError(
                        f"{model.base}: the stream ended before the answer was complete"
                    )
            except ProviderError as err:
                endpoint.breaker.record(
                    admitted, failed=bool(getattr(err, "server_fault", False)), threshold=threshold
                )
                _engine._refund(limiters, tokens)
                if delivered:
                    _engine._count(model.base, failures=1)
                    raise _interrupted(err, model, "".join(delivered)) from err
                error = err
            except BaseException:
                endpoint.breaker.abandon(admitted)
                _engine._refund(limiters, tokens)
                raise
            else:
                endpoint.breaker.record(admitted, failed=False, threshold=threshold)
                text = "".join(delivered)
                completion = dataclasses.replace(completion, text=text)
                response = _engine._response(model, endpoint, completion, limiters, tokens, start)
                stream._response = response
                if cache is not None and key is not None:
                    cache.put(
                        key,
                        {
                            "text": response.text,
                            "prompt_tokens": response.usage.prompt_tokens,
                            "completion_tokens": response.usage.completion_tokens,
                            "finish_reason": response.finish_reason,
                            "model": response.model,
                            "cost_usd": response.cost_usd,
                        },
                    )
                return
        # Nothing was delivered: retry as a call would.
        assert error is not None
        _engine._describe(error, model, attempt + 1, endpoint)
        if (
            cut
            and isinstance(error, ProviderTimeoutError)
            and _engine._timed_out_at(error, timeout)
        ):
            assert deadline is not None
            _engine._count(model.base, failures=1)
            raise deadline.timeout_error(where=what) from error
        if not getattr(error, "retryable", False):
            _engine._count(model.base, failures=1)
            raise error
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after > _engine._get(settings, "max_retry_after"):
            break
        if retry_after is not None:
            endpoint.pause(model.name, retry_after)
        if attempt + 1 == attempts:
            break
        delay = _engine._backoff(settings, attempt)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if deadline is not None and delay >= deadline.remaining():
            _engine._count(model.base, failures=1)
            raise deadline.timeout_error(where=f"{what} (a retry would start too late)") from error
        clock.sleep(delay)
    assert error is not None
    _engine._count(model.base, failures=1)
    raise _engine._final(error, model)


def _interrupted(error: ProviderError, model: ModelId, partial: str) -> ProviderError:
    """The error that ends a stream after some text was delivered: the failure's own
    class (a ``ProviderError``), saying so, with the text delivered as ``partial``."""
    context: dict[str, Any] = {
        k: v for k, v in vars(error).items() if k not in ("message", "__notes__")
    }
    context.update(partial=partial, retryable=False, provider=model.provider, model=model.name)
    said = (
        error.message if error.message.startswith(model.base) else f"{model.base}: {error.message}"
    )
    return type(error)(
        f"{said} (the stream broke after {len(partial)} characters; not retried, since "
        "they were delivered)",
        **context,
    )
