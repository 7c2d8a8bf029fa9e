"""A fake OpenAI-compatible chat server for benchmarks: fixed latency, deterministic replies.

Run it as its own process so that its work never competes with the benchmarked
process for the GIL (the tests' fake server, ``tests/models/_fake_openai.py``, runs a
thread per connection inside the test process, which is right for tests and wrong
for timing)::

    python bench/_fake_server.py --delay 0.1     # prints "port <N>" once listening

It answers ``POST .../chat/completions`` after ``--delay`` seconds (an asyncio
sleep, so hundreds of requests wait at once without a thread each), with HTTP/1.1
keep-alive. The reply's text depends only on the last message's content (see
``reply_text``), so every client, whatever its library, gets the same answers and
the benchmark can check that every approach computed the same result. ``GET
/stats`` returns the requests served and the most in flight at once.

Example::

    server = FakeServer.start(delay=0.1)
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-fake")
    ...
    server.stop()
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["FakeServer", "reply_text"]

WORDS = ("alpha", "beta", "gamma", "alpha", "delta")  # alpha is the most common answer


def reply_text(content: str) -> str:
    """The server's answer to a message: a word (for votes) and a short digest."""
    digest = hashlib.sha256(content.encode()).hexdigest()
    return f"{WORDS[int(digest[:8], 16) % len(WORDS)]} {digest[:10]}"


def completion(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") or [{"content": ""}]
    content = messages[-1].get("content") or ""
    if isinstance(content, list):  # content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    text = reply_text(str(content))
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "fake-model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
    }


class _Server:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.served = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                raw = await reader.readexactly(length) if length else b""
                if method == "GET" and path.rstrip("/").endswith("/stats"):
                    status, payload = (
                        200,
                        {
                            "served": self.served,
                            "max_in_flight": self.max_in_flight,
                        },
                    )
                    self.max_in_flight = 0
                elif method == "POST" and path.rstrip("/").endswith("/chat/completions"):
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                    try:
                        await asyncio.sleep(self.delay)
                    finally:
                        self.in_flight -= 1
                    self.served += 1
                    status, payload = 200, completion(json.loads(raw or b"{}"))
                else:
                    status, payload = 404, {"error": {"message": f"no route {method} {path}"}}
                data = json.dumps(payload).encode()
                head = (
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
                    "content-type: application/json\r\n"
                    f"content-length: {len(data)}\r\n"
                    "connection: keep-alive\r\n\r\n"
                )
                writer.write(head.encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        except asyncio.CancelledError:
            return  # the server is stopping with this connection open: nothing to answer
        finally:
            writer.close()


async def _serve(delay: float, port: int) -> None:
    server = _Server(delay)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", port, backlog=1024)
    print(f"port {listener.sockets[0].getsockname()[1]}", flush=True)
    async with listener:
        # Stop when the parent closes our stdin (it exited or called stop()).
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


class FakeServer:
    """The server in a child process. Not constructed directly: use ``FakeServer.start``."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port

    @classmethod
    def start(cls, *, delay: float) -> FakeServer:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--delay", str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("port "):
            process.kill()
            raise RuntimeError(f"the fake server did not start (it said {line!r})")
        return cls(process, int(line.split()[1]))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, int]:
        """Requests served so far, and the most in flight at once since the last call."""
        with urllib.request.urlopen(f"{self.base_url}/stats", timeout=10) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds per request")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    args = parser.parse_args()
    asyncio.run(_serve(args.delay, args.port))


if __name__ == "__main__":
    main()
