"""Pages 2-3: the cost model -- its sympy formulas (symbolic and with the model's numbers),
big-O, the parameter table, weights and cache per token, costs at chosen context lengths and
the architectures it is compared with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from simkit.errors import SimkitError
from simkit.report.costlayer import arch_for, step_model
from simkit.report.formats import describe_arch, fmt_ratio, model_basename
from simkit.report.layout import Flow, mathtext_ok, new_page, page_title

#: architectures the scaling section compares against when the scenario names none
DEFAULT_COMPARE = ("full", "window", "linear", "ssm")
#: context lengths (tokens) the cost table uses when [report] context_lengths is empty
DEFAULT_CONTEXT_LENGTHS = (512, 2048, 8192, 32768, 131072)


def _int_floats(expr):
    """Floats that are whole numbers (2.0 bytes per element) shown as integers."""
    import sympy as sp

    return expr.xreplace({f: sp.Integer(int(f)) for f in expr.atoms(sp.Float)
                          if float(f) == int(f)})


def latex_of(expr) -> str:
    """sympy's LaTeX, adjusted to what matplotlib mathtext parses (\\bmod is not in it)."""
    import sympy as sp

    s = sp.latex(expr).replace(r"\bmod", r"\,\mathrm{mod}\,")
    # mathtext sizes \left( \right) unevenly around subscripts: plain brackets read better
    for a, b in ((r"\left(", "("), (r"\right)", ")"), (r"\left[", "["), (r"\right]", "]")):
        s = s.replace(a, b)
    return s


def formula_lines(lhs: str, expr) -> list[dict[str, str]]:
    """`lhs = expr` as display lines: one per branch of a Piecewise (mathtext has no
    \\begin{cases}), each with its LaTeX, its plain `sstr` fallback and its condition."""
    import sympy as sp

    e = sp.piecewise_fold(expr) if expr.has(sp.Piecewise) else expr
    if isinstance(e, sp.Piecewise):
        out = []
        for sub, cond in e.args:
            cond_tex = "otherwise" if cond == sp.true else latex_of(cond)
            cond_txt = "otherwise" if cond == sp.true else sp.sstr(cond)
            out.append({"latex": f"{lhs} = {latex_of(sub)}", "plain": f"= {sp.sstr(sub)}",
                        "condition_latex": cond_tex, "condition": cond_txt})
        return out
    return [{"latex": f"{lhs} = {latex_of(e)}", "plain": f"= {sp.sstr(e)}",
             "condition_latex": "", "condition": ""}]



@dataclass
class CostModelData:
    """Section 2: the formulas, big-O, the parameter table and costs at chosen lengths."""

    model: str
    model_source: str
    arch: str
    kind: str
    big_o_time: str
    big_o_cache: str
    prefill_note: str
    formulas: list[dict[str, Any]]  # {title, unit, lines (symbolic), numeric_lines}
    symbols: list[dict[str, Any]]  # {name, latex, meaning, value}
    sizes: list[tuple[str, str]]  # (what, value with unit)
    lengths_table: dict[str, Any]  # {header, rows, notes}
    #: (kind with settings, big-O time, big-O cache, one layer's cache bytes as LaTeX, plain)
    kinds_big_o: list[tuple[str, str, str, str, str]]
    #: the other kinds' one-layer formulas: {kind, big_o, note, lines}
    compared: list[dict[str, Any]] = field(default_factory=list)


