"""Whether a simulated run meets the SLOs, and how sure that is: one probe of the planner.

The decision. A run meets the SLOs when at least `MIN_COMPLETED_FRACTION` of its requests
completed, the replicas keep up (over the steady-state window, completions are at least
`MIN_SERVED_FRACTION` of arrivals: a queue that grows without bound fails a plan however
short the run, and with only a TPOT target nothing else would show it), and every p99 the
scenario targets is within its target, each p99 taken over the steady state (requests
after the warm-up; `simkit.sim.stats`). The decision uses the point estimate of the p99.

How sure. Each p99 carries a 95% confidence interval (sectioning, `simkit.sim.stats`). A
decision whose interval straddles a target is `marginal`: another draw of the same workload
could flip it. The planner reports it ("marginal" beside the probe and the plan), and more
requests per probe (`plan.requests`, `--requests`) narrow the interval. Deciding on the
interval's upper end instead would add replicas to a plan wherever the estimate sits near
its target, however good the plan is; deciding on the estimate gives the fewest replicas
the simulation supports, and says when that rests on noise.

Every probe runs the scenario's seed: common random numbers, so probes at two rates see the
same requests (the faster stream compressed in time) and two replica counts see the same
arrivals; a difference between probes comes from the load or the replicas, not the draw.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

#: a probe "meets the SLOs" only if at least this fraction of its requests completed: the
#: p99 targets speak for 99% of requests, so more than 1% unserved is a violation
MIN_COMPLETED_FRACTION = 0.99
#: completions / arrivals over the steady window below this: the replicas fall behind. Not
#: closer to 1, because a run that has not quite filled up its batches also completes a
#: little less than arrives (the requests in flight grow by up to one batch)
MIN_SERVED_FRACTION = 0.8

METRICS = ("ttft_s", "tpot_s", "e2e_s")
LABELS = {"ttft_s": "TTFT", "tpot_s": "TPOT", "e2e_s": "e2e"}

SimulateFn = Callable[..., Any]


@dataclass(frozen=True)
class Probe:
    """One simulated load: its steady-state p99s (with 95% intervals) and the verdict."""

    rate_per_s: float
    ttft_p99_s: float | None
    tpot_p99_s: float | None
    e2e_p99_s: float | None
    completed_fraction: float
    met: bool
    replicas: int = 1
    marginal: bool = False
    ci: dict[str, list[float]] = field(default_factory=dict)  # metric -> [low, high]
    requests: int = 0
    served_fraction: float | None = None  # completions / arrivals over the steady window

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def p99(self, metric: str) -> float | None:
        return getattr(self, metric.replace("_s", "_p99_s"))


def _p99_and_ci(summary: Mapping[str, Any], metric: str
                ) -> tuple[float | None, list[float] | None]:
    """Steady-state p99 and its interval; the whole-run p99 when the summary has no steady
    state (a stand-in simulator in tests)."""
    st = summary.get("steady_state")
    if isinstance(st, Mapping) and isinstance(st.get(metric), Mapping):
        d = st[metric]
        v = d.get("p99")
        ci = [d["ci_low"], d["ci_high"]] if d.get("ci_low") is not None else None
        return (None if v is None else float(v)), ci
    v = summary.get(metric)
    if isinstance(v, Mapping):
        v = v.get("p99")
    return (None if v is None else float(v)), None


def slo_met(s, summary: Mapping[str, Any]) -> tuple[bool, dict[str, float | None], float]:
    """(every SLO held, steady-state p99 of each metric, completed fraction)."""
    probe = judge(s, summary, rate_per_s=0.0)
    return probe.met, {m: probe.p99(m) for m in METRICS}, probe.completed_fraction


def judge(s, summary: Mapping[str, Any], *, rate_per_s: float, replicas: int = 1) -> Probe:
    """The verdict on one simulated run (see the module docstring)."""
    arrived = float(summary.get("requests_arrived") or 0)
    completed = float(summary.get("requests_completed") or 0)
    frac = completed / arrived if arrived else 0.0
    ok = frac >= MIN_COMPLETED_FRACTION
    st = summary.get("steady_state")
    served = st.get("served_fraction") if isinstance(st, Mapping) else None
    if served is not None:
        ok = ok and served >= MIN_SERVED_FRACTION
    marginal = False
    p99: dict[str, float | None] = {}
    ci: dict[str, list[float]] = {}
    for m in METRICS:
        p99[m], c = _p99_and_ci(summary, m)
        if c is not None:
            ci[m] = c
    for metric, bound in s.slo.targets().items():
        ok = ok and _within(p99[metric], bound)
        c = ci.get(metric)
        if c is not None and c[0] <= bound <= c[1]:
            marginal = True
    return Probe(rate_per_s=float(rate_per_s), ttft_p99_s=p99["ttft_s"],
                 tpot_p99_s=p99["tpot_s"], e2e_p99_s=p99["e2e_s"], completed_fraction=frac,
                 met=bool(ok), replicas=int(replicas), marginal=marginal, ci=ci,
                 requests=int(arrived), served_fraction=served)


def run_probe(s, rate_per_s: float, *, replicas: int, requests: int, simulate: SimulateFn
              ) -> tuple[Probe, dict[str, Any]]:
    """Simulate `replicas` replicas at `rate_per_s` (scenario seed); (verdict, summary)."""
    pt = s.with_(**{"workload.arrival.rate": float(rate_per_s),
                    "serving.replicas": int(replicas)})
    res = simulate(pt, seed=s.seed, requests=requests)
    return judge(s, res.summary, rate_per_s=rate_per_s, replicas=replicas), res.summary


def _within(p99_s: float | None, bound_s: float) -> bool:
    """A p99 within its target (a missing or infinite one is not)."""
    return p99_s is not None and math.isfinite(p99_s) and p99_s <= bound_s


def latencies_met(s, p: Probe) -> bool:
    """Whether every p99 the scenario targets is within its target (`judge`'s latency
    checks, the completion checks aside)."""
    return all(_within(p.p99(m), bound) for m, bound in s.slo.targets().items())


def shortfall(s, p: Probe) -> str:
    """How far a missed probe is from the SLOs, in words ('p99 TTFT 5.1 s > 2 s')."""
    parts = []
    if p.completed_fraction < MIN_COMPLETED_FRACTION:
        parts.append(f"only {p.completed_fraction:.1%} of requests completed")
    if p.served_fraction is not None and p.served_fraction < MIN_SERVED_FRACTION:
        parts.append(f"completions fall behind arrivals ({p.served_fraction:.0%})")
    for metric, bound in s.slo.targets().items():
        v = p.p99(metric)
        if v is None or not math.isfinite(v) or v > bound:
            parts.append(f"p99 {LABELS[metric]} {_s(v)} > {_s(bound)}")
    return ", ".join(parts) or "SLOs missed"


def describe(s, p: Probe) -> str:
    """One progress line for a probe."""
    lat = ", ".join(f"p99 {LABELS[m]} {_s(p.p99(m))}" for m in s.slo.targets())
    verdict = "met" if p.met else "missed"
    if p.marginal:
        verdict += " (marginal: the 95% interval straddles a target)"
    return (f"{p.rate_per_s:.4g} req/s on {p.replicas} replica(s): {lat}; SLOs {verdict}")


def _s(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v * 1e3:.3g} ms" if v < 1 else f"{v:.3g} s"
