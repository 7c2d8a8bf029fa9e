"""local: acall and astream on asyncio's sockets (no thread per request), against the
fake OpenAI-compatible server standing in for llama.cpp's (the real model: test_local)."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
from _fake_openai import FakeOpenAIServer, Reply, chat_reply, error_body, prompt_of, stream_events

import xcs
from xcs.models import Completion, EndpointConfig, FakeClock, Request, models
from xcs.models._local import LocalProvider

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None, reason="the local extra is not installed"
)


class FakeLocalServer:
    """Stands for a started ``LocalServer``: the fake server's address."""

    failed = False

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.host = "127.0.0.1"
        self.port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
        self.address = f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        pass


class NoThreads(LocalProvider):
    """The local provider on the fake server; its sync methods must not be used."""

    def complete(self, request: Request) -> Completion:
        raise AssertionError("acall must not run the sync complete in a thread")


@pytest.fixture
def local(server: FakeOpenAIServer) -> NoThreads:
    provider = NoThreads(EndpointConfig("local"))
    provider._servers["smollm2"] = FakeLocalServer(server)  # type: ignore[assignment]
    models.register_provider("local", provider)
    return provider


def test_eight_acalls_are_at_the_server_together_without_a_thread_each(
    server: FakeOpenAIServer, local: NoThreads, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> list[xcs.models.Response]:
        # The first call makes the endpoint (one-time setup, in a worker thread).
        assert await models.acall("local:smollm2", "warm up") == "warm up"

        def no_thread(*args: object, **kwargs: object) -> None:
            raise AssertionError("a request ran in a worker thread")

        monkeypatch.setattr(asyncio, "to_thread", no_thread)
        # The server holds each request until all 8 are in flight at once.
        server.behaviour = lambda body, i: Reply(
            body=chat_reply(prompt_of(body), 5, 2), wait_for_in_flight=8
        )
        return await asyncio.gather(
            *(models.acall("local:smollm2", f"q{i}", temperature=0) for i in range(8))
        )

    answers = asyncio.run(main())
    assert [str(a) for a in answers] == [f"q{i}" for i in range(8)]
    assert answers[0].usage.total_tokens == 7
    assert server.max_in_flight == 8
    assert server.requests[1]["temperature"] == 0
    assert server.paths == ["/v1/chat/completions"] * 9


def test_astream_reads_the_servers_events(server: FakeOpenAIServer, local: NoThreads) -> None:
    server.behaviour = lambda body, i: Reply(events=stream_events(["Hel", "lo"], prompt_tokens=4))

    async def main() -> tuple[list[str], xcs.models.Response]:
        stream = models.astream("local:smollm2", "hi")
        chunks = [c async for c in stream]
        return chunks, stream.response

    chunks, response = asyncio.run(main())
    assert chunks == ["Hel", "lo"]
    assert response == "Hello"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (4, 2)
    assert server.requests[0]["stream"] is True


def test_a_dropped_astream_is_a_provider_error(
    server: FakeOpenAIServer, local: NoThreads, clock: FakeClock
) -> None:
    server.behaviour = lambda body, i: Reply(
        events=stream_events(["one", " two", " three"]), drop_after=3
    )
    got: list[str] = []

    async def main() -> None:
        async for chunk in models.astream("local:smollm2", "count"):
            got.append(chunk)

    with pytest.raises(xcs.ProviderError, match="stream broke") as info:
        asyncio.run(main())
    assert got == ["one", " two"]
    assert info.value.partial == "one two"
    assert server.count == 1


def test_errors_and_timeouts_are_mapped_and_retried(
    server: FakeOpenAIServer, local: NoThreads, clock: FakeClock
) -> None:
    server.behaviour = lambda body, i: (
        Reply(503, error_body("loading model")) if i == 0 else Reply(body=chat_reply("ok"))
    )
    assert asyncio.run(models.acall("local:smollm2", "q")) == "ok"
    assert server.count == 2  # the 503 was retried
    server.behaviour = lambda body, i: Reply(400, error_body("bad grammar", "invalid_request"))
    with pytest.raises(xcs.InvalidRequestError, match="bad grammar"):
        asyncio.run(models.acall("local:smollm2", "q"))
    server.behaviour = lambda body, i: Reply(body=chat_reply("late"), delay=5)
    with pytest.raises(xcs.ProviderTimeoutError, match="timed out"):
        asyncio.run(models.acall("local:smollm2", "q", timeout=0.2, max_attempts=1))


def test_cancelling_a_local_acall_closes_its_connection_and_frees_its_slot(
    server: FakeOpenAIServer, local: NoThreads
) -> None:
    server.behaviour = lambda body, i: Reply(body=chat_reply(prompt_of(body)), delay=30)
    models.configure("local", concurrency=1)

    async def main() -> None:
        task = asyncio.create_task(models.acall("local:smollm2", "slow"))
        assert await asyncio.to_thread(server.wait_for, lambda: server.in_flight == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert models.statistics()["limiters"]["local"].in_flight == 0
    # The server saw the client go (its handler's write fails, or the next poll ends).
    server.behaviour = lambda body, i: Reply(body=chat_reply(prompt_of(body)))
    assert asyncio.run(models.acall("local:smollm2", "after")) == "after"
