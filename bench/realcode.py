"""The real-code differential suite, whole: standard-library modules with every function
jitted, run through their own tests plain, jitted, and jitted under
``XCS_FORCE_OVERLAP=1``; per test id, every test that passes plain must pass jitted.

The modules, and the tests allowed to differ (with the reason), are in
``tests/realcode/`` (``_suite.py``, ``expected.toml``); pytest runs a fast subset of
the same in CI (``tests/realcode/test_realcode.py``). This script runs them all, in
one fresh interpreter per module and mode, and writes per module: tests run and
passed per mode, mismatches (expected and not), and how many of the module's
functions were called, compiled, fell back (why) and had parallel regions.

Run::

    python bench/realcode.py                  # all modules: writes
                                              # bench/results/realcode.json and the
                                              # table in docs/reliability.md
    python bench/realcode.py json statistics  # some modules, writes nothing
    python bench/realcode.py --jobs 2         # two interpreters at a time

Exit status: 1 if a test that passes plain failed jitted and ``expected.toml`` does
not list it (or a listed finding now passes: remove its entry), else 0.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.realcode._suite import (
    JIT_MODES,
    MODES,
    MODULES,
    Run,
    excused,
    function_counts,
    listed,
    load_expected,
    mismatches,
    run,
)

from _report import markdown_table, update_docs_section, write_results

RELIABILITY_DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="module names (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="interpreters at a time")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown modules {unknown}; known: {', '.join(MODULES)}")
    names = args.modules or list(MODULES)
    expected = load_expected()

    jobs = [(name, mode) for name in names for mode in MODES]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        done = list(pool.map(lambda job: run(MODULES[job[0]], job[1]), jobs))
    runs: dict[tuple[str, str], Run] = {(r.module, r.mode): r for r in done}

    rows: list[dict[str, Any]] = []
    unexpected: list[str] = []
    for name in names:
        plain = runs[name, "plain"]
        row: dict[str, Any] = {"module": name, "tests": MODULES[name].tests}
        if plain.crashed:
            row["crashed"] = {"plain": plain.crashed}
            unexpected.append(f"{name} [plain] crashed: {plain.crashed}")
            rows.append(row)
            continue
        row["run"] = len(plain.tests)
        row["passed"] = {"plain": _passed(plain)}
        row["mismatches"] = {}
        row["expected_mismatches"] = {}
        row["functions"] = {}
        for mode in JIT_MODES:
            jitted = runs[name, mode]
            if jitted.crashed:
                row.setdefault("crashed", {})[mode] = jitted.crashed
                unexpected.append(f"{name} [{mode}] crashed: {jitted.crashed}")
                continue
            row["passed"][mode] = _passed(jitted)
            entries = listed(expected, name, mode)
            found = mismatches(plain, jitted)
            known = [m for m in found if excused(entries, m.test) is not None]
            new = [m for m in found if excused(entries, m.test) is None]
            row["mismatches"][mode] = [
                {"test": m.test, "outcome": m.outcome, "detail": m.detail} for m in new
            ]
            row["expected_mismatches"][mode] = {
                m.test: excused(entries, m.test).finding or "limitation"  # type: ignore[union-attr]
                for m in known
            }
            unexpected += [f"{name} {m}" for m in new]
            failing = {m.test for m in found}
            for entry in entries:
                if entry.kind != "finding" or entry.flaky:
                    continue
                tests = [t for t, o in plain.tests.items() if o == "pass" and entry.matches(t)]
                if tests and not failing.intersection(tests):
                    unexpected.append(
                        f"{name} [{mode}] {entry.test} passes now: {entry.finding} fixed? "
                        "remove its entry from tests/realcode/expected.toml"
                    )
            row["functions"][mode] = function_counts(jitted)
        row["seconds"] = {mode: round(runs[name, mode].seconds, 2) for mode in MODES}
        rows.append(row)

    for line in unexpected:
        print(line)
    totals = _totals(rows)
    report = _table(rows) + "\n\n" + _totals_text(totals)
    print(report)
    if not args.modules:
        write_results("realcode", {"totals": totals, "modules": rows, "unexpected": unexpected})
        update_docs_section(
            "realcode",
            report,
            title="Real-code differential suite: results",
            doc=RELIABILITY_DOC,
        )
    return 1 if unexpected else 0


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over the modules: tests, passes per mode, mismatches, functions (as shipped)."""
    ran = [row for row in rows if "run" in row]
    reasons: dict[str, int] = {}
    for row in ran:
        counts = row["functions"].get("jit", {})
        for reason, n in counts.get("fallback_reasons", {}).items():
            reasons[reason] = reasons.get(reason, 0) + n
    functions = {
        key: sum(row["functions"].get("jit", {}).get(key, 0) for row in ran)
        for key in ("jitted", "called", "compiled", "fell_back", "with_regions", "regions")
    }
    return {
        "modules": len(rows),
        "crashed": [row["module"] for row in rows if "crashed" in row],
        "tests": sum(row["run"] for row in ran),
        "passed": {mode: sum(row["passed"].get(mode, 0) for row in ran) for mode in MODES},
        "mismatches_unlisted": {
            mode: sum(len(row["mismatches"].get(mode, [])) for row in ran) for mode in JIT_MODES
        },
        "mismatches_listed": {
            mode: sum(len(row["expected_mismatches"].get(mode, {})) for row in ran)
            for mode in JIT_MODES
        },
        "functions": functions,
        "fallback_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
    }


