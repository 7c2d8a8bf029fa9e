"""The real-code differential suite: standard-library modules nobody on XCS wrote, with
every function jitted, run through their own unittest tests three ways (plain, jitted
as shipped, jitted under ``XCS_FORCE_OVERLAP=1``) and compared per test id.

``MODULES`` names the modules, the test module of each and what to patch;
``expected.toml`` (next to this file) lists the tests that may differ and why (a
documented limitation of ``xcs.jit``, or a finding of ``FINDINGS.md`` not fixed yet).
The pytest tests (``test_realcode.py``) run the ``ci`` subset; ``bench/realcode.py``
runs them all and writes ``bench/results/realcode.json``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RUNNER = HERE / "_runner.py"
EXPECTED = HERE / "expected.toml"
MODES = ("plain", "jit", "force")
JIT_MODES = ("jit", "force")


@dataclass(frozen=True)
class Module:
    """One module under test: its name, its tests, the modules jitted for them."""

    name: str
    tests: str
    patch: tuple[str, ...]
    ci: bool = True  # in the pytest (CI) subset
    only: tuple[str, ...] = ()  # test classes to run (all when empty)
    timeout: float = 600.0


MODULES: dict[str, Module] = {
    m.name: m
    for m in [
        Module("statistics", "test.test_statistics", ("statistics",)),
        Module("fractions", "test.test_fractions", ("fractions",)),
        Module("textwrap", "test.test_textwrap", ("textwrap",)),
        Module("difflib", "test.test_difflib", ("difflib",)),
        Module("shlex", "test.test_shlex", ("shlex",)),
        Module("configparser", "test.test_configparser", ("configparser",)),
        Module("json", "test.test_json", ("json", "json.decoder", "json.encoder", "json.scanner")),
        Module("colorsys", "test.test_colorsys", ("colorsys",)),
        Module("fnmatch", "test.test_fnmatch", ("fnmatch",)),
        Module("posixpath", "test.test_posixpath", ("posixpath", "genericpath")),
        Module("html.parser", "test.test_htmlparser", ("html", "html.parser")),
        Module("urllib.parse", "test.test_urlparse", ("urllib.parse",)),
        Module("ipaddress", "test.test_ipaddress", ("ipaddress",)),
        Module("calendar", "test.test_calendar", ("calendar",)),
        Module("graphlib", "test.test_graphlib", ("graphlib",)),
        Module("pprint", "test.test_pprint", ("pprint",)),
        Module("reprlib", "test.test_reprlib", ("reprlib",)),
        Module("base64", "test.test_base64", ("base64",)),
        Module("quopri", "test.test_quopri", ("quopri",)),
        Module("string", "test.test_string", ("string",)),
        Module("ntpath", "test.test_ntpath", ("ntpath",), ci=False),
        Module("heapq", "test.test_heapq", ("heapq",)),
        Module("bisect", "test.test_bisect", ("bisect",), ci=False),
        Module(
            "tomllib",
            "test.test_tomllib",
            ("tomllib", "tomllib._parser", "tomllib._re", "tomllib._types"),
        ),
        Module("argparse", "test.test_argparse", ("argparse",), ci=False),
        Module("copy", "test.test_copy", ("copy",)),
        Module("getopt", "test.test_getopt", ("getopt",), ci=False),
        Module("gettext", "test.test_gettext", ("gettext",)),
        Module("operator", "test.test_operator", ("operator",)),
        Module("functools", "test.test_functools", ("functools",)),
        Module("collections", "test.test_ordered_dict", ("collections",), ci=False),
        Module("enum", "test.test_enum", ("enum",), ci=False),
        Module("plistlib", "test.test_plistlib", ("plistlib",), ci=False),
        Module("netrc", "test.test_netrc", ("netrc",), ci=False),
        Module("mimetypes", "test.test_mimetypes", ("mimetypes",), ci=False),
        Module("sched", "test.test_sched", ("sched",), ci=False),
        Module("random", "test.test_random", ("random",), ci=False),
        Module("csv", "test.test_csv", ("csv",), ci=False),
        Module(
            "email",
            "test.test_email",
            (
                "email",
                "email._header_value_parser",
                "email._parseaddr",
                "email.base64mime",
                "email.feedparser",
                "email.header",
                "email.message",
                "email.quoprimime",
                "email.utils",
            ),
            ci=False,
        ),
        Module("ast", "test.test_ast", ("ast",), ci=False),
        Module("tokenize", "test.test_tokenize", ("tokenize",), ci=False),
        Module("_pydecimal", "test.test_decimal", ("_pydecimal",), ci=False),
        Module("pathlib", "test.test_pathlib", ("pathlib",), ci=False),
        Module("dataclasses", "test.test_dataclasses", ("dataclasses",), ci=False),
        Module("glob", "test.test_glob", ("glob",), ci=False),
        Module("uuid", "test.test_uuid", ("uuid",), ci=False),
        Module("optparse", "test.test_optparse", ("optparse",), ci=False),
        Module("cmd", "test.test_cmd", ("cmd",), ci=False),
        Module("http.cookies", "test.test_http_cookies", ("http.cookies",), ci=False),
        Module("http.cookiejar", "test.test_http_cookiejar", ("http.cookiejar",), ci=False),
        Module(
            "xml.dom.minidom",
            "test.test_minidom",
            ("xml.dom.minidom", "xml.dom.minicompat"),
            ci=False,
        ),
        Module("linecache", "test.test_linecache", ("linecache",), ci=False),
        Module("_py_abc", "test.test_abc", ("_py_abc",), ci=False),
        Module("contextlib", "test.test_contextlib", ("contextlib",), ci=False),
        Module("filecmp", "test.test_filecmp", ("filecmp",), ci=False),
        Module("fileinput", "test.test_fileinput", ("fileinput",), ci=False),
        Module("stringprep", "test.test_stringprep", ("stringprep",), ci=False),
        Module(
            "zoneinfo",
            "test.test_zoneinfo",
            ("zoneinfo._zoneinfo", "zoneinfo._common", "zoneinfo._tzpath"),
            ci=False,
        ),
        Module("queue", "test.test_queue", ("queue",), ci=False),
        Module("re", "test.test_re", ("re", "re._parser", "re._compiler", "re._casefix"), ci=False),
        Module(
            "xml.etree",
            "test.test_xml_etree",
            ("xml.etree.ElementTree", "xml.etree.ElementPath"),
            ci=False,
        ),
        Module("pickle", "test.test_pickle", ("pickle",), ci=False),
        Module("wave", "test.test_wave", ("wave",), ci=False),
        Module("zipfile", "test.test_zipfile", ("zipfile",), ci=False),
        Module("tarfile", "test.test_tarfile", ("tarfile",), ci=False),
        Module("tempfile", "test.test_tempfile", ("tempfile",), ci=False),
        Module("shutil", "test.test_shutil", ("shutil",), ci=False),
        Module("gzip", "test.test_gzip", ("gzip",), ci=False),
        Module("pickletools", "test.test_pickletools", ("pickletools",), ci=False),
        Module(
            "xml.sax",
            "test.test_sax",
            ("xml.sax", "xml.sax.saxutils", "xml.sax.expatreader", "xml.sax.handler"),
            ci=False,
        ),
        Module("dbm.dumb", "test.test_dbm_dumb", ("dbm.dumb",), ci=False),
        Module("aifc", "test.test_aifc", ("aifc",), ci=False),
        Module("robotparser", "test.test_robotparser", ("urllib.robotparser",), ci=False),
        Module("codeop", "test.test_codeop", ("codeop",), ci=False),
        Module("pstats", "test.test_pstats", ("pstats",), ci=False),
    ]
}


@dataclass(frozen=True)
class Expected:
    """A test allowed to differ from the plain run, and why."""

    module: str
    test: str
    modes: tuple[str, ...]
    kind: str  # "limitation" (documented, stays) or "finding" (a bug, FINDINGS.md)
    reason: str
    finding: str = ""
    flaky: bool = False  # depends on thread timing: tolerated, never a strict xfail

    def matches(self, test_id: str) -> bool:
        return fnmatch.fnmatchcase(test_id, self.test)


def load_expected(path: Path = EXPECTED) -> list[Expected]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    entries = []
    for raw in data.get("differs", []):
        modes = tuple(raw.get("modes", JIT_MODES))
        unknown = set(modes) - set(JIT_MODES)
        if unknown or raw.get("kind") not in ("limitation", "finding"):
            raise ValueError(
                f"{path}: bad entry {raw!r} (modes: jit/force; kind: limitation/finding)"
            )
        if raw["module"] not in MODULES:
            raise ValueError(f"{path}: unknown module {raw['module']!r}")
        if raw["kind"] == "finding" and not raw.get("finding"):
            raise ValueError(f"{path}: a finding entry names its finding id: {raw!r}")
        entries.append(
            Expected(
                raw["module"],
                raw["test"],
                modes,
                raw["kind"],
                raw["reason"],
                raw.get("finding", ""),
                bool(raw.get("flaky", False)),
            )
        )
    return entries


@dataclass
class Run:
    """One module run in one mode (the runner's JSON, or how the process failed)."""

    module: str
    mode: str
    tests: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    functions: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    crashed: str | None = None


def run(module: Module, mode: str, *, timeout: float | None = None) -> Run:
    """Run ``module``'s tests in ``mode`` in a fresh interpreter."""
    env = dict(os.environ)
    env.pop("XCS_FORCE_OVERLAP", None)
    if mode == "force":
        env["XCS_FORCE_OVERLAP"] = "1"
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with tempfile.TemporaryDirectory(prefix="xcs-realcode-") as tmp:
        out = Path(tmp) / "result.json"
        # Tests that write fixed names under the temporary directory (filecmp's
        # "dir-same"...) must not meet another mode's run of them (--jobs).
        env["TMPDIR"] = tmp
        command = [sys.executable, str(RUNNER), "--mode", mode, "--tests", module.tests]
        command += [f"--patch={p}" for p in module.patch]
        command += [f"--only={o}" for o in module.only]
        command += ["--out", str(out)]
        try:
            proc = subprocess.run(
                command,
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout or module.timeout,
            )
        except subprocess.TimeoutExpired:
            return Run(module.name, mode, crashed=f"timed out after {timeout or module.timeout}s")
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
            return Run(module.name, mode, crashed=f"exit {proc.returncode}: " + "\n".join(tail))
        data = json.loads(out.read_text(encoding="utf-8"))
    return Run(
        module.name,
        mode,
        data["tests"],
        data["details"],
        data["functions"],
        data["seconds"],
    )


def listed(entries: list[Expected], module: str, mode: str) -> list[Expected]:
    """The entries of ``module`` that apply in ``mode``."""
    return [e for e in entries if e.module == module and mode in e.modes]


def excused(entries: list[Expected], test_id: str) -> Expected | None:
    """The first entry whose pattern matches ``test_id``, if any."""
    return next((e for e in entries if e.matches(test_id)), None)


@dataclass(frozen=True)
class Mismatch:
    """A test that passed plain and did not pass jitted."""

    module: str
    test: str
    mode: str
    outcome: str  # what the jitted run gave (or "missing")
    detail: str

    def __str__(self) -> str:
        return f"[{self.mode}] {self.test}: {self.outcome}: {self.detail}"


def mismatches(plain: Run, jitted: Run) -> list[Mismatch]:
    found = []
    for test, outcome in sorted(plain.tests.items()):
        if outcome != "pass":
            continue
        got = jitted.tests.get(test, "missing")
        if got != "pass":
            detail = jitted.details.get(test, "")
            found.append(Mismatch(plain.module, test, jitted.mode, got, detail))
    return found


def function_counts(jitted: Run) -> dict[str, Any]:
    """How many functions were jitted, called, compiled, fell back (why), had regions."""
    rows = jitted.functions
    called = [r for r in rows if r["called"]]
    reasons = Counter(_reason_group(r["fallback"]) for r in called if r["fallback"])
    compiled = [r for r in called if not r["fallback"]]
    return {
        "jitted": len(rows),
        "called": len(called),
        "compiled": len(compiled),
        "fell_back": sum(reasons.values()),
        "fallback_reasons": dict(sorted(reasons.items())),
        "with_regions": sum(1 for r in compiled if r["regions"]),
        "regions": sum(r["regions"] for r in compiled),
        "regions_ran": sum(r["ran_regions"] for r in compiled),
    }


def _reason_group(reason: str) -> str:
    """A fallback reason without the names in it (so that reasons group)."""
    return reason.split(":")[0].split(" (")[0].strip()
