"""`simkit formula MODEL`: the sympy expressions, plain text or LaTeX, with big-O in n."""

from __future__ import annotations

from simkit.commands._arch_args import add_arch_options
from simkit.commands._common import positive_int


def register(sub) -> None:
    p = sub.add_parser("formula", help="the closed-form cost expressions",
                       description="Print the symbolic cost expressions of MODEL's "
                       "architecture: per layer and whole model, symbolic and with the "
                       "model's numbers, and the big-O of time and cache in n.")
    p.add_argument("model")
    p.add_argument("--quantity", default=None, help="one quantity (default: all but the "
                   "step times): params, weight_bytes, streamed_weight_bytes, prefill_flops, "
                   "attention_prefill_flops, "
                   "decode_flops, attention_decode_flops, cache_bytes, decode_bytes; or "
                   "decode_step_time / prefill_time: THE step-time formula with the hardware's "
                   "and the engine's terms as symbols (--hardware, --gpus, --engine)")
    p.add_argument("--hardware", default=None,
                   help="step times: catalog name or profile .toml (default h100-sxm)")
    p.add_argument("--gpus", type=positive_int, default=None,
                   help="step times: tensor-parallel GPUs (default 1)")
    p.add_argument("--engine", default=None, metavar="NAME|FILE",
                   help="step times: serving-engine profile (default: the default engine)")
    p.add_argument("--ideal", action="store_true",
                   help="step times: the pure roofline (efficiencies 1, no overheads)")
    p.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")
    p.add_argument("--wrt", metavar="SYMBOL", default=None,
                   help="also print d(quantity)/d(SYMBOL) and the elasticity at the model's "
                   "values (e.g. --wrt n, --wrt H_kv); needs --quantity")
    p.add_argument("--seq", type=positive_int, default=2048,
                   help="length n or t at which --wrt is evaluated (default 2048)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_arch_options(p)
    p.set_defaults(func=run)


#: step-time quantities: name -> (StepTime attribute, length symbol, unit)
STEP_QUANTITIES = {
    "decode_step_time": ("decode", "t", "seconds per decode step of b sequences at context t"),
    "prefill_time": ("prefill", "n", "seconds to prefill b prompts of n tokens each"),
}


def step_formulas(model, arch, hw, gpus=1, engine=None, ideal=False, quantity=None,
                  latex=False) -> dict:
    """THE step-time formula, symbolic and with the numbers of hw / engine / gpus."""
    import sympy as sp

    from simkit.costs import steptime
    from simkit.costs.symbols import MEANING

    st = steptime.step_time_exprs(model, arch, hw, gpus=gpus, engine=engine, ideal=ideal)
    show = sp.latex if latex else sp.sstr
    names = [quantity] if quantity else list(STEP_QUANTITIES)
    out: dict = {"quantities": {}, "symbols": {}}
    used: set = set()
    for q in names:
        which, var, unit = STEP_QUANTITIES[q]
        expr = getattr(st, which)
        idx = 0 if which == "decode" else 1
        out["quantities"][q] = {
            "unit": unit, "length": var, "batch": "b", "symbolic": show(expr),
            "numeric": show(sp.N(st.numeric(expr), 6)),
            "terms": {k: show(v[idx]) for k, v in st.terms.items()}}
        used |= expr.free_symbols
    for sym in sorted(used, key=str):
        val = st.values.get(sym)
        out["symbols"][str(sym)] = {
            "meaning": steptime.MEANING.get(sym, MEANING.get(sym, "")),
            "value": float(val) if val is not None else None}
    return out


def formulas(model, arch, quantity=None, latex=False) -> dict:
    """The expressions of `quantity` (all when None): whole model, each layer group's term
    (a model is a per-group sum), and with the model's numbers."""
    import sympy as sp

    from simkit.costs import model_costs
    from simkit.costs import symbols as S
    from simkit.costs.analysis import QUANTITIES, quantity_expr
    from simkit.costs.model import symbol_meaning

    mc = model_costs(model, arch)
    names = [quantity] if quantity else list(QUANTITIES)
    show = sp.latex if latex else sp.sstr
    notes = sorted({g.mixer.prefill_note for g in mc.groups
                    if g.mixer is not None and g.mixer.prefill_note})
    out = {"model": model.name, "attention": mc.arch.attention,
           "layers": mc.arch.describe(),
           "big_o": {"time": mc.big_o_time, "cache": mc.big_o_cache},
           "prefill_note": "; ".join(notes), "quantities": {}, "symbols": {},
           "groups": [{"label": g.label, "layers": g.count, "count_symbol": str(g.count_symbol)}
                      for g in mc.groups]}
    used = set()
    for q in names:
        expr, var = quantity_expr(mc, q)
        num = mc.numeric(expr)
        numeric = sp.nsimplify(num) if not num.has(sp.Piecewise, sp.Min, sp.Mod) else num
        entry = {"unit": QUANTITIES[q][2], "length": str(var) if var is not None else None,
                 "symbolic": show(expr), "numeric": show(numeric)}
        if len(mc.groups) > 1:
            entry["per_group"] = [
                {"group": g.label, "layers": g.count, "term": show(g.terms[q]),
                 "numeric": show(mc.numeric(g.terms[q]))}
                for g in mc.groups if q in g.terms and g.terms[q] != 0]
            for g in mc.groups:
                used |= sp.sympify(g.terms.get(q, 0)).free_symbols
        mixer = mc.mixer
        per_layer = {"attention_prefill_flops": lambda m: m.core_prefill_flops,
                     "attention_decode_flops": lambda m: m.core_decode_flops,
                     "cache_bytes": lambda m: m.cache_elems * S.beta_kv,
                     "params": lambda m: m.params}
        if len(mc.groups) == 1 and mixer is not None and q in per_layer:
            one = sp.sympify(per_layer[q](mixer))
            entry["per_layer_mixer"] = show(one)
            used |= one.free_symbols
        out["quantities"][q] = entry
        used |= expr.free_symbols
    for sym in sorted(used, key=str):
        name = str(sym)
        meaning = symbol_meaning(mc, name)
        val = mc.values.get(sym)
        out["symbols"][name] = {"meaning": meaning,
                                "value": float(val) if val is not None else None}
    return out


def run(args) -> int:
    from simkit.catalog import load_model
    from simkit.commands._arch_args import arch_from_args
    from simkit.commands._common import print_json

    from simkit.errors import SimkitError

    if args.wrt is not None and not args.quantity:
        raise SimkitError("--wrt: give the --quantity to differentiate")
    model = load_model(args.model)
    arch = arch_from_args(model, args)
    step_options = [o for o, v in (("--hardware", args.hardware), ("--gpus", args.gpus),
                                   ("--engine", args.engine), ("--ideal", args.ideal or None))
                    if v is not None]
    if step_options and args.quantity not in STEP_QUANTITIES:
        raise SimkitError(f"{step_options[0]}: applies to the step times (--quantity "
                          f"{' or '.join(STEP_QUANTITIES)}); the other quantities do not "
                          "depend on the hardware")
    if args.hardware is None:
        args.hardware = "h100-sxm"
    if args.gpus is None:
        args.gpus = 1
    if args.quantity in STEP_QUANTITIES:
        if args.wrt is not None:
            raise SimkitError("--wrt: not available for the step times (differentiate a "
                              "FLOP, byte or parameter quantity)")
        from simkit.commands._common import hardware_option
        from simkit.costs.engine import check_engine

        hw = hardware_option(args.hardware)
        check_engine(args.engine, "--engine")
        out = {"model": model.name, "hardware": args.hardware, "gpus": args.gpus,
               "engine": "ideal" if args.ideal else _engine_name(args.engine),
               **step_formulas(model, arch.resolve(model), hw,
                               args.gpus, args.engine, args.ideal, args.quantity,
                               args.latex)}
        if args.json:
            print_json(out)
            return 0
        print(f"{out['model']} on {out['gpus']} x {out['hardware']}, engine {out['engine']}: "
              "THE step-time formula (simkit.costs.compiled), b = sequences in the step")
        for q, e in out["quantities"].items():
            print(f"\n{q} [{e['unit']}]")
            print(f"  formula : {e['symbolic']}")
            for k, v in e["terms"].items():
                print(f"    {k:15} {v}")
            print(f"  = {e['numeric']}")
        print("\nsymbols:")
        for k, v in out["symbols"].items():
            val = "" if v["value"] is None else f" = {v['value']:g}"
            print(f"  {k:8} {v['meaning']}{val}")
        return 0
    out = formulas(model, arch.resolve(model), args.quantity, args.latex)
    if args.wrt is not None:
        from simkit.costs.analysis import QUANTITIES, sensitivity

        var = QUANTITIES[args.quantity][1]
        lengths = {str(var): args.seq} if var is not None else {}
        try:
            sens = sensitivity(model, arch.resolve(model), args.quantity, args.wrt, **lengths)
        except SimkitError as e:  # the analysis says "sensitivity:"; here it is --wrt
            raise SimkitError(*(f"--wrt: {m.split(': ', 1)[-1]}" if m.startswith(
                "sensitivity: ") else m for m in e.messages)) from None
        out["sensitivity"] = dict(sens.to_dict(), at=lengths)
    if args.json:
        print_json(out)
        return 0
    print(f"{out['model']} ({out['layers']}): prefill time "
          f"{out['big_o']['time']}, cache {out['big_o']['cache']} in n"
          + (f" ({out['prefill_note']})" if out["prefill_note"] else ""))
    print("FLOPs count a multiply-add as 2; causal attention counts the causal half.")
    for q, e in out["quantities"].items():
        print(f"\n{q} [{e['unit']}]" + (f" in {e['length']}" if e["length"] else ""))
        if "per_layer_mixer" in e:
            print(f"  one layer's mixer : {e['per_layer_mixer']}")
        for term in e.get("per_group", ()):
            print(f"  {term['layers']} x {term['group']:12}: {term['term']}")
        print(f"  whole model       : {e['symbolic']}")
        print(f"  = {e['numeric']}")
    if "sensitivity" in out:
        sn = out["sensitivity"]
        at = ", ".join(f"{k} = {v}" for k, v in sn["at"].items())
        print(f"\nd({sn['quantity']})/d({sn['parameter']}) = {sn['derivative']}")
        print(f"  = {sn['value']:.6g} at the model's values{' and ' + at if at else ''}; "
              f"elasticity {sn['elasticity']:.4g} (% change per % of {sn['parameter']})")
    print("\nsymbols:")
    for k, v in out["symbols"].items():
        val = "" if v["value"] is None else f" = {v['value']:g}"
        print(f"  {k:8} {v['meaning']}{val}")
    return 0


def _engine_name(engine) -> str:
    from simkit.costs.engine import load_engine

    return load_engine(engine).name
