"""The fewest replicas that meet the SLOs at a target load, by simulation.

Every candidate count N is simulated as it would run: N replicas behind the scenario's
router, the target load, the same requests each time (common random numbers), and judged by
`simkit.plan.slo` as every probe is (`simkit.plan.capacity.steady_probe`: a pass in a run
too short for its request lifetimes is checked in a longer one). The search keeps two
facts, a count known to miss (`lo`, 0 at first) and one known to meet (`hi`), and bisects
between them until they are adjacent, so the answer is tested twice: `hi` meets the SLOs
and `hi - 1` does not.

Where it starts. The cost model's bound (`simkit.plan.bounds`) gives a count below which no
policy can keep up; it is the first candidate. If that misses, the next is the count one
replica's measured capacity suggests (`upper_hint`, ceil(target / max_qps): replicas behind
a least-loaded router carry at least that much, usually more, because pooled replicas absorb
each other's bursts), then doubling. The old planner multiplied one replica's limit and only
ever added replicas, one simulation of n x N requests each: it over-provisioned (19 H100s
for a load 7 carry) and, where each replica carried little, ran for many minutes.

Bounded work and memory. Every simulation starts with the same number of requests whatever
N is (a longer rerun is at most `MAX_SPAN_FACTOR` times that), and only the summary of the
best candidate so far is kept. The search never goes past
`plan.max_replicas`: when the bound alone shows that count cannot carry the load it stops
before simulating; when a simulation at that count misses, it stops with how far short.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from simkit.errors import SimkitError
from simkit.plan.slo import Probe, describe, shortfall

SimulateFn = Callable[..., Any]


@dataclass
class ReplicaPlan:
    """The fewest replicas found, the probes that proved it, and the run at that count."""

    replicas: int
    probes: list[Probe]
    summary: dict[str, Any]  # the simulation at `replicas`


def min_replicas(s, target_qps: float, *, simulate: SimulateFn, requests: int, lower: int,
                 upper_hint: int | None, max_replicas: int,
                 progress: Callable[[str], None] | None = None) -> ReplicaPlan:
    """Fewest replicas meeting the SLOs at `target_qps` (see the module docstring).

    Raises `SimkitError` naming `plan.max_replicas` when that many cannot carry the load."""
    from simkit.plan.capacity import steady_probe

    probes: list[Probe] = []
    met_summary: dict[int, dict[str, Any]] = {}

    def test(n: int) -> bool:
        p, summary = steady_probe(s, target_qps, replicas=n, requests=requests,
                                  simulate=simulate)
        probes.append(p)
        if progress is not None:
            progress(describe(s, p))
        if p.met:
            met_summary.clear()  # keep one summary: memory does not grow with the search
            met_summary[n] = summary
        return p.met

    lo, hi = 0, None
    first = max(1, min(int(lower), max_replicas))
    if test(first):
        hi = first
        # the bound's count meets: the answer is usually just it, so try one fewer first
        if hi > 1 and test(hi - 1):
            hi -= 1
        else:
            lo = hi - 1
    else:
        lo = first
        cand = max(lo + 1, min(int(upper_hint or 0), max_replicas))
        while True:
            if test(cand):
                hi = cand
                break
            lo = cand
            if cand >= max_replicas:
                raise SimkitError(
                    f"plan.max_replicas: even {max_replicas} replica(s) miss the SLOs at "
                    f"{target_qps:g} req/s ({shortfall(s, probes[-1])}); raise "
                    "plan.max_replicas or lower the load")
            cand = min(max_replicas, max(cand + 1, 2 * cand))
    while hi - lo > 1:
        # far apart (a hint that ignored how pooled replicas absorb bursts): halve the
        # ratio, not the difference, so a bracket of 5..1024 needs a few probes, not ten
        mid = round(math.sqrt(lo * hi)) if lo > 0 and hi > 4 * lo else (lo + hi) // 2
        mid = min(hi - 1, max(lo + 1, mid))
        if test(mid):
            hi = mid
        else:
            lo = mid
    if hi not in met_summary:  # (cannot happen: `hi` only ever moves to a count that met)
        p, summary = steady_probe(s, target_qps, replicas=hi, requests=requests,
                                  simulate=simulate)
        met_summary = {hi: summary}
    return ReplicaPlan(replicas=hi, probes=probes, summary=met_summary[hi])