def cost_model_data(s, kinds: tuple[str, ...]) -> CostModelData:
    import sympy as sp

    from simkit.costs import model_costs
    from simkit.costs import symbols as S
    from simkit.costs.analysis import max_context
    from simkit.costs.model import symbol_meaning
    from simkit.costs.compiled import step_breakdown
    from simkit.units import fmt_bytes, fmt_flops, fmt_seconds

    model = s.model_config()
    arch = arch_for(model, s.model)
    mc = model_costs(model, arch)
    sm = step_model(s, arch)
    mixed = [g for g in mc.groups if g.mixer is not None]
    if len(mixed) > 1:  # a mixed stack: each group's term, then the sums
        items = []
        for i, g in enumerate(mixed, 1):
            items.append((f"Token mixing, the {g.count} {g.label} layers: prefill FLOPs",
                          "FLOPs", rf"F_{{\mathrm{{mix}},{i}}}(n)", g.terms["attention_prefill_flops"]))
        for i, g in enumerate(mixed, 1):
            items.append((f"Cache of the {g.count} {g.label} layers per sequence at context t",
                          "bytes", rf"C_{{{i}}}(t)", g.terms["cache_bytes"]))
    else:
        items = [("Token mixing, one layer: prefill FLOPs", "FLOPs", r"F_{\mathrm{mix}}(n)",
                  mc.mixer.core_prefill_flops)]
    items += [
        ("Token mixing, whole model: prefill FLOPs", "FLOPs", r"F_{\mathrm{attn}}(n)",
         mc.attn_prefill_flops),
        ("Prefill FLOPs (whole model, n prompt tokens)", "FLOPs", r"F_{\mathrm{prefill}}(n)",
         mc.prefill_flops),
        ("Decode FLOPs per generated token at context t", "FLOPs", r"F_{\mathrm{decode}}(t)",
         mc.decode_flops),
        ("Cache held per sequence at context t", "bytes", r"C(t)", mc.cache_bytes),
        ("Bytes moved per decoded token (weights + cache read + write)", "bytes",
         r"B_{\mathrm{decode}}(t)", mc.decode_bytes),
        ("Weight bytes", "bytes", r"W", mc.weight_bytes),
        ("Weight bytes read per step (all but the embedding table's rows)", "bytes",
         r"W_{\mathrm{step}}", mc.streamed_weight_bytes),
    ]
    fl = []
    for title, unit, lhs, expr in items:
        fl.append({"title": title, "unit": unit, "lines": formula_lines(lhs, expr),
                   "numeric_lines": formula_lines(lhs, _int_floats(mc.numeric(expr)))})
    used: dict = {}
    for _, _, _, expr in items:
        for x in expr.free_symbols:
            used[str(x)] = x
    symbols = []
    for name in sorted(used):
        x = used[name]
        val = mc.values.get(x)
        symbols.append({"name": name, "latex": sp.latex(x),
                        "meaning": symbol_meaning(mc, name),
                        "value": None if val is None else float(val)})
    spec = getattr(s.serving, "speculative", None)
    if spec is not None:
        item, rows = speculative_formula(spec)
        fl.append(item)
        symbols += rows

    cap = sm.kv_capacity_for(s.serving)
    per_tok = sm.kv_layout.bytes_per_token
    longest = max_context(model, arch, cap, 1, gpus=sm.gpus)
    if longest is None:
        longest_txt = "any length (the cache stops growing)"
    else:
        longest_txt = f"{longest:,} tokens"
    if longest is None or longest > model.max_context:
        longest_txt += f"; the model is trained to {model.max_context:,}"
    sizes = [
        ("parameters (stored)", f"{mc.value(mc.params):,.0f}"),
        ("parameters active per token", f"{mc.value(mc.active_params):,.0f}"),
        ("weight bytes", fmt_bytes(sm.weight_bytes) + f" ({sm.weight_bytes:,.0f} B)"),
        ("weight bytes read per step", fmt_bytes(sm.streamed_weight_bytes)
         + f" ({sm.streamed_weight_bytes:,.0f} B)"),
        ("KV cache per token (whole model)",
         fmt_bytes(per_tok) + f" ({per_tok:,.0f} B)" if per_tok else "0 B (no per-token cache)"),
        ("fixed state per sequence", fmt_bytes(sm.kv_fixed_bytes)),
        (f"KV memory per replica ({s.hardware.gpus_per_replica} x {sm.hardware.name}, "
         + (f"kv_cache_bytes {fmt_bytes(s.serving.kv_cache_bytes)} per GPU)"
            if s.serving.kv_cache_bytes is not None else
            f"memory_fraction {s.serving.memory_fraction:g}, less weights)"), fmt_bytes(cap)),
        ("token states that fit in it", f"{cap / per_tok:,.0f}" if per_tok else "unbounded"),
        ("longest single-sequence context that fits", longest_txt),
    ]

    lengths = s.report.context_lengths or DEFAULT_CONTEXT_LENGTHS
    header = ["context n", "cache / seq", "attention prefill", "x vs first", "prefill FLOPs",
              "prefill time", "bound", "decode step (b=1)"]
    rows = []
    a0 = None
    for L in lengths:
        a = mc.value(mc.attn_prefill_flops, n=L)
        a0 = a if a0 is None else a0
        pre = step_breakdown(sm, (), [0], [L])
        dec = step_breakdown(sm, [L], (), ())
        mark = "*" if L > model.max_context else ""
        rows.append([f"{L:,}{mark}", fmt_bytes(float(sm.kv_bytes(np.array([L]))[0])),
                     fmt_flops(a), fmt_ratio(a / a0) if a0 else "-",
                     fmt_flops(mc.value(mc.prefill_flops, n=L)), fmt_seconds(pre["total_s"]),
                     pre["bound"], fmt_seconds(dec["total_s"])])
    notes = [f"Times on {s.hardware.gpus_per_replica} x {sm.hardware.name} "
             f"({'ideal roofline' if sm.ideal else 'engine ' + sm.engine.name}); "
             "'x vs first' = attention prefill FLOPs relative to the first row."]
    if any(L > model.max_context for L in lengths):
        notes.append(f"* beyond {model.name}'s trained context of {model.max_context:,} "
                     "tokens (a what-if of the cost model only).")
    kinds_big_o = []
    compared: list[dict[str, Any]] = []
    for k in kinds:
        try:
            m2 = model_costs(model, arch_for(model, s.model, k))
        except SimkitError:
            continue
        per_layer = m2.mixer.cache_elems * S.beta_kv
        label = describe_arch(m2.arch).split(";")[0]
        kinds_big_o.append((label, m2.big_o_time, m2.big_o_cache, latex_of(per_layer),
                            sp.sstr(per_layer)))
        if k != mc.arch.attention:
            compared.append({
                "kind": label, "big_o": f"prefill {m2.big_o_time}, cache {m2.big_o_cache}",
                "note": m2.mixer.prefill_note,
                "lines": formula_lines(r"F_{\mathrm{mix}}(n)", m2.mixer.core_prefill_flops)
                + formula_lines(r"C_{\mathrm{layer}}(t)", per_layer)})
    return CostModelData(
        model=model.name, model_source=model.source, arch=describe_arch(mc.arch),
        kind=mc.arch.attention, big_o_time=mc.big_o_time, big_o_cache=mc.big_o_cache,
        prefill_note=mc.mixer.prefill_note, formulas=fl, symbols=symbols, sizes=sizes,
        lengths_table={"header": header, "rows": rows, "notes": notes},
        kinds_big_o=kinds_big_o, compared=compared)


