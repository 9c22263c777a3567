"""Page 1: the scenario, its question, the answer in brief, the setup and the contents."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from matplotlib.figure import Figure

from simkit.report.costlayer import arch_for, engine_of, hardware_of
from simkit.report.formats import (describe_arch, describe_lengths,
                                   describe_workload_arrivals, fmt_s, model_basename,
                                   plain_value, pq, short_key)
from simkit.report.layout import Flow, new_page
from simkit.sim.scheduler import watermark_of
from simkit.units import fmt_bytes

if TYPE_CHECKING:
    from simkit.report.gather import ReportData


@dataclass
class TitleData:
    name: str
    question: str
    rows: list[tuple[str, str]]
    answer: list[str]
    version: str
    seed: int


def title_data(s) -> TitleData:
    from simkit import __version__

    from simkit.plan.prices import gpu_price

    model = s.model_config()
    arch = arch_for(model, s.model)
    hw = hardware_of(s)
    sv = s.serving
    watermark = watermark_of(sv)  # share of KV memory admissions leave free
    price = gpu_price(s)
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
                     + (f"{price.per_gpu_hour:g} USD per GPU-hour ({price.label})"
                        if price is not None else "no price per GPU-hour known")
                     + ("; ideal roofline" if s.hardware.ideal
                        else f"; engine {engine_of(s).name}")),
        ("Workload", f"{s.workload.requests:,} requests; arrivals "
                     f"{describe_workload_arrivals(s.workload)}"),
        ("Prompts", describe_lengths(s.workload.prompt_tokens)),
        ("Outputs", describe_lengths(s.workload.output_tokens)
         + (f", at most {s.workload.max_new_tokens:,} tokens (max_new_tokens)"
            if s.workload.max_new_tokens is not None else "")),
        ("Serving", f"{sv.scheduler} batching (max batch {sv.max_batch}"
                    + (f", chunks of {sv.chunk_tokens} tokens" if sv.scheduler == "chunked"
                       else "")
                    + (f", multi-step rounds of {sv.scheduler_steps} decode steps"
                       + (" streamed step by step" if sv.multi_step_stream_outputs
                          else " sent at each round's end")
                       if sv.scheduler_steps > 1 else "")
                    + f"), {sv.kv_memory} KV memory"
                    + (f" (blocks of {sv.block_size})" if sv.kv_memory == "paged" else "")
                    + (f", KV cache {fmt_bytes(sv.kv_cache_bytes)} per GPU"
                       if sv.kv_cache_bytes is not None
                       else f", memory_fraction {sv.memory_fraction:g}")
                    + ", max_seq_len "
                    + (f"{sv.max_seq_len:,}" if sv.max_seq_len else "model's")
                    + (", admission reserving each answer's whole length (no eviction)"
                       if sv.admission == "no_evict"
                       else ", SGLang's admission (new_token_ratio, schedule_conservativeness "
                       f"{sv.schedule_conservativeness:g}), retraction by recompute"
                       if sv.admission == "new_token_ratio"
                       else f", preemption by {sv.preemption}")
                    + (f", admissions leave {100 * watermark:.3g}% of the KV memory "
                       "free (watermark)" if watermark else "")),
        ("SLOs", slo_txt),
    ]
    dis = getattr(sv, "disaggregation", None)
    if dis is not None:
        link = ("NVLink within a node" if dis.link == "nvlink" else
                f"a {dis.link_bytes_per_s / 1e9:.3g} GB/s-per-GPU network, "
                f"{dis.link_latency_s * 1e6:.3g} us")
        rows.append(("Disaggregation", f"{dis.prefill_replicas} prefill + "
                     f"{dis.decode_replicas} decode replica(s) per group"
                     + (f" ({dis.prefill_hardware or hw.name} / "
                        f"{dis.decode_hardware or hw.name})" if dis.prefill_hardware or
                        dis.decode_hardware else "")
                     + f"; KV moved {dis.transfer.replace('_', ' ')} over {link}"))
    spec = getattr(sv, "speculative", None)
    if spec is not None:
        rows.append(("Speculative", f"draft {model_basename(spec.draft)}, k = {spec.tokens}, "
                     + (f"acceptance {spec.acceptance:g} per token" if spec.acceptance
                        is not None else f"accepted lengths {list(spec.acceptance_lengths)}")))
    what_ifs = _what_ifs(s, model)
    if what_ifs:
        rows.append(("What-if", what_ifs))
    if s.plan is not None:
        rows.append(("Plan", (f"target {s.plan.target_qps:g} req/s" if s.plan.target_qps
                              else "max load of one replica")
                     + (f"; compare {', '.join(s.plan.compare)}" if s.plan.compare else "")))
        if len(s.plan.search):
            rows.append(("Search", "; ".join(f"{k} in {', '.join(plain_value(x) for x in v)}"
                                             for k, v in s.plan.search.items())
                         + f" ({len(s.plan.search.points())} configurations)"))
    if len(s.sweep):
        rows.append(("Sweep", "; ".join(f"{k} in {list(v)}" for k, v in s.sweep.items())))
    return TitleData(name=s.name, question=s.question, rows=rows, answer=[],
                     version=__version__, seed=s.seed)


def _what_ifs(s, model) -> str:
    """The lengths the scenario asks for beyond the deployed context, marked as what-ifs."""
    from simkit.scenario import what_ifs

    lengths, context = what_ifs(s)
    if not lengths:
        return ""
    return (", ".join(lengths) + f" beyond {model.name}'s {context:,}-token context: costs "
            "there are what-ifs of the cost model, not a supported length")


def answer_lines(d: ReportData) -> list[str]:
    """'The answer in brief' for the title page, from whatever sections ran."""

    out = []
    if d.search is not None:
        from simkit.report.pages.search import answer as search_answer

        out += search_answer(d.search)
    p = d.plan.result if d.plan is not None else None
    if p is not None:
        out.append(("Its plan: one replica" if d.plan.label else "One replica")
                   + f" sustains {p.max_qps:.3g} req/s with every p99 SLO met "
                   f"(cost-model estimate {p.analytic_qps:.3g}).")
        if p.target_qps is not None and p.replicas is not None:
            out.append(
                f"{p.target_qps:g} req/s needs {p.replicas} replica(s) = {p.gpus} x "
                f"{d.plan.hardware} ("
                + (f"{p.cost_per_hour:.4g} USD/h, " if p.cost_per_hour is not None
                   else "no price known, ")
                + (f"{p.cost_per_million_tokens:.3g} USD per million output tokens"
                   if p.cost_per_million_tokens is not None else "no cost per token") + "); "
                f"simulated there (steady state): p99 TTFT "
                f"{fmt_s(p.slo.get('ttft_p99_measured_s'))}, p99 TPOT "
                f"{fmt_s(p.slo.get('tpot_p99_measured_s'))}, "
                f"SLOs {'met' if p.slo.get('met') else 'MISSED'}.")
        elif p.target_qps is not None:
            out.append(f"No replica count meets the SLOs at {p.target_qps:g} req/s"
                       + (f": {p.reason}." if p.reason else "."))
        if p.best_attention:
            out.append(f"Of {', '.join(c['attention'] for c in p.comparison)}, "
                       f"{p.best_attention} serves the load with the fewest GPUs.")
    elif d.plan is not None and d.plan.error:
        out.append(f"Capacity plan not made: {d.plan.error}")
    if getattr(d, "disaggregation", None) is not None:
        out += d.disaggregation.answer
    if getattr(d, "speculative", None) is not None:
        out += d.speculative.answer
    sm = d.simulation.summary
    out.append(
        f"Simulated {sm['requests_arrived']:,} requests at the scenario's load: "
        f"p99 TTFT {pq(sm, 'ttft_s')}, p99 TPOT {pq(sm, 'tpot_s')}, p99 end-to-end "
        f"{pq(sm, 'e2e_s')}; {sm['requests_completed']:,} completed, "
        f"{sm['requests_rejected']:,} rejected; KV peak {fmt_bytes(sm['kv_peak_bytes'])} of "
        f"{fmt_bytes(sm['kv_capacity_bytes'])}; {sm['preemptions']:,} preemptions.")
    if sm.get("prefix_caching") and (sm.get("prefix_hit_rate") or 0) > 0:
        from simkit.units import fmt_flops

        out.append(
            f"Prefix caching served {sm['prefix_hit_rate']:.1%} of prompt tokens from cache: "
            f"{sm.get('prefill_tokens_computed', 0):,} tokens prefilled, "
            f"{fmt_flops(sm.get('prefill_flops') or 0)} of prefill instead of "
            f"{fmt_flops(sm.get('prefill_flops_without_cache') or 0)}.")
    c = d.cost
    arch = c.arch.split(";")[0] if c.kind == "hybrid" else f"{c.kind} attention"
    out.append(f"{c.model} with {arch}: prefill time {c.big_o_time} and cache "
               f"{c.big_o_cache} in the context length n.")
    if d.sweep is not None:
        ok = [r for r in d.sweep.rows if not r.get("error")]

        def lab(r):
            return ", ".join(f"{short_key(k)} = {plain_value(r[k])}" for k in d.sweep.keys)
        if 0 < len(ok) <= 6:
            out.append(f"Sweep of {len(d.sweep.rows)} points (simulated, one replica):")
            for r in ok:
                out.append(f"    {lab(r)}: p99 TTFT {fmt_s(r.get('ttft_s.p99'))}, p99 TPOT "
                           f"{fmt_s(r.get('tpot_s.p99'))}, p99 end-to-end "
                           f"{fmt_s(r.get('e2e_s.p99'))}, KV peak "
                           f"{fmt_bytes(r.get('kv_peak_bytes') or 0)}.")
        elif ok:
            hi = max(ok, key=lambda r: r.get("e2e_s.p99") or 0)
            lo = min(ok, key=lambda r: r.get("e2e_s.p99") or math.inf)
            out.append(f"Sweep of {len(d.sweep.rows)} points: p99 end-to-end from "
                       f"{fmt_s(lo.get('e2e_s.p99'))} ({lab(lo)}) to "
                       f"{fmt_s(hi.get('e2e_s.p99'))} ({lab(hi)}).")
        errs = len(d.sweep.rows) - len(ok)
        if errs:
            out.append(f"{errs} sweep point(s) could not be simulated (see the sweep pages).")
    return out


def title_page(t, contents: Sequence[str]) -> Figure:
    """Scenario name and question, the answer in brief, the setup, the contents."""
    fig = new_page()
    f = Flow(fig, top=0.95)
    f.text("simkit report", size=11, color="#555555")
    f.text(t.name, size=20, weight="bold")
    f.space(0.006)
    if t.question:
        f.text(t.question, size=13, style="italic")
    f.space(0.012)
    f.heading("The answer in brief", size=12)
    for a in t.answer:
        if a.startswith("    "):
            f.text(a.strip(), size=8.8, indent=0.03)
        else:
            f.text("-  " + a, size=9.5)
        f.space(0.002)
    f.space(0.01)
    f.heading("Setup", size=12)
    f.table(["", ""], [(k, v) for k, v in t.rows], cols=[0.17, 0.83], size=8.5)
    f.space(0.012)
    f.heading("Contents", size=12)
    foot = 3 * f.line_height(8) + 0.012
    if f.y - len(contents) * f.line_height(9) - foot >= f.bottom:
        for i, c in enumerate(contents, 1):
            f.text(f"{i:>2}.  {c}", size=9)
    else:  # a long answer: the contents in columns, smaller, to stay on the page
        cols, size = next(((c, z) for c, z in ((2, 8), (3, 7), (4, 6.5))
                           if f.y - -(-len(contents) // c) * f.line_height(z) - foot
                           >= f.bottom), (4, 6.5))
        per = -(-len(contents) // cols)
        width = (f.right - f.left) / cols
        top, low = f.y, f.y
        for col in range(cols):
            f.y = top
            for i in range(col * per, min(len(contents), (col + 1) * per)):
                f.text(f"{i + 1:>2}.  {contents[i]}", size=size, indent=width * col,
                       width=width * 0.95)
            low = min(low, f.y)
        f.y = low
    f.space(0.012)
    f.text(f"simkit {t.version}; seed {t.seed}. Every number in this report comes from the "
           "scenario file and simkit's cost models, simulator and planner; the same scenario "
           "and version give the same bytes (no dates are recorded).", size=8,
           color="#444444")
    return fig
