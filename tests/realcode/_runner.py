"""Run one standard-library module's own unittest tests with every function of the module
jitted (the child process of the real-code differential suite).

Usage (a fresh interpreter per run; ``XCS_FORCE_OVERLAP=1`` in the environment for the
forced mode)::

    python tests/realcode/_runner.py --mode jit --patch statistics \\
        --tests test.test_statistics [--only TestClass ...] --out result.json

``--mode plain`` imports the same fresh modules and patches nothing; ``--mode jit``
replaces every function and method defined in the ``--patch`` modules (module-level
functions, methods, static and class methods, property accessors, nested classes) by
``xcs.jit`` of it, *in place*, before the test module is imported, so the module's own
tests (and the module's internal calls, through its globals) reach the jitted forms.

The patched modules are imported afresh (removed from ``sys.modules`` first), and an
import hook patches any later fresh import of them too (``test.support.
import_fresh_module``, used by the json and decimal tests to reach the pure-Python
paths). Modules imported earlier (``os.path`` is ``posixpath``; XCS itself uses
``json``, ``inspect``...) keep their unpatched copies, so the compiler never runs its
own input.

The JSON written to ``--out``: ``{"tests": {test id: outcome}, "details": {test id:
last line of the failure}, "functions": [{"name", "called", "fallback", "regions",
"ran_regions"}], "seconds": float}``. Outcomes: ``pass``, ``fail``, ``error``,
``skip``, ``xfail`` (expected failure), ``xpass`` (unexpected success).
"""

from __future__ import annotations

import argparse
import contextlib
import doctest
import importlib
import importlib.abc
import importlib.machinery
import json
import sys
import time
import traceback
import types
import unittest
from typing import Any

MODES = ("plain", "jit", "force")


class Patcher:
    """Replaces the functions of modules by their jitted forms, and remembers them."""

    def __init__(self, names: list[str], enabled: bool) -> None:
        self.names = set(names)
        self.enabled = enabled
        self.wrappers: dict[int, tuple[Any, Any]] = {}  # id(original) -> (original, wrapper)
        self.modules: list[types.ModuleType] = []

    def jitted(self, fn: Any) -> Any:
        import xcs

        known = self.wrappers.get(id(fn))
        if known is not None:
            return known[1]
        wrapper = xcs.jit(fn)
        self.wrappers[id(fn)] = (fn, wrapper)
        return wrapper

    def owns(self, obj: Any, module: types.ModuleType) -> bool:
        return getattr(obj, "__module__", None) == module.__name__

    def patch_function(self, fn: Any, module: types.ModuleType) -> Any:
        if isinstance(fn, types.FunctionType) and fn.__globals__ is module.__dict__:
            return self.jitted(fn)
        return None

    def patch_member(self, value: Any, module: types.ModuleType) -> Any:
        if isinstance(value, staticmethod | classmethod):
            inner = self.patch_function(value.__func__, module)
            return None if inner is None else type(value)(inner)
        if isinstance(value, property):
            parts = [value.fget, value.fset, value.fdel]
            new = [self.patch_function(p, module) if p is not None else None for p in parts]
            if not any(new):
                return None
            accessors = [n if n is not None else p for n, p in zip(new, parts, strict=True)]
            return property(*accessors, doc=value.__doc__)
        return self.patch_function(value, module)

    def patch_class(self, cls: type, module: types.ModuleType, seen: set[int]) -> None:
        if id(cls) in seen or not self.owns(cls, module):
            return
        seen.add(id(cls))
        for key, value in list(vars(cls).items()):
            if isinstance(value, type):
                self.patch_class(value, module, seen)
                continue
            new = self.patch_member(value, module)
            if new is not None:
                with contextlib.suppress(AttributeError, TypeError):  # a read-only class
                    setattr(cls, key, new)

    def patch(self, module: types.ModuleType) -> None:
        self.modules.append(module)
        if not self.enabled:
            return
        seen: set[int] = set()
        for key, value in list(vars(module).items()):
            if isinstance(value, type):
                self.patch_class(value, module, seen)
            elif isinstance(value, types.FunctionType):
                new = self.patch_function(value, module)
                if new is not None:
                    setattr(module, key, new)
        # Names one patched module took from another (``from .scanner import
        # make_scanner``) point at the originals: rebind them to the same wrappers.
        self.rebind()

    def rebind(self) -> None:
        for module in self.modules:
            for key, value in list(vars(module).items()):
                known = self.wrappers.get(id(value))
                if known is not None and known[0] is value:
                    setattr(module, key, known[1])

    def statistics(self) -> list[dict[str, Any]]:
        from xcs._compiler._jit import compiled_for

        rows = []
        for original, wrapper in self.wrappers.values():
            state = wrapper.__xcs_jit__
            # state.call: None (or the _first_call trampoline, before 430838c) until
            # the first call compiled the function.
            first = getattr(state, "_first_call", None)
            called = state.call is not None and state.call != first
            row: dict[str, Any] = {
                "name": f"{original.__module__}.{original.__qualname__}",
                "called": called,
                "fallback": None,
                "regions": 0,
                "ran_regions": 0,
            }
            if called:
                entry = compiled_for(original, state.window)
                row["fallback"] = entry.fallback
                if entry.rewrite is not None:
                    sites = [info.site for info in entry.rewrite.sites]
                    row["regions"] = len(sites)
                    row["ran_regions"] = sum(1 for s in sites if s.executions)
            rows.append(row)
        return rows


