"""The configuration-search pages (`[plan.search]`): cost against p99 latency for every
configuration planned, the Pareto frontier, the cheapest configuration, why the others are
not ranked, and the ranked table."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from simkit.report.formats import column_label, fmt_s, log_axis, plain_value
from simkit.report.layout import (Flow, MISS_COLOR, NOTE_BOTTOM, SLO_COLOR, new_page, note,
                                  page_title)
from simkit.report.pages import Progress, say
from simkit.plan.prices import price_label

#: ranked rows the table page lists (the JSON of `simkit plan` has every one)
TABLE_ROWS = 40
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def search_data(s, *, requests: int | None = None, progress: Progress = None,
                executor=None):
    """The search's `SearchResult` (None without `[plan.search]`)."""
    if s.plan is None or not len(s.plan.search):
        return None
    from simkit.plan.search import run_search

    if requests is not None:
        s = s.with_(**{"plan.requests": int(requests)})
    say(progress, f"searching {len(s.plan.search.points())} configurations")
    return run_search(s, executor, progress=progress)


def label(params: dict[str, Any]) -> str:
    return ", ".join(f"{column_label(k)} = {plain_value(v)}" for k, v in params.items())


def answer(res) -> list[str]:
    """'The answer in brief' lines of a search."""
    c = res.counts
    out = []
    b = res.best
    if b is not None:
        out.append(
            f"Cheapest of {c['configurations']} configurations at {res.target_qps:g} req/s: "
            f"{label(b['params'])} -- {b['replicas']} replica(s) = {b['gpus']} GPUs, "
            f"{b['cost_per_hour']:.4g} USD/h at {b['price_per_gpu_hour']:g} USD per GPU-hour "
            f"({price_label(b['price_source'])}), {b['cost_per_million_tokens']:.3g} USD per "
            f"million output tokens; p99 TTFT {fmt_s(b['ttft_p99_s'])}, TPOT "
            f"{fmt_s(b['tpot_p99_s'])}.")
    else:
        out.append(f"None of the {c['configurations']} configurations meets the SLOs at "
                   f"{res.target_qps:g} req/s.")
    out.append(f"{c['ranked']} planned by simulation and ranked, {c['pruned']} pruned (proven "
               f"to cost more than the cheapest, by the cost model or by one probe), "
               f"{c['infeasible']} infeasible.")
    if len(res.pareto) > 1:
        lo, hi = res.pareto[0], res.pareto[-1]
        out.append(f"Cost-latency frontier: {len(res.pareto)} configurations, from "
                   f"{lo['cost_per_hour']:.4g} USD/h (p99 TTFT {fmt_s(lo['ttft_p99_s'])}) to "
                   f"{hi['cost_per_hour']:.4g} USD/h (p99 TTFT {fmt_s(hi['ttft_p99_s'])}).")
    return out


def _style_key(res) -> str | None:
    """The search key whose value picks a point's colour (the GPU when it is searched)."""
    if "hardware.name" in res.keys:
        return "hardware.name"
    return res.keys[0] if res.keys else None


