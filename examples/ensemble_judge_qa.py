"""Ensemble + judge question answering: N drafts at once, a judge picks the best.

Run:
    python examples/ensemble_judge_qa.py                      # the simulator (sim:)
    python examples/ensemble_judge_qa.py --model local        # the embedded model
    python examples/ensemble_judge_qa.py --n 5 "Why is the sky blue?"

The program is ``Chain(Ensemble(answer, n=N), Judge(judge))``: the N drafts are N
samples of one model (``sample=0..N-1``), requested concurrently; the judge sees the
question and the numbered drafts and answers with a number. ``sim:`` is a
deterministic simulator (answers are pseudo-text, and its judge rarely names a
number, so the Judge falls back to the majority rule and logs that it did);
``local:smollm2`` is a real, very small model.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import xcs
from xcs.operators import Chain, Ensemble, Judge


class Answer(xcs.Operator):
    """One draft answer; ``sample`` makes each ensemble member a distinct sample."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def forward(self, question: str, sample: int = 0) -> str:
        return self.model(f"Answer in one or two sentences: {question}", sample=sample)


def build(model: str, n: int, latency: float, max_tokens: int = 48) -> Chain:
    if model == "sim":
        drafter = xcs.models.bind(f"sim:chat?latency={latency}", temperature=0.8, max_tokens=30)
        judge = xcs.models.bind(f"sim:judge?latency={latency}", temperature=0, max_tokens=4)
    else:
        model_id = "local:smollm2" if model == "local" else model
        drafter = xcs.models.bind(model_id, temperature=0.8, max_tokens=max_tokens)
        # Room for "The best answer is 2": small models rarely reply with a bare number.
        judge = xcs.models.bind(model_id, temperature=0, max_tokens=16)
    return Chain(Ensemble(Answer(drafter), n=n), Judge(judge))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="Why is the sky blue?")
    parser.add_argument("--model", default="sim", help="sim, local, or a model id")
    parser.add_argument("--n", type=int, default=5, help="drafts (default 5)")
    parser.add_argument("--latency", type=float, default=0.2, help="sim: seconds per call")
    parser.add_argument("--max-tokens", type=int, default=48, help="per draft (not sim)")
    args = parser.parse_args(argv)

    qa = build(args.model, args.n, args.latency, args.max_tokens)
    ensemble, judge = qa.steps
    print(qa)
    start = time.perf_counter()
    drafts = ensemble(args.question)
    answer = judge(drafts)
    elapsed = time.perf_counter() - start
    for i, draft in enumerate(drafts, 1):
        print(f"draft {i}: {draft.strip()}")
    print(f"answer: {answer.strip()}")
    print(f"time: {elapsed:.2f} s")
    return {"drafts": list(drafts), "answer": answer, "seconds": elapsed}


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    main()
