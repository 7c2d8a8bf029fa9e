"""Fixtures of the observability tests: a clean model layer, a barrier-gated mock model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _gated import GatedModel

import xcs
from xcs.models import MockProvider, models


@pytest.fixture(autouse=True)
def clean_model_layer() -> Iterator[None]:
    models._reset()
    yield
    models._reset()


@pytest.fixture
def gated() -> GatedModel:
    model = GatedModel()
    xcs.models.register_provider("gated", MockProvider(model))
    return model
