"""The call path every provider shares: check, cache, limits, breaker, attempt, retry.

One model call, in order::

    check params and messages       -> ValidationError before anything is sent
    resolve the endpoint            -> AuthenticationError if a key is missing
    cache (if on): hit / join an identical call in flight / make the call below
    for each attempt:
        wait out an account-wide pause of this model at this endpoint
        take a slot of the model's adaptive window at the endpoint, then the
          configured concurrency slots, then rpm and tpm tokens (model, provider)
        ask the model's breaker (CircuitOpenError: fail fast, nothing sent)
        provider.complete(request)  with timeout = min(per-call timeout, deadline left)
        success -> Response; a failure that cannot be retried -> raise it
        else back off: exponential, full jitter; a 429 waits its own Retry-After
    attempts used up -> the last error's class, "after N attempts", SDK error chained

The active ``xcs.deadline`` bounds all of it: no wait and no sleep is started that
would end after the deadline (``ExecutionTimeout`` is raised at once instead), and an
attempt the deadline cut short raises ``ExecutionTimeout``, not a provider timeout.

NOTE: [One core, two drivers]
The path above is written once, as a generator (``_core``) that *yields* what it
needs done: sleep, take a slot, send a request, wait for an identical call, run a
one-time setup. ``call`` drives it on the calling thread (blocking); ``acall``
drives it in an asyncio task (awaiting: the SDK's async client, ``asyncio.sleep``,
slots granted through the loop, setup in a worker thread). Limits, the cache, the
breaker, retries, statistics and the deadline are therefore the same objects for
threads and tasks: a concurrency limit of 4 holds across both at once.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Callable, Generator, Mapping
from typing import Any, NamedTuple

import xcs._observe as _observe
from xcs._observe import _counters, _spans
from xcs._observe._stats import model_counters
from xcs._runtime._deadline import Deadline, current_deadline
from xcs.errors import ProviderError, ProviderTimeoutError, RateLimitError, ValidationError
from xcs.models._base import EndpointConfig, Provider
from xcs.models._cache import _Flight, cache_key, current_cache
from xcs.models._clock import asleep, get_clock
from xcs.models._http import account_limit_seconds, capture_headers
from xcs.models._limits import (
    AdaptiveLimit,
    ConcurrencyLimit,
    Limiter,
    deadline_wait,
    estimate_tokens,
)
from xcs.models._params import MODEL_PARAMS, ModelId, Params, parse_messages
from xcs.models._registry import Endpoint, registry
from xcs.models._send import asend, send
from xcs.models._settings import Settings
from xcs.models._types import Completion, Request, Response, ToolCall, Usage

__all__ = ["ModelStatistics", "acall", "call", "reset_statistics", "statistics"]

logger = logging.getLogger("xcs.models")

# Jitter only spreads retries apart; it need not be reproducible, and the simulator's
# faults (which tests do reproduce) never depend on it.
_jitter = random.Random()


# ---------------------------------------------------------------------------
# Statistics


class ModelStatistics:
    """Counters of one model (``provider:model``) since the process started.

    Attributes: ``calls``, ``attempts``, ``retries``, ``rate_limited`` (attempts
    answered 429), ``failures`` (calls that raised a provider error), ``cache_hits``
    (coalesced calls included), ``prompt_tokens``,
    ``completion_tokens``, ``cost_usd`` (priced calls only).
    """

    __slots__ = (
        "attempts",
        "cache_hits",
        "calls",
        "completion_tokens",
        "cost_usd",
        "failures",
        "model",
        "prompt_tokens",
        "rate_limited",
        "retries",
    )

    def __init__(self, model: str) -> None:
        self.model = model
        self.calls = self.attempts = self.retries = self.failures = self.cache_hits = 0
        self.rate_limited = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.cost_usd = 0.0

    def copy(self) -> ModelStatistics:
        other = ModelStatistics(self.model)
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    def __repr__(self) -> str:
        return (
            f"ModelStatistics({self.model!r}, calls={self.calls}, attempts={self.attempts}, "
            f"retries={self.retries}, failures={self.failures}, cache_hits={self.cache_hits}, "
            f"tokens={self.prompt_tokens}+{self.completion_tokens}, cost_usd={self.cost_usd:.6f})"
        )


_stats_lock = threading.Lock()
_stats: dict[str, ModelStatistics] = {}


def _count(model: str, **increments: float) -> None:
    with _stats_lock:
        record = _stats.get(model)
        if record is None:
            record = _stats[model] = ModelStatistics(model)
        for name, amount in increments.items():
            setattr(record, name, getattr(record, name) + amount)


def statistics(*, reset: bool = False) -> dict[str, ModelStatistics]:
    """A snapshot of the counters of every model called so far (and, with ``reset``,
    zeroed in the same step, so no call is counted twice or lost)."""
    with _stats_lock:
        snapshot = {name: record.copy() for name, record in _stats.items()}
        if reset:
            _stats.clear()
        return snapshot


def reset_statistics() -> None:
    with _stats_lock:
        _stats.clear()


# NOTE: [Layers register their counters] in xcs._observe._counters
_counters.register("models", model_counters(statistics, registry.endpoints, current_cache))


# ---------------------------------------------------------------------------
# Effects: what the core asks its driver to do (NOTE: [One core, two drivers])


class _Sleep(NamedTuple):
    seconds: float


class _Slot(NamedTuple):
    limit: ConcurrencyLimit
    deadline: Deadline | None
    where: str


class _Send(NamedTuple):
    provider: Provider
    request: Request


class _Setup(NamedTuple):
    """One-time blocking work (an SDK import, a client): a worker thread under async."""

    fn: Callable[[], Any]


class _Wait(NamedTuple):
    flight: _Flight
    what: str


_Effect = _Sleep | _Slot | _Send | _Setup | _Wait
_Core = Generator[_Effect, Any, Response]

# The attempt's answer as the driver hands it back: the completion and the headers
# of the HTTP responses seen while it was made (account-wide limits live there).
_Answer = tuple[Completion, list[Mapping[str, str]]]


def _drive(core: _Core) -> Response:
    """Run the core on this thread, blocking."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = core.throw(error) if error is not None else core.send(value)
        except StopIteration as stop:
            result: Response = stop.value
            return result
        value = error = None
        try:
            if isinstance(effect, _Sleep):
                get_clock().sleep(effect.seconds)
            elif isinstance(effect, _Slot):
                effect.limit.acquire(effect.deadline, effect.where)
            elif isinstance(effect, _Send):
                with capture_headers() as seen:
                    # provider.complete, or .stream inside xcs.models.stream (_send)
                    value = (send(effect.provider, effect.request), seen)
            elif isinstance(effect, _Setup):
                value = effect.fn()
            else:
                effect.flight.wait(effect.what)
        except BaseException as exc:  # handed to the core, which decides
            error = exc


