"""Fixtures of the model-layer tests: a clean model layer per test, a fake clock,
and a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _fake_openai import FakeOpenAIServer

from xcs.models import FakeClock, models, use_clock


@pytest.fixture(autouse=True)
def clean_model_layer() -> Iterator[None]:
    """Every test starts from a fresh model layer: no settings, endpoints, statistics,
    registered providers or process-wide cache, and leaves none behind."""
    models._reset()
    yield
    models._reset()


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """A fake clock for the model layer: sleeps return at once and are recorded."""
    fake = FakeClock()
    with use_clock(fake):
        yield fake


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """A fake OpenAI-compatible server, stopped (and its hanging handlers released)
    after the test."""
    srv = FakeOpenAIServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
