"""`simkit calibrate`: time the numpy kernels on this machine and fit a hardware profile."""

from __future__ import annotations

import argparse

from simkit.commands._common import nonneg_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="time the numpy attention kernels here and fit a hardware profile",
        description="Time each architecture family's numpy kernel over a grid of lengths, fit "
                    "achieved FLOP/s, bytes/s and per-call overhead to the cost model, and "
                    "optionally write a hardware profile (TOML) that --hardware FILE accepts. "
                    "GPU timing is not implemented: this calibrates the CPU it runs on.")
    p.add_argument("--quick", action="store_true",
                   help="a smaller grid (under a minute on a 2-core machine)")
    p.add_argument("-o", "--output", metavar="PROFILE.toml",
                   help="write the calibrated hardware profile here")
    p.add_argument("--name", default="calibrated-cpu", help="profile name (default %(default)s)")
    p.add_argument("--seed", type=nonneg_int, default=0,
                   help="seed of the timed inputs (default 0)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from simkit.calibrate import profile
    from simkit.calibrate.calibration import run_calibration
    from simkit.commands._common import print_json

    if args.output is not None:
        profile.check_writable(args.output, "-o/--output")  # fail before minutes of timing
    result = run_calibration(quick=args.quick, progress=True, seed=args.seed)
    if args.output is not None:
        profile.write_profile(result, args.output, name=args.name)
    if args.json:
        print_json(result.to_dict())
        return 0
    _print_table(result, sys.stdout)
    if args.output is not None:
        print(f"\nwrote hardware profile {args.output} (use --hardware {args.output})")
    return 0


def _print_table(r, out) -> None:
    m = r.machine
    print(f"machine: {m.get('processor')}, {m.get('cores')} cores; BLAS {m.get('blas')} "
          f"{m.get('blas_version')} ({m.get('blas_threads')} threads, "
          f"{m.get('blas_architecture')}); numpy {m.get('numpy')}", file=out)
    print(f"numpy fp32 GEMM: {r.gemm_flops_per_s / 1e9:.1f} GFLOP/s   "
          f"array copy: {r.copy_bytes_per_s / 1e9:.1f} GB/s", file=out)
    print(f"\n{'family':<8} {'exponent (95% CI)':<22} {'GFLOP/s':>8} {'of GEMM':>8} "
          f"{'overhead':>10} {'held-out err':>13}", file=out)
    for fam, k in r.kernels.items():
        ci = f"{k.exponent:.2f} [{k.exponent_ci[0]:.2f}, {k.exponent_ci[1]:.2f}]"
        print(f"{fam:<8} {ci:<22} {k.flops_per_s / 1e9:>8.1f} {k.fraction_of_gemm:>8.1%} "
              f"{k.overhead_s * 1e3:>8.2f} ms {k.heldout_rel_error:>+12.1%}", file=out)
    d = r.decode
    print(f"\nfull-attention decode: {d.bytes_per_s / 1e9:.1f} GB/s of KV read "
          f"({d.memory_efficiency:.0%} of copy), overhead {d.overhead_s * 1e6:.0f} us/call, "
          f"exponent {d.exponent:.2f}, held-out error {d.heldout_rel_error:+.1%}", file=out)
    print(f"profile: compute_efficiency {r.compute_efficiency:.3f}, memory_efficiency "
          f"{d.memory_efficiency:.3f}, step_overhead_s {d.overhead_s:.3g}", file=out)
