"""Pages 6-7: one simulated run at the scenario's load -- latency distributions with their
SLOs, the summary table, and throughput, batch, KV memory and queue over time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from simkit.report.formats import fmt_s, log_axis
from simkit.report.layout import (GIB, METRIC_COLORS, METRIC_LABELS, Flow, new_page,
                                  page_title)
from simkit.report.pages import Progress, say


@dataclass
class SimulationData:
    """Section 5: latency distributions, time series and the summary of one run."""

    requests: int
    summary: dict[str, Any]
    latencies: dict[str, np.ndarray]  # ttft_s, tpot_s, e2e_s over completed requests
    timeseries: dict[str, np.ndarray]
    slo: dict[str, float]  # metric -> p99 target
    kv_capacity_bytes: float


def simulation_data(s, *, requests: int | None = None, progress: Progress = None
                    ) -> SimulationData:
    from simkit.sim import simulate

    n = int(requests or s.workload.requests)
    say(progress, f"simulating {n:,} requests")
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

# --------------------------------------------------------------------------- 5. simulation

def latency_figure(sim) -> Figure:
    """Latency CDFs (TTFT, TPOT, end-to-end) with their SLOs, and the summary table."""
    fig = new_page()
    sm = sim.summary
    page_title(fig, "Simulation: latency",
                f"{sm['requests_arrived']:,} requests simulated "
                f"({sm['simulated_seconds']:.4g} s of serving); distributions over the "
                f"{sm['requests_completed']:,} completed")
    extra = _prefix_rows(sm)  # rows the summary table grows by: the CDFs make room
    bottom = 0.40 + 0.021 * len(extra)
    gs = fig.add_gridspec(3, 1, left=0.12, right=0.95, top=0.905, bottom=bottom, hspace=0.55)
    for i, m in enumerate(("ttft_s", "tpot_s", "e2e_s")):
        ax = fig.add_subplot(gs[i])
        v = np.sort(np.asarray(sim.latencies[m], dtype=np.float64))
        if v.size:
            y = np.arange(1, v.size + 1) / v.size
            ax.step(v, y, where="post", color=METRIC_COLORS[m], lw=1.5)
            pos = v[v > 0]
            slo_m = sim.slo.get(m)
            top = max(pos.max(), slo_m or 0) if pos.size else 0
            if pos.size and top / pos.min() > 5:  # log x: the tail and a far SLO both show
                log_axis(ax, "x")
        else:
            ax.text(0.5, 0.5, "no completed requests", transform=ax.transAxes, ha="center")
        st = sm.get(m) or {}
        for q, ls in (("p50", ":"), ("p99", "--")):
            if st.get(q) is not None:
                ax.axvline(st[q], color="#555555", lw=0.8, ls=ls)
        slo = sim.slo.get(m)
        if slo is not None:
            ax.axvline(slo, color="black", lw=1.6)
            ax.annotate(f"SLO p99 <= {slo:g} s", (slo, 0.05), textcoords="offset points",
                        xytext=(-4, 0), ha="right", fontsize=7.5)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("fraction of requests", fontsize=8.5)
        ax.set_xlabel(f"{METRIC_LABELS[m]} (seconds)", fontsize=8.5)
        ax.set_title(f"{METRIC_LABELS[m]}: p50 {fmt_s(st.get('p50'))} (dotted), p99 "
                     f"{fmt_s(st.get('p99'))} (dashed)", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
        ax.grid(True, color="#e5e5e5", lw=0.6)
    f = Flow(fig, top=bottom - 0.055)
    rows = []
    steady = sm.get("steady_state") or {}
    for m, name in (("ttft_s", "time to first token"), ("tpot_s", "time per output token"),
                    ("tbt_s", "time between tokens"), ("e2e_s", "end-to-end"),
                    ("queue_wait_s", "queue wait")):
        if m not in sm:
            continue
        st = sm.get(m) or {}
        ss = steady.get(m) or {}
        ci = (f"{fmt_s(ss.get('p99'))} [{fmt_s(ss['ci_low'])}, {fmt_s(ss['ci_high'])}]"
              if ss.get("ci_low") is not None else fmt_s(ss.get("p99")) if ss else "-")
        rows.append([name] + [fmt_s(st.get(q)) for q in ("mean", "p50", "p90", "p99")]
                    + [ci, f"{sim.slo[m]:g} s" if m in sim.slo else "-"])
    f.table(["latency", "mean", "p50", "p90", "p99", "steady p99 [95% CI]", "p99 SLO"],
            rows, cols=[0.22, 0.1, 0.1, 0.1, 0.1, 0.28, 0.1], size=8.2,
            align=["left"] + ["right"] * 6)
    notes = [f"Steady state: the first {steady.get('warmup_requests', 0):,} arrivals "
             "(warm-up) left out; 95% interval by sectioning (see the last page)."]
    notes += [f"Warning: {w}." for w in sm.get("warnings") or []]
    for n in notes:
        f.text(n, size=7.5, color="#333333")
    f.space(0.01)
    from simkit.units import fmt_bytes

    good = sm.get("goodput_requests_per_s")
    kvf = sm.get("kv_useful_fraction")
    f.table(["run", ""], [
        ["requests arrived / completed / rejected / in flight",
         f"{sm['requests_arrived']:,} / {sm['requests_completed']:,} / "
         f"{sm['requests_rejected']:,} / {sm.get('requests_in_flight', 0):,}"],
        ["output throughput (whole run / steady state)",
         f"{(sm.get('throughput_tokens_per_s') or 0):,.0f} / "
         f"{(steady.get('throughput_tokens_per_s') or 0):,.0f} tokens/s"],
        ["goodput (requests meeting every SLO)",
         "-" if good is None else f"{good:.4g} requests/s"],
        ["KV peak / capacity", f"{fmt_bytes(sm['kv_peak_bytes'])} / "
                               f"{fmt_bytes(sm['kv_capacity_bytes'])}"],
        ["KV useful fraction (token states / reserved, time-averaged)",
         "-" if kvf is None else f"{kvf:.3f}"],
        ["preemptions (tokens recomputed, share of tokens processed)",
         f"{sm['preemptions']:,} ({sm['recomputed_tokens']:,}, "
         f"{sm['recompute_fraction']:.1%})"] if sm.get("recomputed_tokens") else
        ["preemptions", f"{sm['preemptions']:,}"],
    ] + extra, cols=[0.6, 0.4], size=8.5)
    return fig


def _prefix_rows(sm: dict[str, Any]) -> list[list[str]]:
    """What prefix caching saved (when the run cached prefixes), and the sessions."""
    rows = []
    if sm.get("sessions"):
        rows.append(["sessions (every turn is a request above)", f"{sm['sessions']:,}"])
    if not sm.get("prefix_caching") or not (sm.get("prefix_hit_rate") or 0) > 0:
        return rows  # (on, but nothing to share: independent prompts)
    from simkit.units import fmt_bytes, fmt_flops

    hit = sm["prefix_hit_rate"]  # (a number above 0: checked above)
    rows += [
        ["prefix cache hit rate (prompt tokens served from cache)", f"{hit:.1%}"],
        ["prompt tokens from cache / prefilled",
         f"{sm.get('prefix_cached_tokens', 0):,} / {sm.get('prefill_tokens_computed', 0):,}"],
        ["prefill FLOPs with the cache / without",
         f"{fmt_flops(sm.get('prefill_flops') or 0)} / "
         f"{fmt_flops(sm.get('prefill_flops_without_cache') or 0)}"],
        ["cached blocks evicted (LRU)", fmt_bytes(sm.get("prefix_evicted_bytes") or 0)],
    ]
    return rows


def timeseries_figure(sim) -> Figure:
    """Throughput, batch, KV memory and queue length over simulated time."""
    fig = new_page()
    ts = sim.timeseries
    sm = sim.summary
    page_title(fig, "Simulation: over time",
                f"sampled at {len(ts['time_s'])} instants; {sm['preemptions']:,} preemptions "
                f"in the run")
    t = ts["time_s"]
    specs = [
        ("tokens_per_s", "Output throughput", "tokens / s", 1.0),
        ("batch_size", "Sequences in the running iteration", "sequences", 1.0),
        ("kv_used_bytes", "KV memory", "GiB",
         1 / GIB),
        ("queue_len", "Requests waiting in the queue", "requests", 1.0),
    ]
    if sm.get("prefix_caching") and (sm.get("prefix_hit_rate") or 0) > 0 \
            and "prefix_hit_rate" in ts:
        specs.insert(3, ("prefix_hit_rate", "Prefix cache hit rate of the prompts started",
                         "fraction", 1.0))
    gs = fig.add_gridspec(len(specs), 1, left=0.12, right=0.95, top=0.905, bottom=0.09,
                          hspace=0.5 + 0.1 * (len(specs) - 4))
    for i, (k, title, ylabel, scale) in enumerate(specs):
        ax = fig.add_subplot(gs[i])
        y = np.asarray(ts[k], dtype=np.float64) * scale
        if k == "prefix_hit_rate":  # NaN where no prompt started: show the points
            ax.plot(t, y, color="#9467bd", lw=0, marker=".", ms=2.5)
            ax.set_ylim(0, 1.02)
        else:
            ax.plot(t, y, color="#1f77b4", lw=1.0, label="reserved")
        if k == "kv_used_bytes":
            ax.plot(t, np.asarray(ts["kv_useful_bytes"]) / GIB, color="#2ca02c", lw=0.7,
                    ls="--", label="holding token states")
            cap = sim.kv_capacity_bytes / GIB
            ax.axhline(cap, color="black", lw=1.0, ls="--")
            ax.annotate(f"capacity {cap:.3g} GiB; peak {sm['kv_peak_bytes'] / GIB:.3g} GiB",
                        (t[0], cap), textcoords="offset points", xytext=(2, -10),
                        fontsize=7.5)
            ax.set_ylim(0, cap * 1.12)
            ax.legend(fontsize=7.5, loc="center right", frameon=False)
        if k == "queue_len":
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel(ylabel, fontsize=8.5)
        ax.set_xlabel("simulated time (s)", fontsize=8.5)
        ax.tick_params(labelsize=8)
        ax.grid(True, color="#e5e5e5", lw=0.6)
        ax.set_xlim(t[0], t[-1] if t[-1] > t[0] else t[0] + 1)
        if k not in ("kv_used_bytes", "prefix_hit_rate"):
            ax.set_ylim(bottom=0)
    return fig
