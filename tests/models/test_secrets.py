"""No API key ever appears in logs, reprs, statistics, pickles of errors, or messages."""

from __future__ import annotations

import logging
import pickle
import traceback

import pytest

import xcs
from xcs.models import FakeClock, bind, models
from xcs.models._registry import registry

pytest.importorskip("openai")

from _fake_openai import FakeOpenAIServer, Reply, error_body

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
    server: FakeOpenAIServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and httpx's included
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

    seen = everything_printable(errors)
    seen += "\n" + repr(ask) + "\n" + repr(pickle.loads(pickle.dumps(ask)))
    seen += "\n" + "\n".join(r.getMessage() for r in caplog.records)
    seen += "\n" + caplog.text
    assert KEY not in seen
    assert len(caplog.records) > 0  # the logs were really captured


def test_a_misspelt_key_parameter_is_not_echoed() -> None:
    with pytest.raises(xcs.ValidationError) as info:
        models("openai:gpt-4o-mini", "q", apikey=KEY)
    assert KEY not in str(info.value)
    with pytest.raises(xcs.ValidationError) as info:
        models("openai:gpt-4o-mini", "q", api_key=12345678901234)
    assert "12345678901234" not in str(info.value)
