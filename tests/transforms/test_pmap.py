"""xcs.pmap on threads, processes and a Dask executor: the same results and errors as
vmap and a plain loop; backend failures and bad options are clear errors."""

from __future__ import annotations

import collections
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import xcs
from xcs.models import models

SIM = "sim:chat?latency=0.002"


class ItemError(Exception):
    pass


def square_or_fail(i: int, fail_at: frozenset[int] = frozenset()) -> dict[str, int]:
    """Defined in a test module: process pools get it by value (cloudpickle)."""
    if i in fail_at:
        raise ItemError("item", i)
    return {"i": i, "sq": i * i}


def ask(i: int) -> str:
    return str(models(SIM, f"question {i}", temperature=0))


@pytest.fixture(autouse=True)
def clean_model_layer() -> Iterator[None]:
    models._reset()
    yield
    models._reset()


# ---------------------------------------------------------------------------
# threads: vmap itself


def test_threads_backend_is_vmap() -> None:
    items = list(range(50))
    assert xcs.pmap(ask)(items) == xcs.vmap(ask)(items) == [ask(i) for i in items]


# ---------------------------------------------------------------------------
# processes


def test_processes_backend_equals_a_plain_loop_with_a_test_module_function() -> None:
    items = list(range(40))
    expected = [square_or_fail(i) for i in items]
    got = xcs.pmap(square_or_fail, backend="processes", max_shards=2, shard_size=7)(items)
    assert got == {"i": [e["i"] for e in expected], "sq": [e["sq"] for e in expected]}


def test_processes_backend_raises_the_earliest_failure_and_collects_on_request() -> None:
    fail_at = frozenset({13, 14, 31})
    mapped = xcs.pmap(
        square_or_fail, backend="processes", in_axes=(0, None), max_shards=2, shard_size=5
    )
    with pytest.raises(ItemError) as info:
        mapped(list(range(40)), fail_at)
    assert info.value.args == ("item", 13)
    collect = xcs.pmap(
        square_or_fail,
        backend="processes",
        in_axes=(0, None),
        errors="collect",
        max_shards=2,
        shard_size=5,
    )
    out = collect(list(range(40)), fail_at)
    for i in range(40):
        if i in fail_at:
            assert type(out["sq"][i]) is ItemError
            assert out["sq"][i].args == ("item", i)
        else:
            assert out["sq"][i] == i * i


# ---------------------------------------------------------------------------
# any Executor: Dask's, and a plain one


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=4, dashboard_address=None
    ) as client:
        yield client.get_executor()


def test_dask_executor_over_1000_sim_calls_equals_vmap(dask_executor: Any) -> None:
    items = list(range(1000))
    expected = xcs.vmap(ask)(items)
    models._reset()
    got = xcs.pmap(ask, backend=dask_executor, shard_size=50)(items)
    assert got == expected
    # Every call made once, none repeated (no cache here, so a repeat would be a call).
    assert models.statistics()["models"]["sim:chat"].calls == 1000


_calls: collections.Counter[int] = collections.Counter()
_calls_lock = threading.Lock()


def count_and_fail(i: int) -> int:
    """Module level: Dask pickles what it runs, even in-process (a closure over a lock
    would not pickle); the counter is reached through the module's globals."""
    with _calls_lock:
        _calls[i] += 1
    if i in (420, 421, 700):
        raise ItemError("item", i)
    return i


def test_dask_executor_failure_midway_raises_the_earliest(dask_executor: Any) -> None:
    calls = _calls
    calls.clear()
    fn = count_and_fail

    with pytest.raises(ItemError) as info:
        xcs.pmap(fn, backend=dask_executor, shard_size=25, max_shards=4)(list(range(1000)))
    assert info.value.args == ("item", 420)
    assert all(calls[i] == 1 for i in range(421))
    assert max(calls.values()) == 1
    # The shards after the failing one were cancelled: at most the window's worth ran.
    assert sum(1 for i in calls if i >= 425) <= 4 * 25


@pytest.fixture(scope="module")
def threads() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4, thread_name_prefix="test-pmap") as pool:
        yield pool


