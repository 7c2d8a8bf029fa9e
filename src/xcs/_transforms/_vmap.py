"""``xcs.vmap``: a function of one item made into a function of a batch, run on the
shared scheduler."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from typing import Any

from xcs._runtime._pool import WorkerPool, get_pool
from xcs._transforms._axes import Failed, ItemPlan, check_in_axes, plan_items, stack_results
from xcs._transforms._shard import call_items
from xcs.errors import ExtraNotInstalledError, ValidationError

__all__ = ["Mapped", "check_errors_mode", "progress_bar", "vmap"]

# The two ways a batch treats a failing item (the ``errors=`` argument).
RAISE = "raise"  # the first failing item in input order raises; the rest is cancelled
COLLECT = "collect"  # every item runs; an exception takes the failing item's place
_MODES = (RAISE, COLLECT)


def check_errors_mode(errors: object, what: str) -> None:
    if errors not in _MODES:
        raise ValidationError(
            f"{what}: errors={errors!r}; use errors='raise' (the first failing item "
            "raises, the default) or errors='collect' (each failing item's exception "
            "takes its place in the results)"
        )


def check_max_workers(value: object, what: str, name: str = "max_workers") -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{what}: {name} must be an int >= 1 or None, got {value!r}")


def progress_bar(total: int | None, desc: str) -> Any:
    """A tqdm bar that stays quiet when stderr is not a terminal.

    Raises:
        ExtraNotInstalledError: tqdm is not installed.
    """
    try:
        from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ExtraNotInstalledError(
            "progress=True needs tqdm: pip install 'xcs-jit[progress]'", extra="progress"
        ) from exc
    # disable=None: tqdm turns itself off when the output is not a TTY (CI logs, files).
    return tqdm(total=total, desc=desc, unit="item", disable=None)


class Mapped:
    """A function mapped over a batch. Not constructed directly: use ``xcs.vmap``
    (or ``xcs.pmap``).

    Calling it with sized batches (lists, tuples, dicts of lists, ...) returns the
    stacked results; calling it with a lazy batch (a generator, a file) returns an
    iterator that yields each item's result in order as the window moves.
    """

    _what = "xcs.vmap"

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        in_axes: Any,
        max_workers: int | None,
        progress: bool,
        errors: str,
    ) -> None:
        if not callable(fn):
            raise ValidationError(f"{self._what} takes a callable, got {fn!r}")
        check_in_axes(in_axes)
        check_max_workers(max_workers, self._what)
        check_errors_mode(errors, self._what)
        self.fn = fn
        self.in_axes = in_axes
        self.max_workers = max_workers
        self.progress = bool(progress)
        self.errors = errors
        self.name = str(getattr(fn, "__name__", type(fn).__name__))
        if self.progress:
            progress_bar(0, self.name).close()  # fail now, not at the first call
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        plan = plan_items(self.fn, args, self.in_axes, what=self._what)
        total = plan.length
        stream = self._stream(plan, kwargs, total)
        if total is None:
            return _unwrap(stream)
        return stack_results(list(stream), self._what)

    # -- running -----------------------------------------------------------------

    def _stream(
        self, plan: ItemPlan, kwargs: dict[str, Any], total: int | None
    ) -> Generator[Any, None, None]:
        """Each item's result in order (``Failed`` for a collected failure)."""
        shared = get_pool()
        own: WorkerPool | None = None
        if self.max_workers is not None and self.max_workers > shared.max_workers:
            # More in flight than the shared pool has threads: a pool of its own for
            # this call, closed when the call ends.
            own = WorkerPool(self.max_workers, name="xcs-vmap")
        pool = own if own is not None else shared
        window = self.max_workers if self.max_workers is not None else pool.max_workers
        bar = progress_bar(total, self.name) if self.progress else None
        it = call_items(
            self.fn,
            plan.items(),
            kwargs,
            window=window,
            collect=self.errors == COLLECT,
            name=self.name,
            pool=pool,
        )
        try:
            for result in it:
                if bar is not None:
                    bar.update(1)
                yield result
        finally:
            it.close()
            if bar is not None:
                bar.close()
            if own is not None:
                own.close()

    def __repr__(self) -> str:
        return f"<{self._what}({self.name}) in_axes={self.in_axes!r} errors={self.errors!r}>"


def _unwrap(stream: Generator[Any, None, None]) -> Generator[Any, None, None]:
    try:
        for result in stream:
            yield result.error if isinstance(result, Failed) else result
    finally:
        stream.close()


def vmap(
    fn: Callable[..., Any],
    *,
    in_axes: Any = 0,
    max_workers: int | None = None,
    progress: bool = False,
    errors: str = RAISE,
) -> Mapped:
    """Map ``fn`` over a batch: call it once per item, concurrently, results in order.

    ``in_axes`` says which positional arguments are batches and which are passed
    whole (NOTE: [What vmap maps over] in ``_axes``): ``0`` maps over an argument's
    leading axis (a list's items; a dict or pydantic model of lists gives one dict per
    item), ``None`` broadcasts it, a tuple gives one axis per positional argument, and
    a nested tuple or dict describes a nested argument. Keyword arguments are
    broadcast. Results mirror what ``fn`` returns: dicts and tuples are stacked into
    dicts and tuples of lists, anything else gives a list. A lazy batch (a generator,
    a file) gives a lazy result: an iterator that reads the input only as its bounded
    window moves, so a million-item stream needs the memory of ``max_workers`` items.

    Calls run on the shared thread pool (made for blocking calls such as model calls),
    at most ``max_workers`` at a time (default: the pool's size, 64).

    Args:
        fn: the function of one item.
        in_axes: 0, None, or a tuple/list/dict of them (see above).
        max_workers: items in flight at once. Above the shared pool's size, the call
            gets a pool of its own of that size.
        progress: show a tqdm progress bar (``pip install 'xcs-jit[progress]'``);
            it stays quiet when stderr is not a terminal.
        errors: ``"raise"`` (default): the first failing item in input order raises
            its own exception object (a note names the item), items after it are
            cancelled, as in a plain loop. ``"collect"``: every item runs, and a failing
            item's exception object takes its place in the results (for batch jobs
            that must finish; ``KeyboardInterrupt`` still stops the batch).

    Returns:
        A callable with ``fn``'s name and docstring.

    Raises:
        ValidationError: a malformed ``in_axes``, ``max_workers`` or ``errors``; at the
            call, arguments that do not fit ``in_axes`` or batches of different
            lengths (the message names the arguments and their lengths).
        ExtraNotInstalledError: ``progress=True`` without tqdm.
        BaseException: at the call, the first failing item's exception (strict mode).
        ExecutionTimeout: an ``xcs.deadline`` expired.

    Example::

        def grade(answer, rubric):
            return xcs.models("sim:chat", f"{rubric}\\n{answer}", temperature=0)

        grades = xcs.vmap(grade, in_axes=(0, None))(answers, rubric)

        # plain Python, same result, one call at a time:
        grades = [grade(a, rubric) for a in answers]
    """
    return Mapped(fn, in_axes=in_axes, max_workers=max_workers, progress=progress, errors=errors)
