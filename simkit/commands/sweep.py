"""`simkit sweep`: run a scenario's `[sweep]` grid, resumably, locally or on a dask cluster."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from simkit.commands._common import add_scenario_options, positive_int

    p = sub.add_parser(
        "sweep", help="run the scenario's [sweep] grid (resumable; local or dask cluster)",
        description="Run every point of the scenario's [sweep] grid. Each finished point is "
        "appended to DIR/results.jsonl (its parameters, resolved scenario and metrics); run "
        "the same command again after an interruption and it skips the finished points.")
    p.add_argument("scenario", metavar="SCENARIO.toml")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default: sweep-<scenario name>)")
    p.add_argument("--cluster", metavar="ADDR", default=None,
                   help="dask scheduler address, e.g. tcp://10.0.0.5:8786 (needs the "
                   "'cluster' extra); default: a local process pool")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="local process-pool size (default: CPU count)")
    p.add_argument("--requests", type=positive_int, default=None,
                   help="override workload.requests for every point")
    add_scenario_options(p)
    p.add_argument("--json", action="store_true", help="print every point's record as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from simkit.commands._common import load_scenario_args, print_json
    from simkit.errors import SimkitError
    from simkit.plan.sweep import _stderr_progress, dask_executor, run_sweep, sweep_points

    s = load_scenario_args(args)
    if not s.sweep:
        raise SimkitError(f"{args.scenario}: has no [sweep] table (use `simkit simulate` "
                          "for a single run)")
    if args.cluster is not None and args.workers is not None:
        raise SimkitError("--workers: applies to the local pool, not with --cluster")
    points = sweep_points(s, requests=args.requests)
    out = args.out or f"sweep-{s.name}"
    client = executor = None
    if args.cluster is not None:
        client, executor = dask_executor(args.cluster)
    try:
        res = run_sweep(points, executor, out_dir=out, max_workers=args.workers,
                        progress=_stderr_progress, scenario=s)
    finally:
        if client is not None:
            client.close()
    if args.json:
        print_json(res.to_dict())
    else:
        _print_table(res)
        print("p99s over the steady state (the first 10% of arrivals left out); every point "
              "served the same requests (the scenario's seed)")
        thin = [r for r in res.records if (r.get("metrics") or {}).get("warnings")]
        if thin:
            print(f"warning: {len(thin)} point(s): {thin[0]['metrics']['warnings'][0]}")
        print(f"{res.ran} point(s) run, {res.skipped} already done; results in "
              f"{out}/results.jsonl (resolved scenario in {out}/scenario.toml)")
    return 1 if res.errors else 0


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


#: (row key, header): steady-state p99s (warm-up left out) and throughput (no drain)
_METRIC_COLUMNS = (("steady_state.ttft_s.p99", "ttft p99"), ("steady_state.tpot_s.p99",
                                                               "tpot p99"),
                   ("steady_state.e2e_s.p99", "e2e p99"),
                   ("steady_state.throughput_tokens_per_s", "tokens/s"),
                   ("kv_peak_bytes", "kv_peak_bytes"), ("requests_completed", "completed"))


def _print_table(res) -> None:
    rows = res.rows()
    if not rows:
        return
    params = list(res.records[0]["params"])
    metric_cols = [(k, h) for k, h in _METRIC_COLUMNS if any(k in r for r in rows)]
    if any(r.get("preemptions") for r in rows):  # memory ran short somewhere: show how often
        metric_cols.append(("preemptions", "preemptions"))
    cols = params + [k for k, _ in metric_cols] + (
        ["error"] if any("error" in r for r in rows) else [])
    heads = params + [h for _, h in metric_cols] + (["error"] if "error" in cols else [])
    table = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(heads)]
    print("  ".join(c.ljust(w) for c, w in zip(heads, widths)))
    for t in table:
        print("  ".join(x.ljust(w) for x, w in zip(t, widths)))
