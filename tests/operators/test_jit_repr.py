"""An operator that runs jitted says so in its repr, however it was jitted."""

from __future__ import annotations

import xcs
from xcs.operators import Ensemble


class Plain(xcs.Operator):
    def __init__(self, k: int) -> None:
        self.k = k

    def forward(self, x: str) -> str:
        return x * self.k


@xcs.jit
class Jitted(xcs.Operator):
    def __init__(self, k: int) -> None:
        self.k = k

    def forward(self, x: str) -> str:
        return x * self.k


class JittedChild(Jitted):
    pass


def test_instances_of_a_jitted_class_print_as_jitted() -> None:
    assert repr(Jitted(2)) == "jit(Jitted)(k=2)"
    assert repr(JittedChild(2)) == "jit(JittedChild)(k=2)"
    assert repr(Ensemble(Jitted(1), Plain(1))) == ("Ensemble(jit(Jitted)(k=1), Plain(k=1))")


def test_a_jitted_instance_prints_as_jitted_and_its_original_does_not() -> None:
    plain = Plain(3)
    assert repr(xcs.jit(plain)) == "jit(Plain)(k=3)"
    assert repr(plain) == "Plain(k=3)"


def test_function_operators_too() -> None:
    @xcs.op
    def shout(text: str) -> str:
        return text.upper()

    assert repr(shout) == "<op test_function_operators_too.<locals>.shout>"
    assert repr(xcs.jit(shout)) == "<jit op test_function_operators_too.<locals>.shout>"
