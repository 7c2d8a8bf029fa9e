"""The model layer: ``xcs.models(model_id, prompt, **params) -> Response``.

One call::

    >>> import xcs
    >>> from xcs.models import models
    >>> answer = models("sim:echo", "Why is the sky blue?", temperature=0)
    >>> answer  # doctest: +ELLIPSIS
    Response('Why is the sky blue?', model='sim:echo', tokens=8+5, latency_s=0..., cost_usd=?)
    >>> answer.upper(), answer.usage.total_tokens
    ('WHY IS THE SKY BLUE?', 13)

(``sim:`` is the deterministic SIMULATOR, not a model: it echoes here.) A binding::

    >>> judge = models.bind("sim:echo", temperature=0, max_tokens=3)
    >>> judge
    ModelBinding('sim:echo', max_tokens=3, temperature=0) [simulator]
    >>> judge("one two three four").finish_reason
    'length'

General layout (each layer uses only the ones above it):

- ``_types``: ``Response``, ``Usage``, ``Message``, ``Request``, ``Completion``,
  ``ToolCall``; ``_structured`` (``response_model=``) and ``_tools`` (``tools=``).
- ``_params``: model ids, messages and parameters checked (pydantic inside,
  ``xcs.ValidationError`` outside); ``_settings``: limits, timeouts, retries per scope.
- ``_clock``: the clock every sleep uses (``FakeClock`` for tests).
- ``_base``: the one-method ``Provider`` interface and ``MockProvider``.
- ``_limits`` (concurrency, rpm, tpm, the adaptive window), ``_breaker`` (per model
  at an endpoint), ``_cache`` (LRU + SQLite, coalescing), ``_registry`` (providers,
  endpoints, limiters).
- ``_engine``: the call path shared by every provider: cache, limits, breaker,
  attempts, retries, deadlines; one core driven by ``call`` and by ``acall``, each
  attempt through ``_send`` (the reply checked against ``response_model``; streamed
  inside ``_stream``'s ``xcs.models.stream``).
- providers: ``_sim`` (the simulator), ``_openai``, ``_anthropic`` (SDKs imported
  lazily, at ``bind`` in the background or on the first call; ``_http`` maps HTTP
  statuses and reads rate-limit headers for all of them), ``_local``
  (the embedded model, served by ``_local_server`` in a child process).
- ``_api``: ``models`` (the callable ``xcs.models``), ``bind``, ``ModelBinding``.
"""

from xcs.models._api import ModelBinding, Models, bind, models
from xcs.models._base import EndpointConfig, MockProvider, Provider, mark
from xcs.models._cache import Cache, CacheStatistics, current_cache, set_cache
from xcs.models._clock import Clock, FakeClock, SystemClock, use_clock
from xcs.models._settings import Settings
from xcs.models._stream import AsyncStream, Stream
from xcs.models._types import Completion, Message, Request, Response, ToolCall, Usage

__all__ = [
    "AsyncStream",
    "Cache",
    "CacheStatistics",
    "Clock",
    "Completion",
    "EndpointConfig",
    "FakeClock",
    "Message",
    "MockProvider",
    "ModelBinding",
    "Models",
    "Provider",
    "Request",
    "Response",
    "Settings",
    "Stream",
    "SystemClock",
    "ToolCall",
    "Usage",
    "bind",
    "current_cache",
    "mark",
    "models",
    "set_cache",
    "use_clock",
]
