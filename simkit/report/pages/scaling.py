"""Page 4: prefill time, decode time per token and cache bytes against context length, for
the scenario's architecture and those it is compared with, with crossovers and the KV memory
budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from matplotlib.figure import Figure

from simkit.errors import SimkitError
from simkit.report.costlayer import arch_for, step_model
from simkit.report.formats import describe_arch, fmt_tokens, log_axis
from simkit.report.layout import GIB, kind_color, new_page, note, page_title

#: the scaling charts run from this many tokens ...
SCALING_MIN_TOKENS = 64
#: ... to at least this many (one million tokens: "long context"), or further when asked
SCALING_MAX_TOKENS = 2**20
SCALING_POINTS = 72


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
    own_sm = step_model(s)
    cap = own_sm.kv_capacity_for(s.serving)
    pre, dec, decb, cache, labels, mx, sms, archs = {}, {}, {}, {}, {}, {}, {}, {}
    for k in kinds:
        try:
            arch = arch_for(model, s.model, k)
            sm = step_model(s, arch)
        except SimkitError:
            continue
        sms[k], archs[k] = sm, arch
        labels[k] = describe_arch(arch).split(";")[0]
        pre[k] = np.array([sm.prefill_time_s(int(n)) for n in x])
        dec[k] = np.array([sm.decode_time_s(int(n), 1) for n in x])
        decb[k] = np.array([sm.decode_time_s(int(n), batch) / batch for n in x])
        cache[k] = np.asarray(sm.kv_bytes(x.astype(np.float64)), dtype=np.float64)
        mx[k] = max_context(model, arch, cap, 1, gpus=sm.gpus)
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

# --------------------------------------------------------------------------- 3. scaling

def scaling_figure(sc) -> Figure:
    """Prefill time, decode time per token and cache bytes vs context (log-log)."""
    fig = new_page()
    page_title(fig, "Scaling with context length",
                f"{sc.model} on {sc.hardware}: the scenario's architecture "
                f"({sc.kinds[0]}) and the alternatives it is compared with")
    gs = fig.add_gridspec(3, 1, left=0.12, right=0.95, top=0.905, bottom=0.255, hspace=0.45)
    x = sc.lengths
    panels = [
        ("prefill", "Prefill time of one prompt", "seconds", sc.prefill_s),
        ("decode", f"Decode time per generated token (solid: batch 1; dashed: batch "
                   f"{sc.decode_batch}, step time / {sc.decode_batch})", "seconds per token",
         sc.decode_s),
        ("cache", "Cache held by one sequence", "GiB", None),
    ]
    axes = []
    for i, (key, title, ylabel, series) in enumerate(panels):
        ax = fig.add_subplot(gs[i])
        axes.append(ax)
        for k in sc.kinds:
            lw = 2.4 if k == sc.kinds[0] else 1.4
            y = sc.cache_bytes[k] / GIB if key == "cache" else series[k]
            ax.plot(x, y, color=kind_color(k), lw=lw, label=sc.labels[k],
                    zorder=3 if k == sc.kinds[0] else 2)
            if key == "decode":
                ax.plot(x, sc.decode_batch_s_per_token[k], color=kind_color(k), lw=1.0, ls="--")
        log_axis(ax, tokens_x=True)
        ax.set_title(title, fontsize=9.5, loc="left")
        ax.set_ylabel(ylabel, fontsize=8.5)
        ax.set_xlabel("context length (tokens)", fontsize=8.5)
        ax.tick_params(labelsize=8)
        ax.grid(True, which="major", color="#dddddd", lw=0.6)
        ax.axvline(sc.model_max_context, color="#777777", lw=0.8, ls=":")
        # crossovers of the scenario's kind with each alternative
        for j, cx in enumerate(sorted(sc.crossovers.get(key, []), key=lambda c: c["length"])):
            yv = cx["value"] / GIB if key == "cache" else cx["value"]
            if yv <= 0:
                continue
            ax.plot([cx["length"]], [yv], marker="o", ms=5, mfc="white", mec="black",
                    mew=1.0, zorder=5)
            ax.annotate(fmt_tokens(cx["length"]), (cx["length"], yv),
                        textcoords="offset points", xytext=(5, -11 if j % 2 == 0 else 5),
                        fontsize=7)
    ax = axes[2]
    cap = sc.kv_capacity_bytes / GIB
    ax.axhline(cap, color="black", lw=1.0, ls="--")
    fits = [f"{k} fits {m:,} tokens" for k, m in sc.max_context.items() if m is not None]
    ax.annotate(f"KV memory of one replica: {cap:.3g} GiB"
                + (f" (one sequence: {'; '.join(fits)})" if fits else ""),
                (x[0], cap), textcoords="offset points", xytext=(2, 4), fontsize=7.5)
    for k in sc.kinds:
        m = sc.max_context.get(k)
        if m is not None and x[0] <= m <= x[-1]:
            ax.plot([m], [cap], marker="v", color=kind_color(k), ms=7, zorder=6)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, max(hi, cap * 8))  # room for the budget label
    axes[0].legend(fontsize=7.5, loc="upper left", frameon=False)
    lines = [f"Dotted vertical line: {sc.model}'s trained context "
             f"({sc.model_max_context:,} tokens); beyond it the curves are what-ifs of the "
             "cost model. Open circles: crossovers, where the scenario's "
             f"{sc.kinds[0]} curve crosses an alternative (labelled with that length). "
             "Triangles: the longest context whose cache fits the KV memory."]
    cx_txt = []
    for key, name in (("prefill", "prefill time"), ("decode", "decode time (batch 1)"),
                      ("cache", "cache")):
        for cx in sc.crossovers.get(key, []):
            cx_txt.append(f"{name} of {cx['a']} = {cx['b']} at {cx['length']:,} tokens")
    if cx_txt:
        lines.append("Crossovers: " + "; ".join(cx_txt) + ".")
    lines.append("Times are roofline estimates (compute vs memory bound, with the profile's "
                 "efficiencies and fixed step overhead); cache = bytes held for one sequence "
                 "at that context (constant-state kinds stay flat).")
    note(fig, lines, top=0.205)
    return fig
