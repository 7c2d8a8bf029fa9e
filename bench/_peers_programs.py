"""The workloads of ``bench/peers.py``, as a user would write them: plain sequential Python.

Every model call goes through ``ask``, one chat request to the benchmark's fake
OpenAI-compatible server (``configure`` points it there). The prompt builders are
shared with the other approaches' versions in ``bench/peers.py``, so every approach
sends the same requests and must compute the same result.

Each workload's dependent path, in model round trips:

- ``answer_all``: 64 independent questions: 1.
- ``self_consistency``: 5 samples of one question, then a vote (no call): 1.
- ``mixture_of_agents``: 3 proposers, 2 layers (layer 2 reads layer 1), 1 aggregator: 3.
- ``map_reduce``: 16 documents summarised, combined by 4s, then once more: 3.
- ``critic_researcher_synthesizer``: 3 researchers, a critic per finding, a synthesis: 3.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import xcs

MODEL = "openai:fake-model"
PERSONAS = ("a physicist", "a historian", "an economist")
ANGLES = ("causes", "evidence", "open questions")

LLM: Any = None


def configure(base_url: str) -> None:
    """Send ``ask``'s requests to the server at ``base_url``."""
    global LLM
    LLM = xcs.models.bind(MODEL, base_url=base_url, api_key="sk-fake", max_tokens=64)


def ask(prompt: str) -> str:
    return str(LLM(prompt))


# -- prompts (shared with every approach) ------------------------------------------------


def answer_prompt(question: str) -> str:
    return f"Answer in one word: {question}"


def sample_prompt(question: str, sample: int) -> str:
    return f"{question}\nThink step by step (attempt {sample}), then give a one-word answer."


def propose_prompt(persona: str, question: str, previous: list[str]) -> str:
    context = "\n".join(f"- {p}" for p in previous) or "(none yet)"
    return f"As {persona}, answer: {question}\nEarlier proposals:\n{context}"


def aggregate_prompt(question: str, proposals: list[str]) -> str:
    return f"Merge these answers to {question!r} into one:\n" + "\n".join(proposals)


def summary_prompt(document: str) -> str:
    return f"Summarise in one line:\n{document}"


def combine_prompt(summaries: list[str]) -> str:
    return "Combine these summaries into one:\n" + "\n".join(summaries)


def research_prompt(topic: str, angle: str) -> str:
    return f"Research the {angle} of {topic}. Report one finding."


def critique_prompt(finding: str) -> str:
    return f"Critique this finding; name its weakest point:\n{finding}"


def synthesis_prompt(topic: str, findings: list[str], critiques: list[str]) -> str:
    notes = "\n".join(f"{f} / critique: {c}" for f, c in zip(findings, critiques, strict=True))
    return f"Write the conclusion on {topic} from:\n{notes}"


def majority(samples: list[str]) -> str:
    """The most common first word (ties: the earliest)."""
    words = [sample.split()[0] for sample in samples]
    return Counter(words).most_common(1)[0][0]


# -- the workloads -----------------------------------------------------------------------


def answer(question: str) -> str:
    return ask(answer_prompt(question))


def answer_all(questions: list[str]) -> list[str]:
    return [answer(q) for q in questions]


def self_consistency(question: str, samples: int = 5) -> str:
    drafts = [ask(sample_prompt(question, i)) for i in range(samples)]
    return majority(drafts)


class Proposer:
    def __init__(self, persona: str) -> None:
        self.persona = persona

    def propose(self, question: str, previous: list[str]) -> str:
        return ask(propose_prompt(self.persona, question, previous))


class MixtureOfAgents:
    def __init__(self, personas: tuple[str, ...], layers: int) -> None:
        self.proposers = [Proposer(p) for p in personas]
        self.layers = layers

    def run(self, question: str) -> str:
        previous: list[str] = []
        for _ in range(self.layers):
            previous = [p.propose(question, previous) for p in self.proposers]
        return ask(aggregate_prompt(question, previous))


def mixture_of_agents(question: str) -> str:
    return MixtureOfAgents(PERSONAS, layers=2).run(question)


def summarize(document: str) -> str:
    return ask(summary_prompt(document))


def combine(summaries: list[str]) -> str:
    return ask(combine_prompt(summaries))


def map_reduce(documents: list[str], fan_in: int = 4) -> str:
    summaries = [summarize(d) for d in documents]
    partials = [combine(summaries[i : i + fan_in]) for i in range(0, len(summaries), fan_in)]
    return combine(partials)


class Researcher:
    def research(self, topic: str, angle: str) -> str:
        return ask(research_prompt(topic, angle))


class Critic:
    def critique(self, finding: str) -> str:
        return ask(critique_prompt(finding))


class Synthesizer:
    def synthesize(self, topic: str, findings: list[str], critiques: list[str]) -> str:
        return ask(synthesis_prompt(topic, findings, critiques))


def critic_researcher_synthesizer(topic: str) -> str:
    researcher, critic, synthesizer = Researcher(), Critic(), Synthesizer()
    findings = [researcher.research(topic, angle) for angle in ANGLES]
    critiques = [critic.critique(finding) for finding in findings]
    return synthesizer.synthesize(topic, findings, critiques)
