"""Operators that reduce candidates to one answer: ``MajorityVote``, ``Judge``,
``Synthesize``, ``BestOfN``, and the ``Verifier`` that scores one answer.

NOTE: [Unreadable model output]
A judge, a synthesizer or a verifier is a model, and a model may answer anything.
What each does when its answer cannot be read is a documented rule, chosen with
``on_unparsed``, never a crash deep inside a parser:

- ``Judge``: ``"vote"`` (default) picks the candidates' majority answer (the
  ``MajorityVote`` rule, earliest on a tie); ``"raise"`` raises ``ValidationError``.
- ``Synthesize`` (an empty answer): ``"vote"`` (default) or ``"raise"``, the same.
- ``Verifier``: ``"fail"`` (default) returns a failed ``Verification`` with score 0
  and ``parsed=False``; ``"raise"`` raises ``ValidationError``.

A fallback is never silent: it logs one WARNING on the ``xcs`` logger quoting the
answer, and a ``Verification`` says ``parsed=False``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import pydantic

from xcs._runtime._scheduler import ordered_map
from xcs.errors import ValidationError
from xcs.models._api import ModelBinding
from xcs.models._types import Response
from xcs.operators._base import Operator
from xcs.operators._compose import Ensemble, as_model, question_for, takes_keyword
from xcs.operators._parse import normalize_answer, parse_choice, parse_verdict
from xcs.operators._prompts import judge_prompt, synthesize_prompt, verify_prompt

__all__ = [
    "BestOfN",
    "Judge",
    "MajorityVote",
    "Synthesize",
    "Verification",
    "Verifier",
    "VerifierVerdict",
    "judge_choice_model",
]

logger = logging.getLogger("xcs")


def _require(candidates: Sequence[Any], operator: str) -> None:
    if not candidates:
        raise ValidationError(
            f"{operator}: input 'candidates': needs at least one candidate, got none",
            operator=operator,
            direction="input",
            field="candidates",
        )


def _check_choice(value: str, allowed: tuple[str, ...], operator: str) -> None:
    if value not in allowed:
        raise ValidationError(
            f"{operator}: on_unparsed must be one of {', '.join(map(repr, allowed))}, "
            f"got {value!r}",
            operator=operator,
        )


# ---------------------------------------------------------------------------
# MajorityVote


class MajorityVote(Operator):
    """The most common answer among the candidates.

    Answers are compared by a key, ``normalize`` (default ``normalize_answer``: case,
    whitespace, edge punctuation and number formats do not count). The winner is the
    key with the most votes; **on a tie, the key whose first occurrence comes
    earliest** in the candidates. The answer returned is that first occurrence,
    as given (a ``Response`` keeps its metadata).

    Args:
        normalize: the key function; must return hashable keys.

    Raises (from a call):
        ValidationError: no candidates, or a key that is not hashable.

    Example::

        MajorityVote()(["Paris", "paris.", "Lyon"])     # 'Paris'
        MajorityVote()(["a", "b"])                      # 'a': tie, earliest first
    """

    def __init__(self, normalize: Callable[[Any], Any] = normalize_answer) -> None:
        self.normalize = normalize

    def tally(self, candidates: Sequence[Any]) -> dict[Any, list[int]]:
        """Key -> the indices of the candidates with that key, keys in order of first
        occurrence.

        Raises:
            ValidationError: a key that is not hashable.
        """
        votes: dict[Any, list[int]] = {}
        for i, candidate in enumerate(candidates):
            key = self.normalize(candidate)
            try:
                votes.setdefault(key, []).append(i)
            except TypeError:
                raise ValidationError(
                    f"MajorityVote: candidate {i} has the unhashable key {key!r:.60}; "
                    "pass normalize= returning hashable keys",
                    operator="MajorityVote",
                    field=f"candidates[{i}]",
                ) from None
        return votes

    def forward(self, candidates: list[Any]) -> Any:
        _require(candidates, "MajorityVote")
        return candidates[majority_index(self.tally(candidates))]

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        return [] if self.normalize is normalize_answer else [("normalize", self.normalize)]


def majority_index(votes: dict[Any, list[int]]) -> int:
    """The index of the winning answer: most votes, earliest first occurrence on a tie
    (dicts keep insertion order, so the first maximum is the earliest)."""
    best = max(votes.values(), key=len)
    return best[0]


def _vote(candidates: Sequence[Any]) -> int:
    return majority_index(MajorityVote().tally(candidates))


# ---------------------------------------------------------------------------
# Judge and Synthesize


class Judge(Operator):
    """A model picks the best of the candidates; the candidate is returned as given.

    The model sees the question (given, or carried by ``Candidates``) and the
    numbered candidates, and is asked for the number of the best one. Its answer
    is read by ``parse_choice`` (``"2"``, ``"Answer 2"``, ``"[2]"``, ``"the second"``).
    An answer naming no candidate follows ``on_unparsed`` (NOTE: [Unreadable model
    output]). One candidate is returned without asking the model.

    Args:
        model: a model id, an ``xcs.models.bind(...)`` binding, or a callable
            ``prompt -> str``.
        criteria: what "best" means, put in the prompt.
        on_unparsed: ``"vote"`` (default) or ``"raise"``.
        structured: ask for a typed verdict instead of text: the model is called
            with ``response_model=`` a ``JudgeChoice`` (``choice`` from 1 to N,
            ``reason``), so the provider constrains the reply and the model layer
            retries one that does not validate. The model must take
            ``response_model=`` (a model id or binding does).

    Raises (from a call):
        ValidationError: no candidates, a candidate that is not a string, or (with
            ``on_unparsed="raise"``) an answer naming no candidate (attribute
            ``answer``).
    """

    def __init__(
        self,
        model: Any,
        *,
        criteria: str = "correctness and helpfulness",
        on_unparsed: Literal["vote", "raise"] = "vote",
        structured: bool = False,
    ) -> None:
        _check_choice(on_unparsed, ("vote", "raise"), "Judge")
        self.model = as_model(model, "Judge")
        self.criteria = criteria
        self.on_unparsed = on_unparsed
        self.structured = _check_structured(structured, self.model, "Judge")

    def choose(self, candidates: Sequence[str], question: str | None = None) -> int:
        """The index of the chosen candidate (the model's, or the fallback's).

        Raises:
            ValidationError: as for a call.
        """
        _require(candidates, "Judge")
        if len(candidates) == 1:
            return 0
        q = question_for(candidates, question)
        prompt = judge_prompt(candidates, q, self.criteria)
        if self.structured:
            typed = _typed_reply(self.model, prompt, judge_choice_model(len(candidates)))
            if not isinstance(typed, str):
                return int(typed.choice) - 1
            answer = typed
        else:
            answer = str(self.model(prompt))
        index = parse_choice(answer, len(candidates))
        if index is not None:
            return index
        if self.on_unparsed == "raise":
            raise ValidationError(
                f"Judge: the model's answer {answer!r:.80} names none of the "
                f"{len(candidates)} candidates",
                operator="Judge",
                direction="output",
                field="verdict",
                answer=answer,
            )
        logger.warning(
            "xcs.operators.Judge: could not read a choice from the model's answer %.80r; "
            "falling back to the majority answer",
            answer,
        )
        return _vote(candidates)

    def forward(self, candidates: list[str], question: str | None = None) -> str:
        return candidates[self.choose(candidates, question)]

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        fields: list[tuple[str | None, Any]] = [(None, self.model)]
        if self.on_unparsed != "vote":
            fields.append(("on_unparsed", self.on_unparsed))
        if self.structured:
            fields.append(("structured", True))
        return fields


# ---------------------------------------------------------------------------
# Typed verdicts (structured=True)


class VerifierVerdict(pydantic.BaseModel):
    """A verifier's verdict, as the model is asked to write it (``structured=True``)."""

    passed: bool
    score: int = pydantic.Field(ge=0, le=10, description="0 to 10")
    reason: str = pydantic.Field(description="one short sentence")