async def _adrive(core: _Core) -> Response:
    """Run the core in this asyncio task: every wait is awaited."""
    import asyncio

    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = core.throw(error) if error is not None else core.send(value)
        except StopIteration as stop:
            result: Response = stop.value
            return result
        value = error = None
        try:
            if isinstance(effect, _Sleep):
                await asleep(effect.seconds)
            elif isinstance(effect, _Slot):
                await effect.limit.aacquire(effect.deadline, effect.where)
            elif isinstance(effect, _Send):
                with capture_headers() as seen:
                    value = (await asend(effect.provider, effect.request), seen)
            elif isinstance(effect, _Setup):
                value = await asyncio.to_thread(effect.fn)
            else:
                await effect.flight.await_done(effect.what)
        except BaseException as exc:  # handed to the core, which decides
            error = exc


# ---------------------------------------------------------------------------
# One call


def call(model: ModelId, prompt: object, params: Params) -> Response:
    """Make one model call (see the module docstring). Used by ``xcs.models``.

    The call gets a correlation id for its log records and, inside ``xcs.trace()``,
    a ``model`` span (``xcs._observe.model_call``).
    """
    return _observe.model_call(
        _call_model, model.base, model.provider, prompt, model, prompt, params
    )


async def acall(model: ModelId, prompt: object, params: Params) -> Response:
    """``call`` for asyncio (``await xcs.models.acall(...)``): the same core, the
    same limits, cache, breaker, retries, statistics and deadline."""
    return await _observe.amodel_call(
        _adrive(_core(model, prompt, params)), model.base, model.provider, prompt
    )


def _call_model(model: ModelId, prompt: object, params: Params) -> Response:
    return _drive(_core(model, prompt, params))


