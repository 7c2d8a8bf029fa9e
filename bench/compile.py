"""Compile time of ``@xcs.jit``: the bench/jit.py workload and real code, beside
CPython's own ``compile()`` of the same source.

Two workloads, each compiled from fresh function objects (nothing cached):

- ``pipeline``: bench/jit.py's compound function of about 50 lines (its regions of
  every kind), the figure of the "compile <= 5 ms" target.
- ``realcode``: every function and method of some standard-library modules of the
  real-code suite (tests/realcode), most of which have no region at all.

The figure is the calling thread's CPU time (``time.thread_time``), median of the
repeats; CPython's ``compile()`` of each function's source, timed in the same loop,
gives a ratio that does not depend on the machine's speed or load.

Run::

    python bench/compile.py                       # this tree (PYTHONPATH)
    python bench/compile.py --compare OTHER/src   # this tree and another, in turns
    python bench/compile.py --profile realcode    # cProfile of one workload
    python bench/compile.py --once pipeline       # compile it once (for callgrind)
    python bench/compile.py --once pipeline --cpython   # the same with compile()

``--compare`` runs the two trees in alternating child processes (the same inputs,
the same minute of machine load) and prints each one's medians and their ratio
(``--write``: and writes them to bench/results/compile.json). Under load the medians
move; ``valgrind --tool=callgrind`` over ``--once`` counts instructions instead
(the difference between ``--scale N`` and ``--scale 0``, divided by N).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import inspect
import io
import json
import linecache
import os
import pstats
import statistics
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Modules of the real-code suite whose functions are compiled (their sources are
# plain, varied library code: parsers, numeric code, formatting).
REALCODE_MODULES = (
    "statistics",
    "fractions",
    "textwrap",
    "difflib",
    "shlex",
    "configparser",
    "json.decoder",
    "json.encoder",
    "ipaddress",
    "calendar",
    "pprint",
    "argparse",
    "tokenize",
    "email._header_value_parser",
)


def _functions_of(module: types.ModuleType) -> list[types.FunctionType]:
    """The module's own functions and methods (as the real-code runner jits them)."""
    found: list[types.FunctionType] = []
    seen: set[int] = set()

    def add(value: Any) -> None:
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if isinstance(value, property):
            for part in (value.fget, value.fset, value.fdel):
                add(part)
            return
        if (
            isinstance(value, types.FunctionType)
            and value.__globals__ is module.__dict__
            and id(value) not in seen
        ):
            seen.add(id(value))
            found.append(value)

    def add_class(cls: type, depth: int) -> None:
        for value in vars(cls).values():
            if isinstance(value, type) and value.__module__ == module.__name__ and depth < 3:
                add_class(value, depth + 1)
            else:
                add(value)

    for value in list(vars(module).values()):
        if isinstance(value, type) and value.__module__ == module.__name__:
            add_class(value, 0)
        else:
            add(value)
    return found


def _fresh(fn: types.FunctionType) -> types.FunctionType:
    """A new function object for ``fn``'s code (so nothing is cached for it)."""
    copy = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__qualname__ = fn.__qualname__
    return copy


def _source_text(fn: types.FunctionType) -> str | None:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None


def workload(name: str) -> list[tuple[types.FunctionType, str]]:
    """(function, its source) pairs of one workload."""
    if name == "pipeline":
        from jit import COMPILE_FILENAME, COMPILE_SOURCE, fresh_pipeline

        lines = COMPILE_SOURCE.splitlines(keepends=True)
        linecache.cache[COMPILE_FILENAME] = (len(COMPILE_SOURCE), None, lines, COMPILE_FILENAME)
        return [(fresh_pipeline(), COMPILE_SOURCE)]  # type: ignore[list-item]
    if name != "realcode":
        raise SystemExit(f"unknown workload {name!r}: pipeline or realcode")
    pairs = []
    for module_name in REALCODE_MODULES:
        module = importlib.import_module(module_name)
        for fn in _functions_of(module):
            text = _source_text(fn)
            if text is not None:
                pairs.append((fn, text))
    return pairs


def _compile_all(pairs: list[tuple[types.FunctionType, str]]) -> None:
    from xcs._compiler._jit import compiled_for

    for fn, _ in pairs:
        compiled_for(_fresh(fn), None)