def speculative_formula(spec) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Speculative decoding's expected tokens per iteration (the cost layer's expression,
    `simkit.costs.speculative`) with the scenario's numbers, and its symbols' rows."""
    import sympy as sp

    from simkit.costs import symbols as S
    from simkit.costs.speculative import expected_tokens, expected_tokens_expr

    k = int(spec.tokens)
    title = ("Speculative decoding: expected tokens per iteration (Leviathan et al. 2023, "
             "arXiv:2211.17192, eq. 1)")
    lines = formula_lines("E", expected_tokens_expr())
    if spec.acceptance is not None:
        a = float(spec.acceptance)
        val = expected_tokens(a, k)
        numeric = [{"latex": rf"E = \frac{{1 - {a:g}^{{{k + 1}}}}}{{1 - {a:g}}} = {val:.4g}",
                    "plain": f"= (1 - {a:g}**{k + 1})/(1 - {a:g}) = {val:.4g}",
                    "condition_latex": "", "condition": ""}]
    else:
        p = list(spec.acceptance_lengths)
        val = sum((j + 1) * x for j, x in enumerate(p))
        numeric = [{"latex": rf"E = \sum_{{j=0}}^{{{k}}} (j+1)\,p_j = {val:.4g}",
                    "plain": f"= sum((j+1) p_j) = {val:.4g} with p = {p}",
                    "condition_latex": "", "condition": ""}]
    rows = [{"name": "alpha", "latex": sp.latex(S.alpha_s),
             "meaning": S.MEANING[S.alpha_s] + ("" if spec.acceptance is not None else
                                                " (here a measured distribution)"),
             "value": spec.acceptance},
            {"name": "k", "latex": sp.latex(S.k_s), "meaning": S.MEANING[S.k_s],
             "value": float(k)}]
    return {"title": title + f"; draft {model_basename(spec.draft)}", "unit": "tokens",
            "lines": lines, "numeric_lines": numeric}, rows


def compare_kinds(s) -> tuple[str, ...]:
    """The scenario's kind first, then what it is compared with: the swept attention kinds,
    else plan.compare, else `DEFAULT_COMPARE` (kinds the model cannot run are left out)."""
    model = s.model_config()
    own = arch_for(model, s.model).attention
    if "model.attention" in s.sweep:
        others = tuple(s.sweep["model.attention"])
    elif s.plan is not None and s.plan.compare:
        others = tuple(s.plan.compare)
    else:
        others = DEFAULT_COMPARE
    out = [own]
    for k in others:
        if k in out:
            continue
        if k == "mla" and not model.kv_lora_rank:
            continue
        out.append(k)
    return tuple(out)

# --------------------------------------------------------------------------- 2. cost model

def cost_formulas_page(c) -> Figure:
    """The formulas that matter for the scenario's architecture, symbolic and numeric."""
    fig = new_page()
    page_title(fig, "The cost model",
                f"{c.model}, {c.arch}. Prefill time {c.big_o_time}, cache {c.big_o_cache} "
                "in the context length n.")
    f = Flow(fig, top=0.925)
    f.text("Symbolic (sympy) expressions of the whole model, then with the model's numbers. "
           "n = prompt tokens of a prefill; t = context length at a decode step. A "
           "multiply-add is 2 FLOPs; causal attention counts n(n+1)/2 query-key pairs."
           + (f" Prefill: {c.prefill_note}." if c.prefill_note else ""), size=8.5,
           color="#333333")
    for item in c.formulas:
        f.space(0.006)
        f.text(f"{item['title']} [{item['unit']}]", size=9.5, weight="bold")
        for ln in item["lines"]:
            f.math(ln["latex"], ln["plain"], size=10.5, suffix=_cond(ln),
                   plain_suffix=_cond_plain(ln))
        for ln in item["numeric_lines"]:
            f.math(ln["latex"], ln["plain"], size=9.5, indent=0.05, suffix=_cond(ln),
                   plain_suffix=_cond_plain(ln))
    if c.compared:
        f.space(0.012)
        f.heading("The compared architectures: one layer's token mixing and cache", size=11)
        for i, k in enumerate(c.compared):
            if f.y < 0.05 + 0.03 * (1 + len(k["lines"])):
                f.text(f"({len(c.compared) - i} more: see the table on the next page)",
                       size=8, color="#444444")
                break
            f.space(0.004)
            f.text(f"{k['kind']}: {k['big_o']}" + (f" ({k['note']})" if k["note"] else ""),
                   size=9.5, weight="bold")
            for ln in k["lines"]:
                f.math(ln["latex"], ln["plain"], size=10, suffix=_cond(ln),
                       plain_suffix=_cond_plain(ln))
    return fig


