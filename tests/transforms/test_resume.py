"""Resume: a batch over sim: with the persistent cache, interrupted and run again,
makes only the model calls it had not finished, counted."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import xcs
from xcs.models import Cache, models

MODEL = "sim:chat?latency=0.05"
N = 240


def ask(i: int) -> str:
    return str(models(MODEL, f"question {i}", temperature=0))


def ask_at_once(i: int) -> str:
    """The same answers as ``ask`` (the simulator's latency does not change them)."""
    return str(models("sim:chat", f"question {i}", temperature=0))


@pytest.fixture(autouse=True)
def clean_model_layer() -> Iterator[None]:
    models._reset()
    yield
    models._reset()


def _rows(path: Path) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=30)
    try:
        return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        db.close()


def _provider_calls() -> tuple[int, int]:
    stats = models.statistics()["models"]["sim:chat"]
    return stats.attempts, stats.cache_hits


SCRIPT = textwrap.dedent(
    f"""
    import sys
    import xcs
    from xcs.models import Cache, models

    def ask(i):
        return str(models({MODEL!r}, f"question {{i}}", temperature=0))

    with Cache(sys.argv[1]):
        xcs.vmap(ask, max_workers=4)(list(range({N})))
    print("finished")
    """
)


def test_a_killed_batch_rerun_makes_only_the_calls_it_had_not_finished(tmp_path: Path) -> None:
    path = tmp_path / "answers.sqlite"
    script = tmp_path / "batch.py"
    script.write_text(SCRIPT)
    log = tmp_path / "batch.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=out, stderr=out)
    try:
        # Answers are committed as they come, not at exit: wait until some are there,
        # then kill the batch midway with SIGKILL (no cleanup of any kind runs).
        deadline = time.monotonic() + 90
        while _rows(path) < 40:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the batch committed nothing"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    done = _rows(path)
    assert 40 <= done < N, done

    with Cache(path):
        results = xcs.vmap(ask, max_workers=8)(list(range(N)))
    attempts, hits = _provider_calls()
    assert attempts == N - done  # only the calls the killed run had not finished
    assert hits == done
    assert _rows(path) == N
    # And the answers are those of an uncached plain loop.
    models._reset()
    assert results == [ask_at_once(i) for i in range(N)]


class Interrupted(Exception):
    pass


def test_a_batch_that_failed_midway_resumes_where_it_stopped(tmp_path: Path) -> None:
    path = tmp_path / "answers.sqlite"
    n = 120

    def flaky(i: int) -> str:
        if i == 70:
            raise Interrupted(i)
        return ask(i)

    with Cache(path), pytest.raises(Interrupted):
        xcs.vmap(flaky, max_workers=8)(list(range(n)))
    first_attempts, _ = _provider_calls()
    done = _rows(path)
    assert done == first_attempts  # every call the first run made was committed
    assert 70 <= done < n

    models._reset()
    with Cache(path):
        results = xcs.vmap(ask, max_workers=8)(list(range(n)))
    attempts, hits = _provider_calls()
    assert attempts == n - done
    assert hits == done
    models._reset()
    assert results == [ask_at_once(i) for i in range(n)]


def test_the_cache_reaches_process_workers_by_path(tmp_path: Path) -> None:
    path = tmp_path / "answers.sqlite"
    n = 30
    with Cache(path):
        first = xcs.pmap(ask, backend="processes", max_shards=2, shard_size=8)(list(range(n)))
    assert _rows(path) == n  # the workers wrote the driver's cache file
    with Cache(path):
        again = xcs.vmap(ask)(list(range(n)))
    attempts, hits = _provider_calls()
    assert (attempts, hits) == (0, n)
    assert again == first
