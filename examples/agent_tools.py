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
small model: which tools it calls, and with what, is up to it.
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


def build(model: str, max_tokens: int = 160) -> Agent:
    if model == "sim":
        return Agent("sim:echo", tools=TOOLS, max_turns=4)
    model_id = "local:smollm2" if model == "local" else model
    binding = xcs.models.bind(model_id, temperature=0, max_tokens=max_tokens)
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
    calls = [s.attrs["tool"] for s in spans if "tool" in s.attrs]
    turns = sum(1 for s in spans if s.name.startswith("Agent turn"))
    print(f"tool calls: {', '.join(calls) or 'none'} in {turns} turns")
    print(f"answer: {' / '.join(answer.strip().splitlines())}")
    print(f"time: {elapsed:.2f} s")
    return {"answer": answer, "tool_calls": calls, "turns": turns, "seconds": elapsed}


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    main()
