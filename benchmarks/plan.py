"""Benchmark: the bundled 144-configuration search (`scenarios/cheapest-70b-20qps.toml`) and
the bundled capacity plan, wall time and configurations per second.

Prints, all measured in this run:
- the search: wall time on a local process pool (one worker per CPU), configurations per
  second, how many were ranked / pruned / infeasible, the answer, the peak resident memory
  of the parent and of the workers;
- the baseline: one simulation of the cheapest configuration at the target load (the unit
  of work every plan is made of), and the search's wall time as a multiple of it;
- with --no-prune: the same search planning every feasible configuration, its wall time as
  a ratio, and whether its cheapest configuration is the same (pruning must not change it);
- the bundled single-configuration plan (Llama-3-8B chatbot on H100s): wall time.

Run: python benchmarks/plan.py [--workers N] [--no-prune] [--out DIR]
Target (issue 11): the 144-configuration search in <= 60 s on 2 cores.

Prices: the catalog's dated list prices when it has them. Where it has none yet, the search
needs a price per GPU, and this script installs STAND-IN prices, printed as such: pruning
(and so the time) depends on their ratios; the answer depends on them entirely.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEARCH = ROOT / "scenarios" / "cheapest-70b-20qps.toml"
PLAN = ROOT / "scenarios" / "chatbot-llama3-8b-h100.toml"

#: stand-ins for a catalog without prices (USD per GPU-hour, on demand): mid-points of the
#: "specialty provider" ranges of mercatus-ai.com/blog/cloud-gpu-pricing (May 2026: A100
#: 80GB 1.10-1.50, H100 SXM 2.50-3.50, H200 3.50-4.50) and the MI300X median of
#: cliffcenter.com/research/amd-inference-economics (2026-05-18: 1.99)
STAND_IN_PRICES = {"a100-80gb": 1.30, "h100-sxm": 3.00, "h200": 4.00, "mi300x": 1.99}


def ensure_prices() -> str:
    import simkit.catalog.hardware as H

    missing = [k for k in STAND_IN_PRICES
               if not getattr(H.CATALOG[k], "price_per_gpu_hour", 0.0)]
    if not missing:
        return "the catalog's list prices"
    for k in missing:
        object.__setattr__(H.CATALOG[k], "price_per_gpu_hour", STAND_IN_PRICES[k])
        object.__setattr__(H.CATALOG[k], "price_source", "stand-in (benchmarks/plan.py)")
    return "STAND-IN prices for " + ", ".join(f"{k} {STAND_IN_PRICES[k]:g}" for k in missing)


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), \
        resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def timed_search(s, workers: int | None, out: Path):
    from simkit.plan.search import run_search

    if out.exists():
        shutil.rmtree(out)  # a fresh search, not a resumed one
    t0 = time.perf_counter()
    res = run_search(s, None, out_dir=out, max_workers=workers)
    return res, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=None, help="default: the CPU count")
    ap.add_argument("--no-prune", action="store_true",
                    help="also plan every feasible configuration (slow) and compare")
    ap.add_argument("--out", default=None, help="results folder (default: a temporary one)")
    args = ap.parse_args()

    from simkit.plan.search import config_scenario
    from simkit.scenario import load_scenario
    from simkit.sim import simulate

    prices = ensure_prices()
    s = load_scenario(SEARCH)
    tmp = Path(args.out or tempfile.mkdtemp(prefix="simkit-plan-bench-"))
    n_cfg = len(s.plan.search.points())
    print(f"search: {SEARCH.name}, {n_cfg} configurations, {os.cpu_count()} CPUs, "
          f"{args.workers or os.cpu_count()} workers; prices: {prices}")
    cpu0 = _cpu_s()
    res, wall = timed_search(s, args.workers, tmp / "search")
    cpu = _cpu_s() - cpu0
    c = res.counts
    print(f"  wall {wall:.1f} s = {n_cfg / wall:.2f} configurations/s; {c['ranked']} ranked, "
          f"{c['pruned']} pruned, {c['infeasible']} infeasible")
    workers = args.workers or os.cpu_count() or 1
    print(f"  CPU {cpu:.1f} s (parent + workers) = {cpu / workers:.1f} s of wall on "
          f"{workers} otherwise idle cores; load average during the run "
          f"{os.getloadavg()[0]:.1f} (other processes slow the wall time down)")
    b = res.best
    if b is not None:
        print(f"  cheapest: {b['params']}: {b['replicas']} replicas = {b['gpus']} GPUs, "
              f"{b['cost_per_hour']:.4g} $/h, {b['cost_per_million_tokens']:.3g} $/M output "
              f"tokens, p99 TTFT {b['ttft_p99_s']:.3g} s, TPOT {b['tpot_p99_s'] * 1e3:.3g} ms")
        cs = config_scenario(s, b["params"]).with_(**{
            "workload.arrival.rate": res.target_qps, "serving.replicas": b["replicas"]})
        simulate(cs, requests=50)  # build and cache the step model outside the timing
        t0 = time.perf_counter()
        simulate(cs, requests=res.best_plan["requests_at_target"])
        unit = time.perf_counter() - t0
        print(f"  baseline: one simulation of it at the target ({unit:.3f} s); the search "
              f"took {wall / unit:,.0f} x that")
    print(f"  peak memory: parent {peak_rss_mib(resource.RUSAGE_SELF):,.0f} MiB, largest "
          f"worker {peak_rss_mib(resource.RUSAGE_CHILDREN):,.0f} MiB")
    if args.no_prune:
        full, wall_full = timed_search(s.with_(**{"plan.prune": False}), args.workers,
                                       tmp / "full")
        same = (full.best or {}).get("params") == (b or {}).get("params")
        print(f"  without pruning: {wall_full:.1f} s ({wall_full / wall:.2f} x), "
              f"{full.counts['ranked']} ranked; same cheapest: {'yes' if same else 'NO'}")

    p = load_scenario(PLAN)
    from simkit.plan.capacity import plan

    t0 = time.perf_counter()
    r = plan(p)
    print(f"plan: {PLAN.name}: {time.perf_counter() - t0:.2f} s wall, "
          f"{len(r.probes)} probes of one replica + {len(r.replica_probes)} at the target; "
          f"max_qps {r.max_qps:.3f} req/s, {r.replicas} replicas")
    if args.out is None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
