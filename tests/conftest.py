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
