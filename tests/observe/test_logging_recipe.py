"""The logging recipe of docs/observability.md is safe in a whole application: its
format names ``xcs_call_id`` on the root handler, which every logger's records meet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")

# The recipe as docs/observability.md shows it, then records from loggers that are
# not XCS's (a library's, the application's own, inside and outside a model call)
# and a retried model call's record from XCS.
PROGRAM = textwrap.dedent(
    """
    import logging
    logging.basicConfig(format="%(asctime)s [%(xcs_call_id)s] %(name)s: %(message)s")
    logging.getLogger("xcs").setLevel(logging.INFO)

    import xcs
    from xcs.models import FakeClock, MockProvider, use_clock

    logging.getLogger("httpx").warning("a library's record")
    logging.getLogger("app").warning("the app's record")

    def handler(request):
        logging.getLogger("app").warning("inside a model call")
        return "ok"

    xcs.models.register_provider("mine", MockProvider(handler))
    xcs.models("mine:model", "hi")
    with use_clock(FakeClock()):
        try:
            xcs.models("sim:chat?error_rate=1", "hi", max_attempts=2)
        except xcs.ProviderError:
            pass
    """
)


def run(program: str) -> str:
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_recipe_formats_every_loggers_records() -> None:
    err = run(PROGRAM)
    assert "Logging error" not in err, err
    assert "Formatting field not found" not in err, err
    lines = err.splitlines()
    assert re.search(r"\[-\] httpx: a library's record$", lines[0]), err
    assert re.search(r"\[-\] app: the app's record$", lines[1]), err
    # The application's record made inside a model call carries that call's id.
    inside = re.search(r"\[([0-9a-f]{4}-[0-9a-f]+)\] app: inside a model call$", lines[2])
    assert inside, err
    retry = re.search(
        r"\[([0-9a-f]{4}-[0-9a-f]+)\] xcs\.models: sim:chat: attempt 1/2 failed "
        r"\(sim:chat \(simulated\): HTTP 500 internal server error\); retrying in [0-9.]+ s$",
        lines[3],
    )
    assert retry, err
    assert retry.group(1) != inside.group(1)


def test_a_factory_set_before_import_xcs_keeps_working() -> None:
    program = textwrap.dedent(
        """
        import logging
        previous = logging.getLogRecordFactory()
        def factory(*args, **kwargs):
            record = previous(*args, **kwargs)
            record.tenant = "t1"
            return record
        logging.setLogRecordFactory(factory)
        logging.basicConfig(format="%(tenant)s [%(xcs_call_id)s] %(name)s: %(message)s")
        import xcs
        import importlib
        importlib.reload(xcs._observe._log)
        xcs._observe._log.install()
        xcs._observe._log.install()
        logging.getLogger("app").warning("hello")
        """
    )
    err = run(program)
    assert err.splitlines() == ["t1 [-] app: hello"], err
