"""Shared helpers for benchmarks: machine info, the JSON results file, the docs table.

Every benchmark in ``bench/`` ends the same way: it writes its figures to
``bench/results/<name>.json`` (with the machine and the date, so a figure is never
read without its context) and replaces its own section of ``docs/benchmarks.md``,
the part between ``<!-- bench:<name>:start -->`` and ``<!-- bench:<name>:end -->``.
Text outside the markers is written by hand and never touched.

Example::

    from _report import markdown_table, update_docs_section, write_results

    write_results("scheduler", {"overhead": rows})
    update_docs_section("scheduler", markdown_table(["approach", "µs"], table_rows))
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "BENCHMARKS_DOC",
    "RESULTS_DIR",
    "machine_info",
    "markdown_table",
    "update_docs_section",
    "utc_now",
    "write_results",
]

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
BENCHMARKS_DOC = BENCH_DIR.parent / "docs" / "benchmarks.md"


def utc_now() -> str:
    """The current time in UTC, ISO 8601 to the second (``2025-01-31T12:00:00+00:00``)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def machine_info() -> dict[str, Any]:
    """What a reader needs to judge a figure: cores, Python, platform.

    ``usable_cpus`` differs from ``cpu_count`` in a container or under ``taskset``;
    it is the number that bounds parallel CPU work.
    """
    sched_getaffinity = getattr(os, "sched_getaffinity", None)
    usable = len(sched_getaffinity(0)) if sched_getaffinity is not None else os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


# ---------------------------------------------------------------------------
# The results file


def write_results(
    name: str, figures: Mapping[str, Any], *, results_dir: Path = RESULTS_DIR
) -> Path:
    """Write ``figures`` to ``<results_dir>/<name>.json`` with the machine and the date.

    The file is written to ``<name>.json.tmp`` and renamed into place, so an
    interrupted run never leaves half a file where the last good results were.

    Args:
        name: the benchmark's name; also the file's stem.
        figures: JSON-serialisable results. Keys ``name``, ``date`` and ``machine``
            are added by this function and must not be in ``figures``.
        results_dir: where to write (default: ``bench/results``).

    Returns:
        The path of the written file.

    Raises:
        ValueError: ``figures`` uses one of the reserved keys.
        TypeError: ``figures`` is not JSON-serialisable.
        OSError: the file could not be written.
    """
    reserved = {"name", "date", "machine"} & figures.keys()
    if reserved:
        raise ValueError(f"figures must not use the reserved keys {sorted(reserved)}")
    document = {"name": name, "date": utc_now(), "machine": machine_info(), **figures}
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    _replace_text(path, text)
    return path


# ---------------------------------------------------------------------------
# The docs section


def markdown_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    align: Sequence[str] | None = None,
) -> str:
    """A GitHub-flavoured Markdown table; cells are ``str()``-ed, ``|`` is escaped.

    Args:
        headers: the column titles.
        rows: one sequence of cells per row, each as long as ``headers``.
        align: per column, ``"l"`` or ``"r"`` (default: first column left, the rest
            right, which suits a label followed by figures).

    Returns:
        The table, without a trailing newline.

    Raises:
        ValueError: a row or ``align`` is not as long as ``headers``.
    """
    width = len(headers)
    if align is None:
        align = ["l"] + ["r"] * (width - 1)
    if len(align) != width:
        raise ValueError(f"align has {len(align)} entries for {width} columns")
    rule = {"l": ":--", "r": "--:"}
    lines = [_table_line(headers), "| " + " | ".join(rule[a] for a in align) + " |"]
    for row in rows:
        if len(row) != width:
            raise ValueError(f"row {list(row)!r} has {len(row)} cells for {width} columns")
        lines.append(_table_line(row))
    return "\n".join(lines)


def _table_line(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def update_docs_section(
    name: str,
    body: str,
    *,
    title: str | None = None,
    doc: Path = BENCHMARKS_DOC,
) -> Path:
    """Replace what lies between the ``bench:<name>`` markers of ``doc`` with ``body``.

    A missing section is appended at the end of the file, under a ``## <title>``
    heading; a missing file is created with a ``# Benchmarks`` heading.

    Args:
        name: the benchmark's name, as in the markers.
        body: Markdown to put between the markers.
        title: the heading of a section created here (default: ``name``).
        doc: the Markdown file (default: ``docs/benchmarks.md``).

    Returns:
        The path of the updated file.

    Raises:
        ValueError: the markers are there but broken (an end without its start, or
            in the wrong order, or twice): fix the file by hand rather than guess.
        OSError: the file could not be read or written.
    """
    start = f"<!-- bench:{name}:start -->"
    end = f"<!-- bench:{name}:end -->"
    section = f"{start}\n{body.strip()}\n{end}"
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    starts, ends = text.count(start), text.count(end)
    if starts == 0 and ends == 0:
        text = f"{text.rstrip()}\n\n## {title or name}\n\n{section}\n"
    elif starts == 1 and ends == 1 and text.index(start) < text.index(end):
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section + after
    else:
        raise ValueError(
            f"{doc}: the markers of section {name!r} are broken "
            f"({starts} start, {ends} end); expected one {start} before one {end}"
        )
    doc.parent.mkdir(parents=True, exist_ok=True)
    _replace_text(doc, text)
    return doc


def _replace_text(path: Path, text: str) -> None:
    # Write then rename: readers see the old file or the new one, never half of one.
    # A crash in between leaves a ".tmp" file (git-ignored under bench/results).
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
