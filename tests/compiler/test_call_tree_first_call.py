"""The FIRST call of a freshly decorated entry overlaps across a 3-level call tree
(issue 15 acceptance, DESIGN §1.7 and §1.9), proven with barriers: a model call that
meets N parties returns only if N calls are in flight at once. No test here uses
``force_overlap``, and every test builds its functions anew (``_fresh``): nothing is
compiled or measured before the call under test.

Shapes not covered by ``test_call_tree.py`` and ``test_first_call.py``: a classmethod
and a staticmethod in the tree, an operator's ``forward`` (findings F1), direct
and mutual recursion whose every level issues a blocking call (also through a
comprehension statement: findings F2, fixed), ``@xcs.sequential``
callees deeper in the tree, functions in three other modules of the user's project,
``xcs.explain`` of the tree (F4) and ``xcs.jit`` of a bound method (F9). The findings
named here were found by these tests and the call-tree suite and fixed on main.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.compiler._forget import forget

import xcs
from xcs._compiler import _rt

TIMEOUT = 10.0


class Model:
    """Blocking calls: they meet at a barrier of ``parties`` (if any), and count those
    in flight (``peak``)."""

    def __init__(
        self, parties: int | None = None, *, sleep: float = 0.0, timeout: float = TIMEOUT
    ) -> None:
        self.barrier = threading.Barrier(parties, timeout=timeout) if parties else None
        self.sleep = sleep
        self.lock = threading.Lock()
        self.now = self.peak = 0
        self.calls: list[str] = []

    def __call__(self, prompt: str) -> str:
        with self.lock:
            self.calls.append(prompt)
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.barrier is not None:
                self.barrier.wait()
            if self.sleep:
                time.sleep(self.sleep)
            return prompt.upper()
        finally:
            with self.lock:
                self.now -= 1


model = Model()


def _fresh(entry: Callable[..., Any], *callees: Any) -> Callable[..., Any]:
    """``xcs.jit(entry)`` with nothing compiled or cached on ``entry`` or ``callees``
    (functions, or class/static methods as found in a class ``__dict__``)."""
    forget(entry, *callees)
    return xcs.jit(entry)


@pytest.fixture(autouse=True)
def _fresh_model() -> Any:
    global model
    yield
    model = Model()


# -- a classmethod and a staticmethod, three levels below the entry -----------------------


class Planner:
    def __init__(self, style: str) -> None:
        self.style = style

    def plan(self, q: str) -> list[str]:  # level 1: a bound method
        return self.expand(f"{self.style}:{q}")

    @classmethod
    def expand(cls, q: str) -> list[str]:  # level 2: a classmethod
        return [cls.draft(q, i) for i in range(3)]

    @staticmethod
    def draft(q: str, i: int) -> str:  # level 3: a staticmethod
        return model(f"{q}-{i}")


def plan_all(qs: list[str]) -> list[list[str]]:
    planner = Planner("brief")
    return [planner.plan(q) for q in qs]


def test_a_method_a_classmethod_and_a_staticmethod_overlap_on_the_first_call() -> None:
    global model
    model = Model(9)  # 3 questions x 3 drafts, all in flight at once or no return
    members = (Planner.plan, Planner.__dict__["expand"], Planner.__dict__["draft"])
    got = _fresh(plan_all, *members)(["a", "b", "c"])
    assert got == [[f"BRIEF:{q.upper()}-{i}" for i in range(3)] for q in "abc"]
    assert sorted(model.calls) == sorted(f"brief:{q}-{i}" for q in "abc" for i in range(3))


# -- recursion: every level issues a blocking call ---------------------------------------


def chain(n: int) -> list[str]:
    """Direct recursion: this level's call and the rest of the chain are independent."""
    if n == 0:
        return []
    mine = model(f"level{n}")
    rest = chain(n - 1)
    return [mine, *rest]


def research(topic: str, depth: int) -> list[str]:
    """Mutual recursion: a summary at every level, and the subtopics researched by
    ``research_all``, which calls back here. 1 + 2 + 4 calls for depth 2."""
    summary = model(topic)
    below = research_all(topic, depth)
    return [summary, *below]


def research_all(topic: str, depth: int) -> list[str]:
    if depth == 0:
        return []
    found = [research(f"{topic}.{i}", depth - 1) for i in range(2)]
    return [line for lines in found for line in lines]


def test_direct_recursion_has_every_level_in_flight_on_the_first_call() -> None:
    global model
    model = Model(4)
    assert _fresh(chain)(4) == ["LEVEL4", "LEVEL3", "LEVEL2", "LEVEL1"]


def test_mutual_recursion_has_every_level_in_flight_on_the_first_call() -> None:
    global model
    model = Model(7)
    plain_model, model = model, Model()
    expected = research("t", 2)
    model = plain_model
    assert _fresh(research, research_all)("t", 2) == expected
    assert len(model.calls) == 7


def research_here(topic: str, depth: int) -> list[str]:
    """``research`` with the subtopics in this function: a comprehension statement."""
    if depth == 0:
        return [model(topic)]
    summary = model(topic)
    found = [research_here(f"{topic}.{i}", depth - 1) for i in range(2)]
    return [summary, *[line for lines in found for line in lines]]


def test_recursion_through_a_comprehension_statement_overlaps_its_level_s_call() -> None:
    """Findings F2 (fixed on main in c046171): on 3.11 the comprehension statement that
    reads the parameters was kept in order, so each level's own call ran alone."""
    global model
    model = Model(7)
    assert _fresh(research_here)("t", 2) == ["T", "T.0", "T.0.0", "T.0.1", "T.1", "T.1.0", "T.1.1"]


