"""The registry: providers by name, and the process-wide endpoints, limiters and settings.

A provider is registered under the prefix of its model ids. The built-in ones are
registered by module path and imported on first use, so ``import xcs`` never
imports an SDK. Each distinct endpoint (provider, base URL, key, options) gets one
provider instance (one SDK client, with its connection pool, shared by every
thread) and, per model, a circuit breaker and an adaptive concurrency window; all
of them are closed at interpreter exit.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from xcs.errors import AuthenticationError, ValidationError
from xcs.models._base import EndpointConfig, Provider, fingerprint
from xcs.models._breaker import CircuitBreaker
from xcs.models._limits import AdaptiveLimit, Limiter
from xcs.models._params import ModelId, Params
from xcs.models._settings import SettingsStore

__all__ = [
    "Endpoint",
    "Registry",
    "registry",
]

logger = logging.getLogger("xcs.models")

# Built-in providers, imported on first use (their SDKs are optional extras).
_BUILTIN: dict[str, str] = {
    "sim": "xcs.models._sim:SimProvider",
    "openai": "xcs.models._openai:OpenAIProvider",
    "anthropic": "xcs.models._anthropic:AnthropicProvider",
    "local": "xcs.models._local:LocalProvider",
}


class Endpoint:
    """One endpoint's shared state: its provider instance and, per model, a circuit
    breaker and an adaptive window (which holds the model's account-wide pause).

    A breaker and a window are per model as well as per endpoint: one model failing
    on a server that hosts several (a vLLM or LiteLLM proxy, an OpenAI account) must
    not stop the others. Not constructed by users: ``Registry.endpoint`` makes one per
    distinct config.
    """

    def __init__(self, config: EndpointConfig, provider: Provider) -> None:
        self.config = config
        self.provider = provider
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._adaptive: dict[str, AdaptiveLimit] = {}

    def scope(self, model: str) -> str:
        """``provider:model@where``: a model at this endpoint, as statistics name it."""
        where = self.config.name.partition("@")[2]
        return f"{self.config.provider}:{model}@{where}"

    def breaker(self, model: str) -> CircuitBreaker:
        """The circuit breaker of ``model`` at this endpoint, made on first use."""
        with self._lock:
            found = self._breakers.get(model)
            if found is None:
                found = self._breakers[model] = CircuitBreaker(self.scope(model))
            return found

    def breakers(self) -> list[CircuitBreaker]:
        with self._lock:
            return list(self._breakers.values())

    def reset_breakers(self) -> None:
        """Forget every breaker here (closed, counters zero). For tests and benches."""
        with self._lock:
            self._breakers.clear()

    def adaptive(self, model: str, cap: int | None) -> AdaptiveLimit:
        """The adaptive window of ``model`` here, its cap the configured concurrency."""
        with self._lock:
            found = self._adaptive.get(model)
            if found is None:
                found = self._adaptive[model] = AdaptiveLimit(self.scope(model), cap)
                return found
        if found.cap != cap:
            found.set_cap(cap)
        return found

    def adaptive_limits(self) -> list[AdaptiveLimit]:
        with self._lock:
            return list(self._adaptive.values())

    def pause(self, model: str, seconds: float) -> None:
        """Hold every request for ``model`` here for ``seconds`` (an account-wide limit)."""
        with self._lock:
            limit = self._adaptive.get(model)
        if limit is None:
            limit = self.adaptive(model, None)
        limit.pause(seconds)

    def paused_for(self, model: str) -> float:
        """Seconds left of a pause for ``model`` (0 when none)."""
        with self._lock:
            limit = self._adaptive.get(model)
        return 0.0 if limit is None else limit.paused_for()

    def __repr__(self) -> str:
        return f"<Endpoint {self.config.name}>"


# NOTE: [Cold start]
# The first call of a process to openai: or anthropic: used to import the SDK (1-2 s on
# a loaded machine) and build its client inside the request. Now an endpoint is made
# outside the registry's lock, once (a second caller waits for the first), and
# ``xcs.models.bind`` starts making it in a background thread: a program that binds
# its models at start-up finds them ready at the first call. The async path makes it
# in a worker thread, so an event loop never stalls on an import. ``Response.latency_s``
# never includes it. bench/models.py measures the first call either way.


class Registry:
    """Providers, endpoints, limiters and settings of the process. Thread-safe.

    Should only be used by the model layer and by tests (``reset``); users go through
    ``xcs.models.register_provider`` and ``xcs.models.configure``.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._providers: dict[str, type[Provider] | Provider | str] = dict(_BUILTIN)
        self._classes: dict[str, type[Provider]] = {}
        self._endpoints: dict[EndpointConfig, Endpoint] = {}
        self._pending: dict[EndpointConfig, threading.Event] = {}  # being made
        self._generation = 0  # bumped when providers change: a pending make is stale
        self._limiters: dict[str, Limiter] = {}
        self._limiters_version = -1
        self.settings = SettingsStore()

    # -- providers ------------------------------------------------------------------

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._providers)

    def register(self, name: str, provider: type[Provider] | Provider) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValidationError(f"a provider name is an identifier like 'openai', got {name!r}")
        ok = isinstance(provider, Provider) or (
            isinstance(provider, type) and issubclass(provider, Provider)
        )
        if not ok:
            raise ValidationError(
                "register_provider takes a Provider subclass (constructed once per "
                f"endpoint) or a Provider instance, got {provider!r}"
            )
        with self._lock:
            self._drop_endpoints(name)
            self._providers[name] = provider
            self._classes.pop(name, None)
            self._generation += 1

    def unregister(self, name: str) -> None:
        with self._lock:
            self._drop_endpoints(name)
            self._classes.pop(name, None)
            self._generation += 1
            if name in _BUILTIN:
                self._providers[name] = _BUILTIN[name]
            else:
                self._providers.pop(name, None)

    def provider_class(self, name: str) -> type[Provider]:
        with self._lock:
            cls = self._classes.get(name)
            if cls is not None:
                return cls
            entry = self._providers[name]
            if isinstance(entry, str):
                module, _, attr = entry.partition(":")
                cls = getattr(importlib.import_module(module), attr)
            elif isinstance(entry, Provider):
                cls = type(entry)
            else:
                cls = entry
            assert cls is not None
            self._classes[name] = cls
            return cls

    # -- endpoints ------------------------------------------------------------------

    def endpoint_config(self, model: ModelId, params: Params) -> EndpointConfig:
        """Where a call goes, with its key resolved (explicit, else the environment).

        A missing key is not an error yet: a cache hit needs none. ``endpoint``
        raises it when a request is about to be sent.
        """
        cls = self.provider_class(model.provider)
        key: str | None = None
        if params.api_key is not None:
            key = params.api_key.get_secret_value()
        elif cls.env_key is not None:
            key = os.environ.get(cls.env_key) or None
        return EndpointConfig(
            provider=model.provider,
            base_url=params.base_url,
            api_key=key,
            key_id=fingerprint(key),
            options=model.options,
        )

    def ready_endpoint(self, config: EndpointConfig, model: str = "") -> Endpoint | None:
        """The endpoint of ``config`` if it is made already, else None (the caller makes
        it with ``endpoint``, a blocking one-time setup). Raises as ``endpoint`` does."""
        self._check_key(config, model)
        with self._lock:
            return self._endpoints.get(config)

    def _check_key(self, config: EndpointConfig, model: str) -> None:
        cls = self.provider_class(config.provider)
        if cls.env_key is not None and not config.api_key:
            raise AuthenticationError(
                f"no API key for {config.provider}: set the environment variable "
                f"{cls.env_key} or pass api_key=...",
                provider=config.provider,
                model=model,
                env_var=cls.env_key,
            )

    def endpoint(self, config: EndpointConfig, model: str = "") -> Endpoint:
        """The endpoint of ``config``, made on first use (its provider with it).

        Raises:
            AuthenticationError: the provider needs a key and none was found.
        """
        self._check_key(config, model)
        while True:
            with self._lock:
                found = self._endpoints.get(config)
                if found is not None:
                    return found
                entry = self._providers[config.provider]
                if isinstance(entry, Provider):
                    endpoint = self._endpoints[config] = Endpoint(config, entry)
                    return endpoint
                pending = self._pending.get(config)
                leader = pending is None
                if pending is None:
                    pending = self._pending[config] = threading.Event()
                generation = self._generation
                cls = self.provider_class(config.provider)
            if not leader:
                pending.wait()  # made by another thread (a warm-up, a first call)
                continue
            # Made outside the registry's lock: an SDK import and a client take a
            # second or two, and calls to every other endpoint must not wait for it.
            try:
                provider = cls(config)  # type: ignore[call-arg]
            finally:
                with self._lock:
                    self._pending.pop(config, None)
                pending.set()
            with self._lock:
                if generation == self._generation:
                    endpoint = self._endpoints[config] = Endpoint(config, provider)
                    return endpoint
            _close(provider)  # the provider was replaced meanwhile: make it again

    def warm(self, config: EndpointConfig) -> None:
        """Make ``config``'s endpoint in a background thread, if it is not made yet
        (``xcs.models.bind`` of a provider whose SDK and client are slow to set up:
        the first call then finds them ready). Failures are left for that call."""
        with self._lock:
            if config in self._endpoints or config in self._pending:
                return

        def run() -> None:
            try:
                self.endpoint(config)
            except Exception:  # the first call raises it, with its own context
                logger.debug("warming up %s failed", config.name, exc_info=True)

        threading.Thread(target=run, name="xcs-models-warm-up", daemon=True).start()

    def endpoints(self) -> list[Endpoint]:
        with self._lock:
            return list(self._endpoints.values())

    def _drop_endpoints(self, provider: str | None) -> None:
        for config in [c for c in self._endpoints if provider is None or c.provider == provider]:
            endpoint = self._endpoints.pop(config)
            _close(endpoint.provider)

    # -- limits ---------------------------------------------------------------------

    def limiters(self, model: ModelId, provider_defaults: Mapping[str, Any]) -> list[Limiter]:
        """The limiters a call to ``model`` must pass, model scope first (see ``_limits``)."""
        with self._lock:
            if self._limiters_version != self.settings.version:
                # Settings changed: later calls use new limiters; calls holding the
                # old ones release into those, so nothing is lost or double counted.
                self._limiters.clear()
                self._limiters_version = self.settings.version
            found = []
            for scope, defaults in ((model.base, None), (model.provider, provider_defaults)):
                limiter = self._limiters.get(scope)
                if limiter is None:
                    limiter = Limiter(scope, **self.settings.limits(scope, defaults))
                    self._limiters[scope] = limiter
                if not limiter.empty:
                    found.append(limiter)
            return found

    def limiter_snapshot(self) -> list[Limiter]:
        with self._lock:
            return list(self._limiters.values())

    # -- lifecycle ------------------------------------------------------------------

    def close(self) -> None:
        """Close every endpoint's provider (at exit)."""
        with self._lock:
            self._drop_endpoints(None)

    def reset(self) -> None:
        """Back to the state of a fresh process: built-in providers only, no
        endpoints, no settings. Should only be used by tests."""
        with self._lock:
            self._drop_endpoints(None)
            self._generation += 1
            self._providers = dict(_BUILTIN)
            self._classes.clear()
            self._limiters.clear()
            self.settings.clear()


def _close(provider: Provider) -> None:
    try:
        provider.close()
    except Exception:  # a failing close at exit must not hide the others
        logger.debug("closing %r failed", provider, exc_info=True)


registry = Registry()
atexit.register(registry.close)
