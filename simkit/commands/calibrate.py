"""`simkit calibrate`: time the numpy kernels on this machine and fit a hardware profile; with
`--measurements FILE.csv`, fit a serving-engine profile to measured step times instead."""

from __future__ import annotations

import argparse

from simkit.commands._common import nonneg_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="fit a hardware profile (numpy kernels timed here) or, with "
        "--measurements, an engine profile (measured step times)",
        description="Without --measurements: time each architecture family's numpy kernel "
                    "over a grid of lengths, fit achieved FLOP/s, bytes/s and per-call "
                    "overhead to the cost model, and optionally write a hardware profile (TOML) "
                    "that --hardware FILE accepts (GPU timing is not implemented: this "
                    "calibrates the CPU it runs on). With --measurements FILE.csv (columns "
                    "model,hardware,tensor_parallel,phase,batch_size,prompt_tokens,"
                    "context_tokens,seconds): fit a serving-engine profile's constants by "
                    "least squares on log time, report in-sample and held-out errors per phase "
                    "(5-fold, leave one model / TP degree / GPU out), and write it with -o "
                    "ENGINE.toml for --engine / hardware.engine.")
    p.add_argument("--measurements", metavar="FILE.csv", default=None,
                   help="measured prefill/decode step times: fit an engine profile to them")
    p.add_argument("--quick", action="store_true",
                   help="a smaller grid (under a minute on a 2-core machine)")
    p.add_argument("-o", "--output", metavar="PROFILE.toml",
                   help="write the calibrated hardware profile (or, with --measurements, "
                   "the engine profile) here")
    p.add_argument("--name", default=None, help="profile name (default calibrated-cpu; with "
                   "--measurements, the output file's stem)")
    p.add_argument("--seed", type=nonneg_int, default=None,
                   help="seed of the timed inputs (default 0)")
    p.add_argument("--max-heldout-error", type=_fraction, default=None,
                   metavar="F", help="with --measurements: refuse to write a profile whose "
                   "held-out median |error| (5-fold, leave one model out, leave one TP degree "
                   "out; any phase) exceeds F (default 0.15, "
                   "simkit.calibrate.engine_fit.HELDOUT_THRESHOLD)")
    p.add_argument("--force", action="store_true",
                   help="with --measurements: write the profile even above that threshold")
    p.add_argument("--reserves-activations", action="store_true",
                   help="with --measurements: the measured engine sizes its KV cache after "
                   "a profiling pass's activations (vLLM, TensorRT-LLM; step times cannot "
                   "show it, so the profile says it: reserves_activations)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=run)


def _fraction(text: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (0 < v < 10):
        raise argparse.ArgumentTypeError(f"must be a fraction > 0 (0.15 = 15%), got {text!r}")
    return v


def run(args: argparse.Namespace) -> int:
    import sys

    from simkit.calibrate import profile
    from simkit.calibrate.calibration import run_calibration
    from simkit.commands._common import print_json
    from simkit.errors import SimkitError

    if args.measurements is not None:
        return _run_measurements(args)
    for opt, v in (("--force", args.force),
                   ("--max-heldout-error", args.max_heldout_error is not None),
                   ("--reserves-activations", args.reserves_activations)):
        if v:
            raise SimkitError(f"{opt}: applies with --measurements only")
    if args.output is not None:
        profile.check_writable(args.output, "-o/--output")  # fail before minutes of timing
    result = run_calibration(quick=args.quick, progress=True,
                             seed=0 if args.seed is None else args.seed)
    if args.output is not None:
        profile.write_profile(result, args.output, name=args.name or "calibrated-cpu")
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


def _run_measurements(args: argparse.Namespace) -> int:
    """Fit an engine profile to measured step times; write it only if it predicts held-out
    measurements within the threshold (or with --force)."""
    import os
    from pathlib import Path

    from simkit.calibrate.engine_fit import HELDOUT_THRESHOLD, calibrate_engine
    from simkit.calibrate.measurements import Design, read_measurements
    from simkit.calibrate.profile import check_writable
    from simkit.commands._common import print_json
    from simkit.costs.engine import ROOFLINE, engine_to_toml
    from simkit.errors import SimkitError

    for opt, v in (("--quick", args.quick), ("--seed", args.seed is not None)):
        if v:
            raise SimkitError(f"{opt}: applies to kernel timing, not with --measurements")
    from dataclasses import replace

    if args.output is not None:
        check_writable(args.output, "-o/--output")  # before the fit
    if args.max_heldout_error is None:
        args.max_heldout_error = HELDOUT_THRESHOLD
    name = args.name or (Path(args.output).stem if args.output else "calibrated-engine")
    measurements = read_measurements(args.measurements)
    base = replace(ROOFLINE, reserves_activations=bool(args.reserves_activations))
    cal = calibrate_engine(Design(measurements), base, name,
                           description=f"fitted by simkit calibrate --measurements "
                           f"{Path(args.measurements).name}",
                           source=f"{len(measurements)} measured steps in {args.measurements}",
                           threshold=args.max_heldout_error)
    worst, split, phase = cal.worst_heldout()
    refuse = args.output is not None and not cal.passes() and not args.force
    if args.output is not None and not refuse:
        out = Path(args.output)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(engine_to_toml(cal.profile))
        os.replace(tmp, out)
    if args.json:
        d = cal.to_dict()
        d["written"] = None if args.output is None or refuse else str(args.output)
        print_json(d)
    else:
        _print_engine_fit(cal, args)
    if refuse:
        raise SimkitError(f"held-out median |error| {worst:.1%} ({split}, {phase}) exceeds "
                          f"--max-heldout-error {args.max_heldout_error:.0%}: not writing "
                          f"{args.output} (--force writes it anyway)")
    return 0


def _print_engine_fit(cal, args) -> None:
    from simkit.costs.engine import CONSTANTS

    p = cal.profile
    print(f"engine profile {p.name}: fitted to {cal.measurements} measurements "
          f"({args.measurements})")
    for k, (_, _, _, meaning) in CONSTANTS.items():
        print(f"  {k:26} {getattr(p, k):>11.4g}  {meaning}")
    print("\nerrors = simkit / measured - 1   median |err|  signed median    worst      n")
    rows = [("in-sample", cal.in_sample), *cal.heldout.items()]
    for split, by in rows:
        for phase, st in by.items():
            print(f"  {split:24} {phase:8} {st.median_abs:10.1%} {st.median:+13.1%} "
                  f"{st.worst:+9.1%} {st.n:6d}")
    for split, why in cal.skipped.items():
        print(f"  {split:24} not run: {why}")
    worst, split, phase = cal.worst_heldout()
    verdict = "within" if cal.passes() else "ABOVE"
    print(f"\nworst held-out median |error|: {worst:.1%} ({split}, {phase}), {verdict} the "
          f"{cal.threshold:.0%} threshold (k-fold, leave one model out, leave one TP degree out)")
    for note in cal.notes:
        print(f"note: {note}")
    if args.output is not None and (cal.passes() or args.force):
        print(f"wrote engine profile {args.output} (use --engine {args.output})")
