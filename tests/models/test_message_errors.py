"""Malformed messages raise ``xcs.ValidationError`` naming them in ``parameters``."""

from __future__ import annotations

from typing import Any

import pytest

import xcs


@pytest.mark.parametrize(
    ("prompt", "params", "named"),
    [
        ([], {}, ("messages",)),
        ([{"role": "robot", "content": "hi"}], {}, ("messages",)),
        ([{"role": "user", "content": 3}], {}, ("messages",)),
        ([{"role": "system", "content": "be brief"}], {}, ("messages",)),
        (b"hi", {}, ("messages",)),
        ([{"role": "system", "content": "a"}, "hi"], {}, ("messages",)),
        (
            [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}],
            {"system": "c"},
            ("system", "messages"),
        ),
    ],
)
def test_malformed_messages_name_the_parameter(
    prompt: Any, params: dict[str, Any], named: tuple[str, ...]
) -> None:
    with pytest.raises(xcs.ValidationError) as info:
        xcs.models("sim:echo", prompt, **params)
    assert info.value.parameters == named
