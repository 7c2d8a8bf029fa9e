"""Reliability settings: limits, timeouts, retries and breakers, per provider and per model.

Settings are process-wide, set with ``xcs.models.configure(scope, **settings)``,
where the scope is a provider (``"openai"``) or one model (``"openai:gpt-4o-mini"``).

- **Limits** (``concurrency``, ``rpm``, ``tpm``) are enforced at *every* scope that
  sets one: ``configure("openai", concurrency=32)`` and
  ``configure("openai:gpt-4o", concurrency=4)`` together mean at most 32 requests to
  OpenAI at once, of which at most 4 to gpt-4o.
- **Everything else** (``timeout``, ``max_attempts``, backoff, breaker) is looked up
  model scope first, then provider scope, then the provider's defaults, then
  ``DEFAULTS``.

``None`` removes a setting from a scope (a limit of ``None`` is no limit there).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from xcs.errors import ValidationError

__all__ = ["DEFAULTS", "LIMIT_FIELDS", "Settings", "SettingsStore", "check_scope"]


class Settings(BaseModel):
    """The reliability settings of one scope. Fields left at ``None`` are inherited.

    Attributes:
        concurrency: requests in flight at once (shared by every thread).
        rpm: requests per minute (a token bucket holding one minute's worth).
        tpm: tokens per minute, prompt plus completion; a request reserves an
            estimate (prompt characters / 4 + ``max_tokens``) and is charged the
            provider's count when it returns.
        timeout: seconds one attempt may take.
        max_attempts: attempts per call, the first included (1 = no retries).
        backoff_base: first backoff in seconds; it doubles per retry ("full jitter":
            the sleep is uniform in [0, backoff]).
        backoff_max: cap of the backoff before jitter.
        max_retry_after: the longest Retry-After XCS will wait; a provider asking
            for longer gets a ``RateLimitError`` at once.
        failure_threshold: consecutive failed attempts (5xx, timeouts, connection
            errors) that open an endpoint's circuit breaker.
        reset_after: seconds an open breaker waits before letting one probe through.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    concurrency: int | None = Field(default=None, ge=1)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0.0)
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    backoff_base: float | None = Field(default=None, ge=0.0)
    backoff_max: float | None = Field(default=None, ge=0.0)
    max_retry_after: float | None = Field(default=None, ge=0.0)
    failure_threshold: int | None = Field(default=None, ge=1)
    reset_after: float | None = Field(default=None, ge=0.0)


LIMIT_FIELDS = ("concurrency", "rpm", "tpm")

DEFAULTS = Settings(
    timeout=60.0,
    max_attempts=4,
    backoff_base=0.5,
    backoff_max=30.0,
    max_retry_after=60.0,
    failure_threshold=5,
    reset_after=30.0,
)


def _validate(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    from xcs.models._params import translate

    try:
        checked = Settings(**values)
    except pydantic.ValidationError as exc:
        raise translate(exc, where) from None
    return {name: getattr(checked, name) for name in values}


class SettingsStore:
    """The process-wide table of settings per scope. Thread-safe.

    Should only be used by the model layer and by tests; users call
    ``xcs.models.configure``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scopes: dict[str, dict[str, Any]] = {}
        self.version = 0  # bumped on every change, so limiters know to rebuild

    def configure(self, scope: str, values: Mapping[str, Any]) -> None:
        checked = _validate(values, f"xcs.models.configure({scope!r})")
        with self._lock:
            current = dict(self._scopes.get(scope, {}))
            for name, value in checked.items():
                if value is None:
                    current.pop(name, None)
                else:
                    current[name] = value
            self._scopes[scope] = current
            self.version += 1

    def scope(self, scope: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._scopes.get(scope, {}))

    def resolve(self, provider: str, model: str, provider_defaults: Mapping[str, Any]) -> Settings:
        """Effective settings for ``provider:model`` (limits: the model scope's only)."""
        with self._lock:
            at_provider = self._scopes.get(provider, {})
            at_model = self._scopes.get(f"{provider}:{model}", {})
            merged: dict[str, Any] = {}
            for name in Settings.model_fields:
                if name in LIMIT_FIELDS:
                    continue
                for source in (at_model, at_provider, provider_defaults):
                    if source.get(name) is not None:
                        merged[name] = source[name]
                        break
                else:
                    merged[name] = getattr(DEFAULTS, name)
        return Settings(**merged)

    def in_force(self, provider: str, model: str, provider_defaults: Mapping[str, Any]) -> Settings:
        """Every setting that governs calls to ``provider:model`` (``model`` may be
        ``""``: the provider's calls): the non-limit settings resolved as ``resolve``
        does, and each limit the tightest of the model scope's and the provider
        scope's (or the provider's default), since both hold."""
        values = self.resolve(provider, model, provider_defaults).model_dump()
        values.update(self.limits(provider, provider_defaults))
        if model:
            for name, limit in self.limits(f"{provider}:{model}").items():
                values[name] = min(limit, values.get(name) or limit)
        return Settings(**values)

    def limits(
        self, scope: str, provider_defaults: Mapping[str, Any] | None = None
    ) -> dict[str, int]:
        """The limits set at exactly this scope (a provider scope falls back to the
        provider's default limits)."""
        with self._lock:
            own = self._scopes.get(scope, {})
            result = {k: own[k] for k in LIMIT_FIELDS if own.get(k) is not None}
        if provider_defaults is not None:
            for key in LIMIT_FIELDS:
                if key not in result and provider_defaults.get(key) is not None:
                    result[key] = int(provider_defaults[key])
        return result

    def clear(self) -> None:
        with self._lock:
            self._scopes.clear()
            self.version += 1


def check_scope(scope: object) -> str:
    if not isinstance(scope, str) or not scope or "?" in scope:
        raise ValidationError(
            f"a settings scope is a provider ('openai') or a model id without options "
            f"('openai:gpt-4o-mini'), got {scope!r}"
        )
    return scope
