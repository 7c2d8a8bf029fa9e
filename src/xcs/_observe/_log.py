"""Logging: XCS's loggers, silent unless asked, and a correlation id on every record.

XCS logs through ``logging.getLogger("xcs")`` and its children (``xcs.models``).
The library configures no output: a ``NullHandler`` on ``xcs`` keeps Python's
last-resort handler from printing XCS's warnings to stderr; the application decides
(``logging.basicConfig``, or ``xcs --verbose`` on the command line).

Every log record carries ``record.xcs_call_id``: the correlation id of the call it
belongs to (``"-"`` outside any). Every record, not only XCS's: a format string
naming the field goes on the root handler (``logging.basicConfig``), where it meets
the records of every logger (httpx, Ray, the application's own), and a record
without the field would make ``logging`` print "Formatting field not found in
record" instead of the line. So ``import xcs`` wraps the log record factory
(``logging.setLogRecordFactory``, keeping whatever factory was there) to set the
field on each new record; an application's own records made inside an XCS call
carry that call's id. Each model call gets one, and so
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "CallIdFilter",
    "call_scope",
    "current_call_id",
    "get_logger",
    "install_record_factory",
    "new_call_id",
    "reset_call_id",
]

_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("xcs_call_id", default=None)
_counter = itertools.count(1)
# Ids are unique within a process; the prefix tells processes apart in merged logs.
_PREFIX = f"{os.getpid() & 0xFFFF:04x}"


def _with_call_id(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.xcs_call_id = _call_id.get() or "-"
        return record

    factory.__xcs_call_id__ = True  # type: ignore[attr-defined]
    return factory


def install_record_factory() -> None:
    """Give every new log record ``xcs_call_id`` (idempotent; chains the factory in
    place, so an application's own factory keeps working)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "__xcs_call_id__", False):
        logging.setLogRecordFactory(_with_call_id(current))


class CallIdFilter(logging.Filter):
    """Adds ``xcs_call_id`` to each record of the logger it is attached to (records
    the factory did not make: ``logging.makeLogRecord``, another factory set after
    ``import xcs``)."""

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
    """Silence by default, ids on every record (of any logger) and on every record of
    the loggers XCS uses today, whatever made it."""
    install_record_factory()
    root = get_logger("xcs")
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())
    for name in ("xcs.models", "xcs.operators", "xcs.transforms", "xcs.cli", "xcs.demo"):
        get_logger(name)
