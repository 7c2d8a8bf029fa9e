"""An agent with tools: the model calls tools, XCS runs one turn's calls at once.

Run:
    python examples/agent_tools.py                          # the simulator (sim:)
    python examples/agent_tools.py --model local            # the embedded model
    python examples/agent_tools.py "Should I visit Oslo or Lisbon in March?"

The tools are plain functions; their schemas come from their signatures and
docstrings. Each stands for a slow web API (``--latency`` seconds per call), so when
the model asks for three lookups in one turn, ``Agent`` runs them concurrently and
the turn takes one latency, not three (the printed trace shows the overlap).
``sim:echo`` is a deterministic simulator: it calls every tool once with made-up
arguments, then answers with the tools' results. ``local:smollm2`` is a real, very
small model, which would rather answer at once: ``CallThenAnswer`` makes its first
turn call tools and its second answer (``tool_choice=``, enforced by llama.cpp's
grammar); which tools it calls, and with what, is up to it.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import xcs
from xcs.operators import Agent

LATENCY = 0.2  # seconds each tool takes (set by --latency)

_CLIMATE = {
    "oslo": ("snow", -2),
    "lisbon": ("sun", 15),
    "paris": ("rain", 9),
    "cairo": ("sun", 24),
}
_PEOPLE = {"oslo": 709_000, "lisbon": 545_000, "paris": 2_100_000, "cairo": 10_000_000}


def weather(city: str, month: str = "March") -> str:
    """The usual weather of a city in a month.

    Args:
        city: the city's name, e.g. "Oslo".
        month: the month's name.
    """
    time.sleep(LATENCY)
    sky, degrees = _CLIMATE.get(city.strip().lower(), ("unknown weather", 0))
    return f"{city} in {month}: {sky}, about {degrees} °C"


def population(city: str) -> int:
    """How many people live in a city (0 if unknown).

    Args:
        city: the city's name.
    """
    time.sleep(LATENCY)
    return _PEOPLE.get(city.strip().lower(), 0)


def flight_hours(origin: str, destination: str) -> float:
    """Hours of a direct flight between two cities.

    Args:
        origin: where the flight starts.
        destination: where it lands.
    """
    time.sleep(LATENCY)
    return round(1.5 + (len(origin) * 7 + len(destination) * 3) % 9 / 2, 1)


TOOLS = [weather, population, flight_hours]


class CallThenAnswer:
    """The turns of a very small model: the first must call tools, the next must
    answer (``tool_choice="required"``, then ``"none"``). On ``local:`` llama.cpp's
    grammar holds the model to it, so its calls are always well-formed; which tools
    it calls, with what, and what it makes of their results is still up to it."""

    def __init__(self, model: xcs.models.ModelBinding) -> None:
        self.model = model

    def __call__(self, messages: list[Any], tools: Any) -> xcs.models.Response:
        first = not any(m.role == "tool" for m in messages)
        choice = "required" if first else "none"
        return self.model(messages, tools=tools, tool_choice=choice)

    def __repr__(self) -> str:
        return f"CallThenAnswer({self.model!r})"


def build(model: str, max_tokens: int = 160) -> Agent:
    if model == "sim":
        return Agent("sim:echo", tools=TOOLS, max_turns=4)
    if model == "local":
        # SmolLM2-135M answers at once if it may: tell it when to call tools.
        small = xcs.models.bind("local:smollm2", temperature=0, max_tokens=max(max_tokens, 200))
        return Agent(CallThenAnswer(small), tools=TOOLS, max_turns=2)
    binding = xcs.models.bind(model, temperature=0, max_tokens=max_tokens)
    return Agent(binding, tools=TOOLS, max_turns=4)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    global LATENCY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", nargs="?", default="Should I visit Oslo or Lisbon in March?")
    parser.add_argument("--model", default="sim", help="sim, local, or a model id")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per tool call")
    parser.add_argument("--max-tokens", type=int, default=160, help="per turn (not sim)")
    args = parser.parse_args(argv)
    LATENCY = args.latency

    agent = build(args.model, args.max_tokens)
    print(agent)
    start = time.perf_counter()
    with xcs.trace() as trace:
        answer = agent(args.task)
    elapsed = time.perf_counter() - start
    print(trace.timeline())
    spans = [s for s in trace.spans if s.kind == "span"]  # the agent's turns and tools
    tools = [s for s in spans if "tool" in s.attrs]
    calls = [s.attrs["tool"] for s in tools]
    results = [s.attrs.get("result", "") for s in tools]
    turns = sum(1 for s in spans if s.name.startswith("Agent turn"))
    print(f"tool calls: {', '.join(calls) or 'none'} in {turns} turns")
    for call, result in zip(calls, results, strict=True):
        print(f"  {call} -> {result}")
    print(f"answer: {' / '.join(answer.strip().splitlines())}")
    print(f"time: {elapsed:.2f} s")
    return {
        "answer": answer,
        "tool_calls": calls,
        "tool_results": results,
        "turns": turns,
        "seconds": elapsed,
    }


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    main()