@given(
    n=st.integers(0, 60),
    failing=st.sets(st.integers(0, 59), max_size=3),
    shard_size=st.integers(1, 9),
    max_shards=st.integers(1, 4),
    collect=st.booleans(),
)
def test_executor_backend_equals_a_plain_loop(
    threads: ThreadPoolExecutor,
    n: int,
    failing: set[int],
    shard_size: int,
    max_shards: int,
    collect: bool,
) -> None:
    calls: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def fn(i: int) -> int:
        with lock:
            calls[i] += 1
        if i in failing:
            raise ItemError("item", i)
        return -i

    mapped = xcs.pmap(
        fn,
        backend=threads,
        shard_size=shard_size,
        max_shards=max_shards,
        errors="collect" if collect else "raise",
    )
    first = min((i for i in failing if i < n), default=None)
    if collect or first is None:
        out = mapped(list(range(n)))
        assert calls == collections.Counter(range(n))
        for i in range(n):
            if i in failing:
                assert type(out[i]) is ItemError
                assert out[i].args == ("item", i)
            else:
                assert out[i] == -i
        return
    with pytest.raises(ItemError) as info:
        mapped(list(range(n)))
    assert info.value.args == ("item", first)
    assert all(calls[i] == 1 for i in range(first + 1))
    assert max(calls.values()) == 1


def test_a_plain_executor_streams_a_lazy_batch_in_order() -> None:
    pulled = 0

    def items() -> Iterator[int]:
        nonlocal pulled
        for i in range(5_000):
            pulled += 1
            yield i

    with ThreadPoolExecutor(4) as pool:
        out = xcs.pmap(lambda i: i * 3, backend=pool, shard_size=10, max_shards=3)(items())
        seen = 0
        ahead = 0
        for value in out:
            assert value == seen * 3
            seen += 1
            ahead = max(ahead, pulled - seen)
        assert seen == 5_000
        # Shards in flight (3) plus the one being read, plus one being cut.
        assert ahead <= 10 * 5


def test_a_backend_failure_is_raised_not_lost() -> None:
    class Broken(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the cluster is gone")

    with Broken(1) as pool, pytest.raises(RuntimeError, match="the cluster is gone"):
        xcs.pmap(lambda i: i, backend=pool)(list(range(10)))


# ---------------------------------------------------------------------------
# Bad options and missing extras


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "gpu"}, "backend='gpu'"),
        ({"backend": "threads", "shard_size": 4}, "apply to the sharded backends"),
        ({"backend": "processes", "address": "auto"}, "backend='ray' only"),
        ({"backend": "ray", "num_cpus": 0}, "num_cpus must be a number > 0"),
        ({"backend": "ray", "shard_size": 0}, "shard_size must be"),
        ({"backend": "processes", "errors": "skip"}, "errors='skip'"),
    ],
)
def test_bad_options_are_validation_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(xcs.ValidationError, match=message):
        xcs.pmap(lambda i: i, **kwargs)


def test_ray_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(xcs.ExtraNotInstalledError, match=r"xcs-jit\[ray\]") as info:
        xcs.pmap(lambda i: i, backend="ray")([1, 2])
    assert info.value.extra == "ray"


def test_cloudpickle_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    with pytest.raises(xcs.ExtraNotInstalledError, match=r"xcs-jit\[processes\]"):
        xcs.pmap(lambda i: i, backend="processes")([1, 2])


def test_processes_backend_runs_functions_defined_in_main(tmp_path: Any) -> None:
    import subprocess
    import textwrap

    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import xcs

            def triple(x):          # lives in __main__: travels by value, and so
                return int(xcs.models("sim:echo", str(x * 3)))  # does its global `xcs`

            if __name__ == "__main__":
                print(xcs.pmap(triple, backend="processes", max_shards=2)(list(range(9))))
            """
        )
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    # The `xcs` module itself must pickle by reference (cloudpickle, Ray and Dask all
    # meet it in the globals of functions from __main__).
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str([x * 3 for x in range(9)])


def test_the_xcs_module_pickles_by_reference() -> None:
    import pickle

    import cloudpickle

    assert pickle.loads(pickle.dumps(xcs)) is xcs
    assert pickle.loads(cloudpickle.dumps(xcs)) is xcs
