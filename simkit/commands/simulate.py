"""`simkit simulate SCENARIO.toml`: run the request-stream simulation of a scenario."""

from __future__ import annotations

from simkit.commands._common import add_scenario_options, nonneg_int, positive_int


def register(sub) -> None:
    p = sub.add_parser("simulate", help="run the request-stream simulation",
                       description="Simulate SCENARIO.toml's request stream on its replicas "
                       "(batching, KV memory, preemption) and summarise latencies, "
                       "throughput, goodput and memory use.")
    p.add_argument("scenario", help="scenario TOML file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--requests-csv", metavar="F",
                   help="write one row per request to F (and the resolved scenario to "
                   "F.scenario.toml)")
    p.add_argument("--seed", type=nonneg_int, help="override the scenario's seed")
    p.add_argument("--requests", type=positive_int, help="override workload.requests")
    add_scenario_options(p)
    p.set_defaults(func=run)


#: how the summary line names an admission policy other than the default (greedy)
_ADMISSION_NOTE = {"no_evict": ", no-evict admission",
                   "new_token_ratio": ", new-token-ratio admission (SGLang)"}


def _text(s: dict, scenario) -> str:
    from simkit.units import fmt_bytes, fmt_seconds

    def dist(d: dict) -> str:
        if d["mean"] is None:
            return "n/a"
        return (f"mean {fmt_seconds(d['mean'])}, p50 {fmt_seconds(d['p50'])}, "
                f"p90 {fmt_seconds(d['p90'])}, p99 {fmt_seconds(d['p99'])}")

    def _kind(sc) -> str:
        from simkit.costs import ArchSpec

        return ArchSpec.from_scenario_model(sc.model_config(), sc.model).attention

    def num(v, fmt="{:.3g}") -> str:
        return "n/a" if v is None else fmt.format(v)

    def pct(v) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    pools = s.get("pools")
    where = (" + ".join(f"{p['replicas']} {k} replica(s) of {p['gpus_per_replica']} x "
                        f"{p['hardware']}" for k, p in pools.items()) + ", "
             if pools else f"{scenario.serving.replicas} replica(s) of "
             f"{scenario.hardware.gpus_per_replica} x {scenario.hardware_profile().name}, ")
    lines = [
        f"{scenario.name}: {scenario.model_config().name} ({_kind(scenario)} attention) on "
        f"{where}"
        f"{s['scheduler']} batching, {s['kv_memory']} KV"
        f"{_ADMISSION_NOTE.get(s.get('admission'), '')}"
        + (f", watermark {s['watermark']:.3g}" if s.get("watermark") else "") + ", "
        f"engine {s.get('engine')}, seed "
        f"{s['seed']}",
        f"  requests     {s['requests_arrived']} arrived, {s['requests_completed']} completed, "
        f"{s['requests_rejected']} rejected, {s['requests_in_flight']} in flight",
        f"  simulated    {fmt_seconds(s['simulated_seconds'])} ({s['iterations']} iterations)",
        f"  throughput   {num(s['throughput_tokens_per_s'], '{:,.0f}')} output tokens/s, "
        f"{num(s['throughput_requests_per_s'])} requests/s",
        f"  goodput      {num(s['goodput_requests_per_s'])} requests/s meeting every SLO "
        f"({pct(s['slo_attainment'])} of arrivals)",
        f"  TTFT         {dist(s['ttft_s'])}",
        f"  TPOT         {dist(s['tpot_s'])}",
        f"  end-to-end   {dist(s['e2e_s'])}",
        f"  queue wait   {dist(s['queue_wait_s'])}",
        f"  KV memory    peak {fmt_bytes(s['kv_peak_bytes'])} of "
        f"{fmt_bytes(s['kv_capacity_bytes'])} per replica, useful fraction "
        f"{pct(s['kv_useful_fraction'])}"
        + (f" (after {fmt_bytes(s['activation_reserve_bytes'])} of activations)"
           if s.get("activation_reserve_bytes") else ""),
        f"  preemptions  {s['preemptions']}"
        + (f" ({s['recomputed_tokens']:,} tokens recomputed, "
           f"{pct(s['recompute_fraction'])} of the tokens processed)"
           if s.get("recomputed_tokens") else ""),
        f"  TBT          {dist(s['tbt_s'])} (time between tokens)",
    ]
    if s.get("prefix_caching"):
        saved = ""
        if s.get("prefill_flops_without_cache"):
            saved = (f", prefill FLOPs {s['prefill_flops']:.3g} of "
                     f"{s['prefill_flops_without_cache']:.3g} without the cache")
        lines.append(f"  prefix cache {pct(s['prefix_hit_rate'])} of prompt tokens hit, "
                     f"{s['prefill_tokens_computed']:,} prefilled{saved}")
    else:
        lines.append(f"  prefix cache off, {s['prefill_tokens_computed']:,} prompt tokens "
                     "prefilled")
    if pools:
        d = s["disaggregation"]
        lines.append(f"  KV transfer  {fmt_bytes(s['kv_transfer_bytes'])} in "
                     f"{s['kv_transfers']} moves ({d['transfer']}, {d['link']} "
                     f"{d['link_bytes_per_s'] / 1e9:.3g} GB/s): {dist(s['kv_transfer_s'])}; "
                     f"waiting for room {dist(s['kv_transfer_wait_s'])}")
        lines.append("  pools        " + ", ".join(
            f"{k} busy {pct(p['busy_fraction'])}, KV peak {fmt_bytes(p['kv_peak_bytes'])} of "
            f"{fmt_bytes(p['kv_capacity_bytes'])}" for k, p in pools.items()))
    sp = s.get("speculative")
    if sp:
        lines.append(f"  speculative  draft {sp['draft']}, k = {sp['tokens']}: "
                     f"{num(sp['tokens_per_step'])} tokens per decode step "
                     f"({num(sp['tokens_per_full_step'])} when all k are drafted; closed form "
                     f"{sp['expected_tokens_per_step']:.3g}), draft "
                     f"{pct(sp['draft_time_fraction'])} of busy time")
    if "sessions" in s:
        lines.append(f"  sessions     {s['sessions']} ({s['requests_arrived']} turns)")
    if s["slo"]:
        lines.append("  SLO (p99)    " + ", ".join(f"{k} <= {fmt_seconds(v)}"
                                                   for k, v in s["slo"].items()))
    st = s.get("steady_state") or {}
    if st:
        def ci(k):
            d = st.get(k) or {}
            if d.get("p99") is None:
                return "n/a"
            band = (f" [{fmt_seconds(d['ci_low'])}, {fmt_seconds(d['ci_high'])}]"
                    if d.get("ci_low") is not None else "")
            return fmt_seconds(d["p99"]) + band
        lines.append(f"  steady state {st['requests']:,} requests after a warm-up of "
                     f"{st['warmup_requests']:,}, up to the last arrival (no drain): "
                     f"{num(st.get('throughput_tokens_per_s'), '{:,.0f}')} output tokens/s; "
                     f"p99 (95% CI) TTFT {ci('ttft_s')}, TPOT {ci('tpot_s')}, "
                     f"end-to-end {ci('e2e_s')}")
    for w in s.get("warnings") or []:
        lines.append(f"  warning      {w}")
    return "\n".join(lines)


def run(args) -> int:
    from simkit.commands._common import load_scenario_args, print_json
    from simkit.outputs import check_output_file
    from simkit.sim import simulate

    scenario = load_scenario_args(args)
    if args.requests_csv:
        check_output_file(args.requests_csv, "--requests-csv")  # before the run
    res = simulate(scenario, seed=args.seed, requests=args.requests, progress=True)
    if args.requests_csv:
        res.write_requests_csv(args.requests_csv)
        if hasattr(scenario, "to_toml"):
            resolved = scenario.with_(seed=res.summary["seed"]) if args.seed is not None \
                else scenario
            if args.requests is not None:
                resolved = resolved.with_(**{"workload.requests": args.requests})
            with open(args.requests_csv + ".scenario.toml", "w") as f:
                f.write(resolved.to_toml())
    if args.json:
        print_json(res.summary)
    else:
        print(_text(res.summary, scenario))
    return 0
