"""Shared fixtures. Engineers append fixtures below; keep each one small and fast."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def run_cli():
    """Run `simkit ARGS...` in-process; returns exit code, stdout and stderr."""
    from simkit.cli import main

    def _run(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse exits
                code = e.code if isinstance(e.code, int) else 1
        return CliResult(code, out.getvalue(), err.getvalue())

    return _run


@pytest.fixture(scope="session")
def published():
    """Published reference figures (copied from the project's reference set, with sources)."""
    rows = json.loads((DATA / "published_reference.json").read_text())
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


#: test-only prices per GPU-hour (round numbers, not market figures): the catalog's dated
#: list prices arrive with `HardwareProfile.price_per_gpu_hour`; until then, and to keep
#: expectations independent of them, tests install these
TEST_PRICES = {"a100-80gb": 2.0, "h100-sxm": 4.0, "h200": 5.0, "mi300x": 4.5, "l4": 1.0,
               "a100-40gb": 1.5}


@pytest.fixture
def catalog_prices(monkeypatch):
    """The hardware catalog with `TEST_PRICES` as its list prices."""
    from dataclasses import replace

    import simkit.catalog.hardware as H

    for name, price in TEST_PRICES.items():
        hw = H.CATALOG[name]
        try:
            priced = replace(hw, price_per_gpu_hour=price, price_source="test price")
        except TypeError:  # the catalog has no price fields yet: add them to a copy
            priced = replace(hw)
            object.__setattr__(priced, "price_per_gpu_hour", price)
            object.__setattr__(priced, "price_source", "test price")
        monkeypatch.setitem(H.CATALOG, name, priced)
    return TEST_PRICES
