"""The main job, ``xcs demo``: an ensemble of answers and a judge, in order and jitted.

The pipeline is plain sequential Python::

    def ensemble_and_judge(question, answer_model, judge_model):
        answers = [ask(answer_model, question, persona) for persona in PERSONAS]
        best = judge(judge_model, question, answers)
        return answers, best

It runs three times on the same model: as written (every call after the previous
one), then jitted twice (the first call compiles the function and runs one answer
alone to measure it; the second runs the four answers at once). Each run is traced;
the demo prints the answers, the judge's pick, the timeline of the jitted run and the
speedup, and checks that the jitted runs returned what the plain run returned.

The model is the embedded ``local:smollm2`` (SmolLM2-135M-Instruct on llama.cpp, on
the CPU, offline; its server has four slots that decode concurrent requests
together), or with ``--sim`` the ``sim:`` SIMULATOR (no model: seeded latency and
pseudo-text), which runs in a second and needs nothing installed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import xcs
from xcs._observe import _log
from xcs.models import Response

__all__ = ["PERSONAS", "QUESTION", "ask", "ensemble_and_judge", "judge", "main"]

logger = _log.get_logger("xcs.demo")

QUESTION = "Why is the sky blue?"
# Four answers: the local model's server decodes four requests at a time.
PERSONAS = ("a physicist", "a teacher", "a poet", "a sailor")

LOCAL_MODEL = "local:smollm2"
SIM_MODEL = "sim:chat?latency=0.25&sigma=0.3&seed=7"
# A 135M model on a CPU: short answers keep the demo under a minute on a busy machine.
ANSWER_TOKENS = 40
JUDGE_TOKENS = 4
LOCAL_TIMEOUT = 600.0


def ask(model: Callable[..., Response], question: str, persona: str) -> Response:
    """One member of the ensemble: the question, answered in a persona's voice."""
    return model(question, system=f"You are {persona}. Answer in one or two short sentences.")


def judge(model: Callable[..., Response], question: str, answers: Sequence[str]) -> int:
    """The index of the best answer, by the judge model (the first if it says no number)."""
    listing = "\n".join(f"{number}. {' '.join(a.split())}" for number, a in enumerate(answers, 1))
    verdict = model(
        f"Question: {question}\nAnswers:\n{listing}\n"
        f"Which answer is best? Reply with its number (1 to {len(answers)}) only."
    )
    found = re.search(r"[1-9]", verdict)
    number = int(found.group()) if found else 1
    return number - 1 if number <= len(answers) else 0


def ensemble_and_judge(
    question: str, answer_model: Callable[..., Response], judge_model: Callable[..., Response]
) -> tuple[list[Response], int]:
    """The pipeline, as plain sequential Python."""
    answers = [ask(answer_model, question, persona) for persona in PERSONAS]
    best = judge(judge_model, question, answers)
    return answers, best


def _models(sim: bool, tokens: int) -> tuple[Any, Any, str]:
    if sim:
        answer = xcs.models.bind(SIM_MODEL, temperature=0, max_tokens=tokens, cache=False)
        judge_ = xcs.models.bind(SIM_MODEL, temperature=0, max_tokens=JUDGE_TOKENS, cache=False)
        label = "sim: the SIMULATOR (seeded latency, pseudo-text; not a model)"
        return answer, judge_, label
    # temperature 0: the answers depend only on the prompts, so the runs can be compared.
    # A generous timeout: on a busy two-core machine an answer can take a minute, and
    # a retried attempt would only add to the queue.
    common = {"temperature": 0, "cache": False, "timeout": LOCAL_TIMEOUT}
    answer = xcs.models.bind(LOCAL_MODEL, max_tokens=tokens, **common)
    judge_ = xcs.models.bind(LOCAL_MODEL, max_tokens=JUDGE_TOKENS, **common)
    label = "local:smollm2 (SmolLM2-135M-Instruct, llama.cpp on the CPU, offline)"
    return answer, judge_, label


def _run(
    what: str, fn: Callable[..., tuple[list[Response], int]], answer: Any, judge_: Any
) -> tuple[tuple[list[Response], int], float, xcs._observe.Trace]:
    # One correlation id per run: the records of its model calls carry it as a prefix.
    with _log.call_scope(), xcs.trace() as recorded:
        start = time.perf_counter()
        result = fn(QUESTION, answer, judge_)
        took = time.perf_counter() - start
        logger.info("demo: %s run took %.2f s", what, took)
    return result, took, recorded


def _same(a: tuple[list[Response], int], b: tuple[list[Response], int]) -> bool:
    return [str(x) for x in a[0]] == [str(x) for x in b[0]] and a[1] == b[1]


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def main(
    *,
    sim: bool = False,
    trace_path: str | None = None,
    width: int = 100,
    max_tokens: int = ANSWER_TOKENS,
    echo: Callable[[str], None] = print,
) -> int:
    """Run the demo; return the exit status.

    Args:
        sim: use the simulator instead of the local model.
        trace_path: also write the jitted run's Chrome trace there.
        width: of the timeline, in characters.
        max_tokens: the longest answer, in tokens.
        echo: where the lines go.

    Returns:
        0, or 1 if on the simulator (deterministic, so this is a bug) the jitted runs
        did not return what the plain run returned.

    Raises:
        ProviderNotInstalledError: the local model is not installed.
    """
    answer, judge_, label = _models(sim, max_tokens)
    echo(f"XCS demo: an ensemble of {len(PERSONAS)} answers and a judge")
    echo(f"model: {label}\n")
    if not sim:
        echo("starting the local model (first call loads it)...")
        start = time.perf_counter()
        answer("Say OK.", max_tokens=2)
        echo(f"  ready in {time.perf_counter() - start:.1f} s\n")

    plain, plain_s, _ = _run("in-order", ensemble_and_judge, answer, judge_)
    jitted = xcs.jit(ensemble_and_judge)
    first, first_s, _ = _run("first jitted", jitted, answer, judge_)
    fast, jit_s, recorded = _run("second jitted", jitted, answer, judge_)

    answers, best = plain
    echo(f"question: {QUESTION}")
    for number, (persona, text) in enumerate(zip(PERSONAS, answers, strict=True)):
        mark = "*" if number == best else " "
        echo(f" {mark} {number + 1}. [{persona}] {_one_line(text, width - 22)}")
    echo(f"judge's pick: answer {best + 1}\n")

    echo("timeline of the jitted run:")
    echo(recorded.timeline(width=width))
    echo("")
    echo(str(recorded.summary()))
    echo("")
    agree = _same(plain, first) and _same(plain, fast)
    echo(f"in order:       {plain_s:6.2f} s")
    echo(f"jitted, 1st:    {first_s:6.2f} s  (compiles; one answer runs alone, measured)")
    echo(f"jitted, 2nd:    {jit_s:6.2f} s")
    echo(f"speedup:        {plain_s / jit_s:6.2f}x")
    if agree:
        echo("result:         same answers and the same pick as the plain run")
    else:
        echo(
            "result:         DIFFERENT from the plain run. XCS made the same calls with the "
            "same prompts; a model that decodes concurrent requests together may differ "
            "from one decoding them one at a time."
        )
    if trace_path is not None:
        written = recorded.to_chrome(trace_path)
        echo(f"trace:          {written} (open in ui.perfetto.dev or chrome://tracing)")
    return 0 if agree or not sim else 1