def _totals_text(totals: dict[str, Any]) -> str:
    passed = totals["passed"]
    f = totals["functions"]
    lines = [
        f"{totals['modules']} modules, {totals['tests']} tests; passed plain "
        f"{passed['plain']}, jitted {passed['jit']}, forced {passed['force']}. Tests that "
        f"pass plain and not jitted: {totals['mismatches_listed']['jit']} as shipped and "
        f"{totals['mismatches_listed']['force']} forced, all listed in "
        f"`tests/realcode/expected.toml`; unlisted: {totals['mismatches_unlisted']['jit']} "
        f"and {totals['mismatches_unlisted']['force']}.",
        "",
        f"Functions (as shipped): {f['jitted']} jitted, {f['called']} called by the tests, "
        f"{f['compiled']} compiled ({f['with_regions']} with parallel regions, "
        f"{f['regions']} regions), {f['fell_back']} fell back:",
        "",
    ]
    lines.append(
        markdown_table(
            ["why a function runs as written", "functions"],
            list(totals["fallback_reasons"].items()) or [["(none)", 0]],
        )
    )
    return "\n".join(lines)


def _passed(r: Run) -> int:
    return sum(1 for outcome in r.tests.values() if outcome == "pass")


def _table(rows: list[dict[str, Any]]) -> str:
    headers = [
        "module",
        "tests",
        "pass plain",
        "pass jit",
        "pass forced",
        "mismatches (listed)",
        "functions called",
        "compiled",
        "fell back",
        "with regions",
    ]
    table = []
    for row in rows:
        if "run" not in row:
            table.append([row["module"], "crashed", *["-"] * (len(headers) - 2)])
            continue
        passed = row["passed"]
        counts = row["functions"].get("jit") or row["functions"].get("force") or {}
        known = sum(len(v) for v in row["expected_mismatches"].values())
        new = sum(len(v) for v in row["mismatches"].values())
        table.append(
            [
                row["module"],
                row["run"],
                passed["plain"],
                passed.get("jit", "crashed"),
                passed.get("force", "crashed"),
                f"{new} ({known})",
                counts.get("called", "-"),
                counts.get("compiled", "-"),
                counts.get("fell_back", "-"),
                counts.get("with_regions", "-"),
            ]
        )
    return markdown_table(headers, table)


if __name__ == "__main__":
    sys.exit(main())
