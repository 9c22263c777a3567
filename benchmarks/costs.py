"""Configurations per second: the lambdified cost model over a numpy grid vs sympy
`subs().evalf()` one point at a time, measured in the same run.

    python benchmarks/costs.py [--points N]

Prints configurations/s for each path and their ratio, for every architecture.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from simkit.catalog import load_model
from simkit.costs import KINDS, ArchSpec, model_costs
from simkit.costs import symbols as S
from simkit.costs.compiled import _lambdify


def bench(kind: str, n_points: int, n_sympy: int) -> tuple[float, float]:
    m = load_model("llama-3-8b" if kind != "mla" else "deepseek-v2")
    mc = model_costs(m, ArchSpec.for_model(m, kind))
    expr = mc.prefill_flops
    f = _lambdify(mc, expr, S.n)
    grid = np.arange(1, n_points + 1, dtype=np.float64)
    f(grid[:10])  # warm
    t0 = time.perf_counter()
    reps = 5
    for _ in range(reps):
        vals = f(grid)
    fast = reps * n_points / (time.perf_counter() - t0)
    numeric = mc.numeric(expr)
    t0 = time.perf_counter()
    for x in range(1, n_sympy + 1):
        v = numeric.subs(S.n, x).evalf()
    slow = n_sympy / (time.perf_counter() - t0)
    assert float(v) == vals[n_sympy - 1] or abs(float(v) / vals[n_sympy - 1] - 1) < 1e-12
    return fast, slow


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--sympy-points", type=int, default=300)
    a = ap.parse_args()
    print(f"{'architecture':12} {'lambdified/s':>14} {'subs().evalf()/s':>17} {'ratio':>10}")
    for kind in KINDS:
        fast, slow = bench(kind, a.points, a.sympy_points)
        print(f"{kind:12} {fast:14.3g} {slow:17.3g} {fast / slow:10.0f}x")


if __name__ == "__main__":
    main()
