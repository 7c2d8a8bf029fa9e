"""Specs: declared or inferred, checked at each call, errors that name the field."""

from __future__ import annotations

import pydantic
import pytest
from _operator_defs import Answer, Count, Grade, Graded, Question, broken, shout
from hypothesis import given
from hypothesis import strategies as st

import xcs
from xcs.models import Response
from xcs.operators import Operator


def _error(fn, *args, **kwargs) -> xcs.ValidationError:  # type: ignore[no-untyped-def]
    with pytest.raises(xcs.ValidationError) as info:
        fn(*args, **kwargs)
    assert not isinstance(info.value, pydantic.ValidationError)
    # No pydantic exception in the chain that a traceback would show.
    err = info.value
    assert err.__cause__ is None
    assert err.__context__ is None or err.__suppress_context__
    return info.value


# -- the messages shown in docs/operators.md -------------------------------------


def test_wrong_type_names_operator_and_field() -> None:
    answer = Answer(xcs.models.bind("sim:echo"))
    err = _error(answer, 42)
    assert str(err) == "Answer: input 'question': Input should be a valid string (got 42)"
    assert (err.operator, err.direction, err.field) == ("Answer", "input", "question")


def test_missing_field() -> None:
    err = _error(Answer(xcs.models.bind("sim:echo")))
    assert str(err) == "Answer: input 'question': Field required"
    assert err.field == "question"


def test_unexpected_argument() -> None:
    err = _error(Answer(xcs.models.bind("sim:echo")), "q", questoin="x")
    assert str(err) == (
        "Answer: input 'questoin': unexpected argument; "
        "forward takes (question: str, sample: int = 0)"
    )


def test_too_many_positional_arguments() -> None:
    err = _error(shout, "a", 2, 3)
    assert str(err).startswith("shout: input: 3 positional arguments, at most 2;")
    assert err.field is None


def test_bad_output_from_an_inferred_spec() -> None:
    err = _error(broken, 1)
    assert str(err) == "broken: output: Input should be a valid string (got None)"
    assert (err.direction, err.field) == ("output", None)


def test_bad_output_of_a_declared_model_names_the_field() -> None:
    err = _error(Grade(), "the sea")
    assert str(err) == (
        "Grade: output 'score': Input should be a valid number, unable to parse string "
        "as a number (got 'high')"
    )
    assert err.field == "score"


def test_nested_fields_and_several_errors() -> None:
    err = _error(Count(), [1, "x", 3], scale="big")
    assert str(err) == (
        "Count: input 'items[1]': Input should be a valid integer, unable to parse string "
        "as an integer (got 'x') (and 1 more: 'scale')"
    )
    assert [field for field, _ in err.errors] == ["items[1]", "scale"]


def test_function_operator_messages() -> None:
    err = _error(shout, ["hi"])
    assert str(err) == "shout: input 'text': Input should be a valid string (got ['hi'])"


# -- values ----------------------------------------------------------------------


def test_values_that_pass_unchanged_keep_their_identity() -> None:
    seen = []

    @xcs.op
    def keep(texts: list[str], first: str) -> list[str]:
        seen.append((texts, first))
        return texts

    response = Response("hi", model="sim:echo")
    texts = [response]
    out = keep(texts, response)
    assert seen[0][0] is texts
    assert seen[0][1] is response
    assert out is texts
    assert out[0].model == "sim:echo"


def test_values_pydantic_converts_arrive_converted() -> None:
    assert Count()(["1", 2], scale="2") == 6.0
    assert shout("a", times="3") == "AAA"


def test_declared_input_model_and_an_instance_of_it() -> None:
    grade = Grade()
    out = grade("why is the sky blue?")
    assert isinstance(out, Graded)
    assert out.score == 1.0
    assert grade(Question(question="q", context="c")) == Graded(answer="q|c", score=0.5)
    assert grade(question="q", context="c").answer == "q|c"
    err = _error(grade, question=3)
    assert err.field == "question"


def test_declared_input_model_must_fit_forward() -> None:
    with pytest.raises(xcs.ValidationError, match="has fields that forward does not take: context"):

        class Bad(Operator):
            input_model = Question

            def forward(self, question: str) -> str:
                return question

    with pytest.raises(xcs.ValidationError, match="output_model must be a pydantic BaseModel"):

        class Worse(Operator):
            output_model = dict  # type: ignore[assignment]

            def forward(self, x: str) -> str:
                return x


