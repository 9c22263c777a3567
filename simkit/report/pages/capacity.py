"""The capacity-plan page: how much load one replica carries under the SLOs (the probes),
how many replicas the target needs (the counts simulated there: the planned one meets the
SLOs, one fewer does not), what that costs, and the architecture comparison."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from simkit.errors import SimkitError
from simkit.report.formats import fmt_s, log_axis
from simkit.report.layout import (METRIC_COLORS, METRIC_LABELS, MISS_COLOR, SLO_COLOR, Flow,
                                  new_page, page_title)
from simkit.report.pages import Progress, say
from simkit.plan.prices import price_label

_ATTR = {"ttft_s": "ttft_p99_s", "tpot_s": "tpot_p99_s", "e2e_s": "e2e_p99_s"}


@dataclass
class PlanData:
    """The capacity plan (None fields when it could not be made)."""

    result: Any = None  # simkit.plan.capacity.PlanResult
    error: str | None = None
    slo: dict[str, float] = field(default_factory=dict)
    hardware: str = ""
    label: str = ""  # which configuration, when it is a search's cheapest


def plan_data(s, *, requests: int | None = None, progress: Progress = None,
              search=None) -> PlanData | None:
    """The capacity plan when the scenario has a [plan] section or SLOs; None otherwise.
    With a configuration search (`search`: its `SearchResult`), the plan of the cheapest
    configuration, as the search made it."""
    if s.plan is None and not s.slo.targets():
        return None
    from simkit.plan.capacity import PlanResult, plan
    from simkit.report.formats import basename, column_label, plain_value

    d = PlanData(slo=s.slo.targets(), hardware=basename(s.hardware.name))
    if search is not None:
        if search.best_plan is None:
            d.error = "no configuration of the search is feasible"
        else:
            d.result = PlanResult.from_dict(search.best_plan)
            params = search.best["params"]
            d.hardware = basename(str(params.get("hardware.name", s.hardware.name)))
            d.label = ", ".join(f"{column_label(k)} = {plain_value(v)}"
                                for k, v in params.items())
        return d
    say(progress, "planning capacity (simulating probe rates and replica counts)")
    try:
        d.result = plan(s, requests=requests)
    except SimkitError as e:
        d.error = "; ".join(e.messages)
    return d


def capacity_figure(p: PlanData) -> Figure:
    """Probes of one replica, replica counts at the target, the plan and the comparison."""
    fig = new_page()
    r = p.result
    if r is None:
        page_title(fig, "Capacity plan", "not made")
        f = Flow(fig, top=0.9)
        f.text(f"The capacity plan could not be made: {p.error}", size=10)
        return fig
    page_title(fig, "Capacity plan",
               f"the search's cheapest configuration: {p.label}" if p.label else
               f"what one replica of {r.gpus_per_replica} x {p.hardware} carries under the "
               "SLOs, and how many the target needs")
    _rate_axes(fig, (0.12, 0.70, 0.68, 0.20), r, p.slo)
    if r.replica_probes:
        _replica_axes(fig, (0.12, 0.475, 0.68, 0.15), r, p.slo)
        top = 0.405
    else:
        top = 0.62
    _plan_table(fig, top, r)
    return fig


def _ratios(probes, slo):
    """(metric, target, p99 / target per probe) for each SLO that is set."""
    for m, bound in slo.items():
        ys = np.array([(getattr(q, _ATTR[m]) or np.nan) / bound for q in probes])
        yield m, bound, ys


def _marks(ax, xs, ys, met, color) -> None:
    met = np.asarray(met, dtype=bool)
    ax.plot(xs[met], ys[met], "o", color=color, ms=6)
    ax.plot(xs[~met], ys[~met], "x", color=MISS_COLOR, ms=7, mew=1.6)


def _rate_axes(fig, rect, r, slo) -> None:
    ax = fig.add_axes(rect)
    probes = sorted(r.probes, key=lambda q: q.rate_per_s)
    xs = np.array([q.rate_per_s for q in probes])
    for m, bound, ys in _ratios(probes, slo):
        ax.plot(xs, ys, color=METRIC_COLORS[m], lw=1.2,
                label=f"p99 {METRIC_LABELS[m]} / {bound:g} s")
        _marks(ax, xs, ys, [q.met for q in probes], METRIC_COLORS[m])
    _slo_line(ax)
    if r.max_qps > 0:
        ax.axvline(r.max_qps, color="#2ca02c", lw=1.2, ls="--")
        ax.annotate(f"max {r.max_qps:.3g} req/s", (r.max_qps, 1.0),
                    xycoords=("data", "axes fraction"), textcoords="offset points",
                    xytext=(0, 3), fontsize=8, color="#2ca02c", ha="center")
    log_axis(ax)
    _room_for_slo(ax)
    ax.set_xlabel("arrival rate on one replica (requests / s)", fontsize=8.5)
    ax.set_ylabel("p99 / SLO target (<= 1 meets)", fontsize=8.5)
    ax.set_title("One replica: steady-state p99 against its target at each rate simulated "
                 "(o every SLO met, x missed)", fontsize=9, loc="left", pad=14)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", color="#e5e5e5", lw=0.6)
    _legend_right(ax)


def _legend_right(ax) -> None:
    """The legend beside the axes, where it covers no point."""
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _slo_line(ax) -> None:
    ax.axhline(1.0, color=SLO_COLOR, lw=1.2)
    ax.annotate("SLO", (0.995, 1.0), xycoords=("axes fraction", "data"),
                textcoords="offset points", xytext=(0, 3), fontsize=7.5, ha="right")


def _room_for_slo(ax) -> None:
    """The SLO line (at 1) inside the axis with room above it for its label."""
    lo, hi = ax.get_ylim()
    if ax.get_yscale() == "log":
        ax.set_ylim(lo, max(hi, 1.6))
    else:
        ax.set_ylim(0, max(hi, 1.25))


def _replica_axes(fig, rect, r, slo) -> None:
    ax = fig.add_axes(rect)
    probes = sorted(r.replica_probes, key=lambda q: q.replicas)
    xs = np.array([q.replicas for q in probes], dtype=float)
    for m, bound, ys in _ratios(probes, slo):
        ax.plot(xs, ys, color=METRIC_COLORS[m], lw=1.0, label=f"p99 {METRIC_LABELS[m]}")
        _marks(ax, xs, ys, [q.met for q in probes], METRIC_COLORS[m])
    _slo_line(ax)
    if r.replicas is not None:
        ax.axvline(r.replicas, color="#2ca02c", lw=1.2, ls="--")
        ax.annotate(f"plan: {r.replicas}" + (" (one fewer misses)" if r.replicas > 1
                                             else " (one replica suffices)"),
                    (r.replicas, 1.0), xycoords=("data", "axes fraction"),
                    textcoords="offset points", xytext=(0, 3), fontsize=8,
                    color="#2ca02c", ha="center")
    ys_all = np.concatenate([ys for _, _, ys in _ratios(probes, slo)])
    ys_all = ys_all[np.isfinite(ys_all) & (ys_all > 0)]
    if ys_all.size and ys_all.max() / ys_all.min() > 20:
        log_axis(ax, "y")
    if xs.size and xs.max() / xs.min() > 20:
        log_axis(ax, "x")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(max(0.0, xs.min() - 1.0) if xs.size else 0.0,
                    (xs.max() if xs.size else 1.0) + 1.0)
    _room_for_slo(ax)
    ax.set_xlabel(f"replicas at the target, {r.target_qps:g} req/s "
                  f"({r.requests_per_probe:,} requests a run, {r.requests_at_target:,} at the "
                  f"planned count)", fontsize=8.5)
    ax.set_ylabel("p99 / SLO target", fontsize=8.5)
    ax.set_title("The target load on N replicas behind the router (o met, x missed)",
                 fontsize=9, loc="left", pad=14)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", color="#e5e5e5", lw=0.6)
    _legend_right(ax)


def _plan_table(fig, top: float, r) -> None:
    from simkit.units import fmt_bytes

    f = Flow(fig, top=top)
    slo = r.slo
    ci = slo.get("ci") or {}

    def p99(metric: str, key: str) -> str:
        c = ci.get(metric)
        return fmt_s(slo.get(key)) + (f" [{fmt_s(c[0])}, {fmt_s(c[1])}]" if c else "")

    price = ("no price known: " + r.price_source.removeprefix("no price: ")
             if r.cost_per_gpu_hour is None else
             f"{r.cost_per_gpu_hour:g} USD per GPU-hour ({price_label(r.price_source)})")
    rows = [["max load of one replica (SLOs met)",
             f"{r.max_qps:.4g} req/s (bisected to {r.qps_rel_tol:.0%}; cost-model estimate "
             f"{r.analytic_qps:.3g}, bound {r.rate_bound_per_s or float('nan'):.3g})"]]
    if r.target_qps is not None:
        rows.append(["target load", f"{r.target_qps:g} req/s"])
    rows += [
        ["replicas / GPUs", f"{r.replicas if r.replicas is not None else '-'} / "
                            f"{r.gpus if r.gpus is not None else '-'} "
                            f"({r.gpus_per_replica} per replica)"
                            + (f"; {r.reason}" if r.reason else "")],
        ["price", price],
        ["cost", "-" if r.cost_per_hour is None else f"{r.cost_per_hour:.4g} USD/h"],
        ["cost per million output tokens", "-" if r.cost_per_million_tokens is None else
         f"{r.cost_per_million_tokens:.4g} USD ({r.cost_per_million_total_tokens:.3g} USD per "
         "million prompt + output tokens), at the steady-state throughput"],
        ["operating point (simulated)",
         f"{r.operating_rate_per_s:.4g} req/s on {r.replicas} replica(s): p99 TTFT "
         f"{p99('ttft_s', 'ttft_p99_measured_s')}, TPOT {p99('tpot_s', 'tpot_p99_measured_s')}"
         f" [95% intervals]; SLOs {'met' if slo.get('met') else 'MISSED'}"
         + (" (marginal: an interval straddles its target)" if slo.get("marginal") else "")],
        ["longest context in the KV budget",
         f"{r.max_context_tokens:,} tokens (limited by the {r.max_context_limited_by}); KV "
         f"memory {fmt_bytes(r.kv_capacity_bytes)} per replica"],
    ]
    f.table(["plan", ""], rows, cols=[0.3, 0.7], size=8.2)
    f.space(0.006)
    notes = ["The p99s are over the steady state: the first 10% of arrivals (warm-up) are "
             "left out, and throughput counts the window up to the last arrival (no drain). "
             "A rate or replica count meets the SLOs when each p99 estimate is within its "
             "target, at least 99% of requests complete and completions keep up with "
             "arrivals (an x under the line: the replicas fell behind, completing under 80% "
             "of what arrived); every run uses the scenario's seed, so all see the same "
             "requests. A probe that met the SLOs in a run too short for its request "
             "lifetimes was run again, longer."]
    notes += list(r.warnings)
    for n in notes:
        f.text(n, size=7.5, color="#333333")
    if r.comparison:
        f.space(0.008)
        f.heading("Architectures for the same workload", size=10.5)
        crow = []
        for c in r.comparison:
            if c.get("error") and c.get("gpus") is None:
                crow.append([c["attention"], "-", "-", "-", "error: " + c["error"]])
            else:
                crow.append([c["attention"], f"{c['max_qps']:.4g}", f"{c['replicas']}",
                             f"{c['gpus']}", "-" if c.get("cost_per_million_tokens") is None
                             else f"{c['cost_per_million_tokens']:.3g}"])
        f.table(["attention", "max req/s per replica", "replicas", "GPUs",
                 "USD / M output tokens"], crow, cols=[0.2, 0.22, 0.14, 0.14, 0.30],
                size=8.5)
        if r.best_attention:
            f.text(f"Fewest GPUs: {r.best_attention}.", size=9, weight="bold")
