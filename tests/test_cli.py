"""The `xcs` command line, run as a subprocess the way people run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import xcs


def xcs_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xcs", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_help_lists_the_commands() -> None:
    proc = xcs_cli("--help")
    assert proc.returncode == 0
    for command in ("demo", "trace", "doctor", "bench"):
        assert f"  {command} " in proc.stdout


def test_the_console_script_is_installed() -> None:
    script = shutil.which("xcs", path=str(Path(sys.executable).parent))
    assert script is not None
    proc = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"xcs, version {xcs.__version__}"


def test_unknown_command_is_an_error() -> None:
    proc = xcs_cli("bogus")
    assert proc.returncode == 2
    assert "No such command 'bogus'" in proc.stderr


def test_doctor_reports_keys_present_or_absent_never_their_value() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["OPENAI_API_KEY"] = "sk-doctor-SECRET-value"
    proc = xcs_cli("doctor", env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "OPENAI_API_KEY set" in out
    assert "ANTHROPIC_API_KEY not set" in out
    assert "SECRET" not in out + proc.stderr
    for name in ("sim", "openai", "anthropic", "local", "local:smollm2", "libgomp"):
        assert f" {name} " in out


def test_trace_show(tmp_path: Path) -> None:
    model = xcs.models.bind("sim:chat?latency=0.02", temperature=0, cache=False)

    @xcs.jit
    def pipeline() -> str:
        answers = [model(f"q{i}") for i in range(3)]
        return model(" ".join(answers))

    # Overlap from the first call, whatever a probe on a busy machine would measure.
    for site in pipeline.__xcs_jit__.compiled().runtime.sites:  # type: ignore[attr-defined]
        site.record_probe(0.05, 0.0)
    with xcs.trace() as recorded:
        pipeline()
    path = recorded.to_chrome(tmp_path / "t.json")
    proc = xcs_cli("trace", "show", path, "--width", "100", "--ascii")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[2].startswith("region ")
    assert "test_trace_show.<locals>.pipeline:co" in lines[2]
    assert sum(ln.lstrip().startswith("task #") for ln in lines) == 3
    assert sum(ln.lstrip().startswith("model sim:chat") for ln in lines) == 4
    assert "peak concurrency   3 tasks, 3 model calls at once" in proc.stdout
    assert "█" not in proc.stdout


def test_trace_show_rejects_a_file_that_is_not_a_trace(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = xcs_cli("trace", "show", str(bad))
    assert proc.returncode == 1
    assert "is not JSON" in proc.stderr
    missing = xcs_cli("trace", "show", str(tmp_path / "missing.json"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


def test_bench_runs_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = xcs_cli("bench", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"].split(",")[0] for r in rows] == [
        "dispatch",
        "CPU-bound region (in order)",
        "I/O ensemble",
        "sim: model ensemble",
        "tracing",
    ]
    for row in rows:
        assert row["plain"] > 0
        assert row["xcs"] > 0
        assert row["ratio"] > 0
        assert 1 <= row["attempts"] <= 3
        assert row["name"] in proc.stdout
        # What XCS adds per call is printed beside every verdict.
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(row["name"]))
        assert (
            f"{row['per_call_us']:+.2f} µs" in line or f"{row['per_call_us'] / 1e3:+.2f} ms" in line
        )
        assert line.endswith(("met", "MISSED", "times)"))


def test_verbose_logs_with_call_ids() -> None:
    quiet = xcs_cli("demo", "--sim", "--width", "100")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    proc = xcs_cli("-v", "demo", "--sim", "--width", "100")
    assert proc.returncode == 0, proc.stderr
    runs = [ln for ln in proc.stderr.splitlines() if "xcs.demo: demo:" in ln]
    assert [ln.partition("xcs.demo: demo: ")[2].split(" run")[0] for ln in runs] == [
        "in-order",
        "first jitted",
        "second jitted",
    ]
    ids = [ln.split("[")[1].split("]")[0] for ln in runs]
    assert all(i != "-" for i in ids)
    assert len(set(ids)) == 3  # one correlation id per run
