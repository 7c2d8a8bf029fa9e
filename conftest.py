"""Collects the code blocks of README.md and docs/*.md as tests (tests/docs/_sybil.py)."""

from tests.docs._sybil import pytest_collect_file

__all__ = ["pytest_collect_file"]
