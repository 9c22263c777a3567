"""The sweep pages: each swept key against the metrics, with the SLO drawn on every latency
panel and the points that miss it marked; a categorical key (attention kind, GPU, scheduler)
as grouped bars, a numeric one as lines on its own scale (log, with readable ticks, when it
spans a wide range); and a table of every point.

Latencies are steady-state p99s (the warm-up left out, `simkit.sim.stats`); every point ran
the scenario's seed, so all of them served the same requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from simkit.report.formats import fmt_s, log_axis, plain_value, short_key
from simkit.report.layout import (GIB, MISS_COLOR, NOTE_BOTTOM, SLO_COLOR, Flow, kind_color,
                                  new_page, note, page_title)
from simkit.report.pages import Progress, say

#: (row key, fallback key, title, unit, scale, SLO metric)
SWEEP_METRICS = (
    ("steady_state.ttft_s.p99", "ttft_s.p99", "p99 TTFT", "seconds", 1.0, "ttft_s"),
    ("steady_state.tpot_s.p99", "tpot_s.p99", "p99 TPOT", "seconds", 1.0, "tpot_s"),
    ("steady_state.e2e_s.p99", "e2e_s.p99", "p99 end-to-end", "seconds", 1.0, "e2e_s"),
    ("kv_peak_bytes", "kv_peak_bytes", "KV memory peak", "GiB", 1 / GIB, None),
)


@dataclass
class SweepData:
    """Every grid point's parameters and metrics, and the SLOs they are judged by."""

    keys: list[str]
    values: dict[str, list[Any]]
    rows: list[dict[str, Any]]  # params + flat metrics (`steady_state.ttft_s.p99`) + `error`
    compare: list[str]  # report.compare keys
    slo: dict[str, float] = field(default_factory=dict)  # metric -> p99 target


def sweep_data(s, *, requests: int | None = None, progress: Progress = None,
               executor=None) -> SweepData | None:
    if not len(s.sweep):
        return None
    from simkit.plan.sweep import SerialExecutor, run_sweep, sweep_points

    pts = sweep_points(s, requests=requests)
    say(progress, f"sweeping {len(pts)} grid points")

    def tick(rec, done, total):
        params = ", ".join(f"{k} = {v}" for k, v in rec["params"].items())
        say(progress, f"[{done}/{total}] {params}")

    res = run_sweep(pts, executor or SerialExecutor(), progress=tick)
    keys = list(s.sweep)
    return SweepData(keys=keys, values={k: list(s.sweep[k]) for k in keys}, rows=res.rows(),
                     compare=list(s.report.compare), slo=s.slo.targets())


def metric(row: dict[str, Any], spec) -> float | None:
    """A row's value of a SWEEP_METRICS entry (steady state first)."""
    v = row.get(spec[0])
    return row.get(spec[1]) if v is None else v


def categorical(values: list[Any]) -> bool:
    """Values without a numeric order (names, kinds, switches) are drawn as grouped bars."""
    return any(isinstance(v, (str, bool)) or not isinstance(v, (int, float)) for v in values)


def _groups(sw: SweepData, key: str) -> dict[tuple, list[dict]]:
    others = [k for k in sw.keys if k != key]
    groups: dict[tuple, list[dict]] = {}
    for r in sw.rows:
        groups.setdefault(tuple((k, repr(r.get(k))) for k in others), []).append(r)
    return groups


def _label(rows: list[dict], others: list[str]) -> str:
    return ", ".join(f"{short_key(k)} = {plain_value(rows[0].get(k))}" for k in others) \
        or "all points"


def _color(rows: list[dict], others: list[str], i: int) -> str:
    return kind_color(rows[0].get("model.attention")) if "model.attention" in others \
        else f"C{i % 10}"