def test_untyped_forward_checks_only_the_arguments() -> None:
    class Loose(Operator):
        def forward(self, a, b=2):  # type: ignore[no-untyped-def]
            return (a, b)

    loose = Loose()
    assert loose.spec().input_model is None
    assert loose.spec().output_model is None
    assert loose([1], b="x") == ([1], "x")
    assert loose(a=1) == (1, 2)
    assert str(_error(loose)) == "Loose: input 'a': Field required"


def test_var_arguments_are_checked_when_annotated() -> None:
    @xcs.op
    def total(*values: int, **weights: float) -> float:
        return sum(values) + sum(weights.values())

    assert total(1, 2, w=0.5) == 3.5
    assert _error(total, 1, "x").field == "values[1]"
    assert _error(total, 1, w="heavy").field == "weights.w"


def test_unresolvable_hints_are_a_clear_error() -> None:
    class Later(Operator):
        def forward(self, x: NotDefinedAnywhere) -> str:  # type: ignore[name-defined]  # noqa: F821
            return "x"

    err = _error(Later(), 1)
    assert "cannot resolve the type hints of" in str(err)
    assert "NotDefinedAnywhere" in str(err)


def test_forward_errors_pass_through_unchanged() -> None:
    class Fails(Operator):
        def forward(self, x: int) -> int:
            raise KeyError(x)

    with pytest.raises(KeyError) as info:
        Fails()(3)
    assert info.value.args == (3,)


def test_operator_without_forward() -> None:
    class Empty(Operator):
        pass

    with pytest.raises(NotImplementedError, match="Empty must define forward"):
        Empty()()


def test_spec_is_exposed() -> None:
    spec = Count().spec()
    assert spec.input_model is not None
    assert set(spec.input_model.model_fields) == {"items", "scale"}
    assert spec.output_model is not None
    assert spec.declared == frozenset()
    assert Grade().spec().declared == {"input", "output"}
    assert Grade().spec().input_model is Question


def test_validation_error_pickles_with_its_context() -> None:
    import pickle

    err = _error(Answer(xcs.models.bind("sim:echo")), 42)
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err)
    assert back.field == "question"
    assert back.operator == "Answer"


def test_the_messages_in_the_docs_are_the_real_ones() -> None:
    import pathlib

    docs = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "operators.md").read_text()
    answer = Answer(xcs.models.bind("sim:echo"))
    calls = [
        (answer, (42,), {}),
        (answer, (), {}),
        (answer, ("q",), {"questoin": "x"}),
        (Count(), ([1, "x", 3],), {"scale": "big"}),
        (broken, (1,), {}),
        (Grade(), ("the sea",), {}),
        (shout, (["hi"],), {}),
    ]
    for op, args, kwargs in calls:
        message = str(_error(op, *args, **kwargs))
        flat = " ".join(docs.split())
        assert message in flat, message


def _plain(a, /, b, *rest, c=0, **kw):  # type: ignore[no-untyped-def]
    return (a, b, rest, c, kw)


class _Typed(Operator):
    def forward(self, a: int, /, b: int, *rest: int, c: int = 0, **kw: int) -> tuple:  # type: ignore[type-arg]
        return (a, b, rest, c, kw)


class _Untyped(Operator):
    def forward(self, a, /, b, *rest, c=0, **kw):  # type: ignore[no-untyped-def]
        return (a, b, rest, c, kw)


@given(
    args=st.lists(st.integers(0, 9), max_size=4),
    kwargs=st.dictionaries(st.sampled_from(["a", "b", "c", "d", "rest", "kw"]), st.integers(0, 9)),
)
def test_binding_matches_python(args: list[int], kwargs: dict[str, int]) -> None:
    try:
        expected = _plain(*args, **kwargs)
    except TypeError:
        expected = None
    for op in (_Typed(), _Untyped()):
        if expected is None:
            with pytest.raises(xcs.ValidationError, match=r"^_(Typed|Untyped): input"):
                op(*args, **kwargs)
        else:
            assert op(*args, **kwargs) == expected