def _cond_plain(ln: dict) -> str:
    c = ln.get("condition") or ""
    return "" if not c else ("otherwise" if c == "otherwise" else f"for {c}")


def _cond(ln: dict) -> str:
    if not ln.get("condition_latex"):
        return ""
    if ln["condition_latex"] == "otherwise":
        return "otherwise"
    return f"for ${ln['condition_latex']}$"


def cost_tables_page(c) -> Figure:
    """The parameters, weights and cache per token, costs at chosen lengths, big-O."""
    fig = new_page()
    page_title(fig, "The cost model: parameters and sizes",
                f"{c.model}, {c.arch}. Source: {c.model_source}"[:150])
    f = Flow(fig, top=0.925)
    f.heading("Parameters of the formulas", size=11)
    rows = []
    for s in c.symbols:
        v = s["value"]
        rows.append([f"${s['latex']}$" if mathtext_ok(s["latex"]) else s["name"],
                     s["meaning"], "-" if v is None else f"{v:,.6g}"])
    f.table(["symbol", "meaning", "value"], rows, cols=[0.14, 0.56, 0.30], size=8.5,
            math_cols=(0,))
    f.space(0.01)
    f.heading("Weights and cache", size=11)
    f.table(["", ""], c.sizes, cols=[0.55, 0.45], size=8.5)
    f.space(0.01)
    f.heading("Costs at chosen context lengths (one sequence)", size=11)
    t = c.lengths_table
    f.table(t["header"], t["rows"], cols=[0.11, 0.11, 0.14, 0.10, 0.14, 0.13, 0.11, 0.16],
            size=8, align=["right"] * 8)
    for n in t["notes"]:
        f.text(n, size=7.5, color="#444444")
    f.space(0.01)
    f.heading("The compared architectures", size=11)
    rows = [[k, bt, bc, f"${lx}$" if mathtext_ok(lx) else plain]
            for k, bt, bc, lx, plain in c.kinds_big_o]
    f.table(["architecture", "prefill time", "cache held", "one layer's cache (bytes)"],
            rows, cols=[0.25, 0.15, 0.13, 0.47], size=8.5, math_cols=(3,))
    f.text("Big-O in the context length n (w window, g global tokens, m memory slots, "
           "s segment); a constant-state cache is O(1).", size=7.5, color="#444444")
    return fig