def sweep_figure(sw: SweepData, key: str) -> Figure:
    """One swept key: each metric at every value of the key, one series per setting of the
    other keys; the SLO as a line, the points that miss it marked."""
    fig = new_page()
    others = [k for k in sw.keys if k != key]
    vals = sw.values[key]
    bars = categorical(vals)
    page_title(fig, f"Sweep: {key}",
               "each metric at every value of this key"
               + (f"; one {'bar' if bars else 'line'} per setting of {', '.join(others)}"
                  if others else "")
               + ("; x: misses its SLO" if sw.slo else ""))
    gs = fig.add_gridspec(2, 2, left=0.11, right=0.96, top=0.89, bottom=0.25, hspace=0.42,
                          wspace=0.32)
    groups = _groups(sw, key)
    handles = []
    for j, spec in enumerate(SWEEP_METRICS):
        ax = fig.add_subplot(gs[j // 2, j % 2])
        target = sw.slo.get(spec[5]) if spec[5] else None
        hs = (_bars if bars else _lines)(ax, sw, key, vals, groups, others, spec, target)
        if j == 0:
            handles = hs
        _y_axis(ax, target, spec[4])
        ax.set_title(spec[2] + (" (steady state)" if spec[5] else ""), fontsize=9.5,
                     loc="left")
        ax.set_ylabel(spec[3], fontsize=8.5)
        ax.set_xlabel(key, fontsize=8.5)
        ax.tick_params(labelsize=8)
        ax.grid(True, axis="y" if bars else "both", color="#e5e5e5", lw=0.6)
        ax.set_axisbelow(True)
    if handles and others:
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.08, 0.19),
                   fontsize=8, frameon=False, ncol=2)
    lines = []
    if sw.slo:
        lines.append("Black line: the SLO (p99 target); a red x marks a point whose p99 "
                     "misses it. p99s are over the steady state (the first 10% of arrivals "
                     "left out); every point served the same requests (the scenario's seed).")
    thin = [r for r in sw.rows if (r.get("steady_state.requests") or 1e9) < 1000]
    if thin:
        lines.append(f"{len(thin)} point(s) counted fewer than 1,000 requests after the "
                     "warm-up: their p99 rests on fewer than 10 requests beyond it.")
    errs = [r for r in sw.rows if r.get("error")]
    if errs:
        lines.append(f"{len(errs)} point(s) failed: " + "; ".join(
            str(r["error"]) for r in errs[:3]))
    if lines:
        note(fig, lines, size=7.5, bottom=NOTE_BOTTOM)
    return fig


def _lines(ax, sw, key, vals, groups, others, spec, target) -> list:
    """A numeric key: one line per group on the key's own scale."""
    x = np.array([float(v) for v in vals])
    wide = bool(x.min() > 0 and x.max() / x.min() > 8)
    handles = []
    for gi, rows in enumerate(groups.values()):
        pts = sorted((float(r.get(key)), metric(r, spec)) for r in rows
                     if metric(r, spec) is not None and not r.get("error"))
        if not pts:
            continue
        xs = np.array([p for p, _ in pts])
        ys = np.array([v for _, v in pts]) * spec[4]
        h, = ax.plot(xs, ys, marker="o", ms=4, color=_color(rows, others, gi), lw=1.4,
                     label=_label(rows, others))
        handles.append(h)
        if target is not None:
            miss = ys > target * spec[4]
            ax.plot(xs[miss], ys[miss], "x", color=MISS_COLOR, ms=8, mew=1.8, zorder=5)
    if wide:
        log_axis(ax, "x")
    ax.set_xticks(x)
    ax.set_xticklabels([plain_value(v) for v in vals], fontsize=8)
    ax.xaxis.set_minor_locator(NullLocator())  # the swept values are the only ticks
    if wide:
        pad = (x.max() / x.min()) ** 0.06
        ax.set_xlim(x.min() / pad, x.max() * pad)
    else:
        pad = (x.max() - x.min()) * 0.06 or 1.0
        ax.set_xlim(x.min() - pad, x.max() + pad)
    return handles


