"""Map-reduce summarisation: summarise every document at once, then combine.

Run:
    python examples/map_reduce_summaries.py                   # the simulator (sim:)
    python examples/map_reduce_summaries.py --model local     # the embedded model
    python examples/map_reduce_summaries.py notes/*.txt       # your own documents

``MapReduce.forward`` is plain sequential Python: a comprehension of summaries, then
one combining call. ``xcs.jit(MapReduce(...))`` compiles it, so the summaries are
requested concurrently; the result is the same as the plain operator's.
``sim:`` is a deterministic simulator, not a model.
"""

from __future__ import annotations

import argparse
import pathlib
import time
from typing import Any

import xcs

DOCUMENTS = [
    "The Rhine rises in the Swiss Alps and flows about 1,230 kilometres to the North "
    "Sea. It has carried freight since Roman times and still moves more cargo than any "
    "other European river.",
    "Honey bees communicate the direction and distance of flowers with a waggle dance. "
    "The angle of the dance against gravity gives the direction relative to the sun.",
    "The first transatlantic telegraph cable was completed in 1858 but failed after "
    "three weeks. A durable cable followed in 1866, cutting message times from days "
    "to minutes.",
    "Sourdough bread rises thanks to wild yeasts and lactic acid bacteria. The bacteria "
    "make the acids that give the bread its sour taste and help it keep longer.",
    "Lichens are partnerships between a fungus and an alga or cyanobacterium. They grow "
    "on bare rock and are among the first living things to colonise new ground.",
    "Tides are caused mainly by the Moon's gravity, with a smaller pull from the Sun. "
    "When the two line up, at new and full moon, the tides are strongest.",
]


class Summarize(xcs.Operator):
    """One document -> one sentence."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def forward(self, document: str) -> str:
        return self.model(f"Summarise this text in one sentence:\n\n{document}")


class Combine(xcs.Operator):
    """Summaries -> one paragraph."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def forward(self, summaries: list[str]) -> str:
        listed = "\n".join(f"- {s.strip()}" for s in summaries)
        return self.model(
            f"Here are summaries of {len(summaries)} documents:\n{listed}\n\n"
            "Write one short paragraph that covers all of them."
        )


class MapReduce(xcs.Operator):
    def __init__(self, summarize: Summarize, combine: Combine) -> None:
        self.summarize = summarize
        self.combine = combine

    def forward(self, documents: list[str]) -> dict[str, Any]:
        summaries = [self.summarize(doc) for doc in documents]  # concurrent under jit
        overview = self.combine(summaries)
        return {"summaries": summaries, "overview": overview}


def build(model: str, latency: float) -> MapReduce:
    if model == "sim":
        mapper = xcs.models.bind(f"sim:summary?latency={latency}", temperature=0, max_tokens=20)
        reducer = xcs.models.bind(f"sim:overview?latency={latency}", temperature=0, max_tokens=40)
    else:
        model_id = "local:smollm2" if model == "local" else model
        mapper = xcs.models.bind(model_id, temperature=0, max_tokens=40)
        reducer = xcs.models.bind(model_id, temperature=0, max_tokens=96)
    return MapReduce(Summarize(mapper), Combine(reducer))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="text files (default: six built-in texts)")
    parser.add_argument("--model", default="sim", help="sim, local, or a model id")
    parser.add_argument("--latency", type=float, default=0.2, help="sim: seconds per call")
    args = parser.parse_args(argv)
    documents = [pathlib.Path(f).read_text() for f in args.files] or DOCUMENTS

    program = xcs.jit(build(args.model, args.latency))
    start = time.perf_counter()
    result = program(documents)
    elapsed = time.perf_counter() - start
    for i, summary in enumerate(result["summaries"], 1):
        print(f"summary {i}: {summary.strip()}")
    print(f"answer: {result['overview'].strip()}")
    print(f"time: {elapsed:.2f} s for {len(documents)} documents")
    return {**result, "documents": documents, "seconds": elapsed}


if __name__ == "__main__":
    main()
