"""Logging: XCS's loggers, silent unless asked, and a correlation id on every record.

XCS logs through ``logging.getLogger("xcs")`` and its children (``xcs.models``).
The library configures no output: a ``NullHandler`` on ``xcs`` keeps Python's
last-resort handler from printing XCS's warnings to stderr; the application decides
(``logging.basicConfig``, or ``xcs --verbose`` on the command line).

Every record an XCS logger makes carries ``record.xcs_call_id``: the correlation id
of the call it belongs to (``"-"`` outside any). Each model call gets one, and so
does anything marked with ``call_scope``; a call made inside another gets the outer
id plus a suffix (``7f3a.4`` inside ``7f3a``), so grepping for an id finds the call
and everything it caused. The id follows work onto pool threads (tasks run in the
context that spawned them) and is also on the call's span in a trace. Use it in a
format string::

    logging.basicConfig(format="%(asctime)s %(xcs_call_id)s %(name)s: %(message)s")
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "CallIdFilter",
    "call_scope",
    "current_call_id",
    "get_logger",
    "new_call_id",
    "reset_call_id",
]

_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("xcs_call_id", default=None)
_counter = itertools.count(1)
# Ids are unique within a process; the prefix tells processes apart in merged logs.
_PREFIX = f"{os.getpid() & 0xFFFF:04x}"


class CallIdFilter(logging.Filter):
    """Adds ``xcs_call_id`` to each record of the logger it is attached to."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.xcs_call_id = _call_id.get() or "-"
        return True


_FILTER = CallIdFilter()


def get_logger(name: str = "xcs") -> logging.Logger:
    """An XCS logger (``xcs`` or ``xcs.<layer>``) whose records carry the call id.

    A filter on a logger sees only the records made by that logger itself, not the
    ones its children pass up, so each XCS logger gets the filter. XCS's own
    modules should take their logger from here.
    """
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def current_call_id() -> str | None:
    """The correlation id of the call the calling code runs in, if any."""
    return _call_id.get()


def new_call_id() -> contextvars.Token[str | None]:
    """Enter a new call: a fresh id (nested under the current one, if any)."""
    outer = _call_id.get()
    number = next(_counter)
    return _call_id.set(f"{_PREFIX}-{number:x}" if outer is None else f"{outer}.{number:x}")


def reset_call_id(token: contextvars.Token[str | None]) -> None:
    _call_id.reset(token)


@contextmanager
def call_scope() -> Iterator[str]:
    """A block that is one call: records inside it carry a fresh correlation id."""
    token = new_call_id()
    try:
        yield _call_id.get() or "-"
    finally:
        _call_id.reset(token)


def install() -> None:
    """Silence by default, ids on every record of the loggers XCS uses today."""
    root = get_logger("xcs")
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())
    for name in ("xcs.models", "xcs.operators", "xcs.transforms", "xcs.cli", "xcs.demo"):
        get_logger(name)
