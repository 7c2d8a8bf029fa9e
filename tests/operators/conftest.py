"""Fixtures of the operator tests: a clean model layer per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xcs.models import models


@pytest.fixture(autouse=True)
def clean_model_layer() -> Iterator[None]:
    """No settings, endpoints, registered providers or cache leak between tests."""
    models._reset()
    yield
    models._reset()
