"""The public face of the model layer: ``xcs.models(...)`` and ``xcs.models.bind(...)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, TypeVar, overload

import pydantic

from xcs.errors import ValidationError
from xcs.models import _engine
from xcs.models._base import MockProvider, Provider
from xcs.models._breaker import BreakerStatistics
from xcs.models._cache import Cache, current_cache, set_cache
from xcs.models._clock import FakeClock, use_clock
from xcs.models._limits import AdaptiveStatistics, LimiterStatistics
from xcs.models._params import ModelId, Params, check_params, parse_model_id
from xcs.models._registry import registry
from xcs.models._settings import Settings, check_scope
from xcs.models._stream import AsyncStream, Stream, open_astream, open_stream
from xcs.models._structured import afinish, finish
from xcs.models._types import Completion, Message, Request, Response, ToolCall, Usage

__all__ = ["ModelBinding", "Models", "bind", "models"]

Prompt = str | Sequence[Mapping[str, Any] | Message]
M = TypeVar("M", bound=pydantic.BaseModel)


def _parse(model_id: object) -> ModelId:
    return parse_model_id(model_id, registry.names())


class ModelBinding:
    """A model id with parameters bound to it, called like a model:
    ``binding(prompt, **overrides) -> Response``.

    Reusable and thread-safe (it holds no state between calls), and picklable, so it
    can travel to process pools and Ray workers (an explicit ``api_key`` travels
    with it; its repr shows ``'***'``). Not constructed directly; use
    ``xcs.models.bind(model_id, **params)``.

    Example::

        judge = xcs.models.bind("openai:gpt-4o-mini", temperature=0, max_tokens=5)
        verdict = judge(f"Is {answer!r} correct? yes/no")
        strict = judge.bind(system="Answer yes or no only.")   # a binding of the binding
    """

    __slots__ = ("model_id", "params")

    def __init__(self, model_id: str, params: Mapping[str, Any]) -> None:
        self.model_id = model_id
        self.params = dict(params)

    @overload
    def __call__(self, prompt: Prompt, /, *, response_model: type[M], **overrides: Any) -> M: ...

    @overload
    def __call__(self, prompt: Prompt, /, **overrides: Any) -> Response: ...

    def __call__(self, prompt: Prompt, /, **overrides: Any) -> Any:
        """Call the model with the bound parameters, ``overrides`` taking precedence.

        Returns and raises: see ``xcs.models`` (an instance of ``response_model``
        when one is bound or given).
        """
        merged = {**self.params, **overrides} if overrides else self.params
        params = _check(merged, self.model_id)
        model = _parse(self.model_id)
        return finish(params.response_model, lambda: _engine.call(model, prompt, params))

    def stream(self, prompt: Prompt, /, **overrides: Any) -> Stream:
        """Stream the model's answer with the bound parameters: see
        ``xcs.models.stream``."""
        merged = {**self.params, **overrides} if overrides else self.params
        return open_stream(_parse(self.model_id), prompt, _check(merged, self.model_id))

    def astream(self, prompt: Prompt, /, **overrides: Any) -> AsyncStream:
        """``binding.stream`` for asyncio: see ``xcs.models.astream``."""
        merged = {**self.params, **overrides} if overrides else self.params
        return open_astream(_parse(self.model_id), prompt, _check(merged, self.model_id))

    async def acall(self, prompt: Prompt, /, **overrides: Any) -> Any:
        """``await binding.acall(prompt, **overrides)``: the call, for asyncio (see
        ``xcs.models.acall``).

        Raises: see ``xcs.models``.
        """
        merged = {**self.params, **overrides} if overrides else self.params
        params = _check(merged, self.model_id)
        model = _parse(self.model_id)
        return await afinish(params.response_model, lambda: _engine.acall(model, prompt, params))

    def bind(self, **params: Any) -> ModelBinding:
        """A new binding with ``params`` added to (or replacing) these."""
        merged = {**self.params, **params}
        _check(merged, self.model_id)
        return ModelBinding(self.model_id, merged)

    @property
    def simulated(self) -> bool:
        """True when this binding calls the simulator (``sim:``), not a model."""
        return self.model_id.startswith("sim:")

    def __reduce__(self) -> tuple[Any, ...]:
        return (ModelBinding, (self.model_id, self.params))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelBinding):
            return NotImplemented
        return (self.model_id, self.params) == (other.model_id, other.params)

    def __hash__(self) -> int:
        return hash((self.model_id, tuple(sorted((k, repr(v)) for k, v in self.params.items()))))

    def __repr__(self) -> str:
        shown = [repr(self.model_id)] + [
            f"{k}={'***' if k == 'api_key' else repr(v)}" for k, v in sorted(self.params.items())
        ]
        label = " [simulator]" if self.simulated else ""
        return f"ModelBinding({', '.join(shown)}){label}"


def _check(params: Mapping[str, Any], model_id: str) -> Params:
    return check_params(params, f"model parameters for {model_id!r}")


def bind(model_id: str, /, **params: Any) -> ModelBinding:
    """Bind parameters to a model: ``xcs.models.bind(model_id, **params)``.

    The model id and the parameters are checked now, so a typo fails where it is
    written, not at the first call. For ``openai:`` and ``anthropic:`` the SDK import
    and the client are made now, in a background thread, so the first call does not
    wait for them (if it comes first, it waits only for what is left).

    Args:
        model_id: ``provider:model`` (see ``xcs.models``).
        **params: any parameter of ``xcs.models``.

    Returns:
        A ``ModelBinding``: call it with a prompt (and overrides).

    Raises:
        ValidationError: an unknown provider, a malformed id, an unknown or invalid
            parameter.
    """
    parsed = _parse(model_id)
    checked = _check(params, model_id)
    cls = registry.provider_class(parsed.provider)
    _engine._check_supported(cls, parsed, checked)
    if cls.warm_up:
        config = registry.endpoint_config(parsed, checked)
        if cls.env_key is None or config.api_key:
            registry.warm(config)  # NOTE: [Cold start] in _registry
    return ModelBinding(str(model_id), params)


# Module-level names for the aliases in Models (a class body cannot alias itself).
_AsyncStream = AsyncStream
_Cache = Cache
_Completion = Completion
_FakeClock = FakeClock
_Message = Message
_MockProvider = MockProvider
_ModelBinding = ModelBinding
_Provider = Provider
_Request = Request
_Response = Response
_Settings = Settings
_Stream = Stream
_ToolCall = ToolCall
_Usage = Usage


class Models:
    """``xcs.models``: call a model, bind one, and configure the model layer.

    ``xcs.models(model_id, prompt_or_messages, **params) -> Response``

    Model ids are ``provider:model``: ``openai:gpt-4o-mini`` (any OpenAI-compatible
    server with ``base_url=``), ``anthropic:claude-3-5-haiku-latest``,
    ``local:smollm2`` (the embedded model), and ``sim:echo`` /
    ``sim:<name>?options`` — the deterministic SIMULATOR (for tests and benchmarks).
    See ``docs/models.md``.

    Not constructed by users: ``xcs.models`` is the one instance.
    """

    # `import xcs.models.<submodule>` looks the submodule up by this name once
    # ``xcs.models`` (the attribute of ``xcs``) is this object, not the package.
    __name__ = "xcs.models"

    # Types users meet, reachable as xcs.models.<Name>.
    AsyncStream: TypeAlias = _AsyncStream
    Cache: TypeAlias = _Cache
    Completion: TypeAlias = _Completion
    FakeClock: TypeAlias = _FakeClock
    Message: TypeAlias = _Message
    MockProvider: TypeAlias = _MockProvider
    ModelBinding: TypeAlias = _ModelBinding
    Provider: TypeAlias = _Provider
    Request: TypeAlias = _Request
    Response: TypeAlias = _Response
    Settings: TypeAlias = _Settings
    Stream: TypeAlias = _Stream
    ToolCall: TypeAlias = _ToolCall
    Usage: TypeAlias = _Usage

    @overload
    def __call__(
        self, model_id: str, prompt: Prompt, /, *, response_model: type[M], **params: Any
    ) -> M: ...

    @overload
    def __call__(self, model_id: str, prompt: Prompt, /, **params: Any) -> Response: ...

    def __call__(self, model_id: str, prompt: Prompt, /, **params: Any) -> Any:
        """Call a model once and return its answer.

        Args:
            model_id: ``provider:model``, e.g. ``"openai:gpt-4o-mini"``, ``"sim:echo"``.
            prompt: a string (one user message) or a list of
                ``{"role": "system"|"user"|"assistant", "content": str}`` messages.
            system: a system prompt (put first).
            temperature: 0 to 2.
            max_tokens: the most tokens to generate.
            stop: a string or a list of strings that end generation.
            seed: the provider's sampling seed, where it has one.
            sample: which independent sample of this request you mean (default 0);
                never sent, only part of the cache key (NOTE: [Sample indices]).
            timeout: seconds one attempt may take (default 60; see ``configure``).
            max_attempts: attempts in all, the first included (default 4).
            cache: False to bypass the active cache for this call.
            base_url: an OpenAI-compatible server (``openai:`` only), e.g. vLLM, Ollama.
            api_key: the key, instead of the provider's environment variable.
            response_model: a pydantic model class: the reply is asked for in its
                JSON schema and returned as a validated instance; a reply that does
                not validate is retried (within ``max_attempts``).
            tools: functions (or pydantic model classes) the model may call; the
                calls it makes are ``Response.tool_calls``. Not with ``response_model``.
            tool_choice: with ``tools``: ``"auto"`` (default; the model decides),
                ``"required"`` (it must call a tool), ``"none"`` (it must answer),
                or a tool's name (it must call that one).

        Returns:
            A ``Response``: the text, a ``str``, with ``.usage``, ``.model``,
            ``.latency_s``, ``.cost_usd``, ``.finish_reason``, ``.cached``,
            ``.tool_calls``. With ``response_model=M``: an instance of ``M``.

        Raises:
            ValidationError: an unknown provider, a malformed id, an unknown or invalid
                parameter, malformed messages (nothing was sent); or the last reply
                did not validate against ``response_model`` (attributes ``reply``,
                ``fields``).
            AuthenticationError: no key (the message names the variable), or refused.
            RateLimitError: still rate limited after the retries.
            ProviderTimeoutError: every attempt timed out.
            InvalidRequestError: the provider rejected the request (not retried).
            CircuitOpenError: the endpoint's breaker is open; nothing was sent.
            ProviderError: any other provider failure, after the retries.
            ProviderNotInstalledError: the provider's package is missing.
            ExecutionTimeout: the active ``xcs.deadline`` expired (or would have,
                during a wait or a backoff).
        """
        checked = _check(params, model_id)
        model = _parse(model_id)
        return finish(checked.response_model, lambda: _engine.call(model, prompt, checked))

    @staticmethod
    async def acall(model_id: str, prompt: Prompt, /, **params: Any) -> Any:
        """``await xcs.models.acall(model_id, prompt, **params)``: one model call for
        asyncio code, on the provider's async client (``openai:``, ``anthropic:``;
        ``sim:`` natively; ``local:`` through its server; other providers'
        ``complete`` in a worker thread). It shares everything with the sync call:
        limits (a concurrency limit of 4 holds across threads and tasks together),
        the cache, breakers, retries, statistics and ``xcs.deadline``. Every wait
        (a slot, a backoff, a Retry-After) is awaited: the event loop runs on.

        Cancelling the task cancels the request in flight; its limits are released.

        Args and Raises: as ``xcs.models``.

        Example::

            answers = await asyncio.gather(
                *(xcs.models.acall("openai:gpt-4o-mini", q) for q in questions)
            )
        """
        checked = _check(params, model_id)
        model = _parse(model_id)
        return await afinish(checked.response_model, lambda: _engine.acall(model, prompt, checked))

    bind = staticmethod(bind)

    @staticmethod
    def stream(model_id: str, prompt: Prompt, /, **params: Any) -> Stream:
        """Call a model and read its answer as it is written.

        Args:
            model_id, prompt, **params: as for ``xcs.models(...)`` (not
                ``response_model`` or ``tools``).

        Returns:
            A ``Stream``: iterate it for ``str`` chunks; after the last one,
            ``stream.response`` is the whole answer (a ``Response`` with usage and
            cost), equal to the chunks joined. Nothing is sent before the first
            chunk is asked for.

        Raises:
            ValidationError: as ``xcs.models``, at once (nothing was sent).
            ProviderError: while iterating: any failure ``xcs.models`` raises. One
                before the first chunk is retried as for a call; one after it (a
                dropped connection) ends the stream, not retried (attribute
                ``partial``: the text delivered).
            ExecutionTimeout: the active ``xcs.deadline`` expired.

        Example::

            for chunk in xcs.models.stream("openai:gpt-4o-mini", "Tell me a story"):
                print(chunk, end="", flush=True)
        """
        return open_stream(_parse(model_id), prompt, _check(params, model_id))

    @staticmethod
    def astream(model_id: str, prompt: Prompt, /, **params: Any) -> AsyncStream:
        """``xcs.models.stream`` for asyncio: an async iterator of ``str`` chunks.

        The call is ``xcs.models.acall``'s (the provider's async client; the same
        limits, cache, breaker, retries before the first chunk, statistics and
        ``xcs.deadline`` as every call), made in a task of its own once the first
        chunk is awaited. ``async with`` (or ``await stream.aclose()``) stops it
        early: the request is cancelled and its slot released.

        Args, Returns and Raises: as ``xcs.models.stream``; an ``AsyncStream``.

        Example::

            stream = xcs.models.astream("openai:gpt-4o-mini", "Tell me a story")
            async for chunk in stream:
                print(chunk, end="", flush=True)
            stream.response.usage
        """
        return open_astream(_parse(model_id), prompt, _check(params, model_id))

    @staticmethod
    def configure(scope: str, /, **settings: Any) -> None:
        """Set limits, timeouts, retries and breaker settings for a provider or a model.

        ``scope`` is a provider (``"openai"``) or a model (``"openai:gpt-4o-mini"``).
        Limits hold at every scope that sets one; other settings are taken from the
        model scope, else the provider scope, else the defaults. ``None`` removes a
        setting from the scope. Settings are process-wide, shared by every thread.

        Args:
            scope: the provider or model the settings are for.
            **settings: ``concurrency``, ``rpm``, ``tpm``, ``timeout``,
                ``max_attempts``, ``backoff_base``, ``backoff_max``,
                ``max_retry_after``, ``failure_threshold``, ``reset_after`` (see
                ``xcs.models.Settings``).

        Raises:
            ValidationError: an unknown setting or a bad value, or a bad scope.

        Example::

            xcs.models.configure("openai", concurrency=32, rpm=500, tpm=200_000)
            xcs.models.configure("openai:gpt-4o", concurrency=4, timeout=120)
        """
        scope = check_scope(scope)
        provider = scope.partition(":")[0]
        if provider not in registry.names():
            raise ValidationError(
                f"unknown model provider {provider!r}; known providers: "
                f"{', '.join(registry.names())}"
            )
        registry.settings.configure(scope, settings)

    @staticmethod
    def settings(scope: str, /) -> Settings:
        """The settings in force for the calls to a provider (``"openai"``) or a model
        (``"openai:gpt-4o"``), every one resolved: what ``configure`` set at the model
        scope, else at the provider scope, else the provider's defaults, else
        ``DEFAULTS``. A limit holds at every scope that sets one, so each limit shown
        is the tightest that bounds these calls (a provider's limit is shared with
        its other models).

        Example::

            xcs.models.configure("openai", concurrency=32, rpm=500)
            xcs.models.configure("openai:gpt-4o", concurrency=4, timeout=120)
            xcs.models.settings("openai:gpt-4o")   # concurrency=4, rpm=500, timeout=120.0, ...

        Raises:
            ValidationError: a bad scope, or an unknown provider.
        """
        scope = check_scope(scope)
        provider, _, model = scope.partition(":")
        if provider not in registry.names():
            raise ValidationError(
                f"unknown model provider {provider!r}; known providers: "
                f"{', '.join(registry.names())}"
            )
        cls = registry.provider_class(provider)
        return registry.settings.in_force(provider, model, cls.defaults)

    @staticmethod
    def register_provider(name: str, provider: type[Provider] | Provider, /) -> None:
        """Make ``name:...`` model ids call ``provider``: a ``Provider`` subclass
        (constructed once per endpoint with an ``EndpointConfig``) or an instance
        (shared by all). Replaces a provider of that name; see ``MockProvider``."""
        registry.register(name, provider)

    @staticmethod
    def unregister_provider(name: str, /) -> None:
        """Undo ``register_provider`` (a built-in provider comes back)."""
        registry.unregister(name)

    @staticmethod
    def providers() -> list[str]:
        """The provider names model ids may use."""
        return registry.names()

    set_cache = staticmethod(set_cache)
    current_cache = staticmethod(current_cache)
    use_clock = staticmethod(use_clock)

    @staticmethod
    def statistics() -> dict[str, Any]:
        """Counters of the model layer: ``models`` (per model: calls, attempts,
        retries, failures, cache hits, tokens, cost), ``limiters`` (in flight, max in
        flight, waits), ``adaptive`` (per model at an endpoint, ``provider:model@where``:
        the AIMD ``window`` now, its ``cap``, in flight, decreases, 429s, pauses),
        ``breakers`` (per model at an endpoint: state, openings), ``cache`` (hits,
        misses, coalesced) of the active cache."""
        limiters: list[LimiterStatistics] = [
            limiter.statistics() for limiter in registry.limiter_snapshot() if not limiter.empty
        ]
        breakers: list[BreakerStatistics] = [
            breaker.statistics()
            for endpoint in registry.endpoints()
            for breaker in endpoint.breakers()
        ]
        adaptive: list[AdaptiveStatistics] = [
            limit.statistics()
            for endpoint in registry.endpoints()
            for limit in endpoint.adaptive_limits()
        ]
        cache = current_cache()
        return {
            "models": _engine.statistics(),
            "limiters": {s.scope: s for s in limiters},
            "adaptive": {s.scope: s for s in adaptive},
            "breakers": {s.endpoint: s for s in breakers},
            "cache": None if cache is None else cache.statistics(),
        }

    @staticmethod
    def _reset() -> None:
        """Forget every setting, endpoint, statistic and registered provider, and the
        process-wide cache. Should only be used by tests."""
        registry.reset()
        _engine.reset_statistics()
        set_cache(None)

    def __reduce__(self) -> str:
        return "models"

    def __repr__(self) -> str:
        return f"<xcs.models: providers {', '.join(registry.names())}>"


models = Models()
