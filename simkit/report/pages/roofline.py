"""Page 5: the hardware's roofs with the scenario's prefill and decode steps placed under
them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from simkit.report.costlayer import step_model
from simkit.report.formats import fmt_s, log_axis
from simkit.report.layout import new_page, note, page_title


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

    sm = step_model(s)
    hw = sm.hardware
    g = s.hardware.gpus_per_replica
    peak = hw.peak_for(sm.arch.gemm_weight_dtype) * g
    bw = hw.memory_bandwidth_bytes_per_s * g
    p, o = typical_request(s)
    ctx = int(round(p + o / 2))
    pts = []
    lengths = sorted(set(s.report.context_lengths or ())) or sorted({512, int(round(p)), 8192})
    for n in lengths:
        b = step_breakdown(sm, (), [0], [n])
        pts.append(_roof_point(f"prefill {n:,} tokens", "prefill", b))
    cap = sm.kv_capacity_for(s.serving)
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

# --------------------------------------------------------------------------- 4. roofline

def _fmt_ai(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def roofline_figure(r) -> Figure:
    """The hardware's roofs with the scenario's prefill and decode steps placed on them."""
    fig = new_page()
    page_title(fig, "Roofline",
                f"{r.gpus} x {r.hardware}: attainable FLOP/s = min(compute roof, bandwidth x "
                "arithmetic intensity)")
    ax = fig.add_axes((0.13, 0.40, 0.82, 0.50))
    xs = np.geomspace(0.1, 1e5, 400)
    ax.plot(xs, np.minimum(r.peak_flops_per_s, r.peak_bytes_per_s * xs), color="black",
            lw=1.8, label=f"datasheet roofs: {r.peak_flops_per_s / 1e12:,.4g} TFLOP/s, "
                          f"{r.peak_bytes_per_s / 1e9:,.4g} GB/s")
    if not r.ideal:
        ax.plot(xs, np.minimum(r.effective_flops_per_s, r.effective_bytes_per_s * xs),
                color="#666666", lw=1.2, ls="--",
                label=f"with the profile's efficiencies: "
                      f"{r.effective_flops_per_s / 1e12:,.4g} TFLOP/s, "
                      f"{r.effective_bytes_per_s / 1e9:,.4g} GB/s")
    ridge = r.peak_flops_per_s / r.peak_bytes_per_s
    ax.axvline(ridge, color="#999999", lw=0.7, ls=":")
    ax.annotate(f"ridge {ridge:.0f} FLOP/byte", (ridge, r.peak_flops_per_s / 30),
                textcoords="offset points", xytext=(4, 0), fontsize=7.5, color="#555555")
    markers = {"prefill": "^", "decode": "o"}
    cols = ["#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#ff7f0e", "#d62728", "#8c564b",
            "#e377c2"]
    for i, p in enumerate(r.points):
        ai = p["flops"] / p["bytes"]
        ax.plot([ai], [p["flops_per_s"]], marker=markers.get(p["kind"], "s"), ms=8,
                color=cols[i % len(cols)], ls="none",
                label=f"{p['label']}: {_fmt_ai(ai)} FLOP/byte, {fmt_s(p['time_s'])}, "
                      f"{p['bound']}-bound")
    log_axis(ax)
    ax.set_xlim(0.1, 1e5)
    ax.set_ylim(r.peak_flops_per_s / 1e5, r.peak_flops_per_s * 3)
    ax.set_xlabel("arithmetic intensity (FLOPs / bytes moved)", fontsize=9)
    ax.set_ylabel("FLOP/s (achieved by the step, or attainable)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", color="#e0e0e0", lw=0.6)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(0.0, -0.09), frameon=False)
    note(fig, [
        "A step's arithmetic intensity is its FLOPs over the bytes it moves (weights read "
        "once per step, plus the KV cache read and written). Left of the ridge a step is "
        "bound by memory bandwidth, right of it by compute. Decode at small batch reads all "
        "the weights for a handful of tokens, so it sits far left; prefill multiplies every "
        "weight by many tokens and sits right of the ridge.",
        "Markers show the achieved rate (the step's FLOPs / its modelled time, which also "
        "counts the fixed step overhead), so they sit at or under the dashed roof.",
    ], top=0.16)
    return fig
