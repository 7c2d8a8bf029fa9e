"""Operators: typed, composable building blocks of compound AI programs.

An operator is a callable with a ``forward`` and a spec (pydantic models of its input
and output). The built-ins compose into programs that read like the problem::

    >>> import xcs
    >>> from xcs.operators import Chain, Ensemble, Judge, MajorityVote
    >>> answer = xcs.models.bind("sim:chat", temperature=0.8, max_tokens=8)
    >>> qa = Chain(Ensemble(answer, n=3), Judge("sim:judge"))
    >>> qa
    Chain(
      Ensemble(ModelBinding('sim:chat', max_tokens=8, temperature=0.8) [simulator], n=3),
      Judge(ModelBinding('sim:judge') [simulator]),
    )
    >>> MajorityVote()(["Paris", "paris.", "Lyon"])
    'Paris'

(``sim:`` is the deterministic simulator, not a model.) See ``docs/operators.md``.

General layout (each module uses only the ones above it):

- ``_spec``: specs declared or inferred, checked per call; pydantic errors become
  ``xcs.ValidationError``.
- ``_base``: ``Operator``, ``@xcs.op``, the tree repr, ``xcs.jit`` on operators.
- ``_parse`` and ``_prompts``: reading model answers leniently; the prompts sent.
- ``_compose``: ``Ensemble`` (concurrent members), ``Chain``, ``Router``.
- ``_aggregate``: ``MajorityVote``, ``Judge``, ``Synthesize``, ``Verifier``,
  ``BestOfN``.
- ``_cache``: ``Cached``, a thread-safe bounded LRU.
- ``_agent``: ``Agent``, a model calling tools (one turn's calls concurrently).
"""

from xcs.operators._agent import Agent
from xcs.operators._aggregate import (
    BestOfN,
    Judge,
    MajorityVote,
    Synthesize,
    Verification,
    Verifier,
)
from xcs.operators._base import FunctionOperator, Operator, op
from xcs.operators._cache import Cached, CachedStatistics
from xcs.operators._compose import Candidates, Chain, Ensemble, Router
from xcs.operators._parse import normalize_answer, parse_choice, parse_label, parse_verdict
from xcs.operators._spec import Spec

__all__ = [
    "Agent",
    "BestOfN",
    "Cached",
    "CachedStatistics",
    "Candidates",
    "Chain",
    "Ensemble",
    "FunctionOperator",
    "Judge",
    "MajorityVote",
    "Operator",
    "Router",
    "Spec",
    "Synthesize",
    "Verification",
    "Verifier",
    "normalize_answer",
    "op",
    "parse_choice",
    "parse_label",
    "parse_verdict",
]
