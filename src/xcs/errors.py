"""The exception hierarchy of XCS: every failure that is XCS's own, in one place.

    XCSError
     +-- CompilationError          the compiler failed in a way it did not expect
     +-- ValidationError           bad input: a graph, an argument, a spec (also a ValueError)
     +-- ExecutionTimeout          an xcs.deadline expired (also a TimeoutError)
     +-- ExtraNotInstalledError    an optional feature's package is missing (also an ImportError)
     +-- MaxTurnsError             an Agent still called tools when its turns ran out
     +-- ProviderError             a model provider failed after the model layer gave up
          +-- RateLimitError       the provider kept answering 429
          +-- AuthenticationError  no key, or the provider refused the key
          +-- ProviderTimeoutError every attempt timed out (also a TimeoutError)
          +-- InvalidRequestError  the provider rejected the request itself; not retried
          +-- CircuitOpenError     the model's breaker at the endpoint is open; failed fast
          +-- ProviderNotInstalledError  the provider's package is missing (also an ImportError)

    JitWarning (a UserWarning)     xcs.jit cannot compile a function: it runs as written

User exceptions are never wrapped: when a function run by XCS raises, the caller sees
the original exception object, the one the sequential program would have raised first
(DESIGN §1.2). These classes are only for failures that belong to XCS itself.

Every class takes a message and keyword context (the node, the provider, the deadline)
that becomes attributes, and pickles with that context so errors survive a trip
through a process pool or a Ray worker.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "CircuitOpenError",
    "CompilationError",
    "ExecutionTimeout",
    "ExtraNotInstalledError",
    "InvalidRequestError",
    "JitWarning",
    "MaxTurnsError",
    "ProviderError",
    "ProviderNotInstalledError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ValidationError",
    "XCSError",
]


class XCSError(Exception):
    """Raised only through a subclass: the root of every exception XCS raises on its
       own account.
    Catch it to handle any XCS failure; exceptions
       raised by user code inside jitted functions, graphs and maps are *not* XCSErrors,
       they reach the caller unchanged.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        for key, value in context.items():
            setattr(self, key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        # Context lives in __dict__; the default Exception reduce would drop it.
        return (type(self), (self.message,), self.__dict__)


class CompilationError(XCSError):
    """Raised by ``xcs.jit`` when compiling a function fails in a way XCS did not expect.

    A function XCS *knows* it cannot compile (a generator, no source) is not an error:
    it falls back to running as written, and ``xcs.explain`` says why. This exception
    means a bug in XCS or an input it never anticipated; it is never swallowed.
    Attribute ``function`` names the function being compiled.
    """


class ValidationError(XCSError, ValueError):
    """Raised when input given to XCS is malformed: a graph with a cycle or an unknown
    dependency, a missing graph input, a negative deadline, an unknown model parameter.

    The message names the offending item; attribute ``nodes`` (a tuple of names) is
    set where nodes of a graph are at fault. Not to be confused with pydantic's own
    ``ValidationError``, which XCS translates into this one at its boundary.
    """


class ExecutionTimeout(XCSError, TimeoutError):
    """Raised by ``xcs.deadline`` (and by any wait inside it) when the deadline expires.

    Work that had not started is cancelled and never runs. Work already running on a
    thread cannot be interrupted; it is listed in attribute ``running`` (task names),
    and its result is discarded. Attribute ``seconds`` is the length of the deadline
    that expired. Also a ``TimeoutError``, so ``except TimeoutError`` catches it.
    Not to be confused with a provider's own request timeout, which the model layer
    retries and finally reports as a ``ProviderError``.
    """

    seconds: float
    running: tuple[str, ...]
    cancelled: int


class ExtraNotInstalledError(XCSError, ImportError):
    """Raised when a feature that lives in an optional extra is used without its
    package: ``pmap(backend="ray")`` without Ray, ``progress=True`` without tqdm.

    The message names the extra to install (``pip install 'xcs-jit[ray]'``); attribute
    ``extra`` holds its name. Also an ``ImportError``. Not to be confused with
    ``ProviderNotInstalledError``, its twin for model providers' SDKs.
    """


class MaxTurnsError(XCSError):
    """Raised by ``xcs.operators.Agent`` when the model still calls tools at its last
    allowed turn (``max_turns``): the loop stops without running those calls.

    Attributes ``turns`` (the model calls made), ``tool_calls`` (the calls of the last
    turn, not run) and ``messages`` (the conversation so far). Not to be confused with
    ``ExecutionTimeout``: the agent ran out of turns, not of time.
    """


class ProviderError(XCSError):
    """Raised by the model layer when a provider call fails for good: after the retries
    for transient failures (429, 5xx, timeouts, connection errors) are used up, or at
    once for a failure that retrying cannot fix. The SDK's exception is chained as
    ``__cause__``. Attributes ``provider`` and ``model`` name the endpoint; API keys
    never appear in the message or the attributes. Where known, ``status`` is the
    HTTP status of the last attempt and ``attempts`` the number of attempts made.
    """


class RateLimitError(ProviderError):
    """Raised when a provider still answers 429 (rate limited) after the retries.

    Unlike a plain ``ProviderError`` the request was well formed and may succeed later;
    attribute ``retry_after`` holds the provider's last Retry-After in seconds, if any.
    """


class AuthenticationError(ProviderError):
    """Raised when a provider needs an API key and none is set (the message names the
    environment variable to set), or when the provider refuses the key (401/403).
    The key itself is never part of the message.
    """


class ProviderTimeoutError(ProviderError, TimeoutError):
    """Raised by the model layer when every attempt of a call hit the per-call timeout
    (or the last one did and no attempts were left).

    Not to be confused with ``ExecutionTimeout``, which an ``xcs.deadline`` raises:
    when the deadline, not the per-call timeout, cut the call short, the caller sees
    ``ExecutionTimeout``. Also a ``TimeoutError``. Attribute ``timeout`` holds the
    per-attempt timeout in seconds. Also raised when the ``local:`` model's server
    did not start within its startup timeout (then ``timeout`` is that limit).
    """


class InvalidRequestError(ProviderError):
    """Raised when the provider rejects the request itself (HTTP 400, 404, 422: an
    unknown model, a bad parameter value, a prompt longer than the context window).

    Retrying cannot fix it, so it is raised after the first attempt. Not to be
    confused with ``ValidationError``, which XCS raises *before* sending anything,
    when its own checks of the model id or the parameters fail.
    """


class CircuitOpenError(ProviderError):
    """Raised when a model call fails fast because the circuit breaker of its model
    at its endpoint is open: the last calls of that model there kept failing, so XCS
    stops sending them for a while instead of waiting for more timeouts (other
    models at the endpoint are not affected).

    Nothing was sent. Attribute ``retry_after`` is the number of seconds until the
    breaker lets a probe request through. Unlike ``RateLimitError`` this is XCS's
    own decision, not the provider's answer.
    """


class ProviderNotInstalledError(ProviderError, ImportError):
    """Raised on the first call to a provider whose optional package is not
    installed; the message names the extra to install (``pip install
    'xcs-jit[openai]'``). Also an ``ImportError``.
    """


class JitWarning(UserWarning):
    """Warned once per jitted function that ``xcs.jit`` cannot compile, at its first call:
    it has no source (defined under ``python -c`` or in an interactive session without
    one), it is a generator or a builtin. The function then runs as written, in program
    order, so the warning says why ``@xcs.jit`` does nothing there; ``xcs.explain``
    says the same. A callee reached through the call tree that cannot compile does not
    warn (it runs as written; ``explain`` lists it).

    Filter it like any warning: ``warnings.filterwarnings("ignore", category=xcs.JitWarning)``.
    """
