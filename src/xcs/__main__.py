"""``python -m xcs``: the command line (for now, ``demo``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xcs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the demo pipeline in order and concurrently")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from xcs._demo import main as demo

        return demo()
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
