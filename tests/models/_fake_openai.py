"""A fake chat server on 127.0.0.1 (OpenAI- or Anthropic-shaped replies) for provider tests.

Each request is answered by a *behaviour*: a function of the request body and the
request's index that returns a ``Reply`` (status, JSON or raw body, headers, a
delay). The server counts the requests in flight and keeps the maximum, so tests
prove limits by what the server saw, not by timing; ``log`` keeps, per request, its
arrival and answer times on the server's clock, the requests in flight when it
arrived and the status it got. Delays wait on an event that ``stop()`` sets, so a
hanging handler ends the moment the test does.

Behaviours for rate limits: ``every_nth_once`` (a per-request 429 with a
Retry-After, each prompt refused at most once), ``server_limit`` (a real concurrency
limit: requests beyond it get 429) and ``account_exhausted`` (answers that say the
account's request allowance is used up, with its reset).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass
class Reply:
    status: int = 200
    body: Any = None  # a JSON-able value, or bytes sent as they are
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a hang: a long delay)
    # Before answering, wait until the server has had this many requests in flight at
    # once (up to 5 s): the first requests of a burst meet, later ones pass at once.
    wait_for_in_flight: int = 0
    # Server-sent events instead of a body (chunked), then "data: [DONE]"; with
    # drop_after, the connection is cut after that many events (a dropped stream).
    events: list[dict[str, Any]] | None = None
    drop_after: int | None = None
    named_events: bool = False  # "event: <type>" lines too (Anthropic's events)


def anthropic_stream_events(chunks: list[str], input_tokens: int = 9) -> list[dict[str, Any]]:
    """The Messages API's events for a streamed reply of ``chunks``."""
    message = anthropic_reply("", input_tokens, 1)
    message["content"] = []
    message["stop_reason"] = None
    return [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *[
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": c}}
            for c in chunks
        ],
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": len(chunks)},
        },
        {"type": "message_stop"},
    ]


def stream_events(
    chunks: list[str], prompt_tokens: int = 7, finish_reason: str | None = "stop"
) -> list[dict[str, Any]]:
    """Chat completion chunks for ``chunks``, a finish reason, then a usage event."""

    def event(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "fake-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": c}) for c in chunks]
    if finish_reason is not None:
        events.append(event({}, finish_reason))
    usage = event({})
    usage["choices"] = []
    usage["usage"] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(chunks),
        "total_tokens": prompt_tokens + len(chunks),
    }
    events.append(usage)
    return events


def chat_reply(text: str, prompt_tokens: int = 7, completion_tokens: int = 3) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def anthropic_reply(text: str, input_tokens: int = 9, output_tokens: int = 2) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": "fake-claude",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def tool_calls_reply(
    calls: list[tuple[str, str, str]], prompt_tokens: int = 11, completion_tokens: int = 5
) -> dict[str, Any]:
    """A chat completion that calls tools: ``(id, name, arguments as JSON text)``."""
    reply = chat_reply("", prompt_tokens, completion_tokens)
    choice = reply["choices"][0]
    choice["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": name, "arguments": args}}
            for i, name, args in calls
        ],
    }
    choice["finish_reason"] = "tool_calls"
    return reply


def anthropic_tool_reply(
    calls: list[tuple[str, str, dict[str, Any]]], text: str = ""
) -> dict[str, Any]:
    """A Messages reply with ``tool_use`` blocks ``(id, name, input)`` (and text first)."""
    reply = anthropic_reply(text)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    blocks += [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in calls]
    reply["content"] = blocks
    reply["stop_reason"] = "tool_use"
    return reply


def echo(body: dict[str, Any], index: int) -> Reply:
    """Answer with the last message's content."""
    return Reply(body=chat_reply(body["messages"][-1]["content"]))


def error_body(message: str, kind: str = "server_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": None, "param": None}}


Behaviour = Callable[[dict[str, Any], int], Reply]


@dataclasses.dataclass
class Logged:
    """One request as the server saw it (times: ``time.monotonic``)."""

    index: int
    prompt: str
    arrived: float
    in_flight: int  # requests in flight when it arrived, itself included
    answered: float = 0.0
    status: int = 0


