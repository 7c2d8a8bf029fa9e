"""The compiled function is the same function: tracebacks, closures, globals,
defaults, methods, super(), private names, lambdas, exec'd and __main__ code."""

from __future__ import annotations

import functools
import inspect
import linecache
import subprocess
import sys
import textwrap
import time
import traceback
from typing import Any

import pytest

import xcs


def slow(x: Any) -> Any:
    time.sleep(0.001)
    return x


def fails(x: Any) -> Any:
    time.sleep(0.001)
    raise ValueError(f"bad {x}")


def test_tracebacks_point_to_the_users_lines() -> None:
    @xcs.jit
    def run(xs: list[int]) -> list[Any]:
        return [fails(x) for x in xs]  # THE LINE

    with pytest.raises(ValueError, match="bad 0") as caught:
        run([0, 1])
    frames = traceback.extract_tb(caught.value.__traceback__)
    mine = [f for f in frames if f.filename == __file__]
    assert any("THE LINE" in (f.line or "") for f in mine)
    assert mine[-1].name == "fails"


def test_an_error_at_a_join_is_reported_at_the_statement() -> None:
    @xcs.jit
    def run(x: int) -> int:
        a = slow(x)
        b = fails(x)  # FAILING STATEMENT
        return a + b

    for _ in range(2):
        with pytest.raises(ValueError) as caught:
            run(1)
        lines = [f.line or "" for f in traceback.extract_tb(caught.value.__traceback__)]
        assert any("FAILING STATEMENT" in line for line in lines)


GLOBAL_FACTOR = 2


def test_globals_are_late_bound() -> None:
    global GLOBAL_FACTOR

    @xcs.jit
    def run(xs: list[int]) -> list[int]:
        return [slow(x) * GLOBAL_FACTOR for x in xs]

    assert run([1, 2]) == [2, 4]
    GLOBAL_FACTOR = 3
    try:
        assert run([1, 2]) == [3, 6]
    finally:
        GLOBAL_FACTOR = 2


def test_closure_cells_are_shared_with_the_original() -> None:
    factor = 2

    @xcs.jit
    def run(xs: list[int]) -> list[int]:
        return [slow(x) * factor for x in xs]

    assert run([1]) == [2]
    factor = 5  # rebinding the enclosing variable is seen by the jitted function
    assert run([1]) == [5]

    def counter() -> Any:
        count = 0

        def bump(xs: list[int]) -> int:
            nonlocal count
            count += sum(slow(x) for x in xs)
            return count

        return xcs.jit(bump), lambda: count

    bump, read = counter()
    assert bump([1, 2]) == 3
    assert bump([4]) == 7
    assert read() == 7


def test_defaults_keyword_only_and_star_args() -> None:
    @xcs.jit
    def run(a: int, b: int = 10, *rest: int, scale: int = 1, **extra: int) -> Any:
        values = [slow(v) * scale for v in (a, b, *rest)]
        return values, sorted(extra.items())

    assert run(1) == ([1, 10], [])
    assert run(1, 2, 3, 4, scale=2, k=7) == ([2, 4, 6, 8], [("k", 7)])
    assert str(inspect.signature(run)) == str(inspect.signature(run.__wrapped__))


def test_metadata_is_kept() -> None:
    def documented(x: int) -> list[int]:
        """Doc."""
        return [slow(v) for v in range(x)]

    jitted = xcs.jit(documented)
    assert jitted.__name__ == "documented"
    assert jitted.__doc__ == "Doc."
    assert jitted.__wrapped__ is documented
    assert jitted.__annotations__ == documented.__annotations__


class Base:
    def scale(self, x: int) -> int:
        return x * 2


