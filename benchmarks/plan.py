"""Benchmark: wall time of a capacity plan for the bundled Llama-3-8B / H100 chatbot scenario.

Run: python benchmarks/plan.py [--requests N] [--repeat R]
Prints the wall time of each plan (first run includes building the cost model), the number
of simulated probes, and the plan's headline numbers. Not a test: timings vary by machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from simkit.plan.capacity import plan
from simkit.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "chatbot-llama3-8b-h100.toml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=None,
                    help="requests per probe (default: the scenario's plan.requests)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    s = load_scenario(SCENARIO)
    for i in range(args.repeat):
        t0 = time.perf_counter()
        r = plan(s, requests=args.requests)
        wall_s = time.perf_counter() - t0
        print(f"run {i + 1}: {wall_s:.2f} s wall, {len(r.probes)} probes + operating point "
              f"({r.replicas} replicas); max_qps {r.max_qps:.3f} req/s, gpus {r.gpus}, "
              f"${r.cost_per_million_tokens:.3f} per million output tokens")


if __name__ == "__main__":
    main()
