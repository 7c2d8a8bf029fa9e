"""No API key ever appears in logs, reprs, statistics, pickles of errors, or messages."""

from __future__ import annotations

import logging
import pickle
import traceback
from pathlib import Path
from typing import Any

import pytest

import xcs
from xcs.models import FakeClock, bind, models
from xcs.models._registry import registry

pytest.importorskip("openai")

from _fake_openai import FakeOpenAIServer, Reply, chat_reply, error_body

KEY = "sk-SECRET-do-not-print-4f9a8b7c6d5e"


def everything_printable(errors: list[BaseException]) -> str:
    """Every text a user could see: messages, reprs, context attributes, pickles."""
    parts: list[str] = []
    for err in errors:
        parts += [str(err), repr(err), repr(vars(err)), repr(pickle.dumps(err))]
        # The whole traceback, with the SDK's chained exception (scrubbed at the boundary).
        parts += traceback.format_exception(err)
        cause = err.__cause__
        if cause is not None:
            parts += [str(cause), repr(cause), repr(getattr(cause, "body", None))]
    for endpoint in registry.endpoints():
        parts += [repr(endpoint), repr(endpoint.config), repr(endpoint.provider)]
        parts.append(endpoint.config.name)
    parts.append(repr(models.statistics()))
    return "\n".join(parts)


