"""Shared fixtures, and `assert_same_run` (two simulations agree bit for bit). Engineers
append fixtures below; keep each one small and fast."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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


@pytest.fixture(scope="session")
def published_models():
    """Published total/active parameter counts of recent checkpoints, with their sources and
    counting conventions (tests/data/published_models.json), by id."""
    rows = json.loads((DATA / "published_models.json").read_text())
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="session")
def hf_config():
    """A Hugging Face config copy of tests/data/hf_configs (provenance in SOURCES.md) as a
    dict: `hf_config("openai__gpt-oss-20b.json")`."""
    def _load(name: str) -> dict:
        return json.loads((DATA / "hf_configs" / name).read_text())

    return _load


@pytest.fixture(scope="session")
def agrees_with_headline():
    return _agrees_with_headline


def _agrees_with_headline(got: float, text: str) -> bool:
    """Does a count agree with a published headline such as "20.91B" or "70B"? A headline
    with u = one unit of its last digit is either rounded (P - u/2 <= x < P + u/2) or
    truncated (P <= x < P + u): Meta writes 70.55B as "70B" and 405.85B as "405B", Qwen
    3.35B as "3.3B". Both readings are allowed, nothing wider."""
    num = text.rstrip("B").replace(",", "")
    decimals = len(num.split(".")[1]) if "." in num else 0
    p, u = float(num) * 1e9, 1e9 * 10.0 ** -decimals
    return p - u / 2 <= got < p + u


#: test-only prices per GPU-hour (round numbers, not market figures): tests install these so
#: their expectations do not depend on the catalog's dated list prices
TEST_PRICES = {"a100-80gb": 2.0, "h100-sxm": 4.0, "h200": 5.0, "mi300x": 4.5, "l4": 1.0,
               "a100-40gb": 1.5}


@pytest.fixture
def catalog_prices(monkeypatch):
    """The hardware catalog with `TEST_PRICES` as its list prices."""
    from dataclasses import replace

    import simkit.catalog.hardware as H

    for name, price in TEST_PRICES.items():
        hw = H.CATALOG[name]
        priced = replace(hw, price_per_gpu_hour=price, price_source="test price")
        monkeypatch.setitem(H.CATALOG, name, priced)
    return TEST_PRICES


#: summary figures that differ between two paths to the same run by design: the engine's
#: event count (a planned decode run is one event for many iterations)
PATH_FIGURES = frozenset({"events"})


def assert_same_run(a, b) -> None:
    """Two simulations of one scenario and seed (the fast path and one-iteration stepping,
    `fast=False`, or two implementations of one mechanism) agree bit for bit: every request
    column, every summary figure but `PATH_FIGURES`, every time series."""
    assert a.requests.keys() == b.requests.keys()
    for k, x in a.requests.items():
        assert np.array_equal(x, b.requests[k], equal_nan=x.dtype.kind == "f"), k
    assert a.summary.keys() == b.summary.keys()
    for k in a.summary.keys() - PATH_FIGURES:
        assert a.summary[k] == b.summary[k], k
    assert a.timeseries.keys() == b.timeseries.keys()
    for k, x in a.timeseries.items():
        assert np.array_equal(x, b.timeseries[k], equal_nan=True), k
