"""One module per `simkit` subcommand: `register(subparsers)` and `run(args) -> int`.

Modules import only the standard library at top level so `simkit --help` stays fast; the
heavy layers (sympy, numpy, scipy, matplotlib) are imported inside `run`.
"""
