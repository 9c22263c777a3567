"""Gather what each report section needs from the layers below, as plain data.

The figures (`simkit.report.figures`) only draw; everything they show is computed here from
the cost layer (sympy expressions, step models, crossovers, budgets), the simulator, the
capacity planner, the sweep runner and the hardware profile's calibration table. Nothing here
touches matplotlib, the clock or the environment, so the same scenario gives the same data.

Units follow the names: `_s` seconds, `_bytes` bytes, `_per_s` per second, FLOPs counted
with a multiply-add = 2 (see `simkit.units`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from simkit.errors import SimkitError

#: architectures the scaling section compares against when the scenario names none
DEFAULT_COMPARE = ("full", "window", "linear", "ssm")
#: context lengths (tokens) the cost table uses when [report] context_lengths is empty
DEFAULT_CONTEXT_LENGTHS = (512, 2048, 8192, 32768, 131072)
#: the scaling charts run from this many tokens ...
SCALING_MIN_TOKENS = 64
#: ... to at least this many (one million tokens: "long context"), or further when asked
SCALING_MAX_TOKENS = 2**20
SCALING_POINTS = 72


# --------------------------------------------------------------------------- small helpers

def _arch_for(model, section, kind: str | None = None):
    """The ArchSpec of the scenario's [model] section, optionally with another kind."""
    from simkit.costs import ArchSpec

    if kind is not None:
        section = replace(section, attention=kind)
    return ArchSpec.from_scenario_model(model, section)


def _hardware(s):
    from simkit.catalog import load_hardware

    return load_hardware(s.hardware.name)


def _engine(s):
    from simkit.costs.engine import load_engine

    return load_engine(s.hardware.engine)


def _step_model(s, arch=None):
    from simkit.costs import build_step_model

    model = s.model_config()
    arch = arch if arch is not None else _arch_for(model, s.model)
    return build_step_model(model, arch, _hardware(s), gpus=s.hardware.gpus_per_replica,
                            ideal=s.hardware.ideal, engine=s.hardware.engine)


def describe_arch(arch) -> str:
    """'window (w = 4096), kv bf16, weights bf16' -- the settings that apply to the kind."""
    parts = [arch.attention]
    extra = []
    for key, label in (("window", "w"), ("global_tokens", "g"), ("memory_slots", "m"),
                       ("segment_tokens", "s")):
        v = getattr(arch, key)
        if v is not None:
            extra.append(f"{label} = {v:,}")
    if arch.attention_every > 1:
        extra.append(f"1 layer in {arch.attention_every} attention, rest SSM")
    if arch.kv_share > 1:
        extra.append(f"{arch.kv_share} layers share a KV cache")
    if extra:
        parts.append("(" + ", ".join(extra) + ")")
    return " ".join(parts) + f"; KV cache {arch.kv_dtype}, weights {arch.weight_dtype}"


def describe_lengths(spec) -> str:
    """A token-length distribution in words."""
    d = spec.dist
    if d == "fixed":
        text = f"fixed {spec.value:,}"
    elif d == "uniform":
        text = f"uniform {spec.low:,}..{spec.high:,}"
    elif d == "lognormal":
        text = f"lognormal (median {spec.median:,.0f}, sigma {spec.sigma:g})"
    elif d == "empirical":
        text = f"empirical from {_basename(spec.path)}" + (f" [{spec.column}]"
                                                           if spec.column else "")
    else:
        text = "as recorded in the arrival trace"
    clip = []
    if spec.min > 1:
        clip.append(f"min {spec.min:,}")
    if spec.max is not None:
        clip.append(f"max {spec.max:,}")
    return text + (f", clipped to {' / '.join(clip)}" if clip else "") + " tokens"


def describe_arrival(a) -> str:
    if a.process == "trace":
        rate = f", rescaled to {a.rate:g} req/s" if a.rate is not None else \
            " at its recorded timing"
        return f"trace {_basename(a.path)}{rate}"
    if a.process == "gamma":
        return f"gamma, {a.rate:g} req/s, cv {a.cv:g}"
    return f"{a.process}, {a.rate:g} req/s"


def _basename(p: str | None) -> str:
    if not p:
        return "-"
    return p.replace("\\", "/").rsplit("/", 1)[-1]


