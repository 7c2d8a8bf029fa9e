"""The exception hierarchy: shape, docstrings, context attributes, pickling."""

from __future__ import annotations

import inspect
import pickle

import pytest

import xcs
from xcs import errors


def test_hierarchy() -> None:
    assert issubclass(xcs.CompilationError, xcs.XCSError)
    assert issubclass(xcs.ValidationError, xcs.XCSError)
    assert issubclass(xcs.ValidationError, ValueError)
    assert issubclass(xcs.ExecutionTimeout, xcs.XCSError)
    assert issubclass(xcs.ExecutionTimeout, TimeoutError)
    assert issubclass(xcs.ProviderError, xcs.XCSError)
    assert issubclass(xcs.RateLimitError, xcs.ProviderError)
    assert issubclass(xcs.AuthenticationError, xcs.ProviderError)


ERRORS = [name for name in errors.__all__ if issubclass(getattr(errors, name), errors.XCSError)]


@pytest.mark.parametrize("name", ERRORS)
def test_every_error_says_when_it_is_raised(name: str) -> None:
    cls = getattr(errors, name)
    doc = inspect.getdoc(cls) or ""
    assert "aised" in doc.split(".")[0], f"{name}'s docstring should start with when it is raised"
    assert name in errors.__doc__  # drawn in the module's tree  # type: ignore[operator]


def test_the_one_warning_says_when_it_is_warned() -> None:
    assert [n for n in errors.__all__ if n not in ERRORS] == ["JitWarning"]
    assert issubclass(xcs.JitWarning, UserWarning)
    assert not issubclass(xcs.JitWarning, xcs.XCSError)  # never raised by XCS itself
    assert (inspect.getdoc(xcs.JitWarning) or "").startswith("Warned once")
    assert "JitWarning" in (errors.__doc__ or "")


@pytest.mark.parametrize("name", ERRORS)
def test_errors_pickle_with_their_context(name: str) -> None:
    cls = getattr(errors, name)
    err = cls("something failed", nodes=("a", "b"), provider="sim")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert back.args == ("something failed",)
    assert back.nodes == ("a", "b")
    assert back.provider == "sim"
    assert str(back) == "something failed"


def test_timeout_context() -> None:
    err = xcs.ExecutionTimeout("late", seconds=1.5, running=("t[0]",), cancelled=3)
    assert (err.seconds, err.running, err.cancelled) == (1.5, ("t[0]",), 3)
