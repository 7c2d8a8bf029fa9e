"""Operators and models defined at module level, so that they pickle."""

from __future__ import annotations

import pydantic

import xcs
from xcs.models import ModelBinding


class Question(pydantic.BaseModel):
    question: str
    context: str = ""


class Graded(pydantic.BaseModel):
    answer: str
    score: float = pydantic.Field(ge=0, le=1)


class Answer(xcs.Operator):
    """Answers with a model; takes ``sample`` so an Ensemble can sample it."""

    def __init__(self, model: ModelBinding) -> None:
        self.model = model

    def forward(self, question: str, sample: int = 0) -> str:
        return self.model(f"Answer briefly: {question}", sample=sample)


class Grade(xcs.Operator):
    """Declared specs: input fields are forward's parameters; output is a model."""

    input_model = Question
    output_model = Graded

    def forward(self, question: str, context: str = "") -> dict[str, object]:
        score = 1.0 if "sky" in question else 0.5 if context else "high"
        return {"answer": f"{question}|{context}", "score": score}


class Count(xcs.Operator):
    """Typed arithmetic: input and output from the hints."""

    def forward(self, items: list[int], scale: float = 1.0) -> float:
        return sum(items) * scale


@xcs.op
def shout(text: str, times: int = 1) -> str:
    return text.upper() * times


@xcs.op
def broken(x: int) -> str:
    return None  # type: ignore[return-value]
