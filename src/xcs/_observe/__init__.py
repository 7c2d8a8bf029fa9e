"""Observability: spans and traces, ``xcs.trace()``, ``xcs.stats()``, logging ids.

General layout (this package imports nothing else from XCS at import time, so every
layer may call its hooks):

- ``_spans``: ``Span``, ``Trace``, the recording hooks (``begin``, ``span``,
  ``wrap_task``) and the switch that makes them free when no trace is open
  (NOTE: [Tracing costs nothing when off]).
- ``_render``: ``Trace.summary()`` and the text timeline; ``_chrome``: Chrome /
  Perfetto JSON out and in; ``_otel``: OpenTelemetry export (the ``otel`` extra).
- ``_stats``: ``xcs.stats()``; ``_counters``: the registry where the other layers
  register the readers of their counters (NOTE: [Layers register their counters]);
  ``_log``: the ``xcs`` loggers and correlation ids.

Who records what: the scheduler a ``region`` span per task group and a ``task``
span per task (``_runtime._scheduler``), the model layer a ``model`` span per call
(``models._engine`` through ``model_call`` below), operators an ``operator`` span
(``span("operator", name)``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from xcs._observe import _log, _spans
from xcs._observe._spans import Span, Trace, span
from xcs._observe._stats import stats
from xcs.errors import ValidationError

__all__ = ["Span", "Trace", "model_call", "span", "stats", "trace"]

R = TypeVar("R")

_log.install()


@contextmanager
def trace(*, record_content: bool = False) -> Iterator[Trace]:
    """Record what runs inside the block: a span for every region task, model call
    and operator call, with its parent, thread, start and end, and what it cost.

    Work the block starts on XCS's pool is traced too (tasks inherit the block's
    context); threads the program starts itself are not. Traces may nest: a span
    goes to every trace open around it.

    Args:
        record_content: also record prompts and responses on model spans (off by
            default: traces are often shared). Keys are never recorded.

    Returns:
        A context manager whose value is the ``Trace`` (``.spans``,
        ``.summary()``, ``.timeline()``, ``.to_chrome(path)``, ``.to_otel()``).

    Raises:
        ValidationError: ``record_content`` is not a bool.

    Example::

        with xcs.trace() as t:
            answer = pipeline(question)
        print(t.timeline())
        t.to_chrome("trace.json")        # open in ui.perfetto.dev
    """
    if not isinstance(record_content, bool):
        raise ValidationError(
            f"xcs.trace(record_content=...) takes True or False, got {record_content!r}"
        )
    recording = Trace(record_content=record_content)
    token = _spans._open(recording)
    try:
        yield recording
    finally:
        _spans._close(recording, token)


def _prompt_text(prompt: object) -> str:
    if isinstance(prompt, str):
        return prompt
    parts = []
    for message in prompt if isinstance(prompt, list | tuple) else [prompt]:
        if isinstance(message, dict):
            parts.append(f"{message.get('role', '?')}: {message.get('content', '')}")
        else:
            parts.append(str(getattr(message, "content", message)))
    return "\n".join(parts)


def _open_model_span(model: str, provider: str, prompt: object) -> _spans.Span | None:
    """The ``model`` span of one call (None outside a trace), made current."""
    if not _spans.active:
        return None
    opened = _spans.begin(
        "model",
        model,
        model=model,
        provider=provider,
        call_id=_log.current_call_id(),
        site=_spans.call_site(),
    )
    if opened is not None and _spans.record_content():
        opened.attrs["prompt"] = _prompt_text(prompt)
    return opened


def _failed_model_span(opened: _spans.Span, exc: BaseException) -> None:
    opened.fail(exc)
    attempts = getattr(exc, "attempts", None)
    if isinstance(attempts, int):
        opened.attrs["attempts"] = attempts
        opened.attrs["retries"] = max(attempts - 1, 0)


def _answered_model_span(opened: _spans.Span, response: object) -> None:
    usage = getattr(response, "usage", None)
    if usage is not None:
        opened.attrs["prompt_tokens"] = usage.prompt_tokens
        opened.attrs["completion_tokens"] = usage.completion_tokens
    opened.attrs["cost_usd"] = getattr(response, "cost_usd", None)
    opened.attrs["cached"] = bool(getattr(response, "cached", False))
    if _spans.record_content():
        opened.attrs["response"] = str(response)


def model_call(fn: Callable[..., R], model: str, provider: str, prompt: object, *args: Any) -> R:
    """Run ``fn(*args)``, one model call, as a call: a fresh correlation id for its
    log records and, inside a trace, a ``model`` span with what the response says
    (tokens, cost, cached; attempts and retries noted by the engine; the error).
    """
    token = _log.new_call_id()
    try:
        opened = _open_model_span(model, provider, prompt)
        if opened is None:
            return fn(*args)
        inner = _spans._current.set(opened)
        try:
            response = fn(*args)
        except BaseException as exc:
            _failed_model_span(opened, exc)
            raise
        finally:
            _spans._current.reset(inner)
            opened.finish()
        _answered_model_span(opened, response)
        return response
    finally:
        _log.reset_call_id(token)


async def amodel_call(call: Coroutine[Any, Any, R], model: str, provider: str, prompt: object) -> R:
    """``model_call`` for the model layer's async path (``xcs.models.acall``):
    await ``call`` as one model call, with its correlation id and ``model`` span."""
    token = _log.new_call_id()
    try:
        opened = _open_model_span(model, provider, prompt)
        if opened is None:
            return await call
        inner = _spans._current.set(opened)
        try:
            response = await call
        except BaseException as exc:
            _failed_model_span(opened, exc)
            raise
        finally:
            _spans._current.reset(inner)
            opened.finish()
        _answered_model_span(opened, response)
        return response
    finally:
        _log.reset_call_id(token)
        call.close()  # never awaited when the span could not open: no warning


def note_attempt(attempt: int) -> None:
    """Called by the model engine as attempt ``attempt`` (0-based) starts."""
    current = _spans._current.get()
    if current is not None and current.kind == "model":
        current.attrs["attempts"] = attempt + 1
        current.attrs["retries"] = attempt
