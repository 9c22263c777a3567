"""Plain-text output of `simkit plan`: one plan, or a configuration search's ranked table,
its cheapest configuration, its cost-latency frontier and why the others are not ranked."""

from __future__ import annotations

from collections import defaultdict

from simkit.plan.prices import price_label

#: ranked rows printed before "... n more" (the JSON has every one)
MAX_ROWS = 20


def _g(v, unit: str = "") -> str:
    if v is None:
        return "-"
    return f"{v:.4g}{unit}"


def _t(v) -> str:
    """A latency for a table cell."""
    if v is None:
        return "-"
    return f"{v * 1e3:.3g} ms" if v < 1 else f"{v:.3g} s"


def _slo_text(slo: dict) -> str:
    names = {"ttft_s": "TTFT", "tpot_s": "TPOT", "e2e_s": "e2e"}
    return ", ".join(f"p99 {names[k]} <= {_t(v)}" for k, v in slo.items())


def print_plan(r) -> None:
    from simkit.units import fmt_bytes

    print(f"scenario: {r.scenario}")
    d = (r.resolved_scenario.get("serving") or {}).get("disaggregation")
    if d:
        print(f"disaggregated: a replica below is one group of {d['prefill_replicas']} prefill "
              f"+ {d['decode_replicas']} decode replica(s) ({r.gpus_per_replica} GPUs); the "
              "ratio itself is searched with [plan.search] over "
              "serving.disaggregation.prefill_replicas / decode_replicas")
    print(f"max_qps (one replica, SLOs met): {_g(r.max_qps)} req/s  "
          f"(cost-model estimate {_g(r.analytic_qps)}, bound {_g(r.rate_bound_per_s)}; "
          f"bisected to {r.qps_rel_tol:.0%})")
    slo = r.slo
    targets = ", ".join(f"{k} <= {slo[k]:g}" for k in ("ttft_p99_s", "tpot_p99_s", "e2e_p99_s")
                        if slo.get(k) is not None)
    print(f"slo: {targets} (steady-state p99 point estimate decides; 'marginal' when its 95% "
          "interval straddles the target)")
    if r.target_qps is not None:
        print(f"target: {_g(r.target_qps)} req/s")
    print(f"replicas: {r.replicas if r.replicas is not None else '-'}  gpus: "
          f"{r.gpus if r.gpus is not None else '-'} ({r.gpus_per_replica} per replica)"
          + (f"  ({r.reason})" if r.reason else ""))
    if r.replica_probes:
        tested = ", ".join(f"{p.replicas} {'met' if p.met else 'missed'}"
                           for p in sorted(r.replica_probes, key=lambda p: p.replicas))
        print(f"replicas simulated at the target ({r.requests_per_probe:,} requests a run, "
              f"{r.requests_at_target:,} at the planned count): "
              f"{tested}")
    if r.cost_per_gpu_hour is None:
        print(f"cost: unknown -- {r.price_source.removeprefix('no price: ')}")
    else:
        print(f"cost: {_g(r.cost_per_hour)} $/h at {r.cost_per_gpu_hour:g} $/GPU-h "
              f"({price_label(r.price_source)}); cost_per_million_tokens: "
              f"{_g(r.cost_per_million_tokens)} $ (output tokens; "
              f"{_g(r.cost_per_million_total_tokens)} $ per million prompt + output tokens; "
              "steady state: warm-up and drain left out)")
    m = r.metrics
    if m:
        ci = slo.get("ci") or {}

        def p99(k, key):
            v = slo.get(key)
            c = ci.get(k)
            return _g(v, " s") + (f" [{c[0]:.3g}, {c[1]:.3g}]" if c else "")
        st = m.get("steady_state") or {}
        print(f"operating point: {_g(r.operating_rate_per_s)} req/s on {r.replicas} "
              f"replica(s): p99 ttft {p99('ttft_s', 'ttft_p99_measured_s')}, tpot "
              f"{p99('tpot_s', 'tpot_p99_measured_s')}, e2e "
              f"{p99('e2e_s', 'e2e_p99_measured_s')} (95% intervals); steady throughput "
              f"{_g(st.get('throughput_tokens_per_s'))} tokens/s; SLOs "
              f"{'met' if slo['met'] else 'MISSED'}"
              + (" (marginal)" if slo.get("marginal") else ""))
    print(f"longest context in the KV budget ({fmt_bytes(r.kv_capacity_bytes)}): "
          f"{r.max_context_tokens} tokens (limited by {r.max_context_limited_by})")
    print("probes, one replica (rate req/s, p99 ttft s, p99 tpot s, met):")
    for p in sorted(r.probes, key=lambda p: p.rate_per_s):
        print(f"  {p.rate_per_s:10.4g}  {_g(p.ttft_p99_s):>9}  {_g(p.tpot_p99_s):>9}  "
              f"{'yes' if p.met else 'no'}{' (marginal)' if p.marginal else ''}")
    if r.comparison:
        print("architectures for the same workload:")
        for c in r.comparison:
            if c.get("error"):
                print(f"  {c['attention']:8} error: {c['error']}")
            else:
                print(f"  {c['attention']:8} max_qps {_g(c['max_qps']):>8}  replicas "
                      f"{c['replicas']}  gpus {c['gpus']}  $/Mtok "
                      f"{_g(c.get('cost_per_million_tokens'))}")
        if r.best_attention:
            print(f"fewest GPUs: {r.best_attention}")
    for w in r.warnings:
        print(f"warning: {w}")


