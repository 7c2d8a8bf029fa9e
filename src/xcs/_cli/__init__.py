"""The ``xcs`` command (also ``python -m xcs``).

    xcs demo [--sim] [--trace FILE]   the main job: ensemble + judge, in order and jitted
    xcs trace show FILE               the timeline and summary of a saved trace
    xcs doctor                        providers, SDKs, keys (present or not), local model
    xcs bench [--json FILE]           a quick benchmark, shipped in the package

Built on click, which only this package imports: ``import xcs`` never loads it.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Sequence

import click

__all__ = ["cli", "main"]


def _width() -> int:
    return shutil.get_terminal_size((120, 24)).columns


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="xcs-jit", prog_name="xcs")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log XCS's records to stderr, with their call ids (-v: info, -vv: debug).",
)
def cli(verbose: int) -> None:
    """XCS: compound AI programs as plain sequential Python, run concurrently."""
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(xcs_call_id)s] %(name)s: %(message)s")
        )
        logger = logging.getLogger("xcs")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


@cli.command(short_help="The main job: ensemble + judge, in order and jitted.")
@click.option("--sim", is_flag=True, help="Use the sim: simulator (no model; a few seconds).")
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the jitted run's Chrome/Perfetto trace to this file.",
)
@click.option("--width", type=click.IntRange(60, 400), default=None, help="Timeline width.")
@click.option(
    "--max-tokens",
    type=click.IntRange(1, 512),
    default=40,
    show_default=True,
    help="The longest answer, in tokens.",
)
def demo(sim: bool, trace_path: str | None, width: int | None, max_tokens: int) -> None:
    """Run an ensemble + judge pipeline in order and jitted, on the embedded local model."""
    from xcs._demo import main as run_demo
    from xcs.errors import ProviderError, ProviderNotInstalledError

    try:
        status = run_demo(
            sim=sim,
            trace_path=trace_path,
            width=width or _width(),
            max_tokens=max_tokens,
            echo=click.echo,
        )
    except ProviderNotInstalledError as exc:
        raise click.ClickException(f"{exc}\n(or run `xcs demo --sim` for the simulator)") from exc
    except ProviderError as exc:
        raise click.ClickException(
            f"the model failed: {exc}\n(`xcs doctor` checks the installation; on a busy "
            "machine `xcs demo --max-tokens 16` asks for less)"
        ) from exc
    sys.exit(status)


@cli.group(short_help="Show saved traces: xcs trace show FILE.")
def trace() -> None:
    """Read traces written by Trace.to_chrome (or xcs demo --trace)."""


@trace.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--width", type=click.IntRange(60, 400), default=None, help="Timeline width.")
@click.option("--max-rows", type=click.IntRange(1), default=200, show_default=True)
@click.option("--ascii", "ascii_only", is_flag=True, help="Draw bars with # and . only.")
def trace_show(file: str, width: int | None, max_rows: int, ascii_only: bool) -> None:
    """Print the timeline and the summary of a saved trace FILE."""
    from xcs._observe import Trace
    from xcs._observe._render import timeline
    from xcs.errors import ValidationError

    try:
        loaded = Trace.load(file)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(timeline(loaded, width=width or _width(), max_rows=max_rows, ascii_only=ascii_only))
    click.echo("")
    click.echo(str(loaded.summary()))


@cli.command(short_help="Providers, SDKs, keys (present or not), local model.")
def doctor() -> None:
    """Which providers, SDKs, keys (present or absent, never the value) and local
    model this installation can use."""
    from xcs._cli._doctor import report

    click.echo(report())


@cli.command(short_help="A quick benchmark of this installation.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the figures.")
@click.option("--full", is_flag=True, help="More repeats (slower, steadier).")
def bench(json_path: str | None, full: bool) -> None:
    """A quick benchmark of this installation (the full suite is bench/ in a checkout)."""
    from xcs._cli._bench import run, table

    rows = run(quick=not full)
    click.echo(table(rows))
    if json_path is not None:
        with open(json_path, "w", encoding="utf-8") as handle:
            json.dump({"rows": [r.to_json() for r in rows]}, handle, indent=2)
        click.echo(f"\nfigures written to {json_path}")
    missed = [r.name for r in rows if not r.met]
    if missed:
        click.echo(
            f"\nmissed: {', '.join(missed)} (a busy machine slows the ratios; run again, "
            "or bench/*.py in a checkout for the full comparison)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit status."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="xcs")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