def measure(name: str, repeats: int) -> dict[str, Any]:
    """Median CPU time of compiling the whole workload, and of CPython's compile()."""
    from xcs._compiler._jit import compiled_for

    pairs = workload(name)
    _compile_all(pairs)  # warm imports, linecache, inspect's caches
    codes = [compile(text, "<bench>", "exec") for _, text in pairs]
    del codes
    xcs_s: list[float] = []
    cpython_s: list[float] = []
    regions = 0
    compiled = 0
    for _ in range(repeats):
        fresh = [_fresh(fn) for fn, _ in pairs]
        start = time.thread_time()
        entries = [compiled_for(fn, None) for fn in fresh]
        xcs_s.append(time.thread_time() - start)
        start = time.thread_time()
        for _, text in pairs:
            compile(text, "<bench>", "exec", dont_inherit=True)
        cpython_s.append(time.thread_time() - start)
        regions = sum(len(e.runtime.sites) for e in entries if e.runtime is not None)
        compiled = sum(e.target is not None for e in entries)
        del fresh, entries
    xcs_ms = statistics.median(xcs_s) * 1e3
    cpython_ms = statistics.median(cpython_s) * 1e3
    return {
        "workload": name,
        "functions": len(pairs),
        "compiled": compiled,
        "regions": regions,
        "repeats": repeats,
        "xcs_ms": xcs_ms,
        "cpython_ms": cpython_ms,
        "vs_cpython": xcs_ms / cpython_ms,
    }


def profile(name: str, repeats: int, sort: str = "tottime", top: int = 45) -> str:
    pairs = workload(name)
    _compile_all(pairs)
    batches = [[_fresh(fn) for fn, _ in pairs] for _ in range(repeats)]
    from xcs._compiler._jit import compiled_for

    profiler = cProfile.Profile()
    profiler.enable()
    for batch in batches:
        for fn in batch:
            compiled_for(fn, None)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(top)
    return out.getvalue()


REPEATS = {"pipeline": 300, "realcode": 7}


def _child(src: str, names: list[str], scale: float) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=src)
    command = [sys.executable, __file__, "--json", "--scale", str(scale), *names]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def compare(other: str, names: list[str], rounds: int, scale: float, write: bool = False) -> str:
    mine = str(HERE.parent / "src")
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {"other": {}, "this": {}}
    for _ in range(rounds):
        for label, src in (("other", other), ("this", mine)):
            for name, figures in _child(src, names, scale).items():
                runs[label].setdefault(name, []).append(figures)
    lines = [f"{'workload':10} {'tree':6} {'xcs ms':>9} {'compile() ms':>13} {'x compile()':>12}"]
    figures: dict[str, Any] = {"other": other, "rounds": rounds, "workloads": {}}
    for name in names:
        medians = {}
        for label in ("other", "this"):
            rows = runs[label][name]
            xcs_ms = statistics.median(r["xcs_ms"] for r in rows)
            cpy_ms = statistics.median(r["cpython_ms"] for r in rows)
            medians[label] = xcs_ms
            figures["workloads"].setdefault(name, {})[label] = {
                "cpu_median_ms": xcs_ms,
                "cpython_compile_ms": cpy_ms,
                "vs_cpython_compile": xcs_ms / cpy_ms,
                "functions": rows[0]["functions"],
                "compiled": rows[0]["compiled"],
                "regions": rows[0]["regions"],
                "runs": rows,
            }
            lines.append(
                f"{name:10} {label:6} {xcs_ms:9.2f} {cpy_ms:13.2f} {xcs_ms / cpy_ms:12.2f}"
                f"   (functions {rows[0]['functions']}, compiled {rows[0]['compiled']},"
                f" regions {rows[0]['regions']})"
            )
        lines.append(f"{name:10} this/other: {medians['this'] / medians['other']:.3f}")
        figures["workloads"][name]["this_vs_other"] = medians["this"] / medians["other"]
    if write:
        from _report import write_results

        write_results("compile", figures)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", default=["pipeline", "realcode"])
    parser.add_argument("--compare", metavar="SRC", help="another tree's src directory")
    parser.add_argument("--rounds", type=int, default=3, help="child runs per tree")
    parser.add_argument("--scale", type=float, default=1.0, help="times the repeats")
    parser.add_argument("--profile", metavar="WORKLOAD", help="print a cProfile of it")
    parser.add_argument("--sort", default="tottime", help="the profile's order")
    parser.add_argument(
        "--once", metavar="WORKLOAD", help="compile it (1 + --scale times), and exit"
    )
    parser.add_argument(
        "--cpython", action="store_true", help="with --once: CPython's compile() instead"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--write", action="store_true", help="with --compare: bench/results/compile.json"
    )
    args = parser.parse_args(argv)
    if args.profile:
        repeats = max(1, int(REPEATS[args.profile] * args.scale) // 3)
        print(profile(args.profile, repeats, args.sort))
        return 0
    if args.once:
        pairs = workload(args.once)
        if args.cpython:
            texts = [text for _, text in pairs]
            for _ in range(1 + int(args.scale)):
                for text in texts:
                    compile(text, "<bench>", "exec", dont_inherit=True)
            return 0
        _compile_all(pairs)  # warm
        for _ in range(int(args.scale)):
            _compile_all(pairs)
        return 0
    if args.compare:
        print(compare(args.compare, args.workloads, args.rounds, args.scale, args.write))
        return 0
    results = {
        name: measure(name, max(1, int(REPEATS[name] * args.scale))) for name in args.workloads
    }
    if args.json:
        print(json.dumps(results))
    else:
        for figures in results.values():
            print(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
