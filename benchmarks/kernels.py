"""Each kernel's achieved FLOP/s as a fraction of numpy's own GEMM, measured in the same run.

    python benchmarks/kernels.py [--n 2048 4096] [--heads 8] [--head-dim 128] [--repeats 5]

The baseline is a square fp32 matrix product (2 s^3 FLOPs) timed right before the kernels, on
the same threads. Two rates per kernel: on the cost model's FLOP count (causal pairs only) and
on what the kernel actually multiplies (simkit.calibrate.counts.kernel_flops). Times are the
fastest of the repeats (the least disturbed by other processes). Aim: full attention at >= 50%
of GEMM for n >= 2048 (model FLOPs).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from simkit.calibrate import counts, kernels, timing
from simkit.calibrate.calibration import _prefill_call
from simkit.calibrate.counts import KernelShape


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2048, 4096])
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gemm-size", type=int, default=2048)
    ap.add_argument("--families", nargs="+", default=list(kernels.FAMILIES))
    a = ap.parse_args()
    sh = replace(KernelShape(), heads=a.heads, d_qk=a.head_dim, d_v=a.head_dim)
    info = timing.blas_info()
    print(f"# {info['processor']}, {info['cores']} cores, {info['blas']} {info['blas_version']} "
          f"({info['blas_threads']} threads), numpy {info['numpy']}")
    gemm, gt = timing.gemm_flops_per_s(a.gemm_size, repeats=a.repeats)
    print(f"# baseline: numpy fp32 GEMM {a.gemm_size}^3 = {gemm / 1e9:.1f} GFLOP/s "
          f"(spread {gt.rel_spread:.1%})")
    print(f"# heads={sh.heads} d={sh.d_qk} window={sh.window} globals={sh.global_tokens} "
          f"memory={sh.memory_slots}x{sh.segment} linear_chunk={sh.linear_chunk} "
          f"ssm d_inner={sh.d_inner} N={sh.d_state}")
    print(f"{'family':<8} {'n':>6} {'time':>10} {'model GF/s':>11} {'of GEMM':>8} "
          f"{'kernel GF/s':>12} {'of GEMM':>8} {'spread':>7}")
    for fam in a.families:
        for n in a.n:
            t = timing.time_call(_prefill_call(fam, n, sh, 0), warmup=1, repeats=a.repeats)
            mf = counts.model_flops(fam, n, sh) / t.min_s
            kf = counts.kernel_flops(fam, n, sh) / t.min_s
            print(f"{fam:<8} {n:>6} {t.min_s * 1e3:>8.1f}ms {mf / 1e9:>11.1f} {mf / gemm:>8.1%} "
                  f"{kf / 1e9:>12.1f} {kf / gemm:>8.1%} {t.rel_spread:>7.1%}")


if __name__ == "__main__":
    main()
