"""`simkit crossover MODEL --a ARCH --b ARCH --quantity Q`: where two costs cross."""

from __future__ import annotations

from simkit.commands._arch_args import KINDS, add_arch_options


def register(sub) -> None:
    p = sub.add_parser("crossover", help="length where two architectures' costs cross",
                       description="Solve where QUANTITY of architecture A equals that of "
                       "B on MODEL (e.g. full vs linear prefill FLOPs).")
    p.add_argument("model")
    p.add_argument("--a", required=True, choices=KINDS, help="first architecture")
    p.add_argument("--b", required=True, choices=KINDS, help="second architecture")
    p.add_argument("--quantity", default="attention_prefill_flops")
    p.add_argument("--json", action="store_true")
    add_arch_options(p, attention=False)
    p.set_defaults(func=run)


def run(args) -> int:
    from simkit.catalog import load_model
    from simkit.commands._arch_args import arch_from_args
    from simkit.commands._common import print_json
    from simkit.costs.analysis import QUANTITIES, crossover
    from simkit.errors import SimkitError

    if args.quantity not in QUANTITIES:
        raise SimkitError(f"--quantity: unknown quantity {args.quantity!r}; choose one of "
                          f"{', '.join(QUANTITIES)}")
    model = load_model(args.model)
    arch_a = arch_from_args(model, args, attention=args.a, attention_option="--a")
    arch_b = arch_from_args(model, args, attention=args.b, attention_option="--b")
    res = crossover(model, arch_a, arch_b, args.quantity)
    if args.json:
        print_json(res.to_dict())
        return 0
    print(f"{model.name}: {args.quantity} of {args.a} vs {args.b}")
    if not res.lengths:
        print(f"  {res.note}; cheaper: "
              f"{ {'a': args.a, 'b': args.b, 'equal': 'neither (equal)'}[res.cheaper_below] }")
        return 0
    below = {"a": args.a, "b": args.b, "equal": "neither (equal)"}[res.cheaper_below]
    print(f"  cheaper below the first crossover: {below}")
    for n in res.lengths:
        print(f"  costs cross between {res.length_symbol} = {n - 1} and {n}")
    for e in res.exact:
        print(f"  exact root of the active branch: {e}")
    return 0
