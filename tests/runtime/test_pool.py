"""The shared pool: bounded, lazily started, named threads, no growth, gone at exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from xcs._runtime._pool import WorkerPool, get_pool
from xcs._runtime._scheduler import TaskGroup, ordered_map


def _xcs_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("xcs-worker-")]


def test_threads_are_named_bounded_and_reused(make_pool) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(4)
    names: set[str] = set()
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            names.add(threading.current_thread().name)
        return i

    for _ in range(50):
        ordered_map(work, range(40), pool=pool)
    assert pool.thread_count <= 4
    worker_names = names - {threading.current_thread().name}
    assert worker_names
    assert all(name.startswith("xcs-test-") for name in worker_names)


def test_no_thread_growth_over_ten_thousand_calls() -> None:
    pool = get_pool()
    # Start as many threads as the pool will ever have: a full window meets at a barrier.
    barrier = threading.Barrier(pool.max_workers, timeout=10)
    ordered_map(lambda _: barrier.wait(), range(pool.max_workers), window=pool.max_workers)
    # Counted by name: threads of other tests (servers shutting down) come and go.
    started = len(_xcs_threads())
    for _ in range(50):
        assert ordered_map(lambda x: x + 1, range(200)) == list(range(1, 201))
    assert len(_xcs_threads()) == started
    assert pool.thread_count <= pool.max_workers


def test_thread_count_returns_to_baseline_after_close() -> None:
    def leak_threads() -> int:
        return sum(t.name.startswith("xcs-leak") for t in threading.enumerate())

    pool = WorkerPool(8, name="xcs-leak")
    barrier = threading.Barrier(8, timeout=10)
    ordered_map(lambda _: barrier.wait(), range(8), window=8, pool=pool)
    assert leak_threads() >= 7  # the caller may run one of the eight itself
    pool.close()
    assert pool.join(timeout=30)
    assert leak_threads() == 0


def test_a_closed_pool_runs_work_in_the_caller() -> None:
    pool = WorkerPool(2, name="xcs-closed")
    pool.close()
    me = threading.current_thread().name
    assert ordered_map(lambda _: threading.current_thread().name, range(3), pool=pool) == [me] * 3
    assert pool.thread_count == 0


def test_bad_pool_size() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        WorkerPool(0)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*sys.path]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_import_starts_no_thread_and_exit_does_not_wait_for_stuck_work() -> None:
    proc = _run(
        """
        import threading, time
        import xcs
        from xcs._runtime._scheduler import TaskGroup
        assert threading.active_count() == 1, threading.enumerate()
        # A call that never returns is running on a worker when the program ends.
        group = TaskGroup()
        group.spawn(time.sleep, 3600)
        time.sleep(0.2)
        names = sorted(t.name for t in threading.enumerate() if t.name.startswith("xcs-"))
        print(names)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "xcs-worker-0" in proc.stdout


def test_env_sizes_the_pool_and_rejects_nonsense() -> None:
    ok = _run(
        """
        import os
        os.environ["XCS_MAX_WORKERS"] = "3"
        from xcs._runtime._pool import get_pool
        print(get_pool().max_workers)
        """
    )
    assert ok.stdout.strip() == "3", ok.stderr
    bad = _run(
        """
        import os
        os.environ["XCS_MAX_WORKERS"] = "lots"
        from xcs._runtime._pool import get_pool
        get_pool()
        """
    )
    assert bad.returncode != 0
    assert "XCS_MAX_WORKERS='lots' is not an integer" in bad.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_the_pool_works_in_a_forked_child() -> None:
    proc = _run(
        """
        import os
        from xcs._runtime._scheduler import ordered_map
        assert ordered_map(abs, [-1, -2]) == [1, 2]
        pid = os.fork()
        if pid == 0:
            ok = ordered_map(abs, range(-50, 0), window=8) == list(range(50, 0, -1))
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"


# -- threads stranded by abandoned calls are replaced -----------------------------------


def test_hung_abandoned_calls_do_not_starve_new_work(make_pool) -> None:  # type: ignore[no-untyped-def]
    import xcs

    n = 4
    pool = make_pool(n)
    release = threading.Event()
    hung = threading.Barrier(n + 1, timeout=30)

    def hang(i: int) -> int:
        hung.wait()
        release.wait(60)
        return i

    try:
        with (
            pytest.raises(xcs.ExecutionTimeout) as caught,
            xcs.deadline(0.5),
            TaskGroup(pool=pool, name="hang") as group,
        ):
            tasks = [group.spawn(hang, i) for i in range(n)]
            hung.wait()  # all n run, on all n of the pool's threads
            group.result(tasks[0])  # until the deadline expires
        assert sorted(caught.value.running) == [f"hang[{i}]" for i in range(n)]
        # n fresh calls all run at once: each passes only when all n are inside.
        fresh = threading.Barrier(n, timeout=10)
        threads: set[str] = set()

        def meet(i: int) -> int:
            threads.add(threading.current_thread().name)
            fresh.wait()
            return i

        assert ordered_map(meet, range(n), pool=pool, window=n) == list(range(n))
        assert pool.stranded == n
        assert pool.thread_count <= 2 * n
    finally:
        release.set()
    # Once the hung calls return, the pool shrinks back to its bound.
    waited = 0.0
    while (pool.stranded or pool.thread_count > n) and waited < 30:
        ordered_map(lambda i: i, range(2 * n), pool=pool)
        time.sleep(0.05)
        waited += 0.05
    assert pool.stranded == 0
    assert pool.thread_count <= n


def test_replacements_are_bounded_by_max_workers(make_pool) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(2)
    for _ in range(5):
        pool.strand()
    release = threading.Event()
    try:
        for _ in range(10):
            pool.submit(_Blocking(release))
        assert pool.thread_count == 4  # 2 + at most 2 replacements
    finally:
        release.set()
        for _ in range(5):
            pool.unstrand()


class _Blocking:
    def __init__(self, release: threading.Event) -> None:
        self._release = release

    def run_from_pool(self) -> None:
        self._release.wait(60)


def test_graph_run_after_hung_calls_gets_the_whole_pool(  # type: ignore[no-untyped-def]
    make_pool, monkeypatch
) -> None:
    # Issue 14.13 as a user meets it: a deadline expires over hung calls, and the
    # next Graph.run on the shared pool must still run its nodes all at once.
    import xcs
    from xcs._runtime import _pool

    n = 3
    monkeypatch.setattr(_pool, "_pool", make_pool(n))
    release = threading.Event()
    hung = threading.Barrier(n + 1, timeout=30)

    def hang(q: str) -> str:
        hung.wait()
        release.wait(60)
        return q

    stuck = xcs.Graph(inputs=["q"], name="stuck")
    for i in range(n):
        stuck.add(f"h{i}", hang, "q")
    fresh = threading.Barrier(n, timeout=10)

    def meet(q: str) -> str:
        fresh.wait()
        return q

    wide = xcs.Graph(inputs=["q"], name="wide")
    for i in range(n):
        wide.add(f"m{i}", meet, "q")
    try:
        with pytest.raises(xcs.ExecutionTimeout), xcs.deadline(0.5):
            threading.Thread(target=hung.wait, daemon=True).start()
            stuck.run(q="x")
        assert wide.run(q="y") == {f"m{i}": "y" for i in range(n)}
    finally:
        release.set()
