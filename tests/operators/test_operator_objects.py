"""Operators as objects: repr of the tree, pickling, xcs.jit on classes and instances."""

from __future__ import annotations

import pickle
import threading
import time

import pytest
from _operator_defs import Answer, Count, shout

import xcs
from xcs.operators import (
    BestOfN,
    Cached,
    Chain,
    Ensemble,
    Judge,
    MajorityVote,
    Operator,
    Router,
    Synthesize,
    Verifier,
)


def tree() -> Chain:
    answer = Answer(xcs.models.bind("sim:chat", temperature=0.8, max_tokens=6))
    return Chain(Ensemble(answer, n=3), Judge(xcs.models.bind("sim:judge", temperature=0)))


def test_repr_of_a_tree() -> None:
    assert repr(tree()) == (
        "Chain(\n"
        "  Ensemble(\n"
        "    Answer(model=ModelBinding('sim:chat', max_tokens=6, temperature=0.8) [simulator]),\n"
        "    n=3,\n"
        "  ),\n"
        "  Judge(ModelBinding('sim:judge', temperature=0) [simulator]),\n"
        ")"
    )
    assert repr(MajorityVote()) == "MajorityVote()"
    assert repr(shout) == "<op shout>"
    assert repr(Cached(shout, maxsize=3)) == "Cached(<op shout>, maxsize=3)"


def test_pickle_round_trip_of_composed_trees_with_bindings() -> None:
    judge = xcs.models.bind("sim:judge", temperature=0)
    chat = xcs.models.bind("sim:chat", temperature=0.8, max_tokens=6)
    trees = [
        tree(),
        Router(chat, {"a": tree(), "b": Chain(shout, str.lower)}, default="a"),
        BestOfN(Answer(chat), 3, scorer=Verifier(judge)),
        Chain(Ensemble(chat, chat), Synthesize(judge)),
        Cached(Chain(Ensemble(Answer(chat), n=2), MajorityVote()), maxsize=5),
        xcs.jit(tree()),
    ]
    for original in trees:
        copy = pickle.loads(pickle.dumps(original))
        assert repr(copy) == repr(original)
        assert copy("Why is the sky blue?") == original("Why is the sky blue?")
    assert pickle.loads(pickle.dumps(shout)) is shout


def test_function_operator_pickles_by_value_when_not_a_module_attribute() -> None:
    op = xcs.op(str.upper)
    assert pickle.loads(pickle.dumps(op))("a") == "A"


class Fanout(Operator):
    def __init__(self, n: int) -> None:
        self.n = n
        self.barrier = threading.Barrier(n, timeout=30)

    def forward(self, question: str) -> list[str]:
        return [self.ask(question, i) for i in range(self.n)]

    def ask(self, question: str, i: int) -> str:
        time.sleep(0.005)  # blocks, like a model call: jit measures and overlaps it
        self.barrier.wait()  # only passes if the n calls overlap
        return f"{question}{i}"


def test_jit_on_an_instance_compiles_forward() -> None:
    fan = Fanout(3)
    jitted = xcs.jit(fan)
    assert jitted is not fan
    assert "_xcs_jit_window_" not in vars(fan)
    assert isinstance(jitted, Fanout)
    assert repr(jitted).startswith("jit(Fanout)(")
    # The first run probes the first call alone (its barrier would wait until the
    # timeout), so warm the site with a barrier of one first.
    jitted.barrier = threading.Barrier(1)
    jitted.n = 1
    assert jitted("q") == ["q0"]
    jitted.n, jitted.barrier = 4, threading.Barrier(4, timeout=30)
    assert jitted("q") == ["q0", "q1", "q2", "q3"]
    assert "comprehension" in xcs.explain(jitted)
    assert xcs.jit(jitted) is jitted


def test_jit_on_a_class_compiles_forward_for_every_instance() -> None:
    @xcs.jit
    class Doubler(Operator):
        def forward(self, xs: list[int]) -> list[int]:
            return [self.double(x) for x in xs]

        def double(self, x: int) -> int:
            return x * 2

    assert Doubler()([1, 2]) == [2, 4]
    with pytest.raises(xcs.ValidationError, match="Doubler: input 'xs'"):
        Doubler()("no")
    assert "comprehension" in xcs.explain(Doubler())
    assert xcs.jit(Doubler) is Doubler

    class Tripler(Doubler):  # subclasses of a jitted class are jitted too
        def forward(self, xs: list[int]) -> list[int]:
            return [self.double(x) + x for x in xs]

    assert Tripler()([1]) == [3]
    assert "comprehension" in xcs.explain(Tripler())


def test_jit_on_a_function_operator() -> None:
    jitted = xcs.jit(shout)
    assert jitted("a") == "A"
    assert repr(jitted) == "<jit op shout>"
    assert repr(shout) == "<op shout>"
    with pytest.raises(xcs.ValidationError):
        jitted(3)


def test_jitted_and_eager_give_the_same_validation_errors() -> None:
    for op in (Count(), xcs.jit(Count())):
        with pytest.raises(xcs.ValidationError) as info:
            op([1, "x"])
        assert str(info.value).startswith("Count: input 'items[1]'")


def test_operators_compose_under_a_jitted_function() -> None:
    answer = Answer(xcs.models.bind("sim:chat?latency=0.002", temperature=0.8, max_tokens=6))

    @xcs.jit
    def ask_all(questions: list[str]) -> list[str]:
        return [MajorityVote()(Ensemble(answer, n=3)(q)) for q in questions]

    questions = [f"q{i}" for i in range(4)]
    assert ask_all(questions) == ask_all.__wrapped__(questions)


def test_an_operator_may_set_its_name() -> None:
    class Named(Operator):
        def __init__(self) -> None:
            self.name = "drafter"

        def forward(self, question: str) -> str:
            return question

    named = Named()
    assert named.name == "drafter"
    assert repr(named) == "drafter()"
    with pytest.raises(xcs.ValidationError, match=r"^drafter: input 'question'"):
        named(1)
    op = xcs.op(str.upper)
    op.name = "upper"
    assert op.name == "upper"


def test_public_names_and_docstring_examples() -> None:
    import doctest
    import types

    import xcs.operators
    from xcs.operators import _parse

    module = xcs.operators
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) == public
    for name in module.__all__:
        assert getattr(module, name).__doc__, name
    for mod in (module, _parse):
        failures, tried = doctest.testmod(mod, verbose=False)
        assert tried >= 4
        assert failures == 0
