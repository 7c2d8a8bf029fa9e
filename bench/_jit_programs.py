"""The programs of ``bench/jit.py``, as a user writes them: plain sequential Python.

``bench/jit.py`` loads this module afresh (a copy under a new file and module name,
``fresh_copy`` there) for every *first call* it times, so that no compiled form,
region statistic or cache of an earlier call applies: new functions, new classes,
new code objects. ``LATENCY_S`` and ``CPU_LOOPS`` are set on each copy by the script.

Two kinds of program:

- the **patterns**: one function each, the whole program in its body (``ensemble``,
  ``map_loop``, ...), decorated by the script;
- the **call-tree workloads**: the same LLM workloads as ``bench/peers.py``
  (self-consistency, mixture-of-agents, map-reduce, tree-of-thoughts,
  critic/researcher/synthesizer), written the way users write them: helpers in plain
  functions, methods, class and static methods, an ``xcs.Operator``'s ``forward``,
  recursion. Only the entry point (``tree_*``) is decorated ``@xcs.jit``, by the
  script; the call tree compiles the rest (docs/jit.md, "The call tree").

Every model call is ``call``: ``time.sleep(LATENCY_S)``, which blocks like a socket and
computes nothing. The workloads' dependent paths, in calls, are given by the script.
"""

from __future__ import annotations

import time
from collections import Counter

import xcs

LATENCY_S = 0.05
CPU_LOOPS = 300


def call(prompt: object, tag: object = 0) -> str:
    """A simulated model call: blocks for LATENCY_S (a sleep, like a socket wait)."""
    time.sleep(LATENCY_S)
    return f"{prompt}/{tag}"


def cpu(x: int) -> int:
    """About 50 µs of pure-Python arithmetic (``CPU_LOOPS`` is calibrated)."""
    total = x
    for i in range(CPU_LOOPS):
        total = (total * 31 + i) % 1_000_003
    return total


# ---------------------------------------------------------------------------
# The patterns: the whole program in one function


def ensemble(question: str, n: int) -> list[str]:
    return [call(question, i) for i in range(n)]


def map_loop(documents: list[str]) -> list[str]:
    out = []
    for doc in documents:
        out.append(call(doc))
    return out


def map_comprehension(documents: list[str]) -> list[str]:
    return [call(doc) for doc in documents]


def nested(n: int) -> list[list[str]]:
    return [[call(x, y) for y in range(n)] for x in range(n)]


def diamond(question: str) -> str:
    research = call(question, "research")
    critique = call(question, "critique")
    facts = call(question, "facts")
    return call(f"{research}|{critique}|{facts}", "synthesize")


def chain(question: str) -> str:
    draft = call(question, "draft")
    revised = call(draft, "revise")
    return call(revised, "polish")


def cpu_comprehension(n: int) -> list[int]:
    return [cpu(x) for x in range(n)]


def cpu_loop(n: int) -> list[int]:
    out = []
    for x in range(n):
        out.append(cpu(x))
    return out


# ---------------------------------------------------------------------------
# The call-tree workloads: helpers and classes, only the entry point jitted

PERSONAS = ("a physicist", "a historian", "an economist")
ANGLES = ("causes", "evidence", "open questions")


# Self-consistency over several questions: plain helper functions, two levels down.


def sample(question: str, attempt: int) -> str:
    return call(f"{question} (think step by step, attempt {attempt})", "sample")


def vote(samples: list[str]) -> str:
    """The most common answer (ties: the earliest)."""
    return Counter(s.rsplit("/", 1)[0][-1:] for s in samples).most_common(1)[0][0]


def self_consistency(question: str, samples: int = 5) -> str:
    drafts = [sample(question, i) for i in range(samples)]
    return vote(drafts)


def tree_self_consistency(questions: list[str]) -> list[str]:
    return [self_consistency(q) for q in questions]


# Mixture-of-agents: methods, a classmethod constructor, a loop of dependent layers.


class Proposer:
    def __init__(self, persona: str) -> None:
        self.persona = persona

    def propose(self, question: str, previous: list[str]) -> str:
        context = "; ".join(previous) or "none yet"
        return call(f"As {self.persona}: {question} [earlier: {context}]", "propose")


class MixtureOfAgents:
    def __init__(self, personas: tuple[str, ...], layers: int) -> None:
        self.proposers = [Proposer(p) for p in personas]
        self.layers = layers

    @classmethod
    def default(cls) -> MixtureOfAgents:
        return cls(PERSONAS, layers=2)

    def layer(self, question: str, previous: list[str]) -> list[str]:
        return [p.propose(question, previous) for p in self.proposers]

    def run(self, question: str) -> str:
        previous: list[str] = []
        for _ in range(self.layers):
            previous = self.layer(question, previous)
        return call(" | ".join(previous), "aggregate")


def tree_mixture_of_agents(question: str) -> str:
    return MixtureOfAgents.default().run(question)


# Map-reduce: an operator's forward for the map, methods for the reduce.


class Summarize(xcs.Operator):
    def forward(self, document: str) -> str:
        return call(document, "summary")


class MapReduce:
    def __init__(self, fan_in: int = 4) -> None:
        self.summarize = Summarize()
        self.fan_in = fan_in

    def combine(self, parts: list[str]) -> str:
        return call(" + ".join(parts), "combine")

    def run(self, documents: list[str]) -> str:
        summaries = [self.summarize(d) for d in documents]
        step = self.fan_in
        partials = [self.combine(summaries[i : i + step]) for i in range(0, len(summaries), step)]
        return self.combine(partials)


def tree_map_reduce(documents: list[str]) -> str:
    return MapReduce().run(documents)


# Tree-of-thoughts: recursion, a staticmethod, a loop that accumulates.


class TreeOfThoughts:
    def __init__(self, branching: int = 3, depth: int = 2) -> None:
        self.branching = branching
        self.depth = depth

    @staticmethod
    def score(thought: str) -> int:
        return sum(map(ord, thought)) % 97

    def expand(self, thought: str, level: int) -> list[str]:
        if level == self.depth:
            return [thought]
        children = [call(thought, f"branch {i}") for i in range(self.branching)]
        leaves: list[str] = []
        for child in children:
            leaves.extend(self.expand(child, level + 1))
        return leaves

    def solve(self, problem: str) -> str:
        return max(self.expand(problem, 0), key=TreeOfThoughts.score)


def tree_tree_of_thoughts(problem: str) -> str:
    return TreeOfThoughts().solve(problem)


# Critic/researcher/synthesizer: three classes, a critique per finding.


class Researcher:
    def research(self, topic: str, angle: str) -> str:
        return call(f"the {angle} of {topic}", "research")


class Critic:
    def critique(self, finding: str) -> str:
        return call(finding, "critique")


class Synthesizer:
    def synthesize(self, topic: str, findings: list[str], critiques: list[str]) -> str:
        notes = "; ".join(f"{f} ({c})" for f, c in zip(findings, critiques, strict=True))
        return call(f"{topic}: {notes}", "synthesize")


def tree_critic_researcher_synthesizer(topic: str) -> str:
    researcher, critic, synthesizer = Researcher(), Critic(), Synthesizer()
    findings = [researcher.research(topic, angle) for angle in ANGLES]
    critiques = [critic.critique(finding) for finding in findings]
    return synthesizer.synthesize(topic, findings, critiques)
