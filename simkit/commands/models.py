"""`simkit models`: list the catalog models with their shapes and sources."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("models", help="list catalog models (with sources)",
                       description="List the catalog models, their shapes and sources.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from simkit.catalog.models import CATALOG
    from simkit.commands._common import print_json

    if args.json:
        print_json({k: v.to_dict() for k, v in CATALOG.items()})
        return 0
    from simkit.stack import describe

    print(f"{'name':18} {'layers':>6} {'d_model':>7} {'heads':>5} {'kv':>4} {'ctx':>8}  "
          f"{'weights':10}  {'layer stack':34}  source")
    for m in CATALOG.values():
        stack = describe(m.stack()).split(": ", 1)[1]  # "12 window(128) + 12 full"
        # as the checkpoint stores them ("bf16+mxfp4": routed experts in the second)
        weights = m.weight_dtype + (f"+{m.expert_weight_dtype}" if m.expert_weight_dtype
                                    else "")
        print(f"{m.name:18} {m.n_layers:>6} {m.d_model:>7} {m.n_heads:>5} {m.n_kv_heads:>4} "
              f"{m.max_context:>8}  {weights:10}  {stack:34}  {m.source}")
    return 0