def _core(model: ModelId, prompt: object, params: Params) -> _Core:
    cls = registry.provider_class(model.provider)
    _check_supported(cls, model, params)
    messages = parse_messages(prompt, params.system)
    config = registry.endpoint_config(model, params)
    settings = _settings_for(model.provider, model.name, cls)
    request = Request(
        model=model.name,
        messages=messages,
        system=params.system,
        temperature=params.temperature,
        max_tokens=params.max_tokens,
        stop=params.stop,
        seed=params.seed,
        sample=params.sample,
        timeout=params.timeout if params.timeout is not None else _get(settings, "timeout"),
        output=params.response_model,
        tools=params.tools,
        tool_choice=params.tool_choice,
    )
    attempts = (
        params.max_attempts if params.max_attempts is not None else _get(settings, "max_attempts")
    )
    _count(model.base, calls=1)
    cache = current_cache() if params.cache else None
    if cache is None:
        endpoint = yield from _endpoint(config, model.name)
        return (yield from _attempts(model, cls, endpoint, settings, request, attempts))

    start = get_clock().now()
    key = cache_key(model, config, request)
    what = f"model call {model.base}"
    while True:
        state, found = cache.claim(key, _usable)
        if state == "hit":
            value = found
            break
        if state == "wait":
            yield _Wait(found, what)
            if found.value is None:
                continue  # the identical call failed: make our own (claim again)
            cache.coalesced()
            value = found.value
            break
        stored: dict[str, Any] | None = None
        try:
            endpoint = yield from _endpoint(config, model.name)
            response = yield from _attempts(model, cls, endpoint, settings, request, attempts)
            stored = _value(response)
        finally:
            cache.settle(key, found, stored)
        return response
    _count(model.base, cache_hits=1)
    if request.temperature != 0 and "sample" not in params.model_fields_set and params.seed is None:
        cache.warn_repeated_sample(model.base)
    return _cached_response(value, start)


# Settings resolved per (provider, model, provider class), reused while the settings
# store is the same and its version unchanged (every configure and clear bumps it):
# resolving merges the scopes and validates a pydantic model, some 15 µs that every
# call paid otherwise. Read and replaced without a lock: a stale entry fails the
# version check and is resolved again.
_resolved: dict[tuple[str, str, type[Provider]], tuple[object, int, Settings]] = {}
_RESOLVED_MAX = 1024


def _settings_for(provider: str, model: str, cls: type[Provider]) -> Settings:
    store = registry.settings
    version = store.version
    key = (provider, model, cls)
    found = _resolved.get(key)
    if found is not None and found[0] is store and found[1] == version:
        return found[2]
    settings = store.resolve(provider, model, cls.defaults)
    if len(_resolved) >= _RESOLVED_MAX:
        _resolved.clear()
    _resolved[key] = (store, version, settings)
    return settings


def _endpoint(config: EndpointConfig, model: str) -> Generator[_Effect, Any, Endpoint]:
    found = registry.ready_endpoint(config, model)
    if found is None:  # the first call here makes the client: one-time, blocking work
        found = yield _Setup(lambda: registry.endpoint(config, model))
    return found


def _value(response: Response) -> dict[str, Any]:
    return {
        "text": response.text,
        "prompt_tokens": response.usage.prompt_tokens,
        "completion_tokens": response.usage.completion_tokens,
        "finish_reason": response.finish_reason,
        "model": response.model,
        "cost_usd": response.cost_usd,
    } | ({"tool_calls": [c.to_json() for c in response.tool_calls]} if response.tool_calls else {})


def _usable(value: dict[str, Any]) -> bool:
    """Whether a stored row is an answer XCS wrote (a row that is not is a miss)."""
    try:
        _cached_response(value, 0.0)
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _cached_response(value: dict[str, Any], start: float) -> Response:
    text = value["text"]
    finish = value.get("finish_reason")
    cost = value.get("cost_usd")
    if not isinstance(text, str) or not (finish is None or isinstance(finish, str)):
        raise TypeError("text and finish_reason are strings")
    if not (cost is None or isinstance(cost, int | float)):
        raise TypeError("cost_usd is a number")
    return Response(
        text,
        usage=Usage(int(value["prompt_tokens"]), int(value["completion_tokens"])),
        model=str(value["model"]),
        latency_s=get_clock().now() - start if start else 0.0,
        cost_usd=None if cost is None else 0.0,
        finish_reason=finish,
        cached=True,
        tool_calls=tuple(ToolCall.from_json(c) for c in value.get("tool_calls") or ()),
    )


def _get(settings: Settings, name: str) -> Any:
    value = getattr(settings, name)
    assert value is not None, name  # resolve() fills every non-limit field
    return value


def _check_supported(cls: type[Provider], model: ModelId, params: Params) -> None:
    given = params.model_fields_set
    unsupported = [
        name
        for name in MODEL_PARAMS
        if name in given and getattr(params, name) not in (None, ()) and name not in cls.params
    ]
    if params.base_url is not None and not cls.takes_base_url:
        unsupported.append("base_url")
    if params.api_key is not None and cls.env_key is None:
        unsupported.append("api_key")
    if unsupported:
        raise ValidationError(
            f"{model.base}: the {model.provider} provider does not take "
            f"{', '.join(unsupported)} (its model parameters: {', '.join(sorted(cls.params))})",
            parameters=tuple(unsupported),
            provider=model.provider,
        )
    if model.options and not cls.takes_options:
        raise ValidationError(
            f"{str(model)!r}: only sim: model ids take ?options",
            provider=model.provider,
        )
    cls.check_params(model.name, params)


