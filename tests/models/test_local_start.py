"""local: starting the model server is bounded by the deadline and by a startup
timeout, and a child that does not come up is never left behind. No model needed:
the child is a stub command."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import xcs
from xcs.errors import ProviderError, ProviderTimeoutError
from xcs.models import _local, models
from xcs.models._registry import registry

pytest.importorskip("xllamacpp")  # the provider checks that its binding is installed

HANG = "import time; time.sleep(600)"  # a model that never finishes loading


class Started:
    """Records every LocalServer the provider starts, to check on their children."""

    def __init__(self) -> None:
        self.servers: list[_local.LocalServer] = []


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Started, list[str]]]:
    """Make the provider start `python -c <code>` (code set by the test) instead of
    the model server, with no model file needed."""
    code = [HANG]
    started = Started()
    monkeypatch.setattr(_local, "find_bundled_gguf", lambda dist: Path("/nonexistent.gguf"))
    monkeypatch.setattr(
        _local, "server_command", lambda gguf, alias: [sys.executable, "-c", code[0]]
    )
    real_init = _local.LocalServer.__init__

    def init(self: _local.LocalServer, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        started.servers.append(self)

    monkeypatch.setattr(_local.LocalServer, "__init__", init)
    yield started, code
    registry.close()
    for server in started.servers:  # whatever happened, no child is left running
        assert server.process.poll() is not None


def test_the_deadline_bounds_the_wait_and_the_start_goes_on(
    stub: tuple[Started, list[str]],
) -> None:
    started, _ = stub
    starting = "waiting for the model server to start"
    with pytest.raises(xcs.ExecutionTimeout, match=starting), xcs.deadline(0.3):
        models("local:smollm2", "hi", max_tokens=4)
    (server,) = started.servers
    assert server.process.poll() is None  # still starting, for the next call
    with pytest.raises(xcs.ExecutionTimeout), xcs.deadline(0.2):
        models("local:smollm2", "hi", max_tokens=4)
    assert len(started.servers) == 1  # the second call waited for the same start
    registry.close()  # what the exit hook does: the child, still loading, is killed
    assert server.process.wait(timeout=10) != 0


def test_a_start_past_the_startup_timeout_kills_the_child(
    stub: tuple[Started, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    started, _ = stub
    monkeypatch.setenv("XCS_LOCAL_START_TIMEOUT", "0.5")
    with pytest.raises(ProviderTimeoutError, match=r"did not start within 0.5 s") as info:
        models("local:smollm2", "hi", max_tokens=4)
    assert info.value.timeout == 0.5  # type: ignore[attr-defined]
    assert info.value.attempts == 1  # type: ignore[attr-defined]  # a start is not retried
    (server,) = started.servers
    assert server.process.poll() is not None  # killed and reaped before the raise
    # A deadline later than the startup timeout: the startup timeout still decides.
    with pytest.raises(ProviderTimeoutError), xcs.deadline(60):
        models("local:smollm2", "hi", max_tokens=4)
    assert len(started.servers) == 2  # a failed start is forgotten: a new one was tried
    assert all(s.process.poll() is not None for s in started.servers)


def test_concurrent_callers_share_one_start_and_its_failure(
    stub: tuple[Started, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    started, _ = stub
    monkeypatch.setenv("XCS_LOCAL_START_TIMEOUT", "1")
    barrier = threading.Barrier(4, timeout=30)
    errors: list[BaseException] = []

    def caller() -> None:
        barrier.wait()
        try:
            models("local:smollm2", "hi", max_tokens=4)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(errors) == 4
    assert all(isinstance(e, ProviderTimeoutError) for e in errors), errors
    assert len(started.servers) == 1


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # What _local_server prints when xllamacpp.Server() raises (a bad GGUF file).
        (
            'print(\'{"error": "RuntimeError: Failed to init server"}\', flush=True)',
            "did not start: RuntimeError: Failed to init server",
        ),
        # A child that dies before printing anything: its stderr is quoted.
        ("import sys; sys.stderr.write('cannot load libgomp.so.1'); sys.exit(3)", "libgomp"),
    ],
)
def test_a_child_that_fails_to_start_is_a_provider_error(
    stub: tuple[Started, list[str]], code: str, expected: str
) -> None:
    started, command = stub
    command[0] = code
    with pytest.raises(ProviderError, match=expected) as info:
        models("local:smollm2", "hi", max_tokens=4)
    assert type(info.value) is ProviderError
    assert info.value.attempts == 1  # type: ignore[attr-defined]
    (server,) = started.servers
    assert server.failed
    assert server.process.poll() is not None


def test_the_startup_timeout_variable_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _local.start_timeout() == _local.START_TIMEOUT
    monkeypatch.setenv("XCS_LOCAL_START_TIMEOUT", "12.5")
    assert _local.start_timeout() == 12.5
    for bad in ("soon", "0", "-3", "nan", "inf"):
        monkeypatch.setenv("XCS_LOCAL_START_TIMEOUT", bad)
        with pytest.raises(xcs.ValidationError, match="XCS_LOCAL_START_TIMEOUT"):
            _local.start_timeout()
