"""MajorityVote, Judge, Synthesize, Verifier, BestOfN, Router, Chain: prompts sent,
answers read, and the documented rule for answers that cannot be read."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import xcs
from xcs.models import MockProvider, Request
from xcs.operators import (
    BestOfN,
    Candidates,
    Chain,
    Ensemble,
    Judge,
    MajorityVote,
    Router,
    Synthesize,
    Verification,
    Verifier,
    normalize_answer,
    parse_choice,
    parse_label,
    parse_verdict,
)


def scripted(reply: Callable[[str], str]) -> tuple[Any, list[str]]:
    """A model binding whose answers are reply(prompt); the prompts are kept."""
    prompts: list[str] = []

    def handler(request: Request) -> str:
        prompt = request.messages[-1].content
        prompts.append(prompt)
        return reply(prompt)

    xcs.models.register_provider("script", MockProvider(handler))
    return xcs.models.bind("script:m", temperature=0), prompts


# -- MajorityVote -----------------------------------------------------------------


def test_majority_vote_normalises_answers() -> None:
    vote = MajorityVote()
    assert vote(["Paris", "  paris. ", "Lyon", "PARIS!"]) == "Paris"
    assert vote(["4", "four", "4.0", "four", "+4"]) == "4"
    assert vote(["**B**", "a", "b"]) == "**B**"


def test_majority_vote_tie_goes_to_the_earliest_first_occurrence() -> None:
    assert MajorityVote()(["b", "a", "a", "b", "c"]) == "b"
    assert MajorityVote()(["x", "y"]) == "x"


def test_majority_vote_returns_the_candidate_as_given() -> None:
    out = Ensemble("sim:echo", "sim:echo")("Same")
    winner = MajorityVote()(out)
    assert winner is out[0]
    assert winner.model == "sim:echo"


@given(st.lists(st.sampled_from(["a", "A", "b", " b.", "c", "1", "1.0", "01"]), min_size=1))
def test_majority_vote_matches_a_reference(candidates: list[str]) -> None:
    keys = [normalize_answer(c) for c in candidates]
    counts = {k: keys.count(k) for k in keys}
    best = max(counts.values())
    winner_key = next(k for k in keys if counts[k] == best)  # earliest first occurrence
    assert MajorityVote()(candidates) is candidates[keys.index(winner_key)]


def test_majority_vote_errors() -> None:
    with pytest.raises(xcs.ValidationError, match="MajorityVote: input 'candidates'"):
        MajorityVote()([])
    with pytest.raises(xcs.ValidationError, match="unhashable key"):
        MajorityVote()([[1], [1]])
    assert MajorityVote(normalize=tuple)([[1], [2], [1]]) == [1]


# -- parsers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("2", 3, 1),
        ("Answer 3 is best.", 3, 2),
        ("The best answer is [1] because", 3, 0),
        ("**2**", 3, 1),
        ("#3", 3, 2),
        ("I prefer the second one.", 3, 1),
        ("Candidate 7 and answer 2", 3, 1),  # out of range labels are skipped
        ("Answer 2.5", 3, 1),
        ("none of them", 3, None),
        ("", 3, None),
        ("42", 3, None),
    ],
)
def test_parse_choice(text: str, n: int, expected: int | None) -> None:
    assert parse_choice(text, n) == expected


def test_parse_label_and_verdict() -> None:
    labels = ["math", "code", "math proof"]
    assert parse_label("CODE", labels) == "code"
    assert parse_label("This needs a math proof.", labels) == "math proof"
    assert parse_label("mathematics", labels) is None
    assert parse_verdict("FAIL - 3/10 wrong year") == (False, 0.3)
    assert parse_verdict("Yes, score: 9") == (True, 0.9)
    assert parse_verdict("PASS 11/10") == (True, None)
    assert parse_verdict("maybe") is None


# -- Judge ------------------------------------------------------------------------


def test_judge_sends_a_clear_prompt_and_returns_the_chosen_candidate() -> None:
    model, prompts = scripted(lambda p: "Answer 2")
    judge = Judge(model, criteria="accuracy")
    out = judge(["Lyon", "Paris", "Nice"], question="Capital of France?")
    assert out == "Paris"
    assert prompts == [
        "Question: Capital of France?\n\n"
        "Here are 3 candidate answers:\n\n[1] Lyon\n\n[2] Paris\n\n[3] Nice\n\n"
        "Which answer is best for accuracy? "
        "Reply with the number of the best answer (1 to 3) and nothing else."
    ]


def test_judge_reads_the_question_from_candidates() -> None:
    model, prompts = scripted(lambda p: "1")
    Judge(model)(Candidates(["a", "b"], question="Why?"))
    assert prompts[0].startswith("Question: Why?\n\n")


def test_judge_with_one_candidate_does_not_call_the_model() -> None:
    model, prompts = scripted(lambda p: "1")
    assert Judge(model)(["only"]) == "only"
    assert prompts == []


def test_judge_garbage_falls_back_to_the_majority_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model, _ = scripted(lambda p: "I cannot decide, they are all lovely")
    with caplog.at_level(logging.WARNING, logger="xcs"):
        out = Judge(model)(["x", "y", "Y", "z"])
    assert out == "y"  # 'y' and 'Y' are one answer with two votes
    assert "could not read a choice" in caplog.text
    assert "I cannot decide" in caplog.text


def test_judge_garbage_raises_when_asked() -> None:
    model, _ = scripted(lambda p: "no idea")
    with pytest.raises(xcs.ValidationError) as info:
        Judge(model, on_unparsed="raise")(["x", "y"])
    assert str(info.value) == "Judge: the model's answer 'no idea' names none of the 2 candidates"
    assert info.value.answer == "no idea"


def test_judge_input_errors() -> None:
    judge = Judge(lambda prompt: "1")
    with pytest.raises(xcs.ValidationError, match=r"Judge: input 'candidates\[1\]': Input should"):
        judge(["a", 3])
    with pytest.raises(xcs.ValidationError, match="needs at least one candidate"):
        judge([])
    with pytest.raises(xcs.ValidationError, match="on_unparsed must be one of"):
        Judge("sim:echo", on_unparsed="ignore")  # type: ignore[arg-type]
    with pytest.raises(xcs.ValidationError, match="unknown model provider"):
        Judge("nope:model")


# -- Synthesize -------------------------------------------------------------------


def test_synthesize_returns_the_models_answer_without_a_label() -> None:
    model, prompts = scripted(lambda p: "Final answer: Paris, on the Seine.")
    out = Synthesize(model)(Candidates(["Paris", "paris!"], question="Capital?"))
    assert out == "Paris, on the Seine."
    assert out.model == "script:m"  # still a Response
    assert prompts[0].startswith("Question: Capital?\n\nHere are 2 draft answers:\n\n[1] Paris")
    assert prompts[0].endswith("Reply with the final answer only.")


def test_synthesize_empty_answer_rule(caplog: pytest.LogCaptureFixture) -> None:
    model, _ = scripted(lambda p: "   ")
    with caplog.at_level(logging.WARNING, logger="xcs"):
        assert Synthesize(model)(["b", "a", "a"]) == "a"
    assert "is empty" in caplog.text
    with pytest.raises(xcs.ValidationError, match="Synthesize: the model's answer is empty"):
        Synthesize(model, on_unparsed="raise")(["b"])


# -- Verifier ---------------------------------------------------------------------


def test_verifier_reads_verdict_and_score() -> None:
    model, prompts = scripted(lambda p: "PASS. 8/10. Correct and short.")
    v = Verifier(model)("Paris", question="Capital of France?")
    assert v == Verification(passed=True, score=0.8, reason="PASS. 8/10. Correct and short.")
    assert "Answer to check:\nParis" in prompts[0]
    assert "Reply with PASS or FAIL" in prompts[0]


def test_verifier_without_a_score_and_with_garbage(caplog: pytest.LogCaptureFixture) -> None:
    model, _ = scripted(lambda p: "incorrect")
    assert Verifier(model)("x") == Verification(passed=False, score=0.0, reason="incorrect")
    garbage, _ = scripted(lambda p: "hmm")
    with caplog.at_level(logging.WARNING, logger="xcs"):
        v = Verifier(garbage)("x")
    assert (v.passed, v.score, v.parsed) == (False, 0.0, False)
    assert "counted as failed" in caplog.text
    with pytest.raises(xcs.ValidationError, match="holds no verdict"):
        Verifier(garbage, on_unparsed="raise")("x")


# -- BestOfN ----------------------------------------------------------------------


def test_best_of_n_with_a_scorer_runs_scores_concurrently() -> None:
    n = 4
    barrier = threading.Barrier(n, timeout=30)
    generator = xcs.models.bind("sim:chat", temperature=0.9, max_tokens=5)

    def scorer(candidate: str, question: str | None = None) -> float:
        barrier.wait()  # all n scores in flight at once
        assert question == "q"
        return float(len(candidate))

    best = BestOfN(generator, n, scorer=scorer)("q")
    samples = Ensemble(generator, n=n)("q")
    assert best == max(samples, key=len)
    assert best is not None


def test_best_of_n_ties_go_to_the_earliest_and_verifications_rank_passed_first() -> None:
    generator = xcs.models.bind("sim:chat", temperature=0.9, max_tokens=5)
    samples = Ensemble(generator, n=3)("q")
    assert BestOfN(generator, 3, scorer=lambda c: 1)("q") == samples[0]
    verdicts = {samples[0]: (False, 1.0), samples[1]: (True, 0.2), samples[2]: (True, 0.6)}

    def verify(c: str) -> Verification:
        passed, score = verdicts[c]
        return Verification(passed=passed, score=score)

    assert BestOfN(generator, 3, scorer=verify)("q") == samples[2]


def test_best_of_n_with_a_judge_and_a_verifier() -> None:
    judge_model, prompts = scripted(lambda p: "3")
    generator = xcs.models.bind("sim:chat", temperature=0.9, max_tokens=5)
    samples = Ensemble(generator, n=3)("q")
    assert BestOfN(generator, 3, judge=Judge(judge_model))("q") == samples[2]
    assert prompts[0].startswith("Question: q\n\n")
    verifier_model, _ = scripted(lambda p: "PASS 9/10" if samples[1] in p else "FAIL 9/10")
    assert BestOfN(generator, 3, scorer=Verifier(verifier_model))("q") == samples[1]


def test_best_of_n_errors() -> None:
    generator = xcs.models.bind("sim:chat", temperature=0.9)
    with pytest.raises(xcs.ValidationError, match="exactly one of judge"):
        BestOfN(generator, 3)
    with pytest.raises(xcs.ValidationError, match="the scorer returned 'good' for candidate 0"):
        BestOfN(generator, 2, scorer=lambda c: "good")("q")


# -- Router and Chain -------------------------------------------------------------


def test_router_asks_the_model_and_takes_the_branch() -> None:
    model, prompts = scripted(lambda p: "Category: Math.")
    router = Router(model, {"math": lambda q: f"M:{q}", "code": lambda q: f"C:{q}"})
    assert router("2+2?") == "M:2+2?"
    assert prompts == [
        "Classify this input into exactly one of these categories: math, code.\n\n"
        "Input:\n2+2?\n\nReply with the category name only."
    ]


def test_router_unreadable_label_default_or_error() -> None:
    model, _ = scripted(lambda p: "poetry")
    routes = {"math": str.upper, "code": str.lower}
    assert Router(model, routes, default="code")("AbC") == "abc"
    with pytest.raises(xcs.ValidationError) as info:
        Router(model, routes)("AbC")
    assert str(info.value) == (
        "Router: the classifier answered 'poetry', which names none of the routes "
        "(math, code); give Router a default= route"
    )
    with pytest.raises(xcs.ValidationError, match="default 'x' is not one of the routes"):
        Router(model, routes, default="x")


def test_router_with_a_classify_function() -> None:
    router = Router(
        classify=lambda x: "big" if x > 10 else "small",
        routes={"big": lambda x: x * 2, "small": lambda x: -x},
    )
    assert (router(11), router(3)) == (22, -3)


def test_chain_threads_outputs() -> None:
    chain = Chain(Ensemble("sim:echo", "sim:echo"), MajorityVote(), str.upper)
    assert chain("hi there") == "HI THERE"
    with pytest.raises(xcs.ValidationError, match="Chain needs at least one step"):
        Chain()
    with pytest.raises(xcs.ValidationError, match="step 1 is not callable"):
        Chain(str, 3)


# ---------------------------------------------------------------------------
# Typed verdicts: structured=True


def test_structured_judge_and_verifier_ask_for_typed_verdicts() -> None:
    import json as _json

    from xcs.models import MockProvider, models
    from xcs.operators import Judge, Verifier

    seen: list[object] = []

    def handler(request: xcs.models.Request) -> str:
        seen.append(request.output)
        assert request.output is not None
        name = request.output.model.__name__
        if name == "JudgeChoice":
            return _json.dumps({"choice": 2, "reason": "it is right"})
        return _json.dumps({"passed": False, "score": 3, "reason": "wrong city"})

    models.register_provider("mock", MockProvider(handler))
    judge = Judge("mock:j", structured=True)
    assert judge(["Lyon", "Paris", "Nice"], question="Capital of France?") == "Paris"
    schema = seen[0].schema  # type: ignore[attr-defined]
    assert schema["properties"]["choice"]["maximum"] == 3
    verdict = Verifier("mock:v", structured=True)("Lyon", question="Capital of France?")
    assert verdict == xcs.operators.Verification(passed=False, score=0.3, reason="wrong city")
    assert "structured=True" in repr(judge)


def test_a_structured_judge_falls_back_when_the_reply_never_validates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from xcs.models import MockProvider, models
    from xcs.operators import Judge

    models.register_provider("mock", MockProvider(lambda request: '{"choice": 9}'))
    models.configure("mock", backoff_base=0.0)
    judge = Judge(xcs.models.bind("mock:j", max_attempts=2), structured=True)
    assert judge(["a", "b", "a"]) == "a"  # the majority rule, as for an unreadable reply
    assert "did not validate" in caplog.text
    with pytest.raises(xcs.ValidationError, match="names none"):
        Judge(xcs.models.bind("mock:j", max_attempts=1), structured=True, on_unparsed="raise")(
            ["a", "b"]
        )
    with pytest.raises(xcs.ValidationError, match="response_model"):
        Judge(lambda prompt: "1", structured=True)
