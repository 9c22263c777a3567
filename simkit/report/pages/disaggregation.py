"""The disaggregation page ([serving.disaggregation]): the scenario's prefill and decode pools
against colocated serving on the same number of GPUs, across prompt lengths (and links),
and where moving the KV stops paying.

Prompt lengths are the scenario's [sweep] values of "workload.prompt_tokens.median" (or
".value"), links its values of "serving.disaggregation.link_bytes_per_s"; without them, the
scenario's own. At each length the colocated twin is the scenario without
[serving.disaggregation], on as many [hardware] replicas as the pools have GPUs. Every run
uses the scenario's seed (the same requests); latencies are steady-state p99s.

"Pays" means lower p99 TPOT than colocated serving at that length: the decode phase --
which for a disaggregated request includes waiting for room on a decode replica and the
move itself -- is shorter than colocated decoding with prefills in the way (DistServe,
arXiv:2401.09670, Sec. 2.2). It stops paying below the length where prefills stop getting
in the way, and above the length where the link cannot carry the KV as fast as the prefill
pool makes it (`kv_link_busy_fraction` near 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from simkit.report.formats import fmt_tokens, log_axis
from simkit.report.layout import SLO_COLOR, new_page, note, page_title
from simkit.report.pages import Progress, say

LENGTH_KEYS = ("workload.prompt_tokens.median", "workload.prompt_tokens.value")
LINK_KEY = "serving.disaggregation.link_bytes_per_s"


@dataclass
class DisaggData:
    """Colocated and disaggregated runs at each prompt length (and link)."""

    length_key: str | None
    lengths: list[float]
    gpus: int
    group: str  # "2 prefill + 2 decode replicas"
    transfer: str
    colocated: list[dict[str, Any]]  # per length
    split: dict[str, list[dict[str, Any]]]  # link label -> per length
    slo: dict[str, float] = field(default_factory=dict)
    answer: list[str] = field(default_factory=list)


def _metrics(summary: dict[str, Any]) -> dict[str, Any]:
    st = summary.get("steady_state") or {}
    return {"ttft_p99_s": (st.get("ttft_s") or {}).get("p99"),
            "tpot_p99_s": (st.get("tpot_s") or {}).get("p99"),
            "attainment": summary.get("slo_attainment"),
            "transfer_mean_s": (summary.get("kv_transfer_s") or {}).get("mean"),
            "wait_mean_s": (summary.get("kv_transfer_wait_s") or {}).get("mean"),
            "link_busy": summary.get("kv_link_busy_fraction"),
            "busy": summary.get("busy_fraction"),
            "pool_busy": {k: p.get("busy_fraction")
                          for k, p in (summary.get("pools") or {}).items()},
            "transfer_bytes": summary.get("kv_transfer_bytes")}


def _link_label(s) -> str:
    d = s.serving.disaggregation
    if d.link == "nvlink":
        return "NVLink (one node)"
    return f"network {d.link_bytes_per_s / 1e9:.3g} GB/s per GPU"


def disaggregation_data(s, *, requests: int | None = None, progress: Progress = None
                        ) -> DisaggData | None:
    if getattr(s.serving, "disaggregation", None) is None:
        return None
    from simkit.plan.prices import unit_parts
    from simkit.sim import simulate

    base = s.at_point({}) if len(s.sweep) else s
    key = next((k for k in LENGTH_KEYS if k in s.sweep), None)
    lengths = list(s.sweep[key]) if key else [None]
    links = list(s.sweep[LINK_KEY]) if LINK_KEY in s.sweep else [None]
    d = s.serving.disaggregation
    gpus = sum(g * n for _, g, n in unit_parts(s)) * int(s.serving.replicas)
    per = int(s.hardware.gpus_per_replica)
    twin_replicas = max(1, gpus // per)
    colo, split = [], {}
    n = len(lengths) * (1 + len(links))
    i = 0
    for length in lengths:
        pt = {key: length} if key else {}
        i += 1
        say(progress, f"disaggregation [{i}/{n}]: colocated on {twin_replicas} replicas"
            + (f", prompts {length:g}" if key else ""))
        twin = base.with_(**pt, **{"serving.disaggregation": None,
                                   "serving.replicas": twin_replicas})
        colo.append(_metrics(simulate(twin, requests=requests).summary))
        for link in links:
            i += 1
            p = dict(pt, **({LINK_KEY: link} if link is not None else {}))
            sp = base.with_(**p) if p else base
            lab = _link_label(sp)
            say(progress, f"disaggregation [{i}/{n}]: {lab}"
                + (f", prompts {length:g}" if key else ""))
            split.setdefault(lab, []).append(_metrics(simulate(sp, requests=requests).summary))
    out = DisaggData(
        length_key=key, lengths=[float(x) if x is not None else _own_length(s)
                                 for x in lengths],
        gpus=gpus,
        group=f"{d.prefill_replicas * s.serving.replicas} prefill + "
              f"{d.decode_replicas * s.serving.replicas} decode replicas",
        transfer=d.transfer, colocated=colo, split=split, slo=s.slo.targets())
    out.answer = answer(out)
    return out


def _own_length(s) -> float:
    from simkit.plan.capacity import typical_request

    return float(typical_request(s)[0])


def _pays(colo: list[dict], run: list[dict]) -> list[bool]:
    return [r["tpot_p99_s"] is not None and c["tpot_p99_s"] is not None
            and r["tpot_p99_s"] < c["tpot_p99_s"] for c, r in zip(colo, run)]


def _meets(row: dict, slo: dict[str, float]) -> bool:
    for m, bound in slo.items():
        v = row.get(m.replace("_s", "_p99_s"))
        if m in ("ttft_s", "tpot_s") and (v is None or v > bound):
            return False
    return True


def answer(dd: DisaggData) -> list[str]:
    """'The answer in brief', one line per link: where the split pays, where moving the KV
    stops paying, and where only one of the two meets the SLOs."""
    out = []
    L = dd.lengths
    for lab, run in dd.split.items():
        pays = _pays(dd.colocated, run)
        head = f"{dd.group} over {lab} vs colocated on {dd.gpus} GPUs: "
        if not any(pays):
            text = (f"p99 TPOT never lower at the prompt lengths tried ({_lens(L)}): moving "
                    "the KV does not pay")
        else:
            lo = next(i for i, p in enumerate(pays) if p)
            hi = max(i for i, p in enumerate(pays) if p)
            text = (f"p99 TPOT lower from {fmt_tokens(L[lo])}"
                    + (f" to {fmt_tokens(L[hi])}" if hi < len(L) - 1 else "")
                    + " prompt tokens")
            if lo > 0:
                text += (f"; below {fmt_tokens(L[lo])} prefills barely get in the way and "
                         "the move does not pay")
            if hi < len(L) - 1:
                busy = run[hi + 1].get("link_busy")
                text += (f"; beyond, the link is busy {busy:.0%} of the time and the KV "
                         "queues for it" if busy is not None and busy > 0.5 else
                         "; beyond, the prefill pool falls behind")
        if dd.slo:
            only = [fmt_tokens(x) for x, c, r in zip(L, dd.colocated, run)
                    if _meets(r, dd.slo) and not _meets(c, dd.slo)]
            lost = [fmt_tokens(x) for x, c, r in zip(L, dd.colocated, run)
                    if _meets(c, dd.slo) and not _meets(r, dd.slo)]
            if only:
                text += f"; only it meets the TTFT and TPOT SLOs at {', '.join(only)}"
            if lost:
                text += f"; only colocated serving meets them at {', '.join(lost)}"
            tp, tt = dd.slo.get("tpot_s"), dd.slo.get("ttft_s")
            if tp is not None and tt is not None:
                tpot_only = [fmt_tokens(x) for x, c, r in zip(L, dd.colocated, run)
                             if _le(r["tpot_p99_s"], tp) and not _le(c["tpot_p99_s"], tp)
                             and not _le(r["ttft_p99_s"], tt)]
                if tpot_only:
                    text += (f"; at {', '.join(tpot_only)} it meets the TPOT SLO colocated "
                             "serving misses, but its smaller prefill pool misses the TTFT "
                             "SLO (try another prefill:decode ratio)")
        out.append(head + text + ".")
    return out


def _le(v, bound: float) -> bool:
    return v is not None and v <= bound


def _lens(L: list[float]) -> str:
    return ", ".join(fmt_tokens(x) for x in L)


def disaggregation_figure(dd: DisaggData) -> Figure:
    """p99 TPOT and TTFT, SLO attainment and the KV move against the prompt length."""
    fig = new_page()
    page_title(fig, "Disaggregation: prefill and decode pools",
               f"{dd.group}, KV moved {dd.transfer.replace('_', ' ')}, vs colocated on the "
               f"same {dd.gpus} GPUs; steady-state p99s")
    gs = fig.add_gridspec(2, 2, left=0.11, right=0.96, top=0.89, bottom=0.36, hspace=0.42,
                          wspace=0.32)
    x = np.asarray(dd.lengths, dtype=float)
    panels = (("tpot_p99_s", "p99 TPOT", "seconds", "tpot_s"),
              ("ttft_p99_s", "p99 TTFT", "seconds", "ttft_s"),
              ("attainment", "requests meeting every SLO", "fraction", None),
              ("transfer_mean_s", "KV move, mean (dots: waiting for room)", "seconds", None))
    for j, (k, title, unit, slo) in enumerate(panels):
        ax = fig.add_subplot(gs[j // 2, j % 2])
        if k != "transfer_mean_s":
            ax.plot(x, [_num(r[k]) for r in dd.colocated], "-o", color="#333333", ms=3.5,
                    lw=1.3, label=f"colocated on the {dd.gpus} GPUs")
        for i, (lab, run) in enumerate(dd.split.items()):
            ax.plot(x, [_num(r[k]) for r in run], "-s", color=f"C{i}", ms=3.5, lw=1.3,
                    label=f"disaggregated, {lab}")
            if k == "transfer_mean_s":
                ax.plot(x, [_num(r["wait_mean_s"]) for r in run], ":", color=f"C{i}",
                        lw=1.0)
        target = dd.slo.get(slo) if slo else None
        if target is not None:
            ax.axhline(target, color=SLO_COLOR, lw=0.9, ls="--")
        if len(x) > 1 and x.max() / x.min() > 4:
            log_axis(ax, "x", tokens_x=True)
        if k != "attainment":
            vals = [v for r in dd.colocated + [q for run in dd.split.values() for q in run]
                    for v in [_num(r.get(k))] if np.isfinite(v) and v > 0]
            if vals and max(vals) / min(vals) > 20:
                log_axis(ax, "y")
        else:
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=9.5, loc="left")
        ax.set_ylabel(unit, fontsize=8.5)
        ax.set_xlabel("prompt tokens" + (" (median)" if dd.length_key and
                                         dd.length_key.endswith("median") else ""),
                      fontsize=8.5)
        ax.tick_params(labelsize=8)
        ax.grid(True, color="#e5e5e5", lw=0.6)
        if j == 0:
            ax.legend(fontsize=7, loc="upper left", frameon=False)
    lines = list(dd.answer)
    lines.append(
        "Colocated, a prompt prefilled beside running answers stalls each of them for its "
        "whole prefill (the p99 TPOT rises with the prompt length); on separate pools the "
        "answers never wait for a prompt, but they pay for the move (bytes / link bandwidth "
        "+ latency, after a decode replica has room: TPOT includes it) and the prefill pool "
        "has fewer GPUs (TTFT). Short prompts leave little to remove; a slow link caps the "
        "KV the prefill pool can hand on, and past that the moves queue.")
    y = note(fig, lines, top=0.30, size=8)
    from simkit.report.layout import Flow

    f = Flow(fig, top=y - 0.004)
    header = ["prompt tokens", "colocated busy"] + [
        f"{lab}: prefill / decode / link busy" for lab in dd.split]
    rows = []
    for i, x in enumerate(dd.lengths):
        row = [fmt_tokens(x), _pct(dd.colocated[i]["busy"])]
        for run in dd.split.values():
            r = run[i]
            pb = r["pool_busy"]
            row.append(f"{_pct(pb.get('prefill'))} / {_pct(pb.get('decode'))} / "
                       f"{_pct(r['link_busy'])}")
        rows.append(row)
    k = len(dd.split)
    f.table(header, rows, cols=[0.16, 0.16] + [0.68 / max(k, 1)] * k, size=7.5)
    return fig


def _pct(v) -> str:
    return "-" if v is None else f"{v:.0%}"


def _num(v) -> float:
    return float("nan") if v is None else float(v)

