"""The `simkit` command line: argparse subcommands, heavy layers imported lazily.

Each subcommand lives in `simkit/commands/<name>.py` with `register(subparsers)` (adds its
parser, cheap imports only) and `run(args) -> int` (imports sympy/numpy/matplotlib inside).
A `SimkitError` anywhere becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
import warnings
from pathlib import Path

from simkit import __version__
from simkit.errors import SimkitError, SimkitWarning

#: subcommand modules under simkit.commands, in the order `--help` lists them
COMMANDS = ("models", "hardware", "engines", "cost", "formula", "crossover", "calibrate", "fidelity",
            "simulate", "sweep", "plan", "report")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line with exit status 2 (no usage dump)."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="simkit", description="What long contexts cost: cost models, "
                     "request-stream simulation, calibration, capacity plans and PDF reports.")
    parser.add_argument("--version", action="version", version=f"simkit {__version__}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="on an internal error, print the traceback")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"simkit.commands.{name}")
        except ModuleNotFoundError as e:  # a command not built yet
            if e.name == f"simkit.commands.{name}":
                continue
            raise
        mod.register(sub)
    for p in sub.choices.values():  # --debug also after the subcommand
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="on an internal error, print the traceback")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if argv is None and len(sys.argv) == 1 else 2
    debug = bool(getattr(args, "debug", False))
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        # each distinct SimkitWarning once, as one line; other libraries' warnings only
        # with --debug (they are ours to fix, not the user's to read)
        text = str(message)
        if issubclass(category, SimkitWarning):
            if text not in seen:
                seen.add(text)
                print(f"simkit {args.command}: warning: {text}", file=sys.stderr)
        elif debug:
            print(warnings.formatwarning(message, category, filename, lineno, line),
                  file=sys.stderr, end="")

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
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
        except Exception as e:  # noqa: BLE001 - the last resort: a bug, still one line
            if debug:
                traceback.print_exc()
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(f"simkit {args.command}: internal error: {type(e).__name__}: {e} (at "
                  f"{Path(where.filename).name}:{where.lineno}; run with --debug for the "
                  "traceback, and please report it)", file=sys.stderr)
            return 1


if __name__ == "__main__":
    raise SystemExit(main())