# -- an operator's forward in the tree ---------------------------------------------------


class Drafts(xcs.Operator):
    def forward(self, q: str) -> list[str]:
        return [model(f"{q}-{i}") for i in range(2)]


drafts = Drafts()


def ask(q: str) -> list[str]:
    return drafts(q)


def ask_all(qs: list[str]) -> list[list[str]]:
    return [ask(q) for q in qs]


def test_an_operator_forward_in_the_tree_overlaps_on_the_first_call() -> None:
    """Findings F1 (fixed in 09bf328): forward ran as written, its calls in order."""
    global model
    model = Model(6)  # 3 questions x 2 drafts
    got = _fresh(ask_all, ask, Drafts.forward)(["a", "b", "c"])
    assert got == [[f"{q.upper()}-{i}" for i in range(2)] for q in "abc"]


def test_an_operator_forward_in_the_tree_gives_the_plain_values() -> None:
    global model
    model = Model(sleep=0.001)
    plain = ask_all(["a", "b", "c"])
    assert _fresh(ask_all, ask, Drafts.forward)(["a", "b", "c"]) == plain


# -- @xcs.sequential deeper in the tree ----------------------------------------------------


@xcs.sequential
def save(text: str) -> str:
    return model(f"save:{text}")


def save_all(xs: list[str]) -> list[str]:  # level 2: calls the sequential callee directly
    return [save(x) for x in xs]


def save_batches(batches: list[list[str]]) -> list[list[str]]:
    return [save_all(batch) for batch in batches]


def process(x: str) -> str:  # a helper in front of the sequential callee
    return save(x)


def process_all(xs: list[str]) -> list[str]:
    return [process(x) for x in xs]


def test_a_sequential_callee_stays_in_order_below_an_overlapping_region() -> None:
    """``save_batches``' items overlap (6 in flight would prove nothing); each batch
    calls ``save`` directly, so within a batch the calls stay in order."""
    global model
    model = Model(sleep=0.002)
    batches = [["a", "b", "c"], ["d", "e", "f"]]
    assert _fresh(save_all)(["a", "b", "c"]) == ["SAVE:A", "SAVE:B", "SAVE:C"]
    assert model.peak == 1
    assert model.calls == ["save:a", "save:b", "save:c"]
    model = Model(sleep=0.002)
    got = _fresh(save_batches, save_all)(batches)
    assert got == [[f"SAVE:{x.upper()}" for x in batch] for batch in batches]
    for batch in batches:  # each batch's saves in program order
        mine = [call for call in model.calls if call[-1] in "".join(batch)]
        assert mine == [f"save:{x}" for x in batch]


def test_a_sequential_callee_behind_a_helper_stays_in_order() -> None:
    """Findings F5 (fixed in 09bf328): 5 calls of ``save`` were in flight at once."""
    global model
    model = Model(sleep=0.01)
    assert _fresh(process_all, process)(list("abcde")) == [f"SAVE:{x}" for x in "ABCDE"]
    assert model.peak == 1


# -- xcs.explain shows the tree ------------------------------------------------------------


def test_explain_lists_callees_called_inside_regions() -> None:
    """Findings F4 (fixed in 09bf328): only callees called outside regions were listed."""
    members = (Planner.plan, Planner.__dict__["expand"], Planner.__dict__["draft"])
    jitted = _fresh(plan_all, *members)
    jitted(["a"])
    tree = xcs.explain(jitted)
    assert "Planner.plan: compiled" in tree
    assert "Planner.expand: compiled" in tree


# -- functions in other modules of the user's project -------------------------------------

PIPELINE_MODULE = """
import steps


def run(qs):
    return [steps.draft_all(q) for q in qs]
"""

STEPS_MODULE = """
from leaf import ask


def draft_all(q):
    return [ask(f"{q}-{i}") for i in range(2)]
"""

LEAF_MODULE = """
MODEL = None


def ask(prompt):
    return MODEL(prompt)
"""


def test_functions_in_other_modules_of_the_project_overlap_on_the_first_call(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """entry (this file) -> pipeline.run -> steps.draft_all -> leaf.ask, three modules
    imported from the user's own directory: 3 questions x 2 drafts in flight at once."""
    import importlib

    for name, source in [
        ("pipeline_tree", PIPELINE_MODULE.replace("import steps", "import steps_tree as steps")),
        ("steps_tree", STEPS_MODULE.replace("from leaf", "from leaf_tree")),
        ("leaf_tree", LEAF_MODULE),
    ]:
        (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    pipeline = importlib.import_module("pipeline_tree")
    leaf = importlib.import_module("leaf_tree")
    leaf.MODEL = Model(6)
    try:
        got = xcs.jit(pipeline.run)(["a", "b", "c"])
    finally:
        for name in ("pipeline_tree", "steps_tree", "leaf_tree"):
            sys.modules.pop(name, None)
    assert got == [[f"{q.upper()}-{i}" for i in range(2)] for q in "abc"]


# -- xcs.jit of a bound method -------------------------------------------------------------


class Tool:
    def run(self, xs: list[str]) -> list[str]:
        return [model(x) for x in xs]


def test_jit_of_a_bound_method_overlaps_on_the_first_call() -> None:
    """Findings F9 (fixed in 6fd9c93): it ran as written and warned."""
    global model
    model = Model(3)
    Tool.run.__dict__.pop(_rt.DISPATCH_KEY, None)
    assert xcs.jit(Tool().run)(["a", "b", "c"]) == ["A", "B", "C"]