def _attempt_timeout(timeout: float, deadline: Deadline | None, what: str) -> tuple[float, bool]:
    """This attempt's timeout, and whether the deadline (not the timeout) set it."""
    if deadline is None:
        return timeout, False
    left = deadline.remaining()
    if left <= 0:
        raise deadline.timeout_error(where=what)
    return (left, True) if left < timeout else (timeout, False)


def _backoff(settings: Settings, retry: int) -> float:
    """Full jitter (uniform in [0, min(max, base * 2**retry)]), as AWS's
    "Exponential Backoff And Jitter" recommends: it spreads a burst of retries best."""
    cap = min(_get(settings, "backoff_max"), _get(settings, "backoff_base") * 2.0**retry)
    return _jitter.uniform(0.0, cap)


# A 429's retry waits its Retry-After plus up to this fraction more, so the requests a
# server refused together do not come back together.
RETRY_AFTER_JITTER = 0.2


def _retry_after_delay(retry_after: float) -> float:
    return retry_after * (1.0 + _jitter.uniform(0.0, RETRY_AFTER_JITTER))


def _acquire(
    held: list[ConcurrencyLimit],
    slots: list[ConcurrencyLimit],
    limiters: list[Limiter],
    tokens: int,
    deadline: Deadline | None,
    what: str,
) -> Generator[_Effect, Any, None]:
    """Take every slot in order (narrowest first), then the rpm and tpm tokens. The
    slots taken are appended to ``held`` as they are taken: the caller releases them."""
    for slot in slots:
        if not slot.try_acquire():
            yield _Slot(slot, deadline, f"{what} (waiting for a concurrency slot)")
        held.append(slot)
    for limiter in limiters:
        for bucket, amount, name in ((limiter.rpm, 1, "rpm"), (limiter.tpm, tokens, "tpm")):
            if bucket is None:
                continue
            while (wait := bucket.reserve(amount)) > 0:
                where = f"{what} (waiting for {limiter.scope} {name})"
                yield _Sleep(deadline_wait(deadline, wait, where))


def _attempts(
    model: ModelId,
    cls: type[Provider],
    endpoint: Endpoint,
    settings: Settings,
    request: Request,
    attempts: int,
) -> _Core:
    clock = get_clock()
    start = clock.now()
    deadline = current_deadline()
    what = f"model call {model.base}"
    limiters = registry.limiters(model, cls.defaults)
    caps = [lim.concurrency.limit for lim in limiters if lim.concurrency is not None]
    window = endpoint.adaptive(model.name, min(caps) if caps else None)
    slots: list[ConcurrencyLimit] = [window]
    slots += [lim.concurrency for lim in limiters if lim.concurrency is not None]
    breaker = endpoint.breaker(model.name)
    tokens = estimate_tokens(
        request.prompt_chars(), request.max_tokens, cls.default_completion_tokens
    )
    threshold = int(_get(settings, "failure_threshold"))
    error: ProviderError | None = None
    for attempt in range(attempts):
        pause = window.paused_for()
        if pause > 0:
            yield _Sleep(deadline_wait(deadline, pause, f"{what} (an account-wide rate limit)"))
        held: list[ConcurrencyLimit] = []
        try:
            yield from _acquire(held, slots, limiters, tokens, deadline, what)
            timeout, cut = _attempt_timeout(request.timeout, deadline, what)
            try:
                token = breaker.admit(_get(settings, "reset_after"), model.provider, model.name)
            except ProviderError as open_error:
                _count(model.base, failures=1)
                _refund(limiters, tokens)
                raise open_error from error
            _count(model.base, attempts=1, retries=1 if attempt else 0)
            if _spans.active:
                _observe.note_attempt(attempt)
            sent_at = clock.now()
            try:
                sent = dataclasses.replace(request, timeout=timeout, attempt=attempt)
                completion, seen = yield _Send(endpoint.provider, sent)
            except ProviderError as err:
                if isinstance(err, RateLimitError):
                    _count(model.base, rate_limited=1)
                    _rate_limited(window, err, sent_at)
                breaker.record(
                    token, failed=bool(getattr(err, "server_fault", False)), threshold=threshold
                )
                _refund(limiters, tokens)
                error = err
            except BaseException:
                breaker.abandon(token)
                _refund(limiters, tokens)
                raise
            else:
                breaker.record(token, failed=False, threshold=threshold)
                window.succeeded()
                for headers in seen:
                    account = account_limit_seconds(headers)
                    if account:
                        window.pause(account)
                return _response(model, endpoint, completion, limiters, tokens, start)
        finally:
            for slot in reversed(held):
                slot.release()
        # The attempt failed: decide outside the limits, so a backoff holds no slot.
        _describe(error, model, attempt + 1, endpoint)
        # The attempt ran out of the time the deadline left it (not of some other limit
        # it names, such as the local server's startup timeout): the deadline expired.
        if cut and isinstance(error, ProviderTimeoutError) and _timed_out_at(error, timeout):
            assert deadline is not None
            _count(model.base, failures=1)
            raise deadline.timeout_error(where=what) from error
        if not getattr(error, "retryable", False):
            _count(model.base, failures=1)
            raise error
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after > _get(settings, "max_retry_after"):
            error.add_note(
                f"the provider asked to wait {retry_after:g} s, more than max_retry_after "
                f"({_get(settings, 'max_retry_after'):g} s): not retried"
            )
            break
        if attempt + 1 == attempts:
            break
        # A Retry-After delays this request only (NOTE: [Adaptive concurrency]).
        delay = (
            _retry_after_delay(retry_after)
            if retry_after is not None
            else _backoff(settings, attempt)
        )
        if deadline is not None and delay >= deadline.remaining():
            _count(model.base, failures=1)
            raise deadline.timeout_error(
                where=f"{what} (a retry after {type(error).__name__} would start too late)"
            ) from error
        logger.info(
            "%s: attempt %d/%d failed (%s); retrying in %.2f s",
            model.base,
            attempt + 1,
            attempts,
            error.message,
            delay,
        )
        yield _Sleep(delay)
    assert error is not None
    _count(model.base, failures=1)
    raise _final(error, model)


