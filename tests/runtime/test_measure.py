"""Per-site measurement: blocking sites are told apart from computing ones."""

from __future__ import annotations

import threading
import time

import pytest

from xcs._runtime._measure import SiteProfile, get_profile
from xcs._runtime._scheduler import ordered_map


def spin(seconds: float) -> int:
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        n += 1
    return n


def test_a_sleeping_site_blocks_and_a_spin_is_measured_as_cpu_time() -> None:
    profile = SiteProfile()
    for _ in range(5):
        profile.measure("io", time.sleep, 0.005)
        profile.measure("cpu", spin, 0.005)
    assert profile.overlap_pays("io") is True
    io = profile.statistics("io")
    cpu = profile.statistics("cpu")
    assert io is not None
    assert cpu is not None
    assert io.calls == cpu.calls == 5
    assert io.blocked_fraction > 0.5
    # Thread CPU time is the spin's own; its wall time also counts the time the machine
    # gave to other processes, so whether the measured spin "blocks" depends on load.
    assert cpu.cpu_s > 0.02
    assert cpu.wall_s >= cpu.cpu_s * 0.99


def test_a_site_whose_wall_time_is_its_cpu_time_does_not_pay() -> None:
    profile = SiteProfile()
    for _ in range(5):
        profile.record("cpu", wall_s=0.005, cpu_s=0.005)
        profile.record("io", wall_s=0.005, cpu_s=0.0001)
    assert profile.overlap_pays("cpu") is False
    assert profile.overlap_pays("io") is True


def test_waiting_on_other_threads_counts_as_blocked() -> None:
    profile = SiteProfile()
    for _ in range(3):
        profile.measure("nested", ordered_map, lambda _: time.sleep(0.003), range(4), window=4)
    assert profile.overlap_pays("nested") is True


def test_an_unmeasured_site_is_unknown_and_errors_still_count() -> None:
    profile = SiteProfile()
    assert profile.overlap_pays("never") is None
    assert profile.statistics("never") is None

    def fail() -> None:
        time.sleep(0.002)
        raise KeyError("x")

    with pytest.raises(KeyError):
        profile.measure("fails", fail)
    stats = profile.statistics("fails")
    assert stats is not None
    assert stats.calls == 1
    assert stats.wall_s > 0


def test_the_profile_is_bounded_and_thread_safe() -> None:
    profile = SiteProfile(max_sites=10)

    def hammer(t: int) -> None:
        for i in range(1000):
            profile.record(("site", i % 20), 0.001, 0.0005)

    threads = [threading.Thread(target=hammer, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(profile) == 10
    total = sum(s.calls for i in range(20) if (s := profile.statistics(("site", i))) is not None)
    assert 0 < total <= 4000
    profile.clear()
    assert len(profile) == 0
    assert isinstance(get_profile(), SiteProfile)


def test_the_decision_follows_a_site_that_changes() -> None:
    profile = SiteProfile()
    for _ in range(5):
        profile.record("s", 0.0101, 0.0001)  # blocks
    assert profile.overlap_pays("s")
    for _ in range(40):
        profile.record("s", 0.0001, 0.0001)  # now answers at once (a warm cache)
    assert not profile.overlap_pays("s")


def test_preemption_is_not_mistaken_for_blocking() -> None:
    # Other processes spin on every core, so a computing thread here spends much of
    # its wall time preempted, which wall-minus-CPU alone would call blocking.
    import os
    import subprocess
    import sys

    from xcs._runtime._measure import Stopwatch, _run_queue_wait

    if _run_queue_wait() is None:
        pytest.skip("no /proc/thread-self/schedstat here")
    hogs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import time\nend = time.time() + 3\nwhile time.time() < end: pass",
            ]
        )
        for _ in range(2 * (os.cpu_count() or 1))
    ]
    try:
        time.sleep(0.2)  # let the hogs start spinning
        watch = Stopwatch()
        start = time.perf_counter()
        while time.perf_counter() < start + 0.3:
            pass
        wall = time.perf_counter() - start
        took, cpu = watch.stop()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert cpu < 0.8 * wall  # we really were preempted...
    assert took - cpu < 0.1 * took  # ...and the stopwatch did not call it blocking