def search_figure(res) -> Figure:
    """Cost vs p99 TTFT and TPOT, the frontier, the cheapest, why the others are not
    ranked."""
    fig = new_page()
    c = res.counts
    page_title(fig, "Configuration search",
               f"{c['configurations']} configurations planned for {res.target_qps:g} req/s: "
               f"{c['ranked']} ranked, {c['pruned']} pruned, {c['infeasible']} infeasible")
    ranked = [r for r in res.configs if r["status"] == "ranked"]
    frontier = {r["index"] for r in res.pareto}
    key = _style_key(res)
    values = list(dict.fromkeys(r["params"].get(key) for r in ranked)) if key else []
    tp_key = "hardware.gpus_per_replica" if "hardware.gpus_per_replica" in res.keys else None
    tps = sorted({r["params"][tp_key] for r in ranked}) if tp_key else []
    for j, (metric, title) in enumerate((("ttft_p99_s", "p99 TTFT"),
                                         ("tpot_p99_s", "p99 TPOT"))):
        ax = fig.add_axes((0.12, 0.715 - j * 0.235, 0.83, 0.15))
        top = 0.0
        for r in ranked:
            v = r[metric]
            if v is None:
                continue
            top = max(top, v)
            ci = values.index(r["params"].get(key)) if key else 0
            mk = _MARKERS[tps.index(r["params"][tp_key]) % len(_MARKERS)] if tp_key else "o"
            on = r["index"] in frontier
            ax.plot([r["cost_per_hour"]], [v], mk, color=f"C{ci % 10}",
                    ms=7 if on else 5, mfc=f"C{ci % 10}" if on else "white", mew=1.2,
                    ls="none")
        target = res.slo.get(metric.replace("_p99", ""))
        if target is not None:
            top = max(top, target)
            ax.axhline(target, color=SLO_COLOR, lw=1.1)
            ax.annotate(f"SLO {fmt_s(target)}", (0.995, target),
                        xycoords=("axes fraction", "data"), textcoords="offset points",
                        xytext=(0, 2), fontsize=7, ha="right")
        costs = np.array([r["cost_per_hour"] for r in ranked]) if ranked else np.ones(1)
        if costs.max() / costs.min() > 6:
            log_axis(ax, "x")
        ax.set_ylim(0, (top or 1.0) * 1.15)
        ax.set_xlabel("cost at the target (USD per hour)", fontsize=8.5)
        ax.set_ylabel(f"{title} (s)", fontsize=8.5)
        ax.set_title(f"{title} at the operating point against cost (filled: on the "
                     "cost-latency Pareto frontier)", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
        ax.grid(True, color="#e5e5e5", lw=0.6)
        ax.set_axisbelow(True)
    legend = []
    if key:
        from matplotlib.lines import Line2D

        legend = [Line2D([], [], marker="o", ls="none", color=f"C{i % 10}",
                         label=f"{column_label(key)} = {plain_value(v)}")
                  for i, v in enumerate(values)]
        legend += [Line2D([], [], marker=_MARKERS[i % len(_MARKERS)], ls="none",
                          color="#444444", label=f"{tp} GPU(s) per replica")
                   for i, tp in enumerate(tps)]
    if legend:
        fig.legend(handles=legend, loc="upper left", bbox_to_anchor=(0.08, 0.935),
                   fontsize=7.5, frameon=False, ncol=4)
    f = Flow(fig, top=0.43)
    b = res.best
    if b is not None:
        f.heading("The cheapest configuration", size=10.5)
        f.text(f"{label(b['params'])}: {b['replicas']} replica(s) = {b['gpus']} GPUs at "
               f"{b['price_per_gpu_hour']:g} USD per GPU-hour "
               f"({price_label(b['price_source'])}) = "
               f"{b['cost_per_hour']:.4g} USD/h, {b['cost_per_million_tokens']:.3g} USD per "
               f"million output tokens (steady state). One replica carries "
               f"{b['max_qps']:.3g} req/s; at {res.target_qps:g} req/s the p99 TTFT is "
               f"{fmt_s(b['ttft_p99_s'])} and the p99 TPOT {fmt_s(b['tpot_p99_s'])}"
               + (" (marginal: a 95% interval straddles its target)" if b["marginal"]
                  else "") + ".", size=8.5)
        f.space(0.006)
    f.heading("Why the others are not ranked", size=10.5)
    why = defaultdict(list)
    for r in res.configs:
        if r["status"] != "ranked":
            why[r["reason_kind"]].append(r)
    rows = []
    for kind, rs in sorted(why.items(), key=lambda kv: -len(kv[1])):
        rows.append([kind, f"{len(rs)}", label(rs[0]["params"]), rs[0]["reason"]])
    if rows:
        f.table(["reason", "configs", "for example", "in full"], rows,
                cols=[0.2, 0.07, 0.3, 0.43], size=7.5)
    else:
        f.text("Every configuration was planned and ranked.", size=8.5)
    f.space(0.004)
    note(fig, [
        "Every configuration serves the same requests (the scenario's seed). The cost model "
        "rules out configurations that cannot serve at all and gives each of the others a "
        "lower bound on its cost. A rising cost cut (x sqrt(2) a round, from twice the smallest bound) "
        "is probed in one simulation each: the replicas it buys, at the target load. Those "
        "that meet the SLOs within the first cut any meets are planned in full and ranked; "
        "the others are pruned, their bound or that probe proving them dearer. "
        "Replicas are the fewest that meet the SLOs (one fewer does not); p99s are over the "
        "steady state."], top=f.y - 0.005, size=7.2, bottom=NOTE_BOTTOM)
    return fig


def search_table_page(res) -> Figure:
    """The ranked configurations."""
    fig = new_page()
    ranked = [r for r in res.configs if r["status"] == "ranked"]
    page_title(fig, "Configuration search: ranked",
               f"{len(ranked)} feasible configurations, cheapest first"
               + (f" (the first {TABLE_ROWS})" if len(ranked) > TABLE_ROWS else "")
               + "; P: on the Pareto frontier; *: marginal")
    f = Flow(fig, top=0.925)
    frontier = {r["index"] for r in res.pareto}
    keys = res.keys
    header = ["#"] + [column_label(k) for k in keys] + [
        "req/s per replica", "replicas", "GPUs", "USD/h", "USD/M tok", "p99 TTFT", "p99 TPOT"]
    rows = []
    for r in ranked[:TABLE_ROWS]:
        # the marks go with the rank: in the narrow p99 column a mark wraps to a line of
        # its own
        rows.append([f"{r['rank']}{' P' if r['index'] in frontier else ''}"
                     f"{' *' if r['marginal'] else ''}"]
                    + [plain_value(r["params"][k]) for k in keys]
                    + [f"{r['max_qps']:.3g}", f"{r['replicas']}", f"{r['gpus']}",
                       f"{r['cost_per_hour']:.4g}", f"{r['cost_per_million_tokens']:.3g}",
                       fmt_s(r["ttft_p99_s"]), fmt_s(r["tpot_p99_s"])])
    nk = len(keys)
    kw = min(0.13, 0.42 / max(nk, 1))
    rest = (1 - 0.06 - kw * nk) / 7
    f.table(header, rows, cols=[0.06] + [kw] * nk + [rest] * 7, size=7.5,
            align=["left"] + ["right"] * (nk + 7))
    if not ranked:
        f.text("No configuration is feasible.", size=9, color=MISS_COLOR)
    return fig
