"""xcs.pmap(backend="ray") on a local 2-CPU cluster started (and shut down) here."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import xcs
from xcs.models import models

ray = pytest.importorskip("ray")


SIM = "sim:chat?latency=0.005"
HERE = Path(__file__).resolve().parent


class ItemError(Exception):
    pass


def ask(i: int) -> str:
    """Runs on Ray workers; they import this module through PYTHONPATH (see the fixture)."""
    return str(models(SIM, f"question {i}", temperature=0))


def ask_or_fail(i: int) -> str:
    if i in (517, 518, 900):
        raise ItemError("item", i)
    return ask(i)


def slow_unless_early(i: int) -> int:
    if i == 30:
        raise ItemError("item", i)
    if i > 40:
        time.sleep(60)  # would time the test out unless it is cancelled
    return i


def _cluster_processes() -> list[Any]:
    import psutil

    names = ("raylet", "gcs_server", "ray::")
    me = psutil.Process()
    found = []
    for child in me.children(recursive=True):
        try:
            label = " ".join(child.cmdline()) or child.name()
        except psutil.Error:
            continue
        if any(name in label for name in names):
            found.append(child)
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    assert not ray.is_initialized()
    ray.init(
        address="local",  # a new cluster, even if `ray start` recorded another
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        # Workers must import this test module to unpickle its functions.
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(HERE), os.getcwd()])}},
    )
    try:
        yield
    finally:
        ray.shutdown()
        # Nothing of the cluster outlives the module.
        deadline = time.monotonic() + 30
        while _cluster_processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _cluster_processes() == []


@pytest.fixture(autouse=True)
def clean_model_layer() -> Iterator[None]:
    models._reset()
    yield
    models._reset()


def test_ray_pmap_over_1000_sim_calls_equals_vmap(cluster: None) -> None:
    items = list(range(1000))
    expected = xcs.vmap(ask)(items)
    got = xcs.pmap(ask, backend="ray")(items)
    assert got == expected


def test_ray_failure_midway_raises_the_earliest_failure(cluster: None) -> None:
    with pytest.raises(ItemError) as info:
        xcs.pmap(ask_or_fail, backend="ray", shard_size=50)(list(range(1000)))
    assert type(info.value) is ItemError  # the original class, not Ray's wrapper
    assert info.value.args == ("item", 517)


def test_ray_first_error_cancels_the_running_shards(cluster: None) -> None:
    # Shards after the failing one sleep for a minute; the test ends in seconds only
    # if they are cancelled rather than waited for.
    with pytest.raises(ItemError) as info:
        xcs.pmap(slow_unless_early, backend="ray", shard_size=10, max_shards=4)(list(range(200)))
    assert info.value.args == ("item", 30)


def test_ray_collect_mode(cluster: None) -> None:
    out = xcs.pmap(ask_or_fail, backend="ray", errors="collect", shard_size=100)(list(range(1000)))
    assert [i for i, r in enumerate(out) if isinstance(r, Exception)] == [517, 518, 900]
    assert out[519] == ask(519)