def _value(v) -> str:
    return str(v)


def config_label(params: dict) -> str:
    from simkit.report.formats import column_label

    return ", ".join(f"{column_label(k)} = {_value(v)}" for k, v in params.items())


def ranked_table(res, rows: list[dict]) -> list[str]:
    """The ranked configurations as aligned text lines (header first)."""
    from simkit.report.formats import column_label

    head = ["#"] + [column_label(k) for k in res.keys] + [
        "req/s/replica", "replicas", "GPUs", "$/h", "$/M tok", "p99 TTFT", "p99 TPOT"]
    table = []
    for r in rows:
        table.append([str(r["rank"])] + [_value(r["params"][k]) for k in res.keys] + [
            _g(r["max_qps"]), str(r["replicas"]), str(r["gpus"]), _g(r["cost_per_hour"]),
            _g(r["cost_per_million_tokens"]), _t(r["ttft_p99_s"]), _t(r["tpot_p99_s"])
            + (" *" if r.get("marginal") else "")])
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h)
              for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    for t in table:
        lines.append("  ".join(x.rjust(w) for x, w in zip(t, widths)))
    return lines


def print_search(res, s, out) -> None:
    c = res.counts
    print(f"search: {c['configurations']} configurations of {s.name} for "
          f"{res.target_qps:g} req/s under {_slo_text(res.slo)}")
    print(f"  {c['ranked']} planned by simulation and ranked, {c['pruned']} pruned (proven "
          f"to cost more than the cheapest: by the cost model's lower bound, or by one probe "
          f"at the replicas that cost buys), {c['infeasible']} infeasible")
    ranked = [r for r in res.configs if r["status"] == "ranked"]
    if ranked:
        print("ranked, cheapest first (p99s at the operating point, steady state; "
              "* marginal):")
        for line in ranked_table(res, ranked[:MAX_ROWS]):
            print("  " + line)
        if len(ranked) > MAX_ROWS:
            print(f"  ... {len(ranked) - MAX_ROWS} more (plan.json / --json has every one)")
        b = res.best
        print(f"cheapest: {config_label(b['params'])}: {b['replicas']} replica(s) = "
              f"{b['gpus']} GPUs at {b['price_per_gpu_hour']:g} $/GPU-h "
              f"({price_label(b['price_source'])}) = {_g(b['cost_per_hour'])} $/h, "
              f"{_g(b['cost_per_million_tokens'])} $ per million output tokens; p99 TTFT "
              f"{_t(b['ttft_p99_s'])}, TPOT {_t(b['tpot_p99_s'])}; one replica carries "
              f"{_g(b['max_qps'])} req/s")
        print("cost-latency Pareto frontier (no other ranked configuration is as cheap and "
              "as fast in both p99s):")
        for r in res.pareto:
            print(f"  {_g(r['cost_per_hour'])} $/h  p99 TTFT {_t(r['ttft_p99_s'])}, TPOT "
                  f"{_t(r['tpot_p99_s'])}  (#{r['rank']}: {config_label(r['params'])})")
    else:
        print("no configuration is feasible")
    why = defaultdict(list)
    for r in res.configs:
        if r["status"] != "ranked":
            why[r["reason_kind"]].append(r)
    if why:
        print("not ranked:")
        for kind, rows in sorted(why.items(), key=lambda kv: -len(kv[1])):
            example = rows[0]
            print(f"  {kind} ({len(rows)}): e.g. {config_label(example['params'])}: "
                  f"{example['reason']}")
    if out is not None:
        print(f"results in {out}/results.jsonl, the plan in {out}/plan.json (resolved "
              f"scenario in {out}/scenario.toml)")