def _bars(ax, sw, key, vals, groups, others, spec, target) -> list:
    """A categorical key: a group of bars per value, one bar per setting of the others."""
    pos = {repr(v): i for i, v in enumerate(vals)}
    k = max(1, len(groups))
    width = 0.8 / k
    handles = []
    for gi, rows in enumerate(groups.values()):
        xs, ys = [], []
        for r in rows:
            v = metric(r, spec)
            if v is None or r.get("error") or repr(r.get(key)) not in pos:
                continue
            xs.append(pos[repr(r.get(key))] - 0.4 + width * (gi + 0.5))
            ys.append(v * spec[4])
        if not xs:
            continue
        xs, ys = np.array(xs), np.array(ys)
        h = ax.bar(xs, ys, width=width * 0.9, color=_color(rows, others, gi),
                   label=_label(rows, others))
        handles.append(h)
        if target is not None:
            miss = ys > target * spec[4]
            ax.plot(xs[miss], ys[miss], "x", color=MISS_COLOR, ms=8, mew=1.8, zorder=5)
    ax.set_xticks(range(len(vals)))
    ax.set_xticklabels([plain_value(v) for v in vals], fontsize=8,
                       rotation=20 if len(vals) > 4 else 0)
    ax.set_xlim(-0.6, len(vals) - 0.4)
    return handles


def _y_axis(ax, target: float | None, scale: float) -> None:
    """Log when the values (and the SLO) span more than 30x, else linear from 0; the SLO
    line always inside the axis."""
    ys = [np.asarray(ln.get_ydata(), dtype=float) for ln in ax.get_lines()]
    ys += [np.array([p.get_height() for p in c]) for c in ax.containers]
    flat = np.concatenate(ys) if ys else np.zeros(0)
    flat = flat[np.isfinite(flat)]
    if target is not None:
        flat = np.append(flat, target * scale)
    if flat.size and flat.min() > 0 and flat.max() / flat.min() > 30:
        log_axis(ax, "y")
        ax.set_ylim(flat.min() / 1.6, flat.max() * 1.6)
    elif flat.size:
        ax.set_ylim(0, max(flat.max() * 1.12, 1e-12))
    if target is not None:
        ax.axhline(target * scale, color=SLO_COLOR, lw=1.2)
        ax.annotate(f"SLO {fmt_s(target)}", (0.01, target * scale),
                    xycoords=("axes fraction", "data"), textcoords="offset points",
                    xytext=(0, 2), fontsize=7)


def sweep_table_page(sw: SweepData) -> Figure:
    """Every grid point with its key metrics and whether it meets the SLOs."""
    from simkit.units import fmt_bytes

    fig = new_page()
    page_title(fig, "Sweep: every point", f"{len(sw.rows)} grid points; simulated metrics "
               "of each (steady-state p99s; one replica at the scenario's load)")
    f = Flow(fig, top=0.925)
    header = [short_key(k) for k in sw.keys] + [
        "p99 TTFT", "p99 TPOT", "p99 e2e", "tokens/s", "KV peak", "SLOs"]
    rows = []
    for r in sw.rows:
        if r.get("error"):
            rows.append([plain_value(r.get(k)) for k in sw.keys]
                        + ["error: " + str(r["error"])[:60], "", "", "", "", ""])
            continue
        lat = [metric(r, spec) for spec in SWEEP_METRICS[:3]]
        missed = [spec[2].split()[-1] for spec, v in zip(SWEEP_METRICS[:3], lat)
                  if spec[5] in sw.slo and (v is None or v > sw.slo[spec[5]])]
        verdict = "-" if not sw.slo else ("missed: " + ", ".join(missed) if missed else "met")
        tok = r.get("steady_state.throughput_tokens_per_s",
                    r.get("throughput_tokens_per_s")) or 0
        rows.append([plain_value(r.get(k)) for k in sw.keys] + [
            fmt_s(lat[0]), fmt_s(lat[1]), fmt_s(lat[2]), f"{tok:,.0f}",
            fmt_bytes(r.get("kv_peak_bytes") or 0), verdict])
    nk = len(sw.keys)
    kw = min(0.16, 0.4 / max(nk, 1))
    rest = (1 - kw * nk - 0.04) / 6
    f.table(header, rows, cols=[kw] * nk + [rest] * 5 + [rest + 0.04], size=8,
            align=["right"] * (nk + 6))
    return fig
