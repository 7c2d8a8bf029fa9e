"""The demo pipeline: an ensemble of answers and a judge, run in order and concurrently.

Until the model layer lands, the "model" here is simulated: each call sleeps for a
seeded latency like a network call would and answers deterministically. The output
says so. The pipeline is written twice: as a plain function, run as written and with
``@xcs.jit``, and as an ``xcs.Graph``, whose sequential run calls the same nodes one
after another in program order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from xcs._compiler._ir import Graph

__all__ = ["main"]

QUESTION = "Why do compound AI systems call several models instead of one?"
ANGLES = ("accuracy", "robustness", "cost", "latency", "specialisation")


def _simulated_model(angle: str, latency_s: float) -> Callable[[str], str]:
    def answer(question: str) -> str:
        time.sleep(latency_s)  # stands in for a network round trip
        return f"[{angle}] several models cover each other's {angle} blind spots"

    answer.__qualname__ = f"answer_{angle}"
    return answer


def _judge(*answers: str) -> str:
    time.sleep(0.05)
    # Deterministic choice: the answer whose angle sorts first.
    return min(answers)


def build(seed: int = 0) -> Graph:
    rng = random.Random(seed)
    graph = Graph(inputs=["question"], name="ensemble_judge")
    for angle in ANGLES:
        graph.add(angle, _simulated_model(angle, rng.uniform(0.15, 0.35)), "question")
    graph.add("judge", _judge, *ANGLES)
    return graph


def ensemble_and_judge(question: str, seed: int = 0) -> str:
    """The pipeline as plain sequential Python."""
    rng = random.Random(seed)
    models = [_simulated_model(angle, rng.uniform(0.15, 0.35)) for angle in ANGLES]
    answers = [answer(question) for answer in models]
    return _judge(*answers)


def run_in_order(graph: Graph, question: str) -> dict[str, object]:
    values: dict[str, object] = {"question": question}
    for name in graph.order():
        node = graph.nodes[name]
        assert callable(node.target)
        values[name] = node.target(*(values[d] for d in node.args))
    return {name: values[name] for name in graph.order()}


def main() -> int:
    import xcs

    print("XCS demo: ensemble of 5 answers + a judge (simulated model latency;")
    print("the embedded local model replaces the simulation when the model layer lands)\n")

    start = time.perf_counter()
    plain = ensemble_and_judge(QUESTION)
    plain_s = time.perf_counter() - start
    jitted = xcs.jit(ensemble_and_judge)
    timings = []
    for _ in range(2):
        start = time.perf_counter()
        fast = jitted(QUESTION)
        timings.append(time.perf_counter() - start)
        if fast != plain:  # pragma: no cover - the contract says never
            print("MISMATCH between the jitted and the plain function")
            return 1
    first_s, jit_s = timings
    print("@xcs.jit on the plain function:")
    print(f"  answer:   {fast}")
    print(f"  in order: {plain_s:.2f} s")
    print(f"  jitted:   {first_s:.2f} s  (same result; first call: compiles, probes one answer)")
    print(f"  jitted:   {jit_s:.2f} s  (same result; second call)")
    print(f"  speedup:  {plain_s / jit_s:.1f}x\n")
    print(xcs.explain(jitted), end="\n\n")

    graph = build()
    print("The same pipeline as an explicit xcs.Graph:")
    print(graph, end="\n\n")

    start = time.perf_counter()
    sequential = run_in_order(graph, QUESTION)
    in_order_s = time.perf_counter() - start

    start = time.perf_counter()
    concurrent = graph.run(question=QUESTION)
    concurrent_s = time.perf_counter() - start

    if concurrent != sequential:  # pragma: no cover - the contract says never
        print("MISMATCH between the concurrent and the sequential run")
        return 1
    print(f"answer:      {concurrent['judge']}")
    print(f"in order:    {in_order_s:.2f} s")
    print(f"concurrent:  {concurrent_s:.2f} s  (same result)")
    print(f"speedup:     {in_order_s / concurrent_s:.1f}x")
    return 0
