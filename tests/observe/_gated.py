"""A mock model for the observability tests whose calls can be made to meet at a barrier."""

from __future__ import annotations

import threading
from typing import Any

from xcs.models import Completion, Request, Usage

TIMEOUT = 10.0


class GatedModel:
    """A mock model whose calls meet at a barrier while ``barrier`` is set, and count
    how many are in flight: the proof of what overlapped, independent of any clock."""

    def __init__(self) -> None:
        self.barrier: threading.Barrier | None = None
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __call__(self, request: Request) -> Completion:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.barrier is not None:
                self.barrier.wait()
            else:
                threading.Event().wait(0.005)  # blocks: the probe sees a call that waits
            text = str(request.messages[-1].content).upper()
            return Completion(text, usage=Usage(3, 2))
        finally:
            with self.lock:
                self.now -= 1


def force_overlap(jitted: Any) -> None:
    """Make every region of ``jitted`` overlap from its next call, as if its probes
    had measured calls that block. The tests prove overlap with barriers; they must
    not depend on the timing of a probe on a machine that may be overloaded."""
    entry = jitted.__xcs_jit__.compiled()
    assert entry.runtime is not None, "no region to overlap"
    for site in entry.runtime.sites:
        for _ in range(3):
            site.record_probe(0.05, 0.0)
