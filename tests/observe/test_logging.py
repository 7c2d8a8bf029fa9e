"""Log records of XCS carry a per-call correlation id; the library prints nothing itself."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from _gated import TIMEOUT, force_overlap

import xcs
from xcs._observe import _log
from xcs.models import FakeClock, use_clock


@pytest.fixture(autouse=True)
def fake_clock() -> Iterator[None]:
    with use_clock(FakeClock()):
        yield


FAILING = "sim:chat?error_rate=1"


def retry_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "retrying" in r.getMessage()]


def test_each_model_call_has_its_own_id_on_all_its_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="xcs")
    for _ in range(2):
        with pytest.raises(xcs.ProviderError):
            xcs.models(FAILING, "q", max_attempts=3, cache=False)
    records = retry_records(caplog)
    assert len(records) == 4  # two retries per call
    ids = [r.xcs_call_id for r in records]  # type: ignore[attr-defined]
    assert ids[0] == ids[1]
    assert ids[2] == ids[3]
    assert ids[0] != ids[2]
    assert all(i != "-" for i in ids)


def test_the_id_is_on_the_span_and_follows_work_onto_pool_threads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="xcs")

    meet = threading.Barrier(3, timeout=TIMEOUT)  # all three in flight: on pool threads

    def attempt(i: int) -> str:
        meet.wait()
        try:
            return xcs.models(FAILING, f"q{i}", max_attempts=2, cache=False)
        except xcs.ProviderError:
            return "failed"

    @xcs.jit
    def pipeline() -> list[str]:
        return [attempt(i) for i in range(3)]

    force_overlap(pipeline)
    with _log.call_scope() as outer, xcs.trace() as recorded:
        assert pipeline() == ["failed"] * 3
    records = retry_records(caplog)
    assert len(records) == 3
    span_ids = {s.attrs["call_id"] for s in recorded.spans if s.kind == "model"}
    record_ids = {r.xcs_call_id for r in records}  # type: ignore[attr-defined]
    assert span_ids == record_ids
    assert len(record_ids) == 3
    # Calls made inside an outer call carry its id as their prefix, on any thread.
    assert all(i.startswith(outer + ".") for i in record_ids)
    assert {r.threadName for r in records} - {"MainThread"}


def test_records_outside_any_call_say_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xcs")

    def generator() -> Iterator[int]:
        yield 1

    with pytest.warns(xcs.JitWarning):
        list(xcs.jit(generator)())
    (record,) = [r for r in caplog.records if "runs as written" in r.getMessage()]
    assert record.xcs_call_id == "-"  # type: ignore[attr-defined]
    assert _log.current_call_id() is None


def test_the_library_prints_nothing_unless_asked() -> None:
    code = (
        "import logging, warnings, xcs\n"
        "warnings.simplefilter('ignore', xcs.JitWarning)  # a warning is not a log record\n"
        "logging.getLogger('xcs').warning('a warning nobody asked to see')\n"
        "logging.getLogger('xcs.models').error('an error nobody asked to see')\n"
        "def g():\n    yield 1\n"
        "list(xcs.jit(g)())\n"
        "xcs.models('sim:echo', 'hi')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout == ""
    assert out.stderr == ""


def test_a_format_string_can_use_the_id() -> None:
    code = (
        "import logging, xcs\n"
        "from xcs.models import FakeClock, use_clock\n"
        "logging.basicConfig(format='[%(xcs_call_id)s] %(message)s', level=logging.INFO)\n"
        "with use_clock(FakeClock()):\n"
        "    try:\n"
        "        xcs.models('sim:chat?error_rate=1', 'q', max_attempts=2)\n"
        "    except xcs.ProviderError:\n"
        "        pass\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    (line,) = [ln for ln in out.stderr.splitlines() if "retrying" in ln]
    assert line.startswith("[")
    assert not line.startswith("[-]")
