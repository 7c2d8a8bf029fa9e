"""``sim:`` — a deterministic model SIMULATOR, for tests and benchmarks. Not a model.

Its answers are derived from a hash of the request, its latency is drawn from a
configurable distribution, and it injects faults (HTTP 500s, 429s with a
Retry-After, hangs past the timeout, a slow tail) at configurable rates. Every
draw is seeded by the simulator's ``seed``, the request and the attempt number, so
a run is reproducible exactly: the same program meets the same faults at the same
attempts, whatever the thread timing.

Options go in the model id, after ``?``::

    sim:echo                                   # answers with the last user message
    sim:chat?latency=0.2&sigma=0.5             # pseudo-text, lognormal latency, median 0.2 s
    sim:chat?error_rate=0.2&rate_limit_rate=0.1&retry_after=2&seed=7

``echo`` answers with the last user message; any other name answers with
pseudo-text of 5 to 40 words (a word is a token). At ``temperature=0`` the answer
ignores ``seed`` and ``sample``; otherwise both change it, like samples would.
Sleeps use the model layer's clock, so under a ``FakeClock`` latencies cost no time.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from xcs.errors import ProviderError, ProviderTimeoutError, RateLimitError, ValidationError
from xcs.models._base import EndpointConfig, Provider, mark
from xcs.models._clock import asleep, get_clock
from xcs.models._params import translate
from xcs.models._structured import example_value
from xcs.models._types import Completion, Request, ToolCall, Usage

__all__ = ["SimOptions", "SimProvider"]


class SimOptions(BaseModel):
    """The simulator's options (all optional; the defaults answer at once, never fail).

    Attributes:
        latency: median seconds an answer takes.
        sigma: spread of the lognormal latency (0: always ``latency``).
        per_token: extra seconds per completion token.
        slow_rate: fraction of attempts in the slow tail; ``slow_factor`` times slower.
        error_rate: fraction of attempts answered with HTTP 500.
        rate_limit_rate: fraction answered with HTTP 429 and ``Retry-After: retry_after``.
        timeout_rate: fraction that hang until the attempt's timeout.
        seed: seeds every draw.
        price_in, price_out: USD per million prompt / completion tokens (default: unpriced).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency: float = Field(default=0.0, ge=0.0)
    sigma: float = Field(default=0.0, ge=0.0)
    per_token: float = Field(default=0.0, ge=0.0)
    slow_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    slow_factor: float = Field(default=10.0, ge=1.0)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    rate_limit_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    retry_after: float = Field(default=1.0, ge=0.0)
    timeout_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int = 0
    price_in: float | None = Field(default=None, ge=0.0)
    price_out: float | None = Field(default=None, ge=0.0)

    @model_validator(mode="after")
    def _rates_fit(self) -> SimOptions:
        if self.error_rate + self.rate_limit_rate + self.timeout_rate > 1.0:
            raise ValueError("error_rate + rate_limit_rate + timeout_rate must be <= 1")
        if (self.price_in is None) != (self.price_out is None):
            raise ValueError("give both price_in and price_out, or neither")
        return self


_WORDS = (
    "the",
    "model",
    "answers",
    "with",
    "words",
    "drawn",
    "from",
    "a",
    "small",
    "vocabulary",
    "so",
    "that",
    "outputs",
    "look",
    "like",
    "text",
    "and",
    "stay",
    "deterministic",
    "for",
    "a",
    "given",
    "request",
    "hash",
    "seed",
    "sample",
    "and",
    "temperature",
    "while",
    "costing",
    "nothing",
    "and",
    "running",
    "offline",
    "in",
    "tests",
    "benchmarks",
    "and",
    "examples",
    "of",
    "compound",
    "systems",
    "ensembles",
    "judges",
    "critics",
    "and",
    "synthesizers",
)


