"""The real-code differential suite in CI: standard-library modules, every function
jitted, through their own unittest tests; per test id, what passes plain passes jitted
(as shipped, and under ``XCS_FORCE_OVERLAP=1``).

Each module runs in a fresh interpreter per mode (``_runner.py``); the plain run is
shared by both jitted modes. A test that passes plain and fails jitted fails here,
unless ``expected.toml`` lists it: a documented limitation (stays), or a finding of
``FINDINGS.md`` not fixed yet, which also gets a strict xfail below (it turns into a
failure the day the fix lands: then remove the entry). ``bench/realcode.py`` runs the
whole set, slower modules included, and writes the figures.
"""

from __future__ import annotations

import functools

import pytest
from tests.realcode._suite import (
    EXPECTED,
    JIT_MODES,
    MODULES,
    Expected,
    Run,
    excused,
    listed,
    load_expected,
    mismatches,
    run,
)

CI_MODULES = [name for name, module in MODULES.items() if module.ci]
EXPECTED_ENTRIES = load_expected()

# A test may start two interpreters (the plain run, cached, and a jitted one), each
# given up to 280 s on a loaded machine (they take 1-10 s on a quiet one).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@functools.cache
def _run(name: str, mode: str) -> Run:
    return run(MODULES[name], mode, timeout=280)


@pytest.mark.parametrize("mode", JIT_MODES)
@pytest.mark.parametrize("name", CI_MODULES)
def test_what_passes_plain_passes_jitted(name: str, mode: str) -> None:
    plain = _run(name, "plain")
    assert plain.crashed is None, f"{name}: the plain run failed: {plain.crashed}"
    assert plain.tests, f"{name}: no tests ran"
    jitted = _run(name, mode)
    assert jitted.crashed is None, f"{name} [{mode}]: {jitted.crashed}"
    entries = listed(EXPECTED_ENTRIES, name, mode)
    unexpected = [m for m in mismatches(plain, jitted) if excused(entries, m.test) is None]
    assert not unexpected, (
        f"{len(unexpected)} tests of {MODULES[name].tests} pass plain and not jitted "
        f"({mode}); a new finding for tests/realcode/FINDINGS.md:\n"
        + "\n".join(str(m) for m in unexpected[:20])
    )
    if mode == "jit":
        # Every module's functions are really jitted and called by its tests.
        called = [f for f in jitted.functions if f["called"]]
        assert called, f"{name}: none of the jitted functions was called"


_FINDINGS = [
    pytest.param(
        e,
        mode,
        id=f"{e.finding}-{mode}-{e.test.removeprefix(MODULES[e.module].tests + '.')}",
        marks=pytest.mark.xfail(strict=True, reason=f"{e.finding}: {e.reason}"),
    )
    for e in EXPECTED_ENTRIES
    if e.kind == "finding" and not e.flaky and MODULES[e.module].ci
    for mode in e.modes
]


@pytest.mark.parametrize(("entry", "mode"), _FINDINGS)
def test_a_listed_finding_still_fails(entry: Expected, mode: str) -> None:
    """Strict xfail: passes (so fails the suite) once the finding is fixed."""
    plain = _run(entry.module, "plain")
    jitted = _run(entry.module, mode)
    assert jitted.crashed is None
    tests = [t for t, outcome in plain.tests.items() if outcome == "pass" and entry.matches(t)]
    failing = [t for t in tests if jitted.tests.get(t) != "pass"]
    assert not failing, f"{len(failing)} of {len(tests)} still fail: {failing[:5]}"


def test_the_expected_file_names_real_tests() -> None:
    """Every entry of expected.toml matches tests that exist (and pass plain)."""
    for name in sorted({e.module for e in EXPECTED_ENTRIES if MODULES[e.module].ci}):
        plain = _run(name, "plain")
        passing = [t for t, outcome in plain.tests.items() if outcome == "pass"]
        for entry in (e for e in EXPECTED_ENTRIES if e.module == name):
            assert any(entry.matches(t) for t in passing), (
                f"{EXPECTED}: {entry.test} matches no test of {name} that passes plain"
            )
