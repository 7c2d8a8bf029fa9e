"""The public API: one place re-exports it, and __all__ is exactly the public names."""

from __future__ import annotations

import types

import xcs


def test_all_is_sorted_and_complete() -> None:
    # dir(), not vars(): some names load on first use (NOTE: [Lazy exports]).
    public = {
        name
        for name in dir(xcs)
        if not name.startswith("_") and not isinstance(getattr(xcs, name), types.ModuleType)
    }
    assert xcs.__all__ == sorted(xcs.__all__)
    assert set(xcs.__all__) == public


def test_every_public_name_is_documented() -> None:
    for name in xcs.__all__:
        assert getattr(xcs, name).__doc__, name


def test_importing_xcs_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, xcs; heavy = [m for m in ('ray', 'dask', 'openai', 'anthropic', "
        "'xllamacpp', 'numpy', 'click', 'opentelemetry') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_package_docstring_examples_run() -> None:
    import doctest

    failures, tried = doctest.testmod(xcs, verbose=False)
    assert tried >= 5
    assert failures == 0