class PatchingFinder(importlib.abc.MetaPathFinder):
    """Patches every (fresh) import of the named modules right after it executes."""

    def __init__(self, patcher: Patcher) -> None:
        self.patcher = patcher

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.patcher.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        patcher = self.patcher
        exec_module = loader.exec_module

        def exec_and_patch(module: types.ModuleType) -> None:
            exec_module(module)
            patcher.patch(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


class Recorder(unittest.TestResult):
    """Records one outcome per test id (a failing subtest fails its test)."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: dict[str, str] = {}
        self.details: dict[str, str] = {}

    def _set(self, test: Any, outcome: str, err: Any = None) -> None:
        test_id = test.id()
        if self.outcomes.get(test_id) in ("fail", "error") and outcome == "pass":
            return
        self.outcomes[test_id] = outcome
        if err is not None:
            exc_type, exc, _tb = err
            text = "".join(traceback.format_exception_only(exc_type, exc)).strip()
            self.details[test_id] = text.splitlines()[-1][:300] if text else exc_type.__name__

    def addSuccess(self, test: Any) -> None:
        self._set(test, "pass")

    def addFailure(self, test: Any, err: Any) -> None:
        self._set(test, "fail", err)

    def addError(self, test: Any, err: Any) -> None:
        self._set(test, "error", err)

    def addSkip(self, test: Any, reason: str) -> None:
        self._set(test, "skip")

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        self._set(test, "xfail")

    def addUnexpectedSuccess(self, test: Any) -> None:
        self._set(test, "xpass")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._set(test, "fail" if failed else "error", err)


def _doctest_sees_through_jit() -> None:
    """doctest finds a module's functions by their globals; a jit wrapper's are XCS's.

    Without this, the doctests of jitted functions would silently not be collected.
    """
    original = doctest.DocTestFinder._from_module

    def from_module(self: Any, module: Any, obj: Any) -> bool:
        state = getattr(obj, "__xcs_jit__", None)
        if state is not None:
            obj = state.original
        elif isinstance(obj, staticmethod | classmethod):
            state = getattr(obj.__func__, "__xcs_jit__", None)
            if state is not None:
                obj = state.original
        return bool(original(self, module, obj))

    doctest.DocTestFinder._from_module = from_module  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--patch", action="append", required=True, help="module to jit")
    parser.add_argument("--tests", required=True, help="the test module, e.g. test.test_json")
    parser.add_argument("--only", action="append", default=[], help="a test class or id")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import xcs  # noqa: F401  # before the fresh imports: XCS keeps its own copies

    patcher = Patcher(args.patch, enabled=args.mode != "plain")
    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in args.patch):
            del sys.modules[name]
    sys.meta_path.insert(0, PatchingFinder(patcher))
    _doctest_sees_through_jit()
    for name in args.patch:
        importlib.import_module(name)

    start = time.perf_counter()
    loader = unittest.TestLoader()
    if args.only:
        names = [f"{args.tests}.{only}" for only in args.only]
        suite = loader.loadTestsFromNames(names)
    else:
        suite = loader.loadTestsFromName(args.tests)
    result = Recorder()
    suite.run(result)
    # Errors of the suite's own set-up (a class or module fixture) have no test id of
    # their own: unittest reports them as _ErrorHolder objects, recorded above too.
    report = {
        "mode": args.mode,
        "tests": result.outcomes,
        "details": result.details,
        "functions": patcher.statistics() if args.mode != "plain" else [],
        "seconds": time.perf_counter() - start,
    }
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
