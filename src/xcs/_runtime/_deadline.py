"""Deadlines: ``xcs.deadline(seconds)`` and the clock every wait in XCS consults."""

from __future__ import annotations

import math
import time
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from xcs.errors import ExecutionTimeout, ValidationError

__all__ = ["Deadline", "current_deadline", "deadline", "remaining"]


class Deadline:
    """An absolute point on the monotonic clock by which work must be done.

    Not constructed directly; use ``xcs.deadline(seconds)``.
    """

    __slots__ = ("at", "reported", "seconds")

    def __init__(self, at: float, seconds: float) -> None:
        self.at = at
        self.seconds = seconds
        # Set once some wait has raised this deadline's ExecutionTimeout (NOTE: [Async
        # deadlines cancel] lets such a wait finish reporting before it cancels).
        self.reported = False

    def remaining(self) -> float:
        """Seconds left (negative once expired)."""
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def timeout_error(
        self, *, running: tuple[str, ...] = (), cancelled: int = 0, where: str = ""
    ) -> ExecutionTimeout:
        """The exception that reports this deadline's expiry."""
        self.reported = True
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


# How long an ``async with`` block may go on finishing after one of XCS's own waits
# reported the expiry, before the block's task is cancelled (NOTE: [Async deadlines
# cancel]).
_REPORT_GRACE_S = 0.05

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

    ``async with xcs.deadline(seconds)`` also bounds every ``await`` in the block, as
    ``asyncio.timeout`` does (NOTE: [Async deadlines cancel]): at expiry the awaiting
    task is cancelled, and the block raises ``ExecutionTimeout`` in place of the
    ``CancelledError``.

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

    __slots__ = (
        "_cancelling",
        "_deadline",
        "_effective",
        "_fired",
        "_task",
        "_timer",
        "_token",
        "seconds",
    )

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
        self._task: Any = None  # asyncio.Task, when entered with ``async with``
        self._timer: Any = None  # the loop's handle that will cancel it at expiry
        self._effective: Deadline | None = None  # the deadline in force in the block
        self._cancelling = 0
        self._fired = False

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

    # NOTE: [Async deadlines cancel]
    # A coroutine that awaits (a socket, a sleep, a jitted async function running its
    # calls in order) would otherwise see the deadline only when it next asks for it,
    # so three awaits of 2 s under a 0.2 s deadline took 6 s. As ``asyncio.timeout``
    # does, entering arms a timer on the running loop that cancels the task at the
    # deadline in force (the earliest of the nested ones, so a sync ``with`` around
    # the coroutine counts too), and exiting turns the CancelledError that the timer
    # caused into ExecutionTimeout. Task.cancelling() tells whose cancellation it is:
    # if, after this block withdraws its own request (uncancel), the task still has
    # more requests than it had on entry, someone else cancelled it too (an enclosing
    # deadline, a caller's task.cancel()), and the CancelledError goes on unchanged.
    # XCS's own waits (a region's tasks, a model call) expire at the same moment and
    # raise a timeout that says what was still running, which is worth more than a
    # bare cancellation: at expiry the timer lets the loop turn twice (a wait woken
    # by its own timeout runs meanwhile), and if such a wait has reported the expiry
    # it gives the block a grace period to finish raising (its cleanup awaits the
    # tasks it cancelled) before it cancels anyway.

    async def __aenter__(self) -> deadline:
        import asyncio  # already loaded: we are inside a running loop

        self.__enter__()
        task = asyncio.current_task()
        effective = _current.get()
        if task is not None and effective is not None:
            loop = asyncio.get_running_loop()
            self._task = task
            self._effective = effective
            self._cancelling = task.cancelling()
            self._fired = False
            self._timer = loop.call_at(loop.time() + effective.remaining(), self._on_expiry)
        return self

    def _on_expiry(self, step: int = 0) -> None:
        task, effective = self._task, self._effective
        if task is None or task.done() or effective is None:
            return
        loop = task.get_loop()
        if step < 2:
            self._timer = loop.call_soon(self._on_expiry, step + 1)
            return
        if step == 2 and effective.reported:
            self._timer = loop.call_later(_REPORT_GRACE_S, self._on_expiry, 3)
            return
        self._timer = None
        self._fired = True
        task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        import asyncio

        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        task, self._task = self._task, None
        effective, self._effective = self._effective, None
        if task is not None and self._fired:
            self._fired = False
            theirs = task.uncancel() > self._cancelling
            if (
                not theirs
                and exc_type is not None
                and issubclass(exc_type, asyncio.CancelledError)
                and effective is not None
            ):
                self._reset()
                raise effective.timeout_error(where="async with xcs.deadline block") from exc
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