class Model(Base):
    factor = 3

    def __init__(self) -> None:
        self.__secret = 7  # name-mangled to _Model__secret

    @xcs.jit
    def scale(self, x: int) -> int:
        base = super().scale  # (zero-argument super() fails inside a comprehension)
        parts = [base(slow(v)) for v in (x, x)]
        return sum(parts) + self.__secret

    @xcs.jit
    @classmethod
    def make(cls, xs: list[int]) -> list[int]:
        return [slow(x) * cls.factor for x in xs]

    @xcs.jit
    @staticmethod
    def double(xs: list[int]) -> list[int]:
        return [slow(x) * 2 for x in xs]

    @classmethod
    @xcs.jit
    def make2(cls, xs: list[int]) -> list[int]:
        return [slow(x) * cls.factor for x in xs]


def test_methods_super_and_private_names() -> None:
    model = Model()
    assert model.scale(1) == 2 + 2 + 7
    assert Model.make([1, 2]) == [3, 6]
    assert model.make([1]) == [3]
    assert Model.double([1, 2]) == [2, 4]
    assert Model.make2([2]) == [6]
    assert "regions:" in xcs.explain(Model.scale)


def test_recursion_through_the_jitted_name() -> None:
    @xcs.jit
    def depth(n: int) -> int:
        if n == 0:
            return 0
        return max(depth(slow(n - 1)) for _ in range(2)) + 1

    assert depth(3) == 3


def test_a_lambda_among_others_on_one_line() -> None:
    first, second = (lambda xs: [slow(x) + 1 for x in xs]), (lambda xs: [slow(x) for x in xs])
    assert xcs.jit(first)([1, 2]) == [2, 3]
    assert xcs.jit(second)([1, 2]) == [1, 2]
    assert "regions:" in xcs.explain(xcs.jit(second))


def test_functions_from_exec_with_linecache_compile() -> None:
    source = textwrap.dedent(
        """
        def run(xs):
            return [slow(x) * 2 for x in xs]
        """
    )
    filename = "<xcs-test-exec>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"slow": slow}
    exec(compile(source, filename, "exec"), namespace)
    jitted = xcs.jit(namespace["run"])
    assert jitted([1, 2]) == [2, 4]
    assert "regions:" in xcs.explain(jitted)


def test_functions_without_source_run_as_written() -> None:
    namespace: dict[str, Any] = {"slow": slow}
    exec("def run(xs):\n    return [slow(x) for x in xs]\n", namespace)
    jitted = xcs.jit(namespace["run"])
    with pytest.warns(xcs.JitWarning, match="source is not available"):
        assert jitted([1, 2]) == [1, 2]
    assert "runs as written: its source is not available" in xcs.explain(jitted)


def test_functions_in_main_compile(tmp_path: Any) -> None:
    code = textwrap.dedent(
        """
        import time, threading, xcs
        barrier = threading.Barrier(3, timeout=10)

        def call(x):
            if x == 0:
                time.sleep(0.002)
            else:
                barrier.wait()
            return x

        @xcs.jit
        def run(xs):
            return [call(x) for x in xs]

        print(run([0, 1, 2, 3]))
        """
    )
    script = tmp_path / "main_script.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[0, 1, 2, 3]"


def test_decorated_functions_compile_their_own_code() -> None:
    def logged(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any) -> Any:
            return ["logged", fn(*args)]

        return wrapper

    @logged
    def run(xs: list[int]) -> list[int]:
        return [slow(x) for x in xs]

    assert xcs.jit(run)([1]) == run([1]) == ["logged", [1]]


@xcs.jit(
    max_workers=4,
)
def _split_signature(
    xs: list[int],
    scale: int = 2,
) -> list[int]:
    text = """
a line less indented than the body, inside a string
"""
    return [slow(x) * scale + len(text) * 0 for x in xs]


def test_sources_with_odd_layout_are_found() -> None:
    # A decorator and a signature over several lines, a string literal less indented
    # than the body: the fast block finder falls back to the tokenizer when needed.
    assert _split_signature([1, 2]) == [2, 4]
    assert "comprehension, line" in xcs.explain(_split_signature)
