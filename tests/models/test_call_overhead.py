"""Work the model layer no longer repeats on every call, and that skipping it changes
nothing a call does (bench/peers.py: the layer's CPU per request)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from xcs.models import _engine, models
from xcs.models._http import account_limit_seconds
from xcs.models._settings import SettingsStore
from xcs.models._types import Completion, Request


def _timeouts_sent(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The timeout of every attempt the engine sends (the provider still answers)."""
    sent: list[float] = []
    real_send = _engine.send

    def spy(provider: Any, request: Request) -> Completion:
        sent.append(request.timeout)
        return real_send(provider, request)

    monkeypatch.setattr(_engine, "send", spy)
    return sent


def test_settings_are_resolved_once_until_they_change(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved: list[str] = []
    real_resolve = SettingsStore.resolve

    def counting(self: SettingsStore, provider: str, model: str, defaults: Any) -> Any:
        resolved.append(f"{provider}:{model}")
        return real_resolve(self, provider, model, defaults)

    monkeypatch.setattr(SettingsStore, "resolve", counting)
    sent = _timeouts_sent(monkeypatch)
    for i in range(5):
        models("sim:echo", f"q{i}")
    assert resolved == ["sim:echo"]
    # A change of settings is seen by the next call, at every scope.
    models.configure("sim", timeout=7)
    models("sim:echo", "q")
    models.configure("sim:echo", timeout=3)
    models("sim:echo", "q")
    models("sim:other", "q")
    assert resolved == ["sim:echo", "sim:echo", "sim:echo", "sim:other"]
    assert sent[-3:] == [7, 3, 7]
    # A fresh model layer (what every test starts from) forgets them too.
    models._reset()
    models("sim:echo", "q")
    assert sent[-1] != 3
    assert resolved[-1] == "sim:echo"


def _sdk_headers_class() -> Any:
    """The headers class of the OpenAI SDK's HTTP library (httpx, or its successor)."""
    openai = pytest.importorskip("openai")
    package = openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0]
    return importlib.import_module(package).Headers


Headers = _sdk_headers_class()


class _NoLookups(Headers):  # type: ignore[misc, valid-type]
    """httpx headers whose lookups by name fail the test."""

    def get(self, key: str, default: Any = None) -> Any:
        raise AssertionError(f"looked up {key!r}")


def test_httpx_headers_without_rate_limit_names_are_not_looked_up() -> None:
    plain = _NoLookups({"content-type": "application/json", "server": "fake"})
    assert account_limit_seconds(plain) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Remaining-Requests": "0", "X-RateLimit-Reset-Requests": "2s"}, 2.0),
        ({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m"}, 60.0),
        ({"anthropic-ratelimit-requests-remaining": "0"}, 1.0),  # no reset: one second
        ({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "2s"}, None),
        ({"content-type": "application/json"}, None),
    ],
)
def test_account_limits_read_from_httpx_headers_as_from_a_dict(
    headers: dict[str, str], expected: float | None
) -> None:
    assert account_limit_seconds(Headers(headers)) == expected
    assert account_limit_seconds({k.lower(): v for k, v in headers.items()}) == expected
