"""XCS: compound AI programs as plain sequential Python, run concurrently.

The independent calls of a program (an ensemble of model calls, a map over documents,
a critic and a researcher feeding a synthesizer) run at the same time, and the
program still gives exactly the result and the first error of its sequential self.

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
- ``_runtime``: the shared thread pool, ordered task groups and the ordered map
  (``_scheduler``), deadlines, per-call-site measurement.
- ``_compiler``: the IR (``Graph``, ``Node``) and its interpreter; later the
  analysis and rewriting behind ``@xcs.jit``.

This module is the one place that re-exports public names.
"""

from xcs._compiler._ir import Graph, Node
from xcs._compiler._jit import explain, jit, sequential
from xcs._runtime._deadline import deadline
from xcs.errors import (
    AuthenticationError,
    CompilationError,
    ExecutionTimeout,
    ProviderError,
    RateLimitError,
    ValidationError,
    XCSError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "CompilationError",
    "ExecutionTimeout",
    "Graph",
    "Node",
    "ProviderError",
    "RateLimitError",
    "ValidationError",
    "XCSError",
    "deadline",
    "explain",
    "jit",
    "sequential",
]
