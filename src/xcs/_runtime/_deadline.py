"""Deadlines: ``xcs.deadline(seconds)`` and the clock every wait in XCS consults."""

from __future__ import annotations

import math
import time
from contextvars import ContextVar, Token
from types import TracebackType

from xcs.errors import ExecutionTimeout, ValidationError

__all__ = ["Deadline", "current_deadline", "deadline", "remaining"]


class Deadline:
    """An absolute point on the monotonic clock by which work must be done.

    Not constructed directly; use ``xcs.deadline(seconds)``.
    """

    __slots__ = ("at", "seconds")

    def __init__(self, at: float, seconds: float) -> None:
        self.at = at
        self.seconds = seconds

    def remaining(self) -> float:
        """Seconds left (negative once expired)."""
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def timeout_error(
        self, *, running: tuple[str, ...] = (), cancelled: int = 0, where: str = ""
    ) -> ExecutionTimeout:
        """The exception that reports this deadline's expiry."""
        parts = [f"deadline of {self.seconds:g} s exceeded"]
        if where:
            parts[0] += f" in {where}"
        if running:
            shown = ", ".join(running[:8]) + (", ..." if len(running) > 8 else "")
            parts.append(f"still running (result discarded): {shown}")
        if cancelled:
            parts.append(f"{cancelled} not started, cancelled")
        return ExecutionTimeout(
            "; ".join(parts), seconds=self.seconds, running=running, cancelled=cancelled
        )

    def __repr__(self) -> str:
        return f"<Deadline {self.seconds:g} s, {self.remaining():.3f} s left>"


# The innermost *effective* deadline of the current context: a nested deadline that is
# later than its parent stores the parent, so reading one variable gives the earliest.
# Being a ContextVar, it follows work into tasks (each task runs in a copy of the
# context that spawned it) and into asyncio tasks.
_current: ContextVar[Deadline | None] = ContextVar("xcs_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline in force here, or None. The model layer bounds its calls by it."""
    return _current.get()


def remaining() -> float | None:
    """Seconds left before the deadline in force here (None: no deadline)."""
    active = _current.get()
    return None if active is None else active.remaining()


class deadline:
    """Bound the time a block of code may take: ``with xcs.deadline(seconds): ...``.

    Every wait inside the block (an ordered map, a task group, a graph, a model
    call with its retries) is bounded by the deadline. When it expires, work that had
    not started is cancelled and never runs, and ``xcs.ExecutionTimeout`` is raised,
    listing the tasks that were still running (threads cannot be interrupted, so those
    finish in the background; their results are discarded). Nested deadlines take the
    earliest. If the block ends after its deadline without having waited anywhere,
    ``ExecutionTimeout`` is raised at its end: a result that came too late is not
    returned as if it were on time.

    Args:
        seconds: the time allowed, a positive number. ``0`` is an expired deadline:
            the block does not run.

    Raises:
        ValidationError: ``seconds`` is negative, NaN or not a number.
        ExecutionTimeout: the deadline (or an enclosing earlier one) expired.

    Example::

        with xcs.deadline(30):
            answers = judge_all(questions)
    """

    __slots__ = ("_deadline", "_token", "seconds")

    def __init__(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValidationError(
                f"xcs.deadline(seconds) takes a number of seconds, got {type(seconds).__name__}"
            )
        if math.isnan(seconds) or seconds < 0:
            raise ValidationError(f"xcs.deadline(seconds) needs seconds >= 0, got {seconds!r}")
        self.seconds = float(seconds)
        self._deadline: Deadline | None = None
        self._token: Token[Deadline | None] | None = None

    def __enter__(self) -> deadline:
        if self._token is not None:
            raise RuntimeError("this xcs.deadline is already in use; create a new one")
        own = Deadline(time.monotonic() + self.seconds, self.seconds)
        parent = _current.get()
        effective = own if parent is None or own.at < parent.at else parent
        self._deadline = own
        self._token = _current.set(effective)
        if effective.expired():
            self._reset()
            raise effective.timeout_error(where="xcs.deadline block (expired on entry)")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        own = self._deadline
        self._reset()
        if exc_type is None and own is not None and own.expired():
            raise own.timeout_error(where="xcs.deadline block (finished late)")

    async def __aenter__(self) -> deadline:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _reset(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            _current.reset(token)

    def remaining(self) -> float:
        """Seconds left on this deadline (its own, not an enclosing one)."""
        if self._deadline is None:
            return self.seconds
        return self._deadline.remaining()

    def __repr__(self) -> str:
        return f"xcs.deadline({self.seconds:g})"
