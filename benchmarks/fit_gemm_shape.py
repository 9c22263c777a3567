"""How well the step formula's GEMM shape factor describes measured cuBLAS GEMMs, against a
factor of tokens x width (output tiles) in its place.

    python benchmarks/fit_gemm_shape.py [--dtype bf16]

Data: `simkit/data/measurements/kernels_h200_gemm.csv` (this project's H200: every weight GEMM
of a layer of Llama-3.1-8B, Llama-3.1-70B and Qwen2.5-7B as one GPU of tensor parallelism 1-8
runs it, 1-16,384 tokens). Each GEMM's time is modelled as the formula's weight-matmul term
prices it (`simkit.costs.compiled`: the longer of compute and weight streaming plus the
unhidden share of the shorter), plus a fixed latency per GEMM (its launch and ramp: what
the formula's per-layer cost carries), with

    compute = 2 m k n / (P x eta_c x g x m / (m + M_h) x S),
    stream  = k n x bytes / (B x eta_m x eta_w),

P, B, eta_c and eta_m the H200's catalog values, and the shape factor S either the formula's
width factor, w / (w + w_h) with w = d_model / TP (one width per layer, as the formula has
it), or a tiles factor, m w / (m w + A_h), which vanishes when a step has enough tokens to
fill the GPU whatever its shard. Each form's constants are fitted by least squares on log
time (scipy), and the errors (fitted / measured - 1) are printed overall, by tensor-parallel
degree and by token band; then the width form with the half-points held at `vllm`'s
(`--held M_h w_h`, default 16.3 and 262), and with no latency per GEMM.

What it shows on the shipped H200 file (bf16, 660 GEMMs): with a latency per GEMM (~4.5 us)
both shape factors fit to zero -- the longer of compute and streaming plus that latency
describes every GEMM at 7.5% median |error|, TP 8 at +1% signed -- while holding `vllm`'s
half-points makes TP-8 GEMMs 11% slow, and without the latency the shape factors must stand
in for it and fit at 19%. So what looks like a narrow-shard loss is mostly each GEMM's
fixed latency over a shorter GEMM, which the formula's per-layer cost carries. A study for a
future change to the formula's priors (every shipped profile would be refitted); the
shipped formula is not changed by it.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT / "simkit" / "data" / "measurements" / "kernels_h200_gemm.csv"
#: d_model of the models in the file (their Hugging Face configs)
D_MODEL = {"llama-3.1-8b": 4096, "llama-3.1-70b": 8192, "qwen2.5-7b": 3584}
BANDS = ((1, 16), (17, 256), (257, 2048), (2049, 16384))


def load(dtype: str) -> dict[str, np.ndarray]:
    with DATA.open() as f:
        rows = [r for r in csv.DictReader(f) if r["dtype"] == dtype]
    col = {c: np.array([float(r[c]) for r in rows]) for c in ("tokens", "k", "n", "seconds",
                                                              "tensor_parallel")}
    col["width"] = np.array([D_MODEL[r["model"]] / int(r["tensor_parallel"]) for r in rows])
    return col


def model_s(x, c, form, peak, bw, elem):
    """Seconds of each GEMM under constants x = (g, M_h, S_h, eta_w, f_s, latency)."""
    g, m_half, s_half, eta_w, f_s, lat = x
    m, w = c["tokens"], c["width"]
    shape = w / (w + s_half) if form == "width" else m * w / (m * w + s_half)
    comp = 2 * m * c["k"] * c["n"] / (peak * g * m / (m + m_half) * shape)
    stream = c["k"] * c["n"] * elem / (bw * eta_w)
    return np.maximum(comp, stream) + f_s * np.minimum(comp, stream) + lat


def fit(c, form, peak, bw, elem, held=None):
    """The constants (g, M_h, S_h, eta_w, f_s, latency) fitted by least squares on log
    time, those in `held` ({index: value}) held at their values."""
    from scipy.optimize import least_squares

    held = held or {}
    x0 = np.array([0.9, 16.0, 256.0 if form == "width" else 256.0 * 256, 0.95, 0.3, 3e-6])
    lo = np.array([0.1, 0.0, 0.0, 0.3, 0.0, 0.0])
    hi = np.array([1.5, 4096.0, 1e9, 1.5, 1.0, 1e-4])
    free = [i for i in range(len(x0)) if i not in held]
    scale = x0[free]

    def full(u):
        x = x0.copy()
        x[free] = u * scale
        for i, v in held.items():
            x[i] = v
        return x

    def resid(u):
        return np.log(model_s(full(u), c, form, peak, bw, elem) / c["seconds"])
    r = least_squares(resid, x0[free] / scale, bounds=(lo[free] / scale, hi[free] / scale))
    return full(r.x)


def stats(err) -> str:
    return (f"{np.median(np.abs(err)):6.1%} {np.median(err):+7.1%} "
            f"{err[np.argmax(np.abs(err))]:+8.1%} {len(err):5d}")


def main(argv=None) -> int:
    from simkit.catalog import load_hardware

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", choices=("bf16", "fp8"), default="bf16")
    ap.add_argument("--held", nargs=2, type=float, default=(16.3, 262.0),
                    metavar=("M_h", "w_h"), help="half-points held in the last fits")
    a = ap.parse_args(argv)
    hw = load_hardware("h200")
    peak = hw.peak_for(a.dtype) * hw.compute_efficiency
    bw = hw.memory_bandwidth_bytes_per_s * hw.memory_efficiency
    elem = 1 if a.dtype == "fp8" else 2
    c = load(a.dtype)
    print(f"{len(c['seconds'])} {a.dtype} GEMMs on an H200 ({DATA.name}); error = fitted / "
          f"measured - 1: median |err|, signed median, worst, n")
    names = ("g", "M_h", "S_h", "eta_w", "f_s", "latency_s")
    for form in ("width", "tiles"):
        x = fit(c, form, peak, bw, elem)
        err = model_s(x, c, form, peak, bw, elem) / c["seconds"] - 1
        print(f"\nshape factor: {form} -- " + ", ".join(f"{k} {v:.4g}" for k, v in zip(names, x)))
        print(f"  {'all':22} {stats(err)}")
        for tp in (1, 2, 4, 8):
            sel = c["tensor_parallel"] == tp
            print(f"  {'TP ' + str(tp):22} {stats(err[sel])}")
        for lo, hi in BANDS:
            sel = (c["tokens"] >= lo) & (c["tokens"] <= hi)
            print(f"  {f'{lo}-{hi} tokens':22} {stats(err[sel])}")
    for label, held in ((f"width, half-points held at {a.held[0]:g} and {a.held[1]:g}",
                         {1: a.held[0], 2: a.held[1]}), ("width, no latency per GEMM", {5: 0.0})):
        x = fit(c, "width", peak, bw, elem, held)
        err = model_s(x, c, "width", peak, bw, elem) / c["seconds"] - 1
        print(f"\nshape factor: {label} -- "
              + ", ".join(f"{k} {v:.4g}" for k, v in zip(names, x)))
        print(f"  {'all':22} {stats(err)}")
        for tp in (1, 2, 4, 8):
            sel = c["tensor_parallel"] == tp
            print(f"  {'TP ' + str(tp):22} {stats(err[sel])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
