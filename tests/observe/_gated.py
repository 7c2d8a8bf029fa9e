"""A mock model for the observability tests whose calls can be made to meet at a barrier."""

from __future__ import annotations

import threading

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
