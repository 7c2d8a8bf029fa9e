"""``xcs.models.settings(scope)``: the settings in force, resolved through the scopes."""

from __future__ import annotations

import pytest

import xcs
from xcs.models import models
from xcs.models._local import SLOTS
from xcs.models._settings import DEFAULTS


def test_a_model_shows_its_providers_limits_and_the_tightest_of_each() -> None:
    models.configure("openai", concurrency=32, rpm=500, tpm=200_000)
    models.configure("openai:gpt-4o", concurrency=4, timeout=120)
    got = models.settings("openai:gpt-4o")
    assert (got.concurrency, got.rpm, got.tpm, got.timeout) == (4, 500, 200_000, 120)
    assert got.max_attempts == DEFAULTS.max_attempts
    # A model's own limit looser than its provider's: the provider's still bounds it.
    models.configure("openai:gpt-4o", concurrency=50)
    assert models.settings("openai:gpt-4o").concurrency == 32


def test_a_provider_scope_is_resolved_too() -> None:
    openai = models.settings("openai")
    assert openai.concurrency == 64  # the provider's default limit
    assert openai.timeout == DEFAULTS.timeout  # not None: the default is in force
    assert models.settings("local").concurrency == SLOTS
    assert models.settings("local:smollm2").concurrency == SLOTS
    assert models.settings("sim:echo").concurrency is None  # the simulator: no limit
    models.configure("sim", timeout=5)
    assert models.settings("sim").timeout == 5
    assert models.settings("sim:echo").timeout == 5


def test_an_unknown_provider_is_named() -> None:
    with pytest.raises(xcs.ValidationError, match="unknown model provider 'nope'"):
        models.settings("nope:model")
