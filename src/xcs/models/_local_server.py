"""The child process that hosts the local model: ``python -m xcs.models._local_server``.

It loads a GGUF file into an ``xllamacpp.Server`` (llama.cpp's HTTP server, prebuilt
wheel) on 127.0.0.1 and a free port, prints one JSON line ``{"address": ...}`` once
the model is loaded and the socket listens, and exits when its standard input
closes (the parent exited, or stopped it).

Why a child process and not the server in-process (see docs/dev/local-model-spike.md
§3): ``xllamacpp.Server`` has no ``close()``; destroying it while an HTTP request is
in flight can hang the process, and exiting without destroying it can segfault. A
child that ends with ``os._exit`` when its stdin closes stops in milliseconds,
whatever is in flight, and cannot take the parent down with it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="path of the GGUF file")
    parser.add_argument("--parallel", type=int, default=4, help="slots (requests batched)")
    parser.add_argument("--ctx", type=int, default=2048, help="context tokens per slot")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--alias", default="local")
    args = parser.parse_args(argv)

    # Imported by name: the package is an optional extra and ships no type stubs.
    xlc: Any = importlib.import_module("xllamacpp")

    params = xlc.CommonParams()
    params.model.path = args.model
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # the OS picks a free port; read back from listening_address
    params.n_parallel = args.parallel
    # n_ctx is the TOTAL across slots; left at 0 every slot gets the model's full
    # training context (8192 for SmolLM2), costing ~850 MiB (spike §2).
    params.n_ctx = args.parallel * args.ctx
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.endpoint_slots = True
    params.endpoint_metrics = True
    params.model_alias = {args.alias}
    params.verbosity = -1  # llama.cpp logs to fd 2 from C++; keep the parent's stderr clean
    try:
        server = xlc.Server(params)  # blocks until the model is loaded and listening
    except Exception as exc:  # reported to the parent on stdout, then exit
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        os._exit(1)
    print(json.dumps({"address": server.listening_address, "pid": os.getpid()}), flush=True)
    sys.stdin.read()  # block until the parent closes our stdin (or dies)
    # Skip ~Server(): destroying it with requests in flight can hang (spike §3).
    os._exit(0)


if __name__ == "__main__":
    main()
