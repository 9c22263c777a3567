"""Fit the routed-expert (MoE) kernel costs of `simkit.costs.roofline.MOE_KERNEL_COSTS`.

    PYTHONPATH=. python benchmarks/fit_moe_kernels.py

Data: NVIDIA's timings of one MoE layer (`simkit/data/measurements/
kernels_moe_aiconfigurator.csv`, see its README). Model of one layer on one GPU, per dtype
class of its expert GEMMs (16-bit, fp8, fp4):

  latency = max(W_touched / (0.9 x BW), F / R) + T_moe + tokens x k x B_slot / BW

W_touched = the weights of the experts the tokens touch (E (1 - (1 - k/E)^tokens) experts of
three h x f matrices, the gated FFN simkit counts), F = tokens x k x 6 h f FLOPs, BW the
datasheet bandwidth, R the hardware profile's best GEMM rate of the dtype (its measured
bf16 GEMM x 2 for fp8, x 4 x its FP4 factor for NVFP4: `simkit.catalog.hardware`). T_moe
and B_slot are fitted by least squares on relative error to the TensorRT-LLM rows of H200
and B200; the H100 rows and vLLM's fused MoE kernels are held out. Prints the constants and
the median errors with and without the two terms.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT / "simkit" / "data" / "measurements" / "kernels_moe_aiconfigurator.csv"
CLASS = {"bf16": "16-bit", "fp8": "fp8", "nvfp4": "fp4"}
FIT_ON = {("tensorrt-llm", "h200"), ("tensorrt-llm", "b200")}


def columns(rows: list[dict]) -> dict[str, np.ndarray]:
    """The model's inputs per row: streaming/GEMM time and the two terms' regressors."""
    from simkit.catalog import load_hardware
    from simkit.units import DTYPE_BYTES

    out: dict[str, list] = {k: [] for k in ("base_s", "one", "slot_per_byte", "latency_s")}
    for r in rows:
        hw = load_hardware(r["hardware"])
        bw = hw.memory_bandwidth_bytes_per_s
        t, h, f = int(r["tokens"]), int(r["hidden_size"]), int(r["expert_ffn"])
        e, k, d = int(r["experts"]), int(r["experts_per_token"]), r["dtype"]
        # the best GEMM of the dtype: the hardware's measured GEMM fraction of that peak,
        # FP4's own factor on top (engine factors left at 1)
        rate = hw.peak_for(d) * hw.compute_efficiency * hw.low_precision_factors(d, 1.0)[0]
        touched = e * (1 - (1 - k / e) ** t)
        stream_s = touched * 3 * h * f * DTYPE_BYTES[d] / (0.9 * bw)
        out["base_s"].append(max(stream_s, t * k * 6 * h * f / rate))
        out["one"].append(1.0)
        out["slot_per_byte"].append(t * k / bw)
        out["latency_s"].append(float(r["latency_ms"]) * 1e-3)
    return {k: np.array(v) for k, v in out.items()}


def fit(c: dict[str, np.ndarray]) -> tuple[float, float]:
    """(latency per layer in s, bytes per slot): least squares on relative error."""
    a = np.c_[c["one"], c["slot_per_byte"]] / c["latency_s"][:, None]
    y = (c["latency_s"] - c["base_s"]) / c["latency_s"]
    sol, *_ = np.linalg.lstsq(a, y, rcond=None)
    return float(sol[0]), float(sol[1])


def errors(c: dict[str, np.ndarray], latency_s: float, slot_bytes: float) -> np.ndarray:
    pred = c["base_s"] + latency_s * c["one"] + slot_bytes * c["slot_per_byte"]
    return pred / c["latency_s"] - 1.0


def main() -> int:
    with open(DATA, newline="") as f:
        rows = list(csv.DictReader(f))
    for dtype, cls in CLASS.items():
        mine = [r for r in rows if r["dtype"] == dtype]
        train = columns([r for r in mine if (r["engine"], r["hardware"]) in FIT_ON])
        lat, slot = fit(train)
        print(f"{cls:7s} ({dtype}): latency {lat * 1e6:.1f} us per layer, {slot / 1e3:.1f} kB "
              f"per slot; fitted on {len(train['one'])} TensorRT-LLM H200/B200 rows")
        groups = sorted({(r["engine"], r["hardware"]) for r in mine})
        for eng, hw in groups:
            c = columns([r for r in mine if (r["engine"], r["hardware"]) == (eng, hw)])
            err, bare = errors(c, lat, slot), c["base_s"] / c["latency_s"] - 1.0
            tag = "fitted" if (eng, hw) in FIT_ON else "held out"
            print(f"  {eng:13s} {hw:9s} {len(err):4d} rows ({tag}): median |error| "
                  f"{np.median(np.abs(err)):5.1%}, signed {np.median(err):+6.1%}; without the "
                  f"two terms {np.median(bare):+6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
