"""Critic / researcher / synthesizer: a draft and research at once, a critique of the
draft, then one final answer from all three.

Run:
    python examples/critic_researcher_synthesizer.py                  # the simulator
    python examples/critic_researcher_synthesizer.py --model local    # the embedded model
    python examples/critic_researcher_synthesizer.py "How do vaccines work?"

``Pipeline.forward`` is written in order. Under ``xcs.jit`` the draft and the
research do not depend on each other, so they run at the same time; the critique
waits for the draft only; the synthesis waits for all three. Same answer as the
plain operator, in less time. ``sim:`` is a deterministic simulator, not a model.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import xcs


class Role(xcs.Operator):
    """A model with a role: its instructions come first in every prompt."""

    def __init__(self, model: Any, instructions: str) -> None:
        self.model = model
        self.instructions = instructions

    def forward(self, **parts: str) -> str:
        body = "\n\n".join(f"{name.capitalize()}:\n{text.strip()}" for name, text in parts.items())
        return self.model(f"{self.instructions}\n\n{body}")


class Pipeline(xcs.Operator):
    def __init__(self, writer: Role, researcher: Role, critic: Role, synthesizer: Role) -> None:
        self.writer = writer
        self.researcher = researcher
        self.critic = critic
        self.synthesizer = synthesizer

    def forward(self, question: str) -> dict[str, str]:
        draft = self.writer(question=question)
        research = self.researcher(question=question)  # overlaps with the draft
        critique = self.critic(question=question, draft=draft)
        final = self.synthesizer(
            question=question, draft=draft, research=research, critique=critique
        )
        return {"draft": draft, "research": research, "critique": critique, "answer": final}


def build(model: str, latency: float) -> Pipeline:
    def bound(name: str, temperature: float, max_tokens: int) -> Any:
        if model == "sim":
            return xcs.models.bind(
                f"sim:{name}?latency={latency}", temperature=temperature, max_tokens=max_tokens
            )
        model_id = "local:smollm2" if model == "local" else model
        return xcs.models.bind(model_id, temperature=temperature, max_tokens=max_tokens)

    return Pipeline(
        writer=Role(bound("writer", 0.7, 60), "Answer the question in a few sentences."),
        researcher=Role(bound("researcher", 0, 60), "List three facts that help answer it."),
        critic=Role(bound("critic", 0, 40), "Point out one weakness of the draft answer."),
        synthesizer=Role(
            bound("synthesizer", 0, 80),
            "Write the final answer: fix the draft using the research and the critique.",
        ),
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="Why do we have seasons?")
    parser.add_argument("--model", default="sim", help="sim, local, or a model id")
    parser.add_argument("--latency", type=float, default=0.2, help="sim: seconds per call")
    args = parser.parse_args(argv)

    program = xcs.jit(build(args.model, args.latency))
    start = time.perf_counter()
    result = program(args.question)
    elapsed = time.perf_counter() - start
    for role in ("draft", "research", "critique"):
        print(f"{role}: {result[role].strip()}")
    print(f"answer: {result['answer'].strip()}")
    print(f"time: {elapsed:.2f} s")
    return {**result, "seconds": elapsed}


if __name__ == "__main__":
    main()
