"""`simkit plan`: capacity plan under the scenario's SLOs (max load, replicas, GPUs, cost)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from simkit.commands._common import add_engine_option, positive_float, positive_int

    p = sub.add_parser(
        "plan", help="capacity plan under the scenario's SLOs",
        description="Find the highest request rate one replica sustains while meeting the "
        "scenario's p99 SLOs (analytic bracket from the cost model, refined by simulation), "
        "then the replicas, GPUs and cost for [plan] target_qps.")
    p.add_argument("scenario", metavar="SCENARIO.toml")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--requests", type=positive_int, default=None,
                   help="requests simulated per probe (default: plan.requests, else "
                   "max(workload.requests, 1000))")
    p.add_argument("--target-qps", type=positive_float, default=None,
                   help="override plan.target_qps")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write DIR/plan.json and the resolved DIR/scenario.toml")
    add_engine_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    from simkit.commands._common import _jsonable, print_json, with_engine
    from simkit.plan.capacity import plan
    from simkit.scenario import load_scenario

    s = with_engine(load_scenario(args.scenario), args.engine)
    if args.target_qps is not None:
        s = s.with_(**{"plan.target_qps": args.target_qps})
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        from simkit.errors import SimkitError

        raise SimkitError(f"--out: {args.out} exists and is not a folder")
    result = plan(s, requests=args.requests)
    d = result.to_dict()
    d.setdefault("engine", _engine_name(s))
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, text in (("scenario.toml", s.to_toml()),
                           ("plan.json", json.dumps(d, indent=2, default=_jsonable,
                                                    allow_nan=False) + "\n")):
            tmp = out / (name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, out / name)
    if args.json:
        print_json(d)
    else:
        _print(result)
        print(f"engine: {d['engine']}")
    return 0


def _engine_name(s) -> str:
    """The engine the plan's step times come from ("ideal" with hardware.ideal)."""
    from simkit.costs.engine import load_engine

    return "ideal" if s.hardware.ideal else load_engine(s.hardware.engine).name


def _g(v, unit: str = "") -> str:
    if v is None:
        return "-"
    return f"{v:.4g}{unit}"


def _print(r) -> None:
    from simkit.units import fmt_bytes

    print(f"scenario: {r.scenario}")
    print(f"max_qps (one replica, SLOs met): {_g(r.max_qps)} req/s  "
          f"(cost-model estimate {_g(r.analytic_qps)}; bisected to {r.qps_rel_tol:.0%})")
    slo = r.slo
    targets = ", ".join(f"{k} <= {slo[k]:g}" for k in ("ttft_p99_s", "tpot_p99_s", "e2e_p99_s")
                        if slo.get(k) is not None)
    print(f"slo: {targets}")
    if r.target_qps is not None:
        print(f"target: {_g(r.target_qps)} req/s")
    print(f"replicas: {r.replicas if r.replicas is not None else '-'}  gpus: "
          f"{r.gpus if r.gpus is not None else '-'} ({r.gpus_per_replica} per replica)")
    print(f"cost: {_g(r.cost_per_hour)} $/h at {r.cost_per_gpu_hour:g} $/GPU-h; "
          f"cost_per_million_tokens: {_g(r.cost_per_million_tokens)} $ (output tokens; "
          f"{_g(r.cost_per_million_total_tokens)} $ per million prompt + output tokens)")
    m = r.metrics
    if m:
        def p99(k):
            v = m.get(k)
            return _g(v.get("p99") if isinstance(v, dict) else None, " s")
        print(f"operating point: {_g(r.operating_rate_per_s)} req/s on {r.replicas} "
              f"replica(s): p99 ttft {p99('ttft_s')}, tpot {p99('tpot_s')}, e2e {p99('e2e_s')}"
              f"; throughput {_g(m.get('throughput_tokens_per_s'))} tokens/s; SLOs "
              f"{'met' if slo['met'] else 'MISSED'}")
    print(f"longest context in the KV budget ({fmt_bytes(r.kv_capacity_bytes)}): "
          f"{r.max_context_tokens} tokens (limited by {r.max_context_limited_by})")
    print("probes (rate req/s, p99 ttft s, p99 tpot s, met):")
    for p in sorted(r.probes, key=lambda p: p.rate_per_s):
        print(f"  {p.rate_per_s:10.4g}  {_g(p.ttft_p99_s):>9}  {_g(p.tpot_p99_s):>9}  "
              f"{'yes' if p.met else 'no'}")
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