def _rate_limited(window: AdaptiveLimit, error: ProviderError, sent_at: float) -> None:
    """A 429: an account-wide one (its headers say the allowance is used up, or 429s
    are no longer sporadic) pauses the model at the endpoint; see NOTE: [Adaptive
    concurrency]."""
    account = getattr(error, "account_reset", None)
    if account:
        window.pause(account)
    window.rate_limited_answer(sent_at, getattr(error, "retry_after", None))


def _timed_out_at(error: ProviderError, timeout: float) -> bool:
    """Whether a timeout error is about ``timeout`` (or names no timeout at all)."""
    value = getattr(error, "timeout", None)
    return value is None or value == timeout


def _refund(limiters: list[Limiter], tokens: int) -> None:
    for limiter in limiters:
        if limiter.tpm is not None:
            limiter.tpm.adjust(-tokens)


def _describe(error: ProviderError, model: ModelId, attempts: int, endpoint: Endpoint) -> None:
    """Attach the context the provider may not know (httpx: request context)."""
    context = {"attempts": attempts, "endpoint": endpoint.config.name}
    if getattr(error, "provider", None) is None:
        context["provider"] = model.provider
    if getattr(error, "model", None) is None:
        context["model"] = model.name
    for key, value in context.items():
        setattr(error, key, value)


def _final(error: ProviderError, model: ModelId) -> ProviderError:
    """The error raised when the retries end: the last error's class and context, a
    message saying so, the SDK's exception still chained."""
    context = {k: v for k, v in vars(error).items() if k not in ("message", "__notes__")}
    attempts = context.get("attempts", 1)
    plural = "s" if attempts != 1 else ""
    said = (
        error.message if error.message.startswith(model.base) else f"{model.base}: {error.message}"
    )
    final = type(error)(f"{said} (gave up after {attempts} attempt{plural})")
    for note in getattr(error, "__notes__", ()):
        final.add_note(note)
    for key, value in context.items():
        setattr(final, key, value)
    final.__cause__ = error.__cause__ if error.__cause__ is not None else error
    return final


def _response(
    model: ModelId,
    endpoint: Endpoint,
    completion: Completion,
    limiters: list[Limiter],
    reserved: int,
    start: float,
) -> Response:
    usage = completion.usage
    for limiter in limiters:
        if limiter.tpm is not None:
            limiter.tpm.adjust(usage.total_tokens - reserved)
    price = endpoint.provider.price(model.name)
    cost = None
    if price is not None:
        cost = (usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1e6
    _count(
        model.base,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost_usd=cost or 0.0,
    )
    return Response(
        completion.text,
        usage=usage,
        model=model.base,
        latency_s=get_clock().now() - start,
        cost_usd=cost,
        finish_reason=completion.finish_reason,
        tool_calls=completion.tool_calls,
    )