@functools.lru_cache(maxsize=64)
def judge_choice_model(n: int) -> type[pydantic.BaseModel]:
    """``JudgeChoice``: the number of the best of ``n`` candidates, and why."""
    return pydantic.create_model(
        "JudgeChoice",
        __doc__="The best candidate's number, and why.",
        choice=(int, pydantic.Field(ge=1, le=n, description=f"1 to {n}")),
        reason=(str, pydantic.Field(description="one short sentence")),
    )


def _check_structured(structured: Any, model: Any, operator: str) -> bool:
    if not isinstance(structured, bool):
        raise ValidationError(
            f"{operator}: structured must be True or False, got {structured!r}",
            operator=operator,
        )
    if structured and not (
        isinstance(model, ModelBinding) or takes_keyword(model, "response_model")
    ):
        raise ValidationError(
            f"{operator}: structured=True needs a model that takes response_model= "
            "(a model id or an xcs.models.bind(...) binding)",
            operator=operator,
        )
    return structured


def _typed_reply(model: Any, prompt: str, output: type[pydantic.BaseModel]) -> Any:
    """The model's typed verdict; or, when its last reply did not validate, that
    reply's text (then read as text, and ``on_unparsed`` applies)."""
    try:
        return model(prompt, response_model=output)
    except ValidationError as exc:
        reply = getattr(exc, "reply", None)
        if not isinstance(reply, str):
            raise  # a bad parameter, not a bad reply
        logger.warning("xcs.operators: the model's typed verdict did not validate: %s", exc)
        return reply


