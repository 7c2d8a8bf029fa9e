"""XCS: compound AI programs as plain sequential Python, run concurrently.

The independent calls of a program (an ensemble of model calls, a map over documents,
a critic and a researcher feeding a synthesizer) run at the same time, and the
program still gives exactly the result and the first error of its sequential self.

The compiler. A function::

    @xcs.jit
    def ensemble(question):
        answers = [model(question, seed=i) for i in range(5)]
        return judge(question, answers)

has one parallel region, which ``xcs.explain(ensemble)`` prints with its plan (the
same IR as ``xcs.Graph``)::

    regions:
      [0] comprehension, line 3: [model(question, seed=i) for i in range(5)]
          overlap: a call blocks 412 ms (99% of its time) ...: overlapping pays
    plan:
      graph ensemble: inputs (question), 1 node in 1 wave
        wave 1
          r0 = comprehension line 3: [...](question)  # overlap

and runs as this code (original file name and line numbers kept)::

    answers = ([model(question, seed=i) for i in range(5)]
               if __xcs_rt__.original(0)                  # measured: in order
               else __xcs_rt__.comp(0, None, 0,           # measured: overlap
                                    lambda i: model(question, seed=i),
                                    ((i,) for i in range(5))))

An explicit graph::

    >>> import xcs
    >>> g = xcs.Graph(inputs=["question"], name="qa")
    >>> g.add("fast", str.upper, "question")
    <Node fast: call str.upper(question)>
    >>> g.add("careful", str.title, "question")
    <Node careful: call str.title(question)>
    >>> g.add("judge", max, "fast", "careful")
    <Node judge: call max(fast, careful)>
    >>> print(g)
    graph qa: inputs (question), 3 nodes in 2 waves
      wave 1
        fast = str.upper(question)
        careful = str.title(question)
      wave 2
        judge = max(fast, careful)
    >>> g.run(question="why is the sky blue?")["judge"]
    'Why Is The Sky Blue?'

General layout (each layer uses only the ones above it):

- ``errors``: the exception hierarchy; ``_config``: process-wide defaults.
- ``_observe``: spans and traces (``xcs.trace``), counters (``xcs.stats``), the
  ``xcs`` loggers and their correlation ids; the layers below record into it (it
  reads their counters only when asked, lazily).
- ``_runtime``: the shared thread pool, ordered task groups and the ordered map
  (``_scheduler``), deadlines, per-call-site measurement.
- ``models``: ``xcs.models(model_id, prompt)`` and its providers (``sim:``,
  ``openai:``, ``anthropic:``, ``local:``), limits, retries, breakers, the cache.
- ``_compiler``: the IR (``Graph``, ``Node``) and its interpreter; the analysis
  (``_analysis``), rewriting (``_codegen``) and run-time support (``_rt``) behind
  ``@xcs.jit``, ``xcs.explain`` and ``xcs.sequential`` (``_jit``).
- ``_transforms``: ``xcs.vmap`` and ``xcs.pmap`` (batches on the scheduler; shards on
  processes, Ray or any Executor).

This module is the one place that re-exports public names.
"""

import importlib as _importlib
import sys as _sys
import types as _types
import typing as _typing

from xcs._compiler._ir import Graph, Node
from xcs._compiler._jit import explain, jit, sequential
from xcs._observe import Trace, stats, trace
from xcs._runtime._deadline import deadline
from xcs.errors import (
    AuthenticationError,
    CircuitOpenError,
    CompilationError,
    ExecutionTimeout,
    ExtraNotInstalledError,
    InvalidRequestError,
    JitWarning,
    ProviderError,
    ProviderNotInstalledError,
    ProviderTimeoutError,
    RateLimitError,
    ValidationError,
    XCSError,
)

if _typing.TYPE_CHECKING:
    from xcs._transforms._pmap import pmap
    from xcs._transforms._vmap import vmap
    from xcs.models import models
    from xcs.operators import Operator, op

__version__ = "0.1.0"

# NOTE: [Lazy exports]
# `import xcs` stays light: the names below load their module on first use (PEP 562),
# because they pull in pydantic (~0.2 s) and the model layer. `xcs.models` needs
# more care, being both the subpackage and the callable `Models` object: whoever
# imports the subpackage first (`xcs.models(...)`, `import xcs.models`, `from
# xcs.models import Response`), the import system then sets `xcs.models` to the
# module, and `_Package.__setattr__` keeps the callable in its place. The callable's
# class is named "xcs.models", so `import xcs.models._sim` still finds submodules.
_LAZY = {
    "models": "xcs.models",
    "Operator": "xcs.operators",
    "op": "xcs.operators",
    "pmap": "xcs._transforms._pmap",
    "vmap": "xcs._transforms._vmap",
}


# Subpackages reachable as attributes without their own import (``xcs.testing``).
_LAZY_MODULES = frozenset({"testing"})


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY_MODULES:
        return _importlib.import_module(f"xcs.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xcs' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY.keys() | _LAZY_MODULES)


class _Package(_types.ModuleType):
    """The class of the ``xcs`` module (NOTE: [Lazy exports])."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "models" and isinstance(value, _types.ModuleType):
            value = value.models  # the subpackage was imported: keep the callable
        super().__setattr__(name, value)

    def __reduce__(self) -> tuple[_typing.Any, tuple[str]]:
        # Pickle by reference, as a plain module is. cloudpickle (pmap's process pools,
        # Ray, Dask) meets `xcs` in the globals of every function defined in __main__,
        # and neither pickle nor cloudpickle has a rule for a ModuleType subclass.
        return (_importlib.import_module, (self.__name__,))


_sys.modules[__name__].__class__ = _Package

__all__ = [
    "AuthenticationError",
    "CircuitOpenError",
    "CompilationError",
    "ExecutionTimeout",
    "ExtraNotInstalledError",
    "Graph",
    "InvalidRequestError",
    "JitWarning",
    "Node",
    "Operator",
    "ProviderError",
    "ProviderNotInstalledError",
    "ProviderTimeoutError",
    "RateLimitError",
    "Trace",
    "ValidationError",
    "XCSError",
    "deadline",
    "explain",
    "jit",
    "models",
    "op",
    "pmap",
    "sequential",
    "stats",
    "trace",
    "vmap",
]