def _progress(enabled: bool, text: str) -> None:
    """One status line on stderr, only when asked and stderr is a terminal."""
    if enabled and sys.stderr.isatty():
        print(f"simkit report: {text}", file=sys.stderr, flush=True)


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


# --------------------------------------------------------------------------- sections

#: meanings of the symbols `simkit.costs.model` defines beside `symbols.MEANING`
_EXTRA_MEANING = {"L_a": "attention layers (hybrid)", "L_s": "SSM layers (hybrid)",
                  "L_d": "dense-FFN layers", "c_kv": "layers per shared cache",
                  "c_w": "layers per shared weights"}


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
    from simkit.costs.symbols import MEANING
    from simkit.costs.analysis import max_context
    from simkit.costs.compiled import step_breakdown
    from simkit.units import fmt_bytes, fmt_flops, fmt_seconds

    model = s.model_config()
    arch = _arch_for(model, s.model)
    mc = model_costs(model, arch)
    sm = _step_model(s, arch)
    n, t = S.n, S.t
    items = [
        ("Token mixing, one layer: prefill FLOPs", "FLOPs", r"F_{\mathrm{mix}}(n)",
         mc.mixer.core_prefill_flops),
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
                        "meaning": MEANING.get(x, _EXTRA_MEANING.get(name, "")),
                        "value": None if val is None else float(val)})

    cap = sm.kv_capacity_bytes(s.serving.memory_fraction)
    per_tok = sm.kv_layout.bytes_per_token
    longest = max_context(model, arch, cap, 1)
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
        ("KV cache per token (whole model)",
         fmt_bytes(per_tok) + f" ({per_tok:,.0f} B)" if per_tok else "0 B (no per-token cache)"),
        ("fixed state per sequence", fmt_bytes(sm.kv_fixed_bytes)),
        (f"KV memory per replica ({s.hardware.gpus_per_replica} x {sm.hardware.name}, "
         f"memory_fraction {s.serving.memory_fraction:g}, less weights)", fmt_bytes(cap)),
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
                     fmt_flops(a), _ratio(a / a0) if a0 else "-",
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
            m2 = model_costs(model, _arch_for(model, s.model, k))
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


def compare_kinds(s) -> tuple[str, ...]:
    """The scenario's kind first, then what it is compared with: the swept attention kinds,
    else plan.compare, else `DEFAULT_COMPARE` (kinds the model cannot run are left out)."""
    model = s.model_config()
    own = _arch_for(model, s.model).attention
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


@dataclass
class ScalingData:
    """Section 3: costs vs context length for each compared kind."""

    model: str
    hardware: str
    lengths: np.ndarray  # tokens
    kinds: list[str]
    labels: dict[str, str]  # kind -> legend label (with its settings)
    prefill_s: dict[str, np.ndarray]
    decode_s: dict[str, np.ndarray]  # one step, batch 1, per token
    decode_batch: int
    decode_batch_s_per_token: dict[str, np.ndarray]  # step time / batch
    cache_bytes: dict[str, np.ndarray]  # one sequence
    kv_capacity_bytes: float
    max_context: dict[str, int | None]  # longest single sequence in the budget (None: any)
    model_max_context: int
    crossovers: dict[str, list[dict[str, Any]]]  # panel -> [{a, b, length, value}]


def _curve_crossings(x: np.ndarray, ya: np.ndarray, yb: np.ndarray,
                     f: Callable[[int], float] | None = None) -> list[tuple[int, float]]:
    """Lengths where two sampled curves cross: sign changes of ya - yb, refined on the
    integers by bisection of `f(length) = a - b` when given."""
    d = np.sign(ya - yb)
    out = []
    for i in range(len(x) - 1):
        if d[i] == 0 or d[i + 1] == 0 or d[i] == d[i + 1]:
            continue
        lo, hi = int(x[i]), int(x[i + 1])
        if f is not None:
            s_lo = np.sign(f(lo))
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if np.sign(f(mid)) == s_lo:
                    lo = mid
                else:
                    hi = mid
        frac = 0.0 if ya[i + 1] == ya[i] else 0.5
        out.append((hi, float(ya[i] + frac * (ya[i + 1] - ya[i]))))
    return out


