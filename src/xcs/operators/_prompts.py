"""The prompts the built-in operators send. Short, explicit about the reply format
(the parsers in ``_parse`` read it), and shown in ``docs/operators.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["judge_prompt", "route_prompt", "synthesize_prompt", "verify_prompt"]


def _numbered(candidates: Sequence[Any]) -> str:
    return "\n\n".join(f"[{i}] {str(c).strip()}" for i, c in enumerate(candidates, 1))


def _question(question: str | None) -> str:
    return f"Question: {question.strip()}\n\n" if question else ""


def judge_prompt(candidates: Sequence[Any], question: str | None, criteria: str) -> str:
    return (
        f"{_question(question)}"
        f"Here are {len(candidates)} candidate answers:\n\n{_numbered(candidates)}\n\n"
        f"Which answer is best for {criteria}? "
        f"Reply with the number of the best answer (1 to {len(candidates)}) and nothing else."
    )


def synthesize_prompt(candidates: Sequence[Any], question: str | None, instructions: str) -> str:
    return (
        f"{_question(question)}"
        f"Here are {len(candidates)} draft answers:\n\n{_numbered(candidates)}\n\n"
        f"{instructions} Reply with the final answer only."
    )


def verify_prompt(candidate: Any, question: str | None, criteria: str) -> str:
    return (
        f"{_question(question)}Answer to check:\n{str(candidate).strip()}\n\n"
        f"Is this answer {criteria}? Reply with PASS or FAIL, then a score from 0 to 10 "
        "written as N/10, then one short sentence of reason."
    )


def route_prompt(labels: Sequence[str], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    parts = [str(a) for a in args] + [f"{k}: {v}" for k, v in kwargs.items()]
    text = "\n".join(parts)
    return (
        f"Classify this input into exactly one of these categories: {', '.join(labels)}.\n\n"
        f"Input:\n{text}\n\nReply with the category name only."
    )
