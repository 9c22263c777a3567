"""`simkit engines`: the serving-engine profiles, with the data each was fitted on."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "engines", help="list serving-engine profiles and the data they were fitted on",
        description="List the serving-engine profiles `--engine` and hardware.engine accept: "
        "each one's constants (fractions of the hardware profile's rates, fixed costs in "
        "seconds), the measurements it was fitted on, their date and the fit's errors. "
        "`simkit calibrate --measurements FILE.csv -o ENGINE.toml` fits your own.")
    p.add_argument("engine", nargs="?", default=None, metavar="NAME|FILE",
                   help="show one profile (a name or an ENGINE.toml); default: all")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from simkit.commands._common import print_json
    from simkit.costs.engine import CONSTANTS, DEFAULT_ENGINE, engines, load_engine

    profs = [load_engine(args.engine)] if args.engine else list(engines().values())
    if args.json:
        print_json({"default": DEFAULT_ENGINE,
                    "engines": {p.name: p.to_dict() for p in profs}})
        return 0
    from simkit.costs.roofline import MOE_KERNEL_COSTS

    moe_costs = "; ".join(f"{cls} {lat * 1e6:.0f} us per layer + {b / 1e3:.0f} kB per "
                          f"token-expert slot" for cls, (lat, b) in MOE_KERNEL_COSTS.items())
    for i, p in enumerate(profs):
        if i:
            print()
        tag = " (default)" if p is engines().get(DEFAULT_ENGINE) else ""
        print(f"{p.name}{tag}: {p.description}")
        if p.engine_version:
            print(f"  engine version: {p.engine_version}")
        print(f"  fitted on: {p.source}")
        print(f"  data date: {p.data_date or 'n/a (no engine measurements)'}")
        if p.fit:
            print(f"  fit: {p.fit}")
        for k, (_, _, _, meaning) in CONSTANTS.items():
            v = getattr(p, k)
            shown = "the hardware profile's" if v is None else f"{v:.4g}"
            print(f"    {k:26} {shown:>22}  {meaning}")
        print(f"    {'moe_kernels':26} {'measured' if p.moe_kernels else 'off':>22}  "
              f"routed-expert layers: {moe_costs if p.moe_kernels else 'no kernel costs'}")
        print(f"    {'reserves_activations':26} {'yes' if p.reserves_activations else 'no':>22}  "
              + ("the KV cache gets the memory fraction less the weights and the "
                 "activations of a profiling pass" if p.reserves_activations else
                 "the memory fraction holds weights and KV cache only"))
        for gpu, factor in p.fp8_gemm_by_hardware:
            shown = f"x {factor:.4g} on {gpu}"
            print(f"    {'gemm_fp8_efficiency':26} {shown:>22}  this engine's fp8 GEMM kernels "
                  "on that GPU")
        if p.fp8_gemm_by_hardware:
            print(f"  fp8 GEMMs per GPU, from: {p.fp8_gemm_source}")
        errs = dict(p.errors)
        rows = sorted({k.rsplit(".", 1)[0] for k in errs})
        if rows:
            print("  errors (simkit / measured - 1): median |err|, signed median, worst")
            for r in rows:
                split, phase = r.rsplit(".", 1)
                print(f"    {split.replace('_', ' '):34} {phase:8} "
                      f"{errs.get(r + '.median_abs', float('nan')):6.1%} "
                      f"{errs.get(r + '.median', float('nan')):+7.1%} "
                      f"{errs.get(r + '.worst', float('nan')):+7.1%}")
    return 0
