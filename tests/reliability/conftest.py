"""Fixtures of the reliability tests: a clean model layer per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xcs.models import models


@pytest.fixture(autouse=True)
def clean_model_layer() -> Iterator[None]:
    """Every test starts from a fresh model layer and leaves none behind."""
    models._reset()
    yield
    models._reset()