def _dedupe_crossings(xs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop a crossing of the same pair within 5% of the previous one (a curve that touches
    and re-crosses at a rounding step)."""
    out: list[dict[str, Any]] = []
    for c in xs:
        if any(o["a"] == c["a"] and o["b"] == c["b"]
               and abs(o["length"] - c["length"]) <= 0.05 * o["length"] for o in out):
            continue
        out.append(c)
    return out


def scaling_data(s, kinds: tuple[str, ...]) -> ScalingData:
    from simkit.costs.analysis import crossover, max_context

    model = s.model_config()
    top = max([SCALING_MAX_TOKENS, *[2 * L for L in s.report.context_lengths]])
    x = np.unique(np.round(np.geomspace(SCALING_MIN_TOKENS, top, SCALING_POINTS))).astype(
        np.int64)
    batch = min(s.serving.max_batch, 64)
    own_sm = _step_model(s)
    cap = own_sm.kv_capacity_bytes(s.serving.memory_fraction)
    pre, dec, decb, cache, labels, mx, sms, archs = {}, {}, {}, {}, {}, {}, {}, {}
    for k in kinds:
        try:
            arch = _arch_for(model, s.model, k)
            sm = _step_model(s, arch)
        except SimkitError:
            continue
        sms[k], archs[k] = sm, arch
        labels[k] = describe_arch(arch).split(";")[0]
        pre[k] = np.array([sm.prefill_time_s(int(n)) for n in x])
        dec[k] = np.array([sm.decode_time_s(int(n), 1) for n in x])
        decb[k] = np.array([sm.decode_time_s(int(n), batch) / batch for n in x])
        cache[k] = np.asarray(sm.kv_bytes(x.astype(np.float64)), dtype=np.float64)
        mx[k] = max_context(model, arch, cap, 1)
    got = list(pre)
    cross: dict[str, list[dict[str, Any]]] = {"prefill": [], "decode": [], "cache": []}
    own = got[0]
    for k in got[1:]:
        sa, sb = sms[own], sms[k]
        for length, v in _curve_crossings(
                x, pre[own], pre[k], lambda n: sa.prefill_time_s(n) - sb.prefill_time_s(n)):
            cross["prefill"].append({"a": own, "b": k, "length": length,
                                     "value": float(sa.prefill_time_s(length))})
        for length, v in _curve_crossings(
                x, dec[own], dec[k],
                lambda n: sa.decode_time_s(n, 1) - sb.decode_time_s(n, 1)):
            cross["decode"].append({"a": own, "b": k, "length": length,
                                    "value": float(sa.decode_time_s(length, 1))})
        c = crossover(model, archs[own], archs[k], "cache_bytes", max_length=int(x[-1]))
        for length in c.lengths:
            cross["cache"].append({"a": own, "b": k, "length": int(length),
                                   "value": float(sa.kv_bytes(np.array([float(length)]))[0])})
    cross = {k: _dedupe_crossings(v) for k, v in cross.items()}
    return ScalingData(
        model=model.name, hardware=own_sm.hardware.name, lengths=x, kinds=got, labels=labels,
        prefill_s=pre, decode_s=dec, decode_batch=batch, decode_batch_s_per_token=decb,
        cache_bytes=cache, kv_capacity_bytes=cap, max_context=mx,
        model_max_context=model.max_context, crossovers=cross)


@dataclass
class RooflineData:
    """Section 4: the roofs and the scenario's steps placed under them."""

    hardware: str
    gpus: int
    peak_flops_per_s: float  # weight-matmul dtype, whole TP group
    peak_bytes_per_s: float
    effective_flops_per_s: float
    effective_bytes_per_s: float
    ideal: bool
    points: list[dict[str, Any]]  # {label, kind: prefill|decode, flops, bytes, flops_per_s}


def roofline_data(s) -> RooflineData:
    from simkit.costs.compiled import step_breakdown
    from simkit.plan.capacity import typical_request

    sm = _step_model(s)
    hw = sm.hardware
    g = s.hardware.gpus_per_replica
    peak = hw.peak_for(sm.arch.weight_dtype) * g
    bw = hw.memory_bandwidth_bytes_per_s * g
    p, o = typical_request(s)
    ctx = int(round(p + o / 2))
    pts = []
    lengths = sorted(set(s.report.context_lengths or ())) or sorted({512, int(round(p)), 8192})
    for n in lengths:
        b = step_breakdown(sm, (), [0], [n])
        pts.append(_roof_point(f"prefill {n:,} tokens", "prefill", b))
    cap = sm.kv_capacity_bytes(s.serving.memory_fraction)
    per_seq = float(sm.kv_bytes(np.array([float(ctx)]))[0])
    b_kv = int(cap // per_seq) if per_seq > 0 else s.serving.max_batch
    batches = sorted({1, max(1, min(s.serving.max_batch, b_kv))})
    for b in batches:
        br = step_breakdown(sm, np.full(b, float(ctx)), (), ())
        pts.append(_roof_point(f"decode step, batch {b} at context {ctx:,}", "decode", br))
    return RooflineData(hardware=hw.name, gpus=g, peak_flops_per_s=peak, peak_bytes_per_s=bw,
                        effective_flops_per_s=sm.roof.matmul_flops_per_s,
                        effective_bytes_per_s=sm.roof.bytes_per_s, ideal=sm.ideal, points=pts)


def _roof_point(label: str, kind: str, b: dict) -> dict[str, Any]:
    flops = b["linear_flops"] + b["attention_flops"]
    bytes_ = b["linear_bytes"] + b["attention_bytes"]
    return {"label": label, "kind": kind, "flops": flops, "bytes": bytes_,
            "flops_per_s": flops / b["total_s"] if b["total_s"] > 0 else 0.0,
            "bound": b["bound"], "time_s": b["total_s"]}


@dataclass
class SimulationData:
    """Section 5: latency distributions, time series and the summary of one run."""

    requests: int
    summary: dict[str, Any]
    latencies: dict[str, np.ndarray]  # ttft_s, tpot_s, e2e_s over completed requests
    timeseries: dict[str, np.ndarray]
    slo: dict[str, float]  # metric -> p99 target
    kv_capacity_bytes: float


def simulation_data(s, *, requests: int | None = None, progress: bool = False
                    ) -> SimulationData:
    from simkit.sim import simulate

    n = int(requests or s.workload.requests)
    _progress(progress, f"simulating {n:,} requests")
    r = simulate(s, requests=requests, progress=progress)
    q = r.requests
    st = q["status"]
    done = (st == "completed") if st.dtype.kind in "OUS" else (st == 3)  # COMPLETED
    arr, first, fin = q["arrival_s"][done], q["first_token_s"][done], q["finish_s"][done]
    out = q["output_tokens"][done]
    multi = out > 1
    lat = {"ttft_s": first - arr,
           "tpot_s": (fin[multi] - first[multi]) / (out[multi] - 1),
           "e2e_s": fin - arr}
    return SimulationData(requests=n, summary=dict(r.summary), latencies=lat,
                          timeseries={k: np.asarray(v) for k, v in r.timeseries.items()},
                          slo=s.slo.targets(),
                          kv_capacity_bytes=float(r.summary["kv_capacity_bytes"]))


@dataclass
class PlanData:
    """Section 6: the capacity plan (None fields when it could not be made)."""

    result: Any = None  # simkit.plan.capacity.PlanResult
    error: str | None = None
    slo: dict[str, float] = field(default_factory=dict)
    cost_per_gpu_hour: float = 0.0
    hardware: str = ""


def plan_data(s, *, requests: int | None = None, progress: bool = False) -> PlanData | None:
    """The capacity plan when the scenario has a [plan] section or SLOs; None otherwise."""
    if s.plan is None and not s.slo.targets():
        return None
    from simkit.plan.capacity import plan

    _progress(progress, "planning capacity (simulating probe rates)")
    d = PlanData(slo=s.slo.targets(), cost_per_gpu_hour=s.hardware.cost_per_gpu_hour,
                 hardware=s.hardware.name)
    try:
        d.result = plan(s, requests=requests)
    except SimkitError as e:
        d.error = "; ".join(e.messages)
    return d


@dataclass
class SweepData:
    """Section 7: every grid point's parameters and metrics."""

    keys: list[str]
    values: dict[str, list[Any]]
    rows: list[dict[str, Any]]  # params + flat metrics (`ttft_s.p99`) + `error`
    compare: list[str]  # report.compare keys


def sweep_data(s, *, requests: int | None = None, progress: bool = False,
               executor=None) -> SweepData | None:
    if not len(s.sweep):
        return None
    from simkit.plan.sweep import SerialExecutor, run_sweep, sweep_points

    pts = sweep_points(s, requests=requests)
    _progress(progress, f"sweeping {len(pts)} grid points")

    def tick(rec, done, total):
        params = ", ".join(f"{k} = {v}" for k, v in rec["params"].items())
        _progress(progress, f"[{done}/{total}] {params}")

    res = run_sweep(pts, executor or SerialExecutor(), progress=tick)
    keys = list(s.sweep)
    return SweepData(keys=keys, values={k: list(s.sweep[k]) for k in keys}, rows=res.rows(),
                     compare=list(s.report.compare))


@dataclass
class CalibrationData:
    """Section 8: a calibrated profile's fit results."""

    hardware: str
    source: str
    table: dict[str, Any]
    compute_efficiency: float
    memory_efficiency: float
    step_overhead_s: float


def calibration_data(s) -> CalibrationData | None:
    hw = _hardware(s)
    if not hw.calibrated:
        return None
    return CalibrationData(hardware=hw.name, source=hw.source, table=dict(hw.calibration),
                           compute_efficiency=hw.compute_efficiency,
                           memory_efficiency=hw.memory_efficiency,
                           step_overhead_s=hw.step_overhead_s)


def fidelity_data(s, *, progress: bool = False) -> dict[str, Any] | None:
    """Section 8: the associative-recall retention experiment, when `[report] fidelity`.

    The scenario's own window / global tokens / memory slots / segment are used where it
    sets them; the rest of the task (d, pairs, trials, sharpness) is `RecallTask`'s default.
    """
    if not s.report.fidelity:
        return None
    from dataclasses import replace

    from simkit.calibrate.fidelity import DEFAULT_LENGTHS, RecallTask, run_fidelity

    _progress(progress, "information retention (associative recall)")
    task = RecallTask()
    m = s.model
    task = replace(task, **{k: v for k, v in (
        ("window", m.window), ("global_tokens", m.global_tokens),
        ("memory_slots", m.memory_slots), ("segment", m.segment_tokens)) if v is not None})
    lengths = s.report.fidelity_lengths or DEFAULT_LENGTHS
    return run_fidelity(lengths=lengths, seed=s.seed, task=task).to_dict()


def assumptions_data(s) -> list[tuple[str, list[str]]]:
    """Section 9: conventions, the profile's efficiency constants and every source."""
    from simkit import __version__
    from simkit.catalog import hardware as hwcat
    from simkit.plan.capacity import MIN_COMPLETED_FRACTION
    from simkit.units import fmt_bytes, fmt_seconds

    model = s.model_config()
    hw = _hardware(s)
    ideal = s.hardware.ideal
    eff = []
    if ideal:
        eff.append("hardware.ideal = true: the pure roofline (efficiencies 1, no step "
                   "overhead, no link latency), the bound LLM-Viewer and llm-analysis report.")
    eff += [
        f"compute_efficiency = {hw.compute_efficiency:g}, memory_efficiency = "
        f"{hw.memory_efficiency:g}, step_overhead_s = {hw.step_overhead_s:g} s, "
        f"interconnect latency {fmt_seconds(hw.interconnect_latency_s)} per all-reduce"
        + (" (profile values; replaced by the ideal roofline above)" if ideal else "") + ".",
    ]
    if not ideal:
        e = _engine(s)
        eff.append(f"Serving engine {e.name} ({e.description}): its constants scale the "
                   f"hardware's rates and add its fixed costs; fitted on {e.source}"
                   + (f" (data of {e.data_date})" if e.data_date else "") + ".")
    if hw.calibrated:
        eff.append("These were measured by `simkit calibrate` on the machine the profile "
                   "describes (see the calibration page).")
    else:
        same = (hw.compute_efficiency == hwcat.DEFAULT_COMPUTE_EFFICIENCY
                and hw.memory_efficiency == hwcat.DEFAULT_MEMORY_EFFICIENCY)
        if hw.efficiency_source:  # per-GPU published measurements (catalog entries)
            eff.append(f"Efficiencies of {hw.name} (fractions of the dense datasheet peaks "
                       f"that published kernels reach): {hw.efficiency_source}.")
        elif same:
            eff.append(
                "They are simkit's stated assumptions (simkit/catalog/hardware.py): large "
                "bf16 GEMMs in cuBLAS reach roughly 70-80% of the dense tensor peak "
                "(NVIDIA, Matrix Multiplication Background User's Guide), so 0.7; streaming "
                "kernels reach about 80-90% of HBM peak (Jia et al., arXiv:1804.06826, ~83% "
                "on V100), so 0.8.")
        if (hw.step_overhead_s == hwcat.DEFAULT_STEP_OVERHEAD_S
                and hw.interconnect_latency_s == hwcat.DEFAULT_INTERCONNECT_LATENCY_S):
            eff.append("A flat 1 ms per forward step for scheduling, sampling and kernel "
                       "launches, and 10 us per all-reduce (NCCL small-message latency), are "
                       "assumptions.")
        if hw.efficiency_source or same:
            eff.append("`simkit calibrate` measures them for the machine at hand.")
    sources = [
        f"Model {model.name}: {model.source}.",
        f"Hardware {hw.name}: {hw.source}.",
        f"Dense peaks: {', '.join(f'{k} {v / 1e12:g} TFLOP/s' for k, v in sorted(hw.peak_flops_per_s.items()))}; "
        f"memory {hw.memory_bandwidth_bytes_per_s / 1e9:,.0f} GB/s, "
        f"{fmt_bytes(hw.memory_capacity_bytes)} ({hw.memory_capacity_bytes / 1e9:g} GB).",
        f"Cost per GPU-hour: {s.hardware.cost_per_gpu_hour:g} USD, taken from the scenario "
        "(simkit's default 2.5 is an assumed on-demand cloud price for an H100, order of "
        "magnitude only).",
    ]
    a = s.workload.arrival
    if a.process == "trace" or s.workload.prompt_tokens.dist in ("empirical", "trace"):
        sources.append("Workload traces: see scenarios/traces/README.md for each file's "
                       "origin and licence (arrival "
                       f"{_basename(a.path) if a.path else '-'}).")
    return [
        ("Conventions", [
            "A multiply-add counts as 2 FLOPs. Causal prefill attention counts the causal "
            "half: n(n+1)/2 query-key pairs, the diagonal included. Softmax is not counted.",
            "Decode at context t: the new token attends to t keys (itself included), so t is "
            "the cache length after it is appended.",
            "Rates are SI (1 GB/s = 1e9 B/s, 1 TFLOP/s = 1e12 FLOP/s); memory sizes are "
            "binary (1 GiB = 2^30 B) and always printed with their unit.",
            "A step is timed as two roofline operators (weight matmuls; token mixing with "
            "its cache traffic), each max(FLOPs / compute roof, bytes / bandwidth roof), "
            "plus a fixed step overhead and tensor-parallel all-reduces "
            "(Williams et al. 2009, 'Roofline', CACM 52(4); LLM-Viewer, arXiv:2402.16363).",
            "KV memory per replica = device memory x GPUs x serving.memory_fraction - weights "
            "(vLLM's gpu_memory_utilization).",
        ]),
        ("Efficiency constants of the profile", eff),
        ("Simulation and planning", [
            "TTFT = first token - arrival; TPOT = (finish - first token) / (output tokens - "
            "1), over outputs longer than one token; end-to-end = finish - arrival. "
            "Percentiles are numpy's linear interpolation over completed requests.",
            "Goodput counts completed requests that met every SLO, per simulated second "
            "(DistServe, Zhong et al. 2024, arXiv:2401.09670).",
            "Capacity: the highest arrival rate one replica sustains with every p99 within "
            "its SLO and at least "
            f"{MIN_COMPLETED_FRACTION:.0%} of requests completed; bracketed from the "
            "cost-model estimate, bisected geometrically to plan.qps_rel_tol, every probe "
            "with the scenario seed (common random numbers).",
        ]),
        ("Sources of published numbers", sources),
        ("Reproduce", [
            f"simkit {__version__}, seed {s.seed}. This report holds no timestamps: the same "
            "scenario and simkit version give the same bytes.",
            f"Command: simkit report <{s.name}.toml> -o <file.pdf>",
        ]),
    ]


# --------------------------------------------------------------------------- whole report

@dataclass
class TitleData:
    name: str
    question: str
    rows: list[tuple[str, str]]
    answer: list[str]
    version: str
    seed: int


@dataclass
class ReportData:
    scenario: Any
    title: TitleData
    cost: CostModelData
    scaling: ScalingData
    roofline: RooflineData
    simulation: SimulationData
    plan: PlanData | None
    sweep: SweepData | None
    calibration: CalibrationData | None
    assumptions: list[tuple[str, list[str]]]
    notes: list[str] = field(default_factory=list)
    fidelity: dict[str, Any] | None = None  # FidelityResult.to_dict() when [report] fidelity


def title_data(s) -> TitleData:
    from simkit import __version__

    model = s.model_config()
    arch = _arch_for(model, s.model)
    hw = _hardware(s)
    sv = s.serving
    slo = s.slo.targets()
    slo_txt = ", ".join(f"p99 {k.replace('_s', '').upper()} <= {v:g} s"
                        for k, v in slo.items()) or "none set"
    rows = [
        ("Model", f"{model.name} ({model.n_layers} layers, d = {model.d_model:,}, "
                  f"{model.n_heads} heads / {model.n_kv_heads} KV heads, trained context "
                  f"{model.max_context:,})"),
        ("Architecture", describe_arch(arch)),
        ("Hardware", f"{hw.name}: {hw.description}; {s.hardware.gpus_per_replica} GPU(s) per "
                     f"replica, {sv.replicas} replica(s), "
                     f"{s.hardware.cost_per_gpu_hour:g} USD per GPU-hour"
                     + ("; ideal roofline" if s.hardware.ideal
                        else f"; engine {_engine(s).name}")),
        ("Workload", f"{s.workload.requests:,} requests; arrivals "
                     f"{describe_arrival(s.workload.arrival)}"),
        ("Prompts", describe_lengths(s.workload.prompt_tokens)),
        ("Outputs", describe_lengths(s.workload.output_tokens)),
        ("Serving", f"{sv.scheduler} batching (max batch {sv.max_batch}"
                    + (f", chunks of {sv.chunk_tokens} tokens" if sv.scheduler == "chunked"
                       else "")
                    + f"), {sv.kv_memory} KV memory"
                    + (f" (blocks of {sv.block_size})" if sv.kv_memory == "paged" else "")
                    + f", memory_fraction {sv.memory_fraction:g}, max_seq_len "
                    + (f"{sv.max_seq_len:,}" if sv.max_seq_len else "model's")
                    + f", preemption by {sv.preemption}"),
        ("SLOs", slo_txt),
    ]
    if s.plan is not None:
        rows.append(("Plan", (f"target {s.plan.target_qps:g} req/s" if s.plan.target_qps
                              else "max load of one replica")
                     + (f"; compare {', '.join(s.plan.compare)}" if s.plan.compare else "")))
    if len(s.sweep):
        rows.append(("Sweep", "; ".join(f"{k} in {list(v)}" for k, v in s.sweep.items())))
    return TitleData(name=s.name, question=s.question, rows=rows, answer=[],
                     version=__version__, seed=s.seed)


def answer_lines(d: ReportData) -> list[str]:
    """'The answer in brief' for the title page, from whatever sections ran."""
    from simkit.units import fmt_bytes

    out = []
    p = d.plan.result if d.plan is not None else None
    if p is not None:
        out.append(f"One replica sustains {p.max_qps:.3g} req/s with every p99 SLO met "
                   f"(cost-model estimate {p.analytic_qps:.3g}).")
        if p.target_qps is not None and p.replicas is not None:
            m = p.metrics
            out.append(
                f"{p.target_qps:g} req/s needs {p.replicas} replica(s) = {p.gpus} x "
                f"{d.plan.hardware} ({p.cost_per_hour:.3g} USD/h, "
                + (f"{p.cost_per_million_tokens:.3g} USD per million output tokens"
                   if p.cost_per_million_tokens is not None else "no tokens") + "); "
                f"simulated there: p99 TTFT {_pq(m, 'ttft_s')}, p99 TPOT {_pq(m, 'tpot_s')}, "
                f"SLOs {'met' if p.slo.get('met') else 'MISSED'}.")
        elif p.target_qps is not None:
            out.append(f"No replica count meets the SLOs at {p.target_qps:g} req/s.")
        if p.best_attention:
            out.append(f"Of {', '.join(c['attention'] for c in p.comparison)}, "
                       f"{p.best_attention} serves the load with the fewest GPUs.")
    elif d.plan is not None and d.plan.error:
        out.append(f"Capacity plan not made: {d.plan.error}")
    sm = d.simulation.summary
    out.append(
        f"Simulated {sm['requests_arrived']:,} requests at the scenario's load: "
        f"p99 TTFT {_pq(sm, 'ttft_s')}, p99 TPOT {_pq(sm, 'tpot_s')}, p99 end-to-end "
        f"{_pq(sm, 'e2e_s')}; {sm['requests_completed']:,} completed, "
        f"{sm['requests_rejected']:,} rejected; KV peak {fmt_bytes(sm['kv_peak_bytes'])} of "
        f"{fmt_bytes(sm['kv_capacity_bytes'])}; {sm['preemptions']:,} preemptions.")
    c = d.cost
    out.append(f"{c.model} with {c.kind} attention: prefill time {c.big_o_time} and cache "
               f"{c.big_o_cache} in the context length n.")
    if d.sweep is not None:
        from simkit.units import fmt_bytes

        ok = [r for r in d.sweep.rows if not r.get("error")]

        def lab(r):
            return ", ".join(f"{short_key(k)} = {_plain_value(r[k])}" for k in d.sweep.keys)
        if 0 < len(ok) <= 6:
            out.append(f"Sweep of {len(d.sweep.rows)} points (simulated, one replica):")
            for r in ok:
                out.append(f"    {lab(r)}: p99 TTFT {_fmt_s(r.get('ttft_s.p99'))}, p99 TPOT "
                           f"{_fmt_s(r.get('tpot_s.p99'))}, p99 end-to-end "
                           f"{_fmt_s(r.get('e2e_s.p99'))}, KV peak "
                           f"{fmt_bytes(r.get('kv_peak_bytes') or 0)}.")
        elif ok:
            hi = max(ok, key=lambda r: r.get("e2e_s.p99") or 0)
            lo = min(ok, key=lambda r: r.get("e2e_s.p99") or math.inf)
            out.append(f"Sweep of {len(d.sweep.rows)} points: p99 end-to-end from "
                       f"{_fmt_s(lo.get('e2e_s.p99'))} ({lab(lo)}) to "
                       f"{_fmt_s(hi.get('e2e_s.p99'))} ({lab(hi)}).")
        errs = len(d.sweep.rows) - len(ok)
        if errs:
            out.append(f"{errs} sweep point(s) could not be simulated (see the sweep pages).")
    return out


def short_key(key: str) -> str:
    """'workload.prompt_tokens.value' -> 'prompt_tokens.value', 'model.attention' ->
    'attention': the dotted key without its section."""
    parts = key.split(".")
    return ".".join(parts[1:]) if len(parts) > 1 else key


def _plain_value(v) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _ratio(r: float) -> str:
    return f"{r:,.0f}x" if r >= 100 else f"{r:.3g}x"


def _fmt_s(v) -> str:
    from simkit.units import fmt_seconds

    return "-" if v is None else fmt_seconds(v)


def _pq(summary: dict, metric: str, q: str = "p99") -> str:
    v = summary.get(metric)
    return _fmt_s(v.get(q) if isinstance(v, dict) else None)


def gather(s, *, requests: int | None = None, progress: bool = False,
           sweep_executor=None) -> ReportData:
    """Everything the report draws, for scenario `s` (see the module docstring)."""
    kinds = compare_kinds(s)
    _progress(progress, "cost model, scaling and roofline")
    cost = cost_model_data(s, kinds)
    scaling = scaling_data(s, kinds)
    roof = roofline_data(s)
    sim = simulation_data(s, requests=requests, progress=progress)
    plan = plan_data(s, requests=requests, progress=progress)
    sweep = sweep_data(s, requests=requests, progress=progress, executor=sweep_executor)
    d = ReportData(scenario=s, title=title_data(s), cost=cost, scaling=scaling, roofline=roof,
                   simulation=sim, plan=plan, sweep=sweep, calibration=calibration_data(s),
                   assumptions=assumptions_data(s),
                   fidelity=fidelity_data(s, progress=progress))
    d.title.answer = answer_lines(d)
    return d