_LABEL_PREFIXES = ("final answer:", "answer:", "final:")


class Synthesize(Operator):
    """A model writes one answer from the candidates (combining their best points).

    The answer is the model's reply, stripped, with a leading ``Answer:`` /
    ``Final answer:`` label removed (a ``Response`` with the call's metadata). An
    empty reply follows ``on_unparsed`` (NOTE: [Unreadable model output]).

    Args:
        model: a model id, a binding, or a callable ``prompt -> str``.
        instructions: what to do with the drafts, put in the prompt.
        on_unparsed: ``"vote"`` (default) or ``"raise"``.

    Raises (from a call):
        ValidationError: no candidates, a candidate that is not a string, or (with
            ``on_unparsed="raise"``) an empty reply.
    """

    def __init__(
        self,
        model: Any,
        *,
        instructions: str = "Write one answer that combines the best points of the drafts "
        "and corrects their mistakes.",
        on_unparsed: Literal["vote", "raise"] = "vote",
    ) -> None:
        _check_choice(on_unparsed, ("vote", "raise"), "Synthesize")
        self.model = as_model(model, "Synthesize")
        self.instructions = instructions
        self.on_unparsed = on_unparsed

    def forward(self, candidates: list[str], question: str | None = None) -> str:
        _require(candidates, "Synthesize")
        q = question_for(candidates, question)
        reply = self.model(synthesize_prompt(candidates, q, self.instructions))
        text = str(reply).strip()
        for prefix in _LABEL_PREFIXES:
            if text.casefold().startswith(prefix):
                text = text[len(prefix) :].strip()
                break
        if text:
            if text == str(reply):
                return reply  # type: ignore[no-any-return]
            if isinstance(reply, Response):
                return Response(text, **reply._fields())
            return text
        if self.on_unparsed == "raise":
            raise ValidationError(
                "Synthesize: the model's answer is empty",
                operator="Synthesize",
                direction="output",
                field="answer",
                answer=str(reply),
            )
        logger.warning(
            "xcs.operators.Synthesize: the model's answer %.80r is empty; "
            "falling back to the majority answer",
            str(reply),
        )
        return candidates[_vote(candidates)]

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        fields: list[tuple[str | None, Any]] = [(None, self.model)]
        if self.on_unparsed != "vote":
            fields.append(("on_unparsed", self.on_unparsed))
        return fields


# ---------------------------------------------------------------------------
# Verifier


class Verification(pydantic.BaseModel):
    """A verifier's verdict on one answer."""

    model_config = pydantic.ConfigDict(frozen=True)

    passed: bool
    score: float = pydantic.Field(ge=0.0, le=1.0)  # N/10 from the model, else 1 or 0
    reason: str = ""
    parsed: bool = True  # False: the model's answer was unreadable (on_unparsed="fail")


class Verifier(Operator):
    """A model checks one answer: ``verifier(candidate, question=None) -> Verification``.

    The model is asked for PASS or FAIL, a score ``N/10`` and a reason; its answer is
    read by ``parse_verdict`` (the earliest verdict word: pass/fail, yes/no,
    correct/incorrect, ...). Without a readable score the score is 1.0 for a pass and
    0.0 for a fail. An answer with no verdict word follows ``on_unparsed``
    (NOTE: [Unreadable model output]). ``output_model`` is declared: ``Verification``.

    Args:
        model: a model id, a binding, or a callable ``prompt -> str``.
        criteria: what the answer must be, put in the prompt.
        on_unparsed: ``"fail"`` (default) or ``"raise"``.
        structured: ask for a typed verdict (``response_model=VerifierVerdict``:
            ``passed``, ``score`` 0 to 10, ``reason``) instead of reading text.

    Raises (from a call):
        ValidationError: a candidate that is not a string, or (with
            ``on_unparsed="raise"``) an answer with no verdict.
    """

    output_model = Verification

    def __init__(
        self,
        model: Any,
        *,
        criteria: str = "correct and complete",
        on_unparsed: Literal["fail", "raise"] = "fail",
        structured: bool = False,
    ) -> None:
        _check_choice(on_unparsed, ("fail", "raise"), "Verifier")
        self.model = as_model(model, "Verifier")
        self.criteria = criteria
        self.on_unparsed = on_unparsed
        self.structured = _check_structured(structured, self.model, "Verifier")

    def forward(self, candidate: str, question: str | None = None) -> Verification:
        prompt = verify_prompt(candidate, question, self.criteria)
        if self.structured:
            typed = _typed_reply(self.model, prompt, VerifierVerdict)
            if not isinstance(typed, str):
                return Verification(
                    passed=typed.passed, score=typed.score / 10, reason=typed.reason[:300]
                )
            answer = typed
        else:
            answer = str(self.model(prompt))
        verdict = parse_verdict(answer)
        if verdict is None:
            if self.on_unparsed == "raise":
                raise ValidationError(
                    f"Verifier: the model's answer {answer!r:.80} holds no verdict (PASS or FAIL)",
                    operator="Verifier",
                    direction="output",
                    field="verdict",
                    answer=answer,
                )
            logger.warning(
                "xcs.operators.Verifier: no verdict in the model's answer %.80r; counted as failed",
                answer,
            )
            return Verification(
                passed=False, score=0.0, reason=f"unreadable verdict: {answer[:200]}", parsed=False
            )
        passed, score = verdict
        if score is None:
            score = 1.0 if passed else 0.0
        return Verification(passed=passed, score=score, reason=answer.strip()[:300])

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        fields: list[tuple[str | None, Any]] = [(None, self.model)]
        if self.on_unparsed != "fail":
            fields.append(("on_unparsed", self.on_unparsed))
        if self.structured:
            fields.append(("structured", True))
        return fields


