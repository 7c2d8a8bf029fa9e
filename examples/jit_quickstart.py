"""@xcs.jit on a small compound program, with simulated model calls.

Run: python examples/jit_quickstart.py

The "model" sleeps like a network call and answers deterministically (a stand-in
until the model layer's providers land). The program is plain sequential Python;
@xcs.jit runs its independent calls at the same time and returns the same result.
"""

from __future__ import annotations

import time

import xcs


def model(prompt: str) -> str:
    """A simulated model call: 100 ms of waiting, a deterministic answer."""
    time.sleep(0.1)
    return f"answer({prompt})"


def answer_all(questions: list[str]) -> dict[str, str]:
    drafts = [model(f"draft: {q}") for q in questions]
    critique = model("critique: " + " | ".join(drafts))
    research = model("research: " + " | ".join(questions))
    final = {}
    for question, draft in zip(questions, drafts, strict=True):
        final[question] = model(f"final: {question} {draft} {critique} {research}")
    return final


def main() -> None:
    questions = [f"question {i}" for i in range(8)]
    jitted = xcs.jit(answer_all)
    for label, fn in (("plain", answer_all), ("jitted, 1st call", jitted), ("jitted", jitted)):
        start = time.perf_counter()
        result = fn(questions)
        print(f"{label:18} {time.perf_counter() - start:5.2f} s")
    assert result == answer_all(questions)
    print()
    print(xcs.explain(jitted))


if __name__ == "__main__":
    main()
