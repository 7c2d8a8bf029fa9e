"""Making a function's next call a first call again, for tests of first calls."""

from __future__ import annotations

from typing import Any

from xcs._compiler import _jit, _rt


def forget(*fns: Any) -> None:
    """Drop what XCS cached on ``fns`` (functions, or class/static methods as found in
    a class ``__dict__``): their dispatch targets and compiled forms."""
    for fn in fns:
        function = getattr(fn, "__func__", fn)
        function.__dict__.pop(_rt.DISPATCH_KEY, None)
        function.__dict__.pop(_jit._CACHE_KEY, None)