def prompt_of(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content", "")
    return content if isinstance(content, str) else json.dumps(content)


def every_nth_once(n: int, retry_after: float, delay: float = 0.0) -> Behaviour:
    """Every ``n``-th distinct prompt (in arrival order) is refused once with 429 and
    ``Retry-After``; everything else is echoed after ``delay``. Per request: no
    account-wide headers."""
    lock = threading.Lock()
    seen: dict[str, int] = {}
    refused: set[str] = set()

    def behaviour(body: dict[str, Any], index: int) -> Reply:
        prompt = prompt_of(body)
        with lock:
            number = seen.setdefault(prompt, len(seen))
            refuse = number % n == n - 1 and prompt not in refused
            if refuse:
                refused.add(prompt)
        if refuse:
            return Reply(
                429,
                error_body("slow down", "rate_limit_error"),
                headers={"retry-after": f"{retry_after:g}"},
            )
        return Reply(body=chat_reply(prompt), delay=delay)

    return behaviour


def account_exhausted(reset: str = "2s") -> Behaviour:
    """Echo, saying the account's requests are used up until ``reset``."""

    def behaviour(body: dict[str, Any], index: int) -> Reply:
        return Reply(
            body=chat_reply(prompt_of(body)),
            headers={
                "x-ratelimit-limit-requests": "100",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": reset,
            },
        )

    return behaviour


class FakeOpenAIServer:
    """The fake server. ``behaviour`` may be replaced at any time."""

    def __init__(self, behaviour: Behaviour = echo) -> None:
        self.behaviour = behaviour
        self.requests: list[dict[str, Any]] = []  # bodies, in arrival order
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.log: list[Logged] = []
        # A real concurrency limit (None: none): a request arriving while this many
        # are being served gets 429 with Retry-After ``limit_retry_after``.
        self.limit: int | None = None
        self.limit_retry_after = 0.05
        self.served = 0  # requests being served (not refused) now
        self.max_served = 0
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def root_url(self) -> str:
        """The server without ``/v1`` (the anthropic SDK adds ``/v1/messages``)."""
        return self.base_url.removesuffix("/v1")

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def statuses(self) -> list[int]:
        with self._lock:
            return [entry.status for entry in self.log]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate()`` (called under the server's lock) holds."""
        with self._lock:
            return self._lock.wait_for(predicate, timeout=timeout)

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    index = len(server.requests)
                    server.requests.append(body)
                    server.paths.append(self.path)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    entry = Logged(index, prompt_of(body), time.monotonic(), server.in_flight)
                    server.log.append(entry)
                    over = server.limit is not None and server.served >= server.limit
                    if not over:
                        server.served += 1
                        server.max_served = max(server.max_served, server.served)
                    server._lock.notify_all()
                reply = Reply(500)
                try:
                    if over:
                        reply = Reply(
                            429,
                            error_body("too many requests at once", "rate_limit_error"),
                            headers={"retry-after": f"{server.limit_retry_after:g}"},
                        )
                    else:
                        reply = server.behaviour(body, index)
                    if reply.wait_for_in_flight:
                        with server._lock:
                            server._lock.wait_for(
                                lambda: (
                                    server.max_in_flight >= reply.wait_for_in_flight
                                    or server._stopping.is_set()
                                ),
                                timeout=5,
                            )
                    if reply.delay:
                        server._stopping.wait(reply.delay)
                    with server._lock:
                        entry.answered = time.monotonic()
                        entry.status = reply.status
                    self._send(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer
                finally:
                    with server._lock:
                        server.in_flight -= 1
                        if not over:
                            server.served -= 1
                        if not entry.status:  # the client went away first
                            entry.answered = time.monotonic()
                        server._lock.notify_all()

            def _send(self, reply: Reply) -> None:
                if reply.events is not None:
                    self._send_events(reply)
                    return
                data = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _send_events(self, reply: Reply) -> None:
                assert reply.events is not None
                self.send_response(reply.status)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                lines = [
                    (f"event: {e['type']}\n" if reply.named_events else "")
                    + f"data: {json.dumps(e)}\n\n"
                    for e in reply.events
                ]
                if reply.drop_after is None:
                    lines.append("data: [DONE]\n\n")
                else:
                    lines = lines[: reply.drop_after]
                for line in lines:
                    raw = line.encode()
                    self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
                    self.wfile.flush()
                if reply.drop_after is not None:
                    # Cut the connection mid-body: no terminating chunk.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(b"0\r\n\r\n")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # shutdown() waits for one poll
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
