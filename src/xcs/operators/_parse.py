"""Reading model output leniently: answers normalised for voting, a judge's choice, a
router's label, a verifier's verdict. Every reader returns None when the text says
nothing it can read; the operator decides what that means (documented per operator).
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["normalize_answer", "parse_choice", "parse_label", "parse_verdict"]

_EDGE = " \t\r\n.,;:!?\"'`*_()[]{}<>«»“”\u2018\u2019"
_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def normalize_answer(value: Any) -> Any:
    """The voting key of an answer: for text, Unicode NFKC, case folded, whitespace
    collapsed, punctuation, quotes and markdown emphasis stripped from both ends, and a
    number written in any form reduced to one form (``"42.0"``, ``"42"`` and
    ``" 42. "`` are one answer). Other values are their own key.

    >>> normalize_answer("  The  Answer is **Paris**. ")
    'the answer is **paris'
    >>> normalize_answer("42.0") == normalize_answer("42")
    True
    """
    if not isinstance(value, str):
        return value
    text = _SPACE.sub(" ", unicodedata.normalize("NFKC", value).casefold()).strip(_EDGE)
    if _NUMBER.fullmatch(text):
        try:
            number = Decimal(text).normalize()
        except InvalidOperation:  # pragma: no cover - the regex admits only numbers
            return text
        return format(number, "f") if number == number.to_integral_value() else str(number)
    return text


_ORDINALS = {
    word: i + 1
    for i, words in enumerate(
        [
            ("one", "first"),
            ("two", "second"),
            ("three", "third"),
            ("four", "fourth"),
            ("five", "fifth"),
            ("six", "sixth"),
            ("seven", "seventh"),
            ("eight", "eighth"),
            ("nine", "ninth"),
            ("ten", "tenth"),
        ]
    )
    for word in words
}
_LABELLED = re.compile(
    r"\b(?:answer|candidate|option|response|choice|number|no\.?)\s*#?\s*[\[(]?(\d+)", re.I
)
_BRACKETED = re.compile(r"[\[(#](\d+)[\])]?")
_BARE = re.compile(r"(?<![\d.,])(\d+)(?![\d]|\.\d)")
_WORD = re.compile(r"[a-z]+")


def parse_choice(text: str, n: int) -> int | None:
    """The candidate (0-based) a judge's reply names, of ``n``; None if none.

    Read in this order, the first that gives a number from 1 to ``n`` wins: a number
    after a label (``Answer 2``, ``candidate #3``, ``option (1)``), a bracketed or
    ``#`` number (``[2]``, ``#2``), a bare number, a number word or ordinal
    (``two``, ``second``).

    >>> parse_choice("The best is Answer 3.", 4), parse_choice("[2]", 3)
    (2, 1)
    >>> parse_choice("I liked the second one", 3), parse_choice("all good", 3) is None
    (1, True)
    """
    for pattern in (_LABELLED, _BRACKETED, _BARE):
        for match in pattern.finditer(text):
            value = int(match.group(1))
            if 1 <= value <= n:
                return value - 1
    for word in _WORD.findall(text.casefold()):
        value = _ORDINALS.get(word, 0)
        if 1 <= value <= n:
            return value - 1
    return None


def parse_label(text: str, labels: list[str]) -> str | None:
    """The label a classifier's reply names; None if none.

    The label equal to the whole reply after ``normalize_answer`` wins; else the label
    that occurs earliest in the reply as a whole word (case-insensitive; the longer
    label on a tie, so ``"math proof"`` beats ``"math"``).

    >>> labels = ["math", "code"]
    >>> parse_label(" Math. ", labels), parse_label("It is code, I think", labels)
    ('math', 'code')
    """
    key = normalize_answer(text)
    for label in labels:
        if normalize_answer(label) == key:
            return label
    folded = text.casefold()
    best: tuple[int, int, str] | None = None
    for label in labels:
        needle = normalize_answer(label)
        if not isinstance(needle, str) or not needle:
            continue
        match = re.search(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", folded)
        if match is not None:
            candidate = (match.start(), -len(needle), label)
            if best is None or candidate < best:
                best = candidate
    return None if best is None else best[2]


_PASS = {"pass", "passed", "yes", "correct", "true", "valid", "accept", "accepted", "ok"}
_FAIL = {
    "fail",
    "failed",
    "no",
    "incorrect",
    "false",
    "invalid",
    "wrong",
    "reject",
    "rejected",
}
_SCORE = re.compile(r"(?:score\D{0,12}?)?(\d+(?:\.\d+)?)\s*(?:/|out of)\s*10\b", re.I)
_SCORE_LABEL = re.compile(r"score\s*[:=]?\s*(\d+(?:\.\d+)?)", re.I)


def parse_verdict(text: str) -> tuple[bool, float | None] | None:
    """A verifier's reply read as ``(passed, score in [0, 1] or None)``; None if it
    holds no verdict word.

    The verdict is the earliest verdict word (``PASS``/``FAIL``, ``yes``/``no``,
    ``correct``/``incorrect``, ...). The score is ``N/10``, ``N out of 10`` or
    ``score: N`` (0 to 10), divided by 10.

    >>> parse_verdict("PASS. Score: 8/10. Clear and right.")
    (True, 0.8)
    >>> parse_verdict("Incorrect: the capital is Paris"), parse_verdict("hmm") is None
    ((False, None), True)
    """
    verdict: bool | None = None
    for word in _WORD.findall(text.casefold()):
        if word in _PASS:
            verdict = True
            break
        if word in _FAIL:
            verdict = False
            break
    if verdict is None:
        return None
    score: float | None = None
    match = _SCORE.search(text) or _SCORE_LABEL.search(text)
    if match is not None:
        value = float(match.group(1))
        if 0 <= value <= 10:
            score = value / 10
    return verdict, score
