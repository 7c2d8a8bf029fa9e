"""xcs.pmap(backend="ray", address=...) connects to a cluster that is already running.

The test starts a one-node cluster with ``ray start --head --block`` (2 CPUs, no
dashboard), runs pmap from a separate driver process that connects with
``address="auto"``, and stops the cluster by ending the ``ray start`` process, which
takes the cluster's processes with it. (An explicit ``host:port`` goes through the same
``ray.init(address=...)``; on this CI's sandboxed network Ray's GCS client cannot
reach the node's own address, so the test uses ``"auto"``, the address Ray records for
the cluster it started.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

RAY = Path(sys.executable).with_name("ray")
DRIVER = textwrap.dedent(
    """
    import ray
    import xcs
    from xcs.models import models

    def ask(i):
        return str(models("sim:chat?latency=0.005", f"question {i}", temperature=0))

    items = list(range(300))
    got = xcs.pmap(ask, backend="ray", address="auto")(items)
    assert got == xcs.vmap(ask)(items), "pmap on the cluster differs from vmap"
    # Connected to the running cluster (2 CPUs), not a new local one.
    print("cpus", ray.cluster_resources().get("CPU"), "nodes", len(ray.nodes()))
    """
)


def _cluster_of(head: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        return psutil.Process(head.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.fixture
def running_cluster() -> Iterator[None]:
    import ray

    assert not ray.is_initialized()
    # `ray start` records its address for `address="auto"` (and for a later plain
    # `ray.init()`, which would try to join the dead cluster); put back what was there.
    from ray._common.utils import get_ray_address_file

    address_file = Path(get_ray_address_file(None))
    recorded = address_file.read_text() if address_file.exists() else None
    head = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--head",
            "--block",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--port=0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    processes: list[psutil.Process] = []
    try:
        # Ready when the node's raylet runs.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            processes = _cluster_of(head)
            if any("raylet" in p.name() for p in processes):
                break
            assert head.poll() is None, "ray start exited"
            time.sleep(0.2)
        else:
            pytest.fail("the Ray head did not start within 90 s")
        yield
    finally:
        processes = processes or _cluster_of(head)
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
        _, alive = psutil.wait_procs(processes, timeout=30)
        for process in alive:
            process.kill()
        if recorded is None:
            address_file.unlink(missing_ok=True)
        else:
            address_file.write_text(recorded)
        assert alive == [], f"cluster processes outlived `ray start`: {alive}"


def test_pmap_connects_to_a_running_cluster(running_cluster: None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cpus 2.0 nodes 1" in done.stdout