# ---------------------------------------------------------------------------
# BestOfN


class BestOfN(Operator):
    """Sample a generator ``n`` times (concurrently, ``sample=0..n-1``) and keep the
    best answer, chosen by a ``judge`` or ranked by a ``scorer``.

    - ``judge``: a ``Judge`` (or any callable ``candidates -> answer``) gets the
      ``Candidates``.
    - ``scorer``: a ``Verifier`` or any callable ``candidate -> score``, called on
      every candidate concurrently (with ``question=`` when it takes that keyword). A
      score is a number, a bool, or a ``Verification`` (passed first, then score).
      The highest score wins; on a tie, the earliest candidate.

    Args:
        generator: an operator, binding or callable taking ``sample=`` (see
            ``Ensemble``).
        n: how many samples.
        judge / scorer: exactly one of them.

    Raises:
        ValidationError: not exactly one of judge and scorer, a bad ``n``, or (from a
            call) a score that is not a number, a bool or a ``Verification``.
    """

    def __init__(
        self,
        generator: Any,
        n: int,
        *,
        judge: Callable[..., Any] | None = None,
        scorer: Callable[..., Any] | None = None,
    ) -> None:
        if (judge is None) == (scorer is None):
            raise ValidationError(
                "BestOfN needs exactly one of judge= (picks one) or scorer= (scores each)",
                operator="BestOfN",
            )
        chooser = judge if judge is not None else scorer
        if not callable(chooser):
            raise ValidationError(
                f"BestOfN: {'judge' if judge is not None else 'scorer'} must be callable, "
                f"got {type(chooser).__name__}",
                operator="BestOfN",
            )
        self.samples = Ensemble(generator, n=n)
        self.judge = judge
        self.scorer = scorer

    @property
    def n(self) -> int:
        return self.samples.n or 1

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        candidates = self.samples(*args, **kwargs)
        if self.judge is not None:
            return self.judge(candidates)
        scorer = self.scorer
        assert scorer is not None
        question = candidates.question
        with_question = question is not None and takes_keyword(scorer, "question")

        def score(item: tuple[int, Any]) -> tuple[float, float]:
            i, candidate = item
            value = scorer(candidate, question=question) if with_question else scorer(candidate)
            return _score_key(value, i)

        keys = ordered_map(score, list(enumerate(candidates)), name="BestOfN")
        best = 0
        for i, key in enumerate(keys):
            if key > keys[best]:
                best = i
        return candidates[best]

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        member = self.samples.members[0]
        chooser = ("judge", self.judge) if self.judge is not None else ("scorer", self.scorer)
        return [(None, member), ("n", self.n), chooser]


def _score_key(value: Any, index: int) -> tuple[float, float]:
    if isinstance(value, Verification):
        return (1.0 if value.passed else 0.0, value.score)
    if isinstance(value, bool):
        return (0.0, 1.0 if value else 0.0)
    if isinstance(value, int | float) and not math.isnan(value):
        return (0.0, float(value))
    raise ValidationError(
        f"BestOfN: the scorer returned {value!r:.60} for candidate {index}; a score must "
        "be a number, a bool or a Verification",
        operator="BestOfN",
        field=f"scores[{index}]",
    )
