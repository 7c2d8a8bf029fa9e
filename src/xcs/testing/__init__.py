"""Helpers for your own test suites: prove that a program does not depend on the order
of its calls.

``@xcs.jit`` overlaps a region's calls only where it measured that they block, so a
test suite whose fakes answer at once runs every region in order and cannot show an
order dependence. ``force_overlap()`` puts every region on its concurrent path,
whatever was measured: a race detector for the contract of ``@xcs.jit``::

    import xcs.testing

    def test_pipeline_is_order_independent():
        plain = pipeline.__wrapped__(inputs)
        with xcs.testing.force_overlap():
            assert pipeline(inputs) == plain

Setting ``XCS_FORCE_OVERLAP=1`` in the environment before ``import xcs`` does the
same for a whole process (``XCS_FORCE_OVERLAP=1 pytest``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from xcs._runtime._measure import forced, set_forced

__all__ = ["force_overlap", "overlap_forced"]


@contextmanager
def force_overlap() -> Iterator[None]:
    """Run every parallel region on its concurrent path while the block runs.

    Only the measurement is overridden: no probe runs, and every item of a region is
    a task from the first call. What XCS keeps in order by analysis (a loop that reads
    its own accumulator, a callee marked ``@xcs.sequential``, a ``try`` block...) stays
    in order: those are not measurements. The switch is process-wide (every thread's
    regions, while any such block is open) and nests. Also usable as a decorator.

    Raises:
        Nothing of its own; the block's exceptions pass through.
    """
    set_forced(+1)
    try:
        yield
    finally:
        set_forced(-1)


def overlap_forced() -> bool:
    """True while ``force_overlap()`` (or ``XCS_FORCE_OVERLAP=1``) is in force."""
    return forced()
