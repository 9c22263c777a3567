"""`simkit plan`: capacity plan under the scenario's SLOs (max load, fewest replicas, GPUs,
cost); with `[plan.search]`, every configuration ranked by cost (`simkit.plan.search`)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from simkit.commands._common import add_scenario_options, positive_float, positive_int

    p = sub.add_parser(
        "plan", help="capacity plan under the scenario's SLOs; with [plan.search], the "
        "cheapest configuration",
        description="Find the highest request rate one replica sustains while meeting the "
        "scenario's p99 SLOs (cost-model bracket, refined by simulation), then the fewest "
        "replicas, GPUs and cost for [plan] target_qps (bisected by simulation: one fewer "
        "misses the SLOs). With a [plan.search] table, plan every combination of its values "
        "and rank them by cost (resumable: finished configurations are kept in "
        "DIR/results.jsonl).")
    p.add_argument("scenario", metavar="SCENARIO.toml")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--requests", type=positive_int, default=None,
                   help="requests simulated per probe (default: plan.requests, else "
                   "max(workload.requests, 1112))")
    p.add_argument("--target-qps", type=positive_float, default=None,
                   help="override plan.target_qps")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write DIR/plan.json and the resolved DIR/scenario.toml; a "
                   "search keeps DIR/results.jsonl there (default: search-<scenario name>)")
    p.add_argument("--cluster", metavar="ADDR", default=None,
                   help="search: run configurations on a dask scheduler (tcp://HOST:PORT)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="search: local process-pool size (default: CPU count)")
    add_scenario_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import sys
    from pathlib import Path

    from simkit.commands._common import _jsonable, load_scenario_args, print_json
    from simkit.errors import SimkitError

    _check_requests(args.requests)
    s = load_scenario_args(args)
    if args.target_qps is not None:
        s = s.with_(**{"plan.target_qps": args.target_qps})
    if args.out is not None:
        from simkit.outputs import check_output_dir

        check_output_dir(args.out, "--out")
    searching = s.plan is not None and len(s.plan.search) > 0
    if not searching and (args.cluster is not None or args.workers is not None):
        raise SimkitError(f"--{'cluster' if args.cluster is not None else 'workers'}: "
                          "applies to a [plan.search]; this scenario has none")
    if args.cluster is not None and args.workers is not None:
        raise SimkitError("--workers: applies to the local pool, not with --cluster")
    tty = sys.stderr.isatty()
    if searching:
        from simkit.plan.search import stderr_progress

        if args.requests is not None:
            s = s.with_(**{"plan.requests": args.requests})
        out = Path(args.out or f"search-{s.name}")
        result, d = _search(s, out, args, stderr_progress if tty else None)
    else:
        from simkit.plan.capacity import plan

        simulate = None
        if tty:
            from functools import partial

            from simkit.sim import simulate as sim

            simulate = partial(sim, progress=True)  # long runs show their request count
        result = plan(s, requests=args.requests, simulate=simulate,
                      progress=_stderr_line if tty else None)
        d = result.to_dict()
        d.setdefault("engine", _engine_name(s))
        out = Path(args.out) if args.out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in (("scenario.toml", s.to_toml()),
                           ("plan.json", json.dumps(d, indent=2, default=_jsonable,
                                                    allow_nan=False) + "\n")):
            tmp = out / (name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, out / name)
    if args.json:
        print_json(d)
    elif searching:
        from simkit.commands._plan_text import print_search

        print_search(result, s, out)
    else:
        from simkit.commands._plan_text import print_plan

        print_plan(result)
        print(f"engine: {d['engine']}")
    return 0


def _check_requests(requests: int | None) -> None:
    """--requests too small to measure a p99 says exactly that (simkit.sim.stats)."""
    from simkit.errors import SimkitError
    from simkit.sim.stats import too_few_for_p99

    why = too_few_for_p99(requests) if requests is not None else None
    if why is not None:
        raise SimkitError(f"--requests: {why}")


def _engine_name(s) -> str:
    """The engine the plan's step times come from ("ideal" with hardware.ideal)."""
    from simkit.costs.engine import load_engine

    return "ideal" if s.hardware.ideal else load_engine(s.hardware.engine).name


def _stderr_line(msg: str) -> None:
    import sys

    print(f"simkit plan: {msg}", file=sys.stderr, flush=True)


def _search(s, out, args, progress):
    """Run the search; (SearchResult, the JSON: the best configuration's plan + search)."""
    from simkit.plan.search import run_search
    from simkit.plan.sweep import dask_executor

    client = executor = None
    if args.cluster is not None:
        client, executor = dask_executor(args.cluster)
    try:
        res = run_search(s, executor, out_dir=out, max_workers=args.workers,
                         progress=progress)
    finally:
        if client is not None:
            client.close()
    d = dict(res.best_plan) if res.best_plan is not None else {
        "scenario": s.name, "max_qps": None, "replicas": None, "gpus": None,
        "cost_per_hour": None, "cost_per_million_tokens": None, "metrics": {},
        "slo": {**{k: getattr(s.slo, k) for k in ("ttft_p99_s", "tpot_p99_s", "e2e_p99_s")},
                "met": False},
        "reason": "no configuration is feasible"}
    d["scenario"] = s.name
    d["search"] = res.to_dict()
    return res, d