def test_the_key_never_shows(
    server: FakeOpenAIServer,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and httpx's included
    # Every call below is traced, prompts and answers recorded, errors quoting the key.
    with xcs.trace(record_content=True) as trace:
        errors = _calls_that_meet_the_key(server)
    exported = trace.to_chrome(tmp_path / "trace.json")
    ask = bind("openai:fake-model", base_url=server.base_url, api_key=KEY)

    seen = everything_printable(errors)
    seen += "\n" + repr(ask) + "\n" + repr(pickle.loads(pickle.dumps(ask)))
    seen += "\n" + "\n".join(r.getMessage() for r in caplog.records)
    seen += "\n" + caplog.text
    seen += "\n" + Path(exported).read_text() + repr(trace.spans) + str(trace.summary())
    seen += "\n" + trace.timeline()
    assert KEY not in seen
    assert len(caplog.records) > 0  # the logs were really captured
    # The four calls that reached the server were traced (the invalid one was not sent).
    assert sum(s.kind == "model" for s in trace.spans) == 4
    assert "upstream said" in Path(exported).read_text()  # with their error messages


def _calls_that_meet_the_key(server: FakeOpenAIServer) -> list[BaseException]:
    errors: list[BaseException] = []
    ask = bind("openai:fake-model", base_url=server.base_url, api_key=KEY)

    ask("a normal call")

    def refuse(body: object, index: int) -> Reply:
        # Like a real provider, the server quotes the key it refused.
        return Reply(401, error_body(f"Incorrect API key provided: {KEY}", "invalid_api_key"))

    server.behaviour = refuse
    with pytest.raises(xcs.AuthenticationError) as refused:
        ask("refused")
    errors.append(refused.value)

    server.behaviour = lambda body, i: Reply(500, error_body(f"upstream said {KEY}"))
    with pytest.raises(xcs.ProviderError) as failed:
        ask("failing", max_attempts=2)
    errors.append(failed.value)

    server.behaviour = lambda body, i: Reply(200, f"garbage {KEY}".encode())
    with pytest.raises(xcs.ProviderError) as garbled:
        ask("garbled", max_attempts=1)
    errors.append(garbled.value)

    with pytest.raises(xcs.ValidationError) as invalid:
        ask("bad", temperature=9)
    errors.append(invalid.value)
    return errors


def test_a_misspelt_key_parameter_is_not_echoed() -> None:
    with pytest.raises(xcs.ValidationError) as info:
        models("openai:gpt-4o-mini", "q", apikey=KEY)
    assert KEY not in str(info.value)
    with pytest.raises(xcs.ValidationError) as info:
        models("openai:gpt-4o-mini", "q", api_key=12345678901234)
    assert "12345678901234" not in str(info.value)


# ---------------------------------------------------------------------------
# A canary key in the environment, and every artefact of a run grepped for it

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"


def _failing(kind: str) -> Reply:
    """A reply that quotes the key, as careless servers and proxies do."""
    if kind == "401":
        return Reply(401, error_body(f"Incorrect API key provided: {CANARY}", "invalid_api_key"))
    if kind == "429":
        return Reply(429, error_body(f"rate limit for key {CANARY}"), {"retry-after": "0"})
    if kind == "500":
        return Reply(500, error_body(f"upstream said {CANARY}"))
    if kind == "garbage":
        return Reply(200, f"<html>{CANARY}</html>".encode())
    if kind == "bad-usage":
        body = chat_reply("fine")
        body["usage"]["prompt_tokens"] = CANARY
        return Reply(200, body)
    assert kind == "hang"
    return Reply(200, chat_reply("late"), delay=5.0)


def test_a_canary_key_never_reaches_any_artefact(
    server: FakeOpenAIServer,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key comes from OPENAI_API_KEY; a jitted run meets every kind of failure;
    then logs at DEBUG, the trace (spans, timeline, summary, Chrome JSON), xcs.stats,
    the model statistics, reprs, exceptions with their tracebacks and the cache file
    are all searched for the key."""
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    caplog.set_level(logging.DEBUG)
    models.configure("openai", failure_threshold=1000)  # every failure reaches the server
    ask = bind("openai:fake-model", base_url=server.base_url, max_attempts=2, timeout=0.5)
    kinds = ["ok", "401", "429", "500", "garbage", "bad-usage", "hang"]

    def behaviour(body: dict[str, Any], index: int) -> Reply:
        text = body["messages"][-1]["content"]
        kind = text.split()[0]
        return Reply(200, chat_reply(f"answer to {text}")) if kind == "ok" else _failing(kind)

    server.behaviour = behaviour

    def one(kind: str, i: int) -> str:
        try:
            return str(ask(f"{kind} request {i}"))
        except xcs.ProviderError as exc:
            errors.append(exc)
            return type(exc).__name__

    @xcs.jit
    def run_all(kinds: list[str]) -> list[str]:
        return [one(kind, i) for i, kind in enumerate(kinds)]

    errors: list[BaseException] = []
    cache_path = tmp_path / "answers.sqlite"
    with xcs.models.Cache(cache_path), xcs.trace(record_content=True) as trace:
        results = run_all(kinds)
        results += run_all(kinds)  # the second time, the answer comes from the cache
        with pytest.raises(xcs.ProviderError) as raised:
            xcs.jit(lambda: [ask("500 direct"), ask("ok direct")])()
        errors.append(raised.value)
    assert results[0] == "answer to ok request 0"
    assert sorted(results[1:7]) == sorted(
        [
            "AuthenticationError",
            "RateLimitError",
            "ProviderError",
            "ProviderError",
            "ProviderError",
            "ProviderTimeoutError",
        ]
    )
    trace_file = Path(trace.to_chrome(tmp_path / "trace.json"))

    seen = [
        everything_printable(errors),
        caplog.text,
        "\n".join(r.getMessage() for r in caplog.records),
        "\n".join(repr(vars(r)) for r in caplog.records),
        repr(trace.spans),
        "\n".join(f"{span.name} {span.attrs!r}" for span in trace.spans),
        trace.timeline(),
        str(trace.summary()),
        trace_file.read_text(encoding="utf-8"),
        repr(xcs.stats()),
        repr(models.statistics()),
        repr(ask),
        repr(pickle.loads(pickle.dumps(ask))),
    ]
    # The cache file and its companions, as raw bytes (SQLite pages, WAL).
    for path in tmp_path.iterdir():
        seen.append(path.read_bytes().decode("latin-1"))
    text = "\n".join(seen)
    assert CANARY not in text
    assert CANARY[-12:] not in text  # not even the tail, as some tools print keys
    # The artefacts were really produced and searched.
    assert len(caplog.records) > 0
    assert cache_path.exists()
    assert "answer to ok request 0" in text
    assert any("error" in span.attrs for span in trace.spans)
    # The server did get the key (so the canary really was in use).
    assert server.count > 0
