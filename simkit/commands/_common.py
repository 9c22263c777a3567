"""Helpers shared by subcommands: argument types that fail with one clear line, JSON output."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return v


def nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return v


def _jsonable(o: Any) -> Any:
    if hasattr(o, "to_dict"):
        return o.to_dict()
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=_jsonable, allow_nan=False)
    sys.stdout.write("\n")


def add_engine_option(p) -> None:
    """`--engine NAME|FILE`: the serving-engine profile (overrides hardware.engine)."""
    p.add_argument("--engine", default=None, metavar="NAME|FILE",
                   help="serving-engine profile: a name from `simkit engines` or an "
                   "ENGINE.toml (overrides the scenario's hardware.engine)")


def with_engine(scenario, engine: str | None):
    """The scenario with --engine applied (a file path is taken relative to the current
    folder, as every command-line path is); one line naming --engine if it is wrong."""
    if engine is None:
        return scenario
    from pathlib import Path

    from simkit.costs.engine import check_engine, engines

    value = engine
    if value not in engines() and (value.endswith(".toml") or Path(value).exists()):
        value = str(Path(value).resolve())
    check_engine(value, "--engine")
    return scenario.with_(**{"hardware.engine": value})


def add_scenario_options(p) -> None:
    """`--set KEY=VALUE` (repeatable) and `--engine NAME|FILE`: what-ifs on the scenario."""
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set",
                   help="change one scenario key for this run, e.g. --set "
                   "workload.arrival.rate=8 or --set serving.scheduler=chunked (dotted key, "
                   "TOML value; a bare word is a string; repeatable; checked like the file)")
    add_engine_option(p)


def load_scenario_args(args):
    """The scenario of `args.scenario` with its `--set`s and `--engine` applied."""
    from simkit.scenario import load_scenario

    return with_engine(load_scenario(args.scenario, getattr(args, "set", None) or ()),
                       getattr(args, "engine", None))



def hardware_option(value: str, option: str = "--hardware"):
    """The hardware profile an option names; its errors name the option (the catalog says
    `hardware:`)."""
    from simkit.catalog import load_hardware
    from simkit.errors import SimkitError

    try:
        return load_hardware(value)
    except SimkitError as e:
        raise SimkitError(*(f"{option}: {m.removeprefix('hardware: ')}" for m in e.messages)) \
            from None
