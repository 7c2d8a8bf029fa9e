"""The executable-docs machinery (tests/docs/_sybil.py) enforces its conventions: a
drifted output fails, a skip must give its reason, paid providers are faked."""

from __future__ import annotations

import unittest
from collections.abc import Iterator
from pathlib import Path

import pytest
from sybil import Document
from sybil.example import SybilFailure
from tests.docs._sybil import setup, sybil, teardown


def run_page(tmp_path: Path, text: str) -> Iterator[None]:
    """Evaluate a page's examples in order, as the test run does; yields per example."""
    page = tmp_path / "page.md"
    page.write_text(text)
    document = sybil.parse(page)
    setup(document.namespace)
    try:
        for example in document.examples():
            example.evaluate()
            yield
    finally:
        teardown(document.namespace)


def parse(tmp_path: Path, text: str) -> Document:
    page = tmp_path / "page.md"
    page.write_text(text)
    return sybil.parse(page)


def test_a_drifted_output_fails(tmp_path: Path) -> None:
    good = "```python\n>>> 1 + 1\n2\n```\n"
    assert len(list(run_page(tmp_path, good))) == 1
    with pytest.raises(SybilFailure, match="Expected:\n    3\nGot:\n    2"):
        list(run_page(tmp_path, good.replace("\n2\n", "\n3\n")))


def test_ellipsis_matches_what_varies(tmp_path: Path) -> None:
    page = (
        "```python\n>>> print('took 1.23 ms on xcs-worker-3')\ntook ... ms on xcs-worker-...\n```\n"
    )
    assert len(list(run_page(tmp_path, page))) == 1


def test_a_skip_needs_a_reason_in_the_doc(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line 3: 'skip: next' needs a reason"):
        parse(tmp_path, "# Page\n\n<!-- skip: next -->\n\n```python\n1 / 0\n```\n")
    page = '<!-- skip: next "needs a Ray cluster" -->\n\n```python\n1 / 0\n```\n'
    with pytest.raises(unittest.SkipTest, match="needs a Ray cluster"):
        list(run_page(tmp_path, page))


def test_hidden_setup_runs_and_paid_providers_reach_the_fake_server(tmp_path: Path) -> None:
    page = (
        "<!-- invisible-code-block: python\nimport xcs\n-->\n\n"
        "```python\n"
        '>>> xcs.models("openai:gpt-4o-mini", "hi")\n'
        "Response('hi', model='openai:gpt-4o-mini', ...)\n"
        '>>> xcs.models("anthropic:claude-3-5-haiku-latest", "hello")\n'
        "Response('hello', model='anthropic:claude-3-5-haiku-latest', ...)\n"
        '>>> xcs.models("local:smollm2", "q", max_tokens=3).usage.completion_tokens <= 3\n'
        "True\n"
        "```\n"
    )
    assert len(list(run_page(tmp_path, page))) == 4
