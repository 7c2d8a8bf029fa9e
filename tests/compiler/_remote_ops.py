"""Operations defined in another module than the functions that call them."""

from __future__ import annotations

import threading
import time

barrier: threading.Barrier | None = None


def fetch(i: int) -> int:
    """Blocks like a network call; meets the module barrier when one is set."""
    if barrier is not None and i != 0:
        barrier.wait()
    else:
        time.sleep(0.002)
    return i * 10