class SimProvider(Provider):
    """The model SIMULATOR behind ``sim:`` model ids (see the module docstring).

    Not constructed by users: ``xcs.models("sim:...", ...)`` makes one per distinct
    set of options.
    """

    name = "sim"
    simulated = True
    takes_options = True
    params: ClassVar[frozenset[str]] = frozenset(
        {"system", "temperature", "max_tokens", "stop", "seed"}
    )

    def __init__(self, endpoint: EndpointConfig) -> None:
        try:
            self.options = SimOptions.model_validate(dict(endpoint.options))
        except pydantic.ValidationError as exc:
            known = ", ".join(SimOptions.model_fields)
            err = translate(exc, "sim: model id options", "option")
            raise ValidationError(
                f"{err.message}. Known options: {known}", parameters=getattr(err, "parameters", ())
            ) from None
        self.endpoint = endpoint

    def price(self, model: str) -> tuple[float, float] | None:
        o = self.options
        return None if o.price_in is None or o.price_out is None else (o.price_in, o.price_out)

    # -- one attempt --------------------------------------------------------------------

    def complete(self, request: Request) -> Completion:
        wait, outcome = self._draw(request)
        if wait > 0:
            get_clock().sleep(wait)
        if isinstance(outcome, ProviderError):
            raise outcome
        return outcome

    async def acomplete(self, request: Request) -> Completion:
        """``complete`` natively async: the same draws, the latency awaited."""
        wait, outcome = self._draw(request)
        await asleep(wait)
        if isinstance(outcome, ProviderError):
            raise outcome
        return outcome

    def stream(self, request: Request) -> Iterator[str | Completion]:
        """The answer word by word (see ``_schedule``)."""
        latency, outcome = self._draw(request)
        clock = get_clock()
        if isinstance(outcome, ProviderError):
            if latency > 0:
                clock.sleep(latency)
            raise outcome
        for wait, event in self._schedule(latency, outcome):
            if wait > 0:
                clock.sleep(wait)
            yield event

    async def astream(self, request: Request) -> AsyncIterator[str | Completion]:
        """``stream`` natively async: the same words at the same times, awaited."""
        latency, outcome = self._draw(request)
        if isinstance(outcome, ProviderError):
            await asleep(latency)
            raise outcome
        for wait, event in self._schedule(latency, outcome):
            await asleep(wait)
            yield event

    def _schedule(
        self, latency: float, completion: Completion
    ) -> Iterator[tuple[float, str | Completion]]:
        """A stream's events, each with the seconds to wait before it: the first
        word after the latency less the per-token time, then one word per
        ``per_token`` seconds (the same total as ``complete``), then the answer."""
        words = completion.text.split(" ") if completion.text else []
        per_token = self.options.per_token
        first = latency - per_token * max(len(words) - 1, 0)
        for i, word in enumerate(words):
            yield (per_token if i else max(first, 0.0)), (word if i == 0 else " " + word)
        yield 0.0, completion

    def _draw(self, request: Request) -> tuple[float, Completion | ProviderError]:
        """This attempt's fate: the seconds it takes, then its answer or its error."""
        opts = self.options
        digest = _digest(request)
        rng = random.Random(f"{opts.seed}:{digest}:{request.attempt}")
        where = f"sim:{request.model} (simulated)"
        draw = rng.random()
        if draw < opts.rate_limit_rate:
            return 0.0, mark(
                RateLimitError(f"{where}: HTTP 429 rate limited", retry_after=opts.retry_after),
                retryable=True,
                server_fault=False,
                status=429,
            )
        draw -= opts.rate_limit_rate
        if draw < opts.error_rate:
            return 0.0, mark(
                ProviderError(f"{where}: HTTP 500 internal server error"),
                retryable=True,
                status=500,
            )
        draw -= opts.error_rate
        if draw < opts.timeout_rate:
            return request.timeout, _timeout(where, request.timeout)

        calls: tuple[ToolCall, ...] = ()
        if request.output is not None:
            # A valid instance of the schema, drawn from the request's hash.
            text = json.dumps(example_value(request.output.schema, random.Random(digest)))
            finish = "stop"
        elif request.tools and _calls_tools(request):
            calls = _tool_calls(request, digest)
            text, finish = "", "tool_calls"
        else:
            text, finish = _answer(request, digest)
        completion_tokens = len(text.split()) + sum(
            len(json.dumps(c.arguments).split()) + 1 for c in calls
        )
        latency = opts.latency
        if opts.sigma > 0:
            latency *= math.exp(opts.sigma * rng.gauss(0.0, 1.0))
        if rng.random() < opts.slow_rate:
            latency *= opts.slow_factor
        latency += opts.per_token * completion_tokens
        if latency > request.timeout:
            return request.timeout, _timeout(where, request.timeout)
        prompt_tokens = sum(len(m.content.split()) + 3 for m in request.messages)
        return latency, Completion(text, Usage(prompt_tokens, completion_tokens), finish, calls)

    def __repr__(self) -> str:
        opts = "&".join(f"{k}={v}" for k, v in self.endpoint.options)
        return f"<SimProvider (simulator){' ' + opts if opts else ''}>"


def _timeout(where: str, timeout: float) -> ProviderError:
    return mark(
        ProviderTimeoutError(f"{where}: timed out after {timeout:g} s", timeout=timeout),
        retryable=True,
    )


def _digest(request: Request) -> str:
    """The hash answers and faults are drawn from. At temperature 0 the seed and the
    sample index do not matter, as they would not for a real model."""
    sampled = request.temperature != 0
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": [[m.role, m.content] for m in request.messages],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "seed": request.seed if sampled else None,
        "sample": request.sample if sampled else 0,
    }
    if request.output is not None:
        payload["output"] = request.output.key
    if request.tools:
        payload["tools"] = [t.key for t in request.tools]
    if request.tool_choice not in (None, "auto"):
        payload["tool_choice"] = request.tool_choice
    if any(m.tool_calls or m.tool_call_id for m in request.messages):
        payload["messages"] = [m.to_dict() for m in request.messages]
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _calls_tools(request: Request) -> bool:
    """Whether the simulator answers with tool calls: until it has results, unless
    ``tool_choice`` says otherwise (``none`` never, ``required`` or a name always)."""
    if request.tool_choice in (None, "auto"):
        return request.messages[-1].role != "tool"
    return request.tool_choice != "none"


def _tool_calls(request: Request, digest: str) -> tuple[ToolCall, ...]:
    """One call of every tool offered (of the one ``tool_choice`` names), in the
    order given, with arguments drawn from the request's hash."""
    rng = random.Random(digest)
    named = request.tool_choice not in (None, "auto", "required", "none")
    return tuple(
        ToolCall(f"call_{digest[:8]}_{i}", tool.name, example_value(tool.parameters, rng))
        for i, tool in enumerate(request.tools)
        if not named or tool.name == request.tool_choice
    )


def _answer(request: Request, digest: str) -> tuple[str, str]:
    if request.model == "echo":
        last = request.messages[-1]
        if last.role == "tool":  # echo the results of the last turn's tool calls
            results: list[str] = []
            for m in reversed(request.messages):
                if m.role != "tool":
                    break
                results.insert(0, m.content)
            words = "\n".join(results).split(" ")
        else:
            user = [m.content for m in request.messages if m.role == "user"]
            words = user[-1].split(" ") if user else []
    else:
        rng = random.Random(digest)
        words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 40))]
    finish = "stop"
    if request.max_tokens is not None and len(words) > request.max_tokens:
        words, finish = words[: request.max_tokens], "length"
    text = " ".join(words)
    for stop in request.stop:
        cut = text.find(stop)
        if cut >= 0:
            text, finish = text[:cut], "stop"
    return text, finish
