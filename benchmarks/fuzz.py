"""Fuzz: run N random valid scenarios (tests/fuzz_scenarios.py) and count what happened.

Each scenario must load and run keeping every invariant (every request accounted for, KV
within capacity, units allocated = freed, causality, fast path == one-iteration stepping), or
be refused with one clear line. Prints the counts, the violations (with the scenario that
caused each, as JSON) and the wall time.

Run: python benchmarks/fuzz.py [--scenarios 10000] [--seed 0] [--stepped-every 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stepped-every", type=int, default=4,
                    help="also compare with one-iteration stepping every K-th scenario")
    args = ap.parse_args()

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    from fuzz_scenarios import check_run, scenarios

    counts: Counter = Counter()
    violations: list[tuple[dict, str]] = []
    done = [0]
    t0 = time.perf_counter()

    @hseed(args.seed)
    @settings(max_examples=args.scenarios, deadline=None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(d=scenarios())
    def run(d):
        done[0] += 1
        try:
            counts[check_run(d, stepped=done[0] % args.stepped_every == 0)] += 1
        except Exception:  # noqa: BLE001 - every failure is a finding
            counts["violation"] += 1
            violations.append((d, traceback.format_exc(limit=3)))
        if done[0] % 500 == 0:
            print(f"  {done[0]:,} scenarios, {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    run()
    wall = time.perf_counter() - t0
    print(f"{done[0]:,} random valid scenarios in {wall:.0f} s ({done[0] / wall:.1f}/s), "
          f"one-iteration stepping compared on every {args.stepped_every}th")
    for k in ("ran", "refused at load", "refused at run", "violation"):
        print(f"  {k:16} {counts[k]:,}")
    for d, tb in violations[:20]:
        print("\nVIOLATION:", json.dumps(d), "\n", tb)


if __name__ == "__main__":
    main()
