"""Operators that compose others: ``Ensemble``, ``Chain``, ``Router``.

``Ensemble`` runs its members concurrently on the shared scheduler
(``_runtime._scheduler.ordered_map``), with or without ``xcs.jit`` around it, and
gives the sequential program's results and first error: results in member order; when
members fail, the failure of the first in member order, the original exception; the
members after it that had not started never start.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from xcs._runtime._scheduler import ordered_map
from xcs.errors import ValidationError
from xcs.models._api import ModelBinding, bind
from xcs.operators._base import Operator

__all__ = ["Candidates", "Chain", "Ensemble", "Router", "as_model", "takes_keyword"]


def as_model(model: Any, operator: str, role: str = "model") -> Callable[..., Any]:
    """A model to call with a prompt: a ``ModelBinding``, a model id (bound here), or
    any callable ``prompt -> str`` (an operator, a function).

    Raises:
        ValidationError: anything else, or a malformed model id.
    """
    if isinstance(model, str):
        return bind(model)
    if callable(model):
        return model  # type: ignore[no-any-return]
    raise ValidationError(
        f"{operator}: {role} must be a model id such as 'sim:chat', an "
        f"xcs.models.bind(...) binding or a callable prompt -> str; got {type(model).__name__}",
        operator=operator,
    )


def takes_keyword(fn: Callable[..., Any], name: str) -> bool:
    """True if ``fn`` accepts keyword ``name`` (or any keyword). Unknown: True."""
    if isinstance(fn, ModelBinding):
        return name == "sample"
    try:
        sig = fn.spec().signature if isinstance(fn, Operator) else inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return True
        if p.name == name and p.kind is not inspect.Parameter.POSITIONAL_ONLY:
            return True
    return False


class Candidates(list[Any]):
    """The answers of an ``Ensemble``, in member order: a ``list``, plus the question
    they answer (``question``: the ensemble's first positional argument when it is a
    string, else its ``question=`` keyword, else None).

    ``Judge``, ``Synthesize``, ``BestOfN`` and ``Verifier`` read ``question`` when
    none is passed to them, so ``Chain(Ensemble(...), Judge(...))`` judges against
    the question. It compares equal to the plain list of the same answers.
    """

    question: str | None

    def __init__(self, answers: Iterable[Any] = (), question: str | None = None) -> None:
        super().__init__(answers)
        self.question = question

    def __repr__(self) -> str:
        return f"Candidates({list.__repr__(self)}, question={self.question!r})"


def _question_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    if args and isinstance(args[0], str):
        return args[0]
    q = kwargs.get("question")
    return q if isinstance(q, str) else None


def question_for(candidates: Any, question: str | None) -> str | None:
    """The question an aggregator works against: given, or carried by ``Candidates``."""
    if question is not None:
        return question
    return getattr(candidates, "question", None)


class Ensemble(Operator):
    """Call several members on the same input, concurrently; return their answers.

    ``Ensemble(a, b, c)`` calls each member; ``Ensemble(member, n=5)`` calls one
    member five times with ``sample=0`` to ``sample=4``, so each call is a distinct
    sample (and a cache keeps five answers, not one). The member must then take a
    ``sample`` keyword: a model binding does; give your own operator or function a
    ``sample: int = 0`` parameter and pass it on to the model. A ``sample`` given to
    the ensemble itself offsets the indices (``sample * n + i``), so nested
    ensembles of samples stay distinct.

    The members run at the same time on the shared pool, with or without
    ``xcs.jit``. The result is what calling them one after another would give:
    ``Candidates`` (a list, in member order, with the question); if members fail,
    the first failure in member order is raised (the original exception) and the
    members after it that have not started never start.

    Args:
        *members: operators, model bindings or callables, all called with the
            ensemble's arguments.
        n: sample one member ``n`` times instead.

    Raises:
        ValidationError: no member, a member that is not callable, ``n`` with more
            than one member, ``n`` < 1, or ``n`` for a member with no ``sample``.

    Example::

        drafts = Ensemble(xcs.models.bind("openai:gpt-4o-mini", temperature=0.8), n=5)
        drafts("Why is the sky blue?")          # 5 answers, fetched at once
    """

    def __init__(self, *members: Any, n: int | None = None) -> None:
        if not members:
            raise ValidationError("Ensemble needs at least one member", operator="Ensemble")
        resolved = [as_model(m, "Ensemble", "a member") for m in members]
        if n is not None:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValidationError(
                    f"Ensemble: n must be a positive integer, got {n!r}", operator="Ensemble"
                )
            if len(resolved) != 1:
                raise ValidationError(
                    f"Ensemble: n= samples one member, got {len(resolved)} members; "
                    "pass one member with n=, or several members without it",
                    operator="Ensemble",
                )
            if not takes_keyword(resolved[0], "sample"):
                raise ValidationError(
                    f"Ensemble: {resolved[0]!r:.60} takes no 'sample' keyword, so its {n} "
                    "calls would be the same request; give it a `sample: int = 0` "
                    "parameter (passed on to the model) or pass distinct members",
                    operator="Ensemble",
                    field="sample",
                )
        self.members = tuple(resolved)
        self.n = n

    def forward(self, *args: Any, **kwargs: Any) -> Candidates:
        question = _question_of(args, kwargs)
        if self.n is None:
            calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
                (member, kwargs) for member in self.members
            ]
        else:
            offset = kwargs.pop("sample", 0) * self.n
            member = self.members[0]
            calls = [(member, {**kwargs, "sample": offset + i}) for i in range(self.n)]

        def run(call: tuple[Callable[..., Any], dict[str, Any]]) -> Any:
            fn, params = call
            return fn(*args, **params)

        if len(calls) == 1:
            return Candidates([run(calls[0])], question)
        return Candidates(ordered_map(run, calls, name="Ensemble"), question)

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        fields: list[tuple[str | None, Any]] = [(None, m) for m in self.members]
        if self.n is not None:
            fields.append(("n", self.n))
        return fields


class Chain(Operator):
    """Steps applied one after another: the first gets the chain's arguments, each
    later one the previous step's result.

    ``Chain(Ensemble(answer, n=5), Judge(judge_model))`` answers five times and
    judges. A step whose input spec is a declared pydantic model and that gets an
    instance of it takes its fields as arguments.

    Raises:
        ValidationError: no step, or a step that is not callable.
    """

    def __init__(self, *steps: Any) -> None:
        if not steps:
            raise ValidationError("Chain needs at least one step", operator="Chain")
        for i, step in enumerate(steps):
            if not callable(step):
                raise ValidationError(
                    f"Chain: step {i} is not callable: {type(step).__name__} {step!r:.60}",
                    operator="Chain",
                )
        self.steps = tuple(steps)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.steps[0](*args, **kwargs)
        for step in self.steps[1:]:
            out = step(out)
        return out

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        return [(None, s) for s in self.steps]


class Router(Operator):
    """A classifier chooses the branch: ``routes[label](*args, **kwargs)``.

    The classifier is a model (an id, a binding or a callable ``prompt -> str``),
    asked to name one of the labels for the input; or, with ``classify=`` a callable
    that takes the router's own arguments and returns a label. Its answer is read
    leniently (``parse_label``): the label it equals after normalising (case,
    whitespace, quotes, trailing punctuation), else the label named earliest in the
    answer as a whole word. An answer that names no label goes to the ``default``
    route when there is one, else raises ``ValidationError`` quoting the answer.

    Args:
        classifier: the model that classifies (ignored when ``classify`` is given).
        routes: label -> operator or callable.
        default: the label to use when the answer names none.
        classify: a callable taking the router's arguments and returning a label.

    Raises:
        ValidationError: no routes, a route that is not callable, a ``default`` that
            is not a label; at a call, an answer naming no label and no default.
    """

    def __init__(
        self,
        classifier: Any = None,
        routes: Mapping[str, Any] | None = None,
        *,
        default: str | None = None,
        classify: Callable[..., Any] | None = None,
    ) -> None:
        if not routes:
            raise ValidationError("Router needs routes: {label: operator}", operator="Router")
        for label, route in routes.items():
            if not isinstance(label, str) or not label.strip():
                raise ValidationError(
                    f"Router: route labels must be non-empty strings, got {label!r}",
                    operator="Router",
                )
            if not callable(route):
                raise ValidationError(
                    f"Router: route {label!r} is not callable: {type(route).__name__}",
                    operator="Router",
                )
        if default is not None and default not in routes:
            raise ValidationError(
                f"Router: default {default!r} is not one of the routes ({', '.join(routes)})",
                operator="Router",
            )
        if classify is None and classifier is None:
            raise ValidationError("Router needs a classifier model or classify=", operator="Router")
        self.classifier = None if classify is not None else as_model(classifier, "Router")
        self.classify_fn = classify
        self.routes = dict(routes)
        self.default = default

    def classify(self, *args: Any, **kwargs: Any) -> str:
        """The label the classifier chooses for these arguments.

        Raises:
            ValidationError: the answer names no label and there is no default.
        """
        from xcs.operators._parse import parse_label
        from xcs.operators._prompts import route_prompt

        if self.classify_fn is not None:
            answer = self.classify_fn(*args, **kwargs)
        else:
            assert self.classifier is not None
            answer = self.classifier(route_prompt(list(self.routes), args, kwargs))
        label = parse_label(str(answer), list(self.routes))
        if label is not None:
            return label
        if self.default is not None:
            return self.default
        raise ValidationError(
            f"Router: the classifier answered {str(answer)!r:.80}, which names none of the "
            f"routes ({', '.join(self.routes)}); give Router a default= route",
            operator="Router",
            field="label",
            answer=str(answer),
        )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.routes[self.classify(*args, **kwargs)](*args, **kwargs)

    def _repr_fields(self) -> list[tuple[str | None, Any]]:
        fields: list[tuple[str | None, Any]] = [
            (None, self.classifier if self.classify_fn is None else self.classify_fn),
            ("routes", self.routes),
        ]
        if self.default is not None:
            fields.append(("default", self.default))
        return fields
