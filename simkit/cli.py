"""The `simkit` command line: argparse subcommands, heavy layers imported lazily.

Each subcommand lives in `simkit/commands/<name>.py` with `register(subparsers)` (adds its
parser, cheap imports only) and `run(args) -> int` (imports sympy/numpy/matplotlib inside).
A `SimkitError` anywhere becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from simkit import __version__
from simkit.errors import SimkitError

#: subcommand modules under simkit.commands, in the order `--help` lists them
COMMANDS = ("models", "hardware", "cost", "formula", "crossover", "calibrate", "fidelity",
            "simulate", "sweep", "plan", "report")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line with exit status 2 (no usage dump)."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="simkit", description="What long contexts cost: cost models, "
                     "request-stream simulation, calibration, capacity plans and PDF reports.")
    parser.add_argument("--version", action="version", version=f"simkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"simkit.commands.{name}")
        except ModuleNotFoundError as e:  # a command not built yet
            if e.name == f"simkit.commands.{name}":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if argv is None and len(sys.argv) == 1 else 2
    try:
        return int(args.func(args) or 0)
    except SimkitError as e:
        for line in e.messages:
            print(f"simkit {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"simkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
