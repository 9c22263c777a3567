"""Capacity planning: the load one replica sustains under its SLOs, the fewest replicas a
target load needs, and what they cost.

`plan(scenario)` works in this order, and stops with one line as soon as something shows
the plan cannot be made:
1. The cost model (`simkit.plan.bounds`): whether the configuration serves any load at all
   (TP divides the heads, the weights fit, requests fit the KV memory, the SLOs are not
   beyond even a lone request), and an upper bound on one replica's rate. When
   `plan.max_replicas` times that bound falls short of `plan.target_qps`, the plan stops at
   once, before any simulation, saying by how much.
2. `max_qps`: the highest arrival rate one replica sustains with every steady-state p99
   within its SLO (`simkit.plan.slo`); a probe that meets them in a run too short for its
   request lifetimes runs again, longer (`span_requests`). The cost-model estimate
   `analytic_qps` seeds a bracket that simulation confirms (the low end meets the SLOs, the
   high end does not) and bisects, geometrically, until hi / lo <= 1 + plan.qps_rel_tol.
   The answer is the highest rate *measured* to meet the SLOs.
3. With `plan.target_qps`: the fewest replicas that meet the SLOs there, found by
   simulation (`simkit.plan.replicas`): the planned count meets them, one fewer does not.
   Each count is judged as every probe is (`steady_probe`): a run of a probe's requests,
   run again spanning `SPAN_LIFETIMES` mean request lifetimes when it meets the SLOs too
   soon to trust -- the same verdict a search's cost-cut probe gets at that count
   (`simkit.plan.search`), so pruning on it never contradicts a plan.
4. Cost: GPUs x the price per GPU-hour (`simkit.plan.prices`: the scenario's
   hardware.cost_per_gpu_hour, else the catalog's dated list price; without either the
   plan reports no cost and says so).

Disaggregated serving ([serving.disaggregation]): the unit the planner counts is one group
of prefill_replicas + decode_replicas replicas, at the scenario's prefill:decode ratio
(`serving.replicas` copies the group). `max_qps` is one group's rate, `replicas` the fewest
groups for the target, `gpus` their GPUs over both pools, and the cost prices each pool's
GPU. Which ratio is cheapest is a search: `[plan.search]` over
"serving.disaggregation.prefill_replicas" and "serving.disaggregation.decode_replicas"
plans every ratio and ranks them by cost (`simkit.plan.search`); the colocated baseline is
the same scenario without [serving.disaggregation]. Cost per million tokens divides it by the
   steady-state token throughput at the operating point (warm-up and drain left out).
5. The longest context one sequence can hold in the KV memory, and with `plan.compare` the
   same plan for other attention kinds.

Every probe uses the scenario's seed (common random numbers): the same requests at every
rate (compressed in time) and every replica count, so p99 latencies move with the load,
not with the draw, and bisection is sound.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np

from simkit.errors import SimkitError
from simkit.plan import bounds
from simkit.plan.slo import (MIN_COMPLETED_FRACTION, Probe, describe, judge, latencies_met,
                             run_probe, slo_met)
from simkit.scenario import LengthSpec, Scenario, SweepGrid
from simkit.sim.stats import requests_for_tail, too_few_for_p99

#: when plan.requests is unset, simulate at least this many requests per probe, so the
#: steady-state p99 (after the warm-up) rests on >= 10 requests at or beyond it
MIN_PROBE_REQUESTS = requests_for_tail(0.99)
#: a run spans at least this many mean request lifetimes (so the warm-up left out, 10% of
#: the arrivals, is at least one lifetime) ...
SPAN_LIFETIMES = 10
#: ... but holds at most this many times the requests asked for (an overloaded run's
#: lifetimes grow with its length)
MAX_SPAN_FACTOR = 8

__all__ = ["MIN_COMPLETED_FRACTION", "MIN_PROBE_REQUESTS", "CapacityResult", "PlanResult",
           "Probe", "analytic_qps", "compare_architectures", "max_context", "max_qps",
           "plan", "probe", "slo_met", "step_model", "typical_request"]

SimulateFn = Callable[..., Any]
ProgressFn = Callable[[str], None]


@dataclass
class CapacityResult:
    """What `max_qps` found for one replica."""

    max_qps: float  # highest rate measured to meet every SLO (0 when none did)
    analytic_qps: float  # cost-model estimate that seeded the bracket
    bracket: tuple[float, float]  # (met, not met) rates at the end of bisection
    qps_rel_tol: float
    requests_per_probe: int
    probes: list[Probe]
    summary: dict[str, Any] = field(default_factory=dict, repr=False)  # run at max_qps

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("summary")
        d["bracket"] = list(self.bracket)
        return d


@dataclass
class PlanResult:
    """A capacity plan (`simkit plan`): plain data, `to_dict()` for JSON."""

    scenario: str
    max_qps: float
    analytic_qps: float
    qps_rel_tol: float
    target_qps: float | None
    replicas: int | None
    gpus_per_replica: int
    gpus: int | None
    cost_per_gpu_hour: float | None  # None: no price known (see price_source)
    cost_per_hour: float | None
    cost_per_million_tokens: float | None  # $ per million output tokens, steady state
    cost_per_million_total_tokens: float | None  # $ per million prompt + output tokens
    operating_rate_per_s: float  # the load of the operating point
    slo: dict[str, Any]  # the targets, the p99s at the operating point, whether they held
    metrics: dict[str, Any]  # simulator summary at the operating point
    probes: list[Probe]  # one replica at several rates (max_qps)
    max_context_tokens: int  # longest context one sequence can hold (memory and model limit)
    max_context_limited_by: str  # "memory" | "model"
    kv_capacity_bytes: float
    comparison: list[dict[str, Any]] = field(default_factory=list)
    best_attention: str | None = None
    resolved_scenario: dict[str, Any] = field(default_factory=dict)
    price_source: str = ""  # where cost_per_gpu_hour comes from, or why there is none
    replica_probes: list[Probe] = field(default_factory=list)  # the target load, N replicas
    rate_bound_per_s: float | None = None  # cost-model bound on one replica's rate
    replicas_lower_bound: int | None = None  # what the bound allows at the target
    requests_per_probe: int = 0  # requests a probe starts with (`steady_probe`)
    requests_at_target: int = 0  # requests of the run at the planned replica count
    reason: str | None = None  # why there is no replica count, when there is none
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["probes"] = [p.to_dict() for p in self.probes]
        d["replica_probes"] = [p.to_dict() for p in self.replica_probes]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PlanResult":
        """The inverse of `to_dict` (a search's records carry plans as dicts)."""
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        kw["probes"] = [Probe(**p) for p in d.get("probes") or []]
        kw["replica_probes"] = [Probe(**p) for p in d.get("replica_probes") or []]
        kw.setdefault("resolved_scenario", {})
        return cls(**kw)


# --------------------------------------------------------------------------- cost model

def step_model(s: Scenario):
    """The cost layer's numeric step model for one replica of the scenario (its one builder,
    `simkit.costs.compiled.step_model_for`; cached there)."""
    from simkit.costs.compiled import step_model_for

    return step_model_for(s)


def _csv_mean(path: str, columns: tuple[str, ...]) -> float | None:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        col = next((c for c in columns if c in (reader.fieldnames or ())), None)
        if col is None:
            return None
        total, n = 0.0, 0
        for row in reader:
            try:
                total += float(row[col])
                n += 1
            except (TypeError, ValueError):
                continue
    return total / n if n else None


def mean_tokens(spec: LengthSpec, trace_path: str | None, trace_column: str) -> float:
    """Mean of a length distribution (clipping to [min, max] applied to the centre only:
    this feeds the analytic bracket, which simulation then corrects)."""
    if spec.dist == "fixed":
        m = float(spec.value)
    elif spec.dist == "uniform":
        m = (spec.low + spec.high) / 2
    elif spec.dist == "lognormal":
        m = spec.median * math.exp(spec.sigma ** 2 / 2)
    elif spec.dist == "empirical":
        m = _csv_mean(spec.path, (spec.column,)) or 1000.0
    else:  # trace: the lengths recorded beside the arrivals
        m = (_csv_mean(trace_path, (trace_column,)) if trace_path else None) or 1000.0
    hi = spec.max if spec.max is not None else math.inf
    return float(min(max(m, spec.min), hi))


def typical_request(s: Scenario) -> tuple[float, float]:
    """(mean prompt tokens, mean output tokens) of the scenario's workload."""
    a = s.workload.arrival
    p = mean_tokens(s.workload.prompt_tokens, a.path, "num_prefill_tokens")
    o = mean_tokens(s.workload.output_tokens, a.path, "num_decode_tokens")
    return p, max(o, 1.0)


def analytic_qps(s: Scenario, sm=None) -> float:
    """Cost-model estimate of one replica's request rate at saturation.

    Continuous batching at concurrency B (max_batch, or fewer if the KV memory holds fewer
    typical sequences) spends, per request, its prefill time plus o decode iterations shared
    by B requests: rate ~ 1 / (t_prefill(p) + o * t_decode(B at p + o/2) / B). It ignores
    latency targets, so it is a ceiling to bracket from, not the answer.
    """
    sm = sm or step_model(s)
    p, o = typical_request(s)
    pools = bounds.pool_models(s, sm)
    sm = pools[-1][1]  # the pool that decodes
    cap = sm.kv_capacity_for(s.serving)
    per_seq = float(sm.kv_bytes(p + o))
    b_kv = int(cap // per_seq) if per_seq > 0 else s.serving.max_batch
    b = max(1, min(s.serving.max_batch, b_kv))
    t_pre = float(pools[0][1].prefill_time_s(int(round(p))))
    t_dec = float(sm.decode_time_s(p + o / 2, b))
    sp = getattr(s.serving, "speculative", None)
    if sp is not None:  # (about expected tokens per step per decode step: a seed only)
        from simkit.sim.speculative import length_probabilities

        t_dec /= float(length_probabilities(sp) @ np.arange(1, sp.tokens + 2))
    if len(pools) == 2:  # a group of prefill and decode replicas
        n_p, n_d = pools[0][2], pools[1][2]
        return min(n_p / t_pre if t_pre > 0 else math.inf,
                   n_d * b / (o * t_dec) if t_dec > 0 else math.inf)
    per_request_s = t_pre + o * t_dec / b
    return 1.0 / per_request_s if per_request_s > 0 else math.inf


def max_context(s: Scenario, sm=None) -> tuple[int, str, float]:
    """(longest context tokens one sequence can hold, "memory"|"model", KV capacity bytes).

    Solved on the cost layer's symbolic cache (`simkit.costs.analysis.max_context`), capped
    at the model's max context (constant-memory kinds are limited by the model only).
    serving.max_seq_len is a policy, not a memory limit, so it does not cap this.
    """
    from simkit.costs.analysis import max_context as solve_max_context

    sm = sm or step_model(s)
    cap = float(sm.kv_capacity_for(s.serving))
    model_max = int(sm.max_context)
    longest = solve_max_context(sm.model, sm.arch, cap, batch=1, gpus=sm.gpus)
    if longest is None or longest >= model_max:
        return model_max, "model", cap
    return longest, "memory", cap


# --------------------------------------------------------------------------- simulation

def _default_simulate() -> SimulateFn:
    from simkit.sim import simulate

    return simulate


def probe(s: Scenario, rate_per_s: float, *, requests: int, simulate: SimulateFn,
          replicas: int = 1) -> Probe:
    """Simulate `replicas` replicas at `rate_per_s` (scenario seed: common random numbers)."""
    return run_probe(s, rate_per_s, replicas=replicas, requests=requests,
                     simulate=simulate)[0]


def probe_requests(s: Scenario) -> int:
    if s.plan is not None and s.plan.requests is not None:
        return s.plan.requests
    return max(s.workload.requests, MIN_PROBE_REQUESTS)


def check_probe_requests(n: int, key: str) -> None:
    """One line naming `key` when probes of `n` requests cannot measure a p99
    (`simkit.sim.stats.too_few_for_p99`): the plan would rest on noise, not on latencies."""
    why = too_few_for_p99(int(n))
    if why is not None:
        raise SimkitError(f"{key}: {why}")


def check_open_loop(s: Scenario) -> None:
    """Capacity planning searches the arrival rate: a workload whose sending does not follow
    that rate (a client with a concurrency cap, a burst at t = 0) has no rate to search."""
    w = s.workload
    if w.max_concurrency is not None:
        raise SimkitError("workload.max_concurrency: plan searches the arrival rate, which a "
                          "concurrency cap overrides; drop it to plan capacity (simulate or "
                          "sweep it instead)")
    if w.arrival.process == "burst":
        raise SimkitError("workload.arrival.process: plan searches the arrival rate; a burst "
                          "sends every request at t = 0 (choose poisson, gamma, fixed or trace)")


def max_qps(s: Scenario, *, simulate: SimulateFn | None = None, requests: int | None = None,
            rel_tol: float | None = None, estimate: float | None = None,
            progress: ProgressFn | None = None) -> CapacityResult:
    """Highest arrival rate one replica sustains while meeting every SLO (see the module
    docstring). The run at the answer is kept (`summary`)."""
    if not s.slo.targets():
        raise SimkitError("slo: set at least one of ttft_p99_s, tpot_p99_s, e2e_p99_s to plan "
                          "capacity")
    check_open_loop(s)
    simulate = simulate or _default_simulate()
    n = int(requests or probe_requests(s))
    check_probe_requests(n, "requests" if requests else "plan.requests")
    tol = rel_tol if rel_tol is not None else (s.plan.qps_rel_tol if s.plan else 0.05)
    est = float(estimate if estimate is not None else analytic_qps(s))
    if not (est > 0 and math.isfinite(est)):
        est = 1.0
    probes: list[Probe] = []
    best: dict[str, Any] = {}

    def run(rate: float) -> bool:
        p, summary = steady_probe(s, rate, replicas=1, requests=n, simulate=simulate)
        probes.append(p)
        if progress is not None:
            progress(describe(s, p))
        if p.met and rate >= best.get("rate", 0.0):
            best.clear()  # one summary kept: the highest rate met so far
            best.update(rate=rate, summary=summary)
        return p.met

    # Bracket: lo meets the SLOs, hi does not. The estimate ignores latency targets, so start
    # below it and expand by factors of 4 (few probes) until both ends are confirmed.
    lo, hi = est / 4, None
    for _ in range(8):
        if run(lo):
            break
        hi, lo = lo, lo / 4
    else:
        return CapacityResult(0.0, est, (0.0, lo), tol, n, probes)
    if hi is None:
        hi = est
        for _ in range(12):
            if not run(hi):
                break
            lo, hi = hi, hi * 4
        else:
            raise SimkitError(f"plan: the SLOs still hold at {hi:.3g} req/s, far beyond the "
                              f"cost-model estimate {est:.3g}; check the scenario's SLOs")
    while hi / lo > 1 + tol:
        mid = math.sqrt(lo * hi)
        if run(mid):
            lo = mid
        else:
            hi = mid
    return CapacityResult(lo, est, (lo, hi), tol, n, probes, summary=best.get("summary", {}))


def span_requests(summary: Mapping[str, Any], rate_per_s: float, n: int) -> int:
    """Requests a run at `rate_per_s` needs to span `SPAN_LIFETIMES` mean request lifetimes
    (the mean end-to-end latency of `summary`'s run), at least `n`, at most
    `MAX_SPAN_FACTOR` x n. A run shorter than that is still filling up its batches when the
    warm-up ends, so its steady state is not one yet."""
    e2e = summary.get("e2e_s") if summary else None
    mean = e2e.get("mean") if isinstance(e2e, Mapping) else None
    if mean is None or not math.isfinite(float(mean)):
        return n
    need = int(math.ceil(SPAN_LIFETIMES * float(mean) * rate_per_s))
    return n if need <= n else min(need, MAX_SPAN_FACTOR * n)


def steady_probe(s: Scenario, rate_per_s: float, *, replicas: int, requests: int,
                 simulate: SimulateFn) -> tuple[Probe, dict[str, Any]]:
    """The verdict on `replicas` replicas at `rate_per_s`, as every probe of a plan or a
    search judges it, so the same question gets the same answer wherever it is asked: a run
    of `requests`; one too short for its request lifetimes runs once more, long enough
    (`span_requests`), when it met the SLOs (a queue may still be building) or missed only
    by completing too few (its batches may still be filling: many replicas at a low rate
    each). A latency miss stands: longer only grows a queue."""
    p, summary = run_probe(s, rate_per_s, replicas=replicas, requests=requests,
                           simulate=simulate)
    unsure = p.met or latencies_met(s, p)
    longer = span_requests(summary, rate_per_s, requests) if unsure else requests
    if longer > requests:
        p, summary = run_probe(s, rate_per_s, replicas=replicas, requests=longer,
                               simulate=simulate)
    return p, summary


def plan(s: Scenario, *, simulate: SimulateFn | None = None, requests: int | None = None,
         compare: bool = True, progress: ProgressFn | None = None) -> PlanResult:
    """The capacity plan of a scenario: see the module docstring."""
    from simkit.plan.prices import unit_cost
    from simkit.plan.replicas import min_replicas

    if s.plan is not None and len(s.plan.search):
        s = replace(s, plan=replace(s.plan, search=SweepGrid()))  # one configuration here
    check_open_loop(s)
    simulate = simulate or _default_simulate()
    n = int(requests or probe_requests(s))
    check_probe_requests(n, "requests" if requests else "plan.requests")
    target = s.plan.target_qps if s.plan is not None else None
    max_rep = s.plan.max_replicas if s.plan is not None else 1024
    try:
        sm = step_model(s)
    except SimkitError as e:
        sm = e
    sample = bounds.workload_sample(s, n, _context(s, sm))
    reason, kv_cap = bounds.feasibility(s, sm, sample)
    if reason is not None:
        raise SimkitError(f"plan: {s.hardware.gpus_per_replica} x {_hw_name(s)}: {reason}")
    bound = bounds.rate_bound_per_s(s, sm, sample, kv_cap)
    lower = None
    if target is not None:
        lower = bounds.replicas_lower_bound(s, target, bound, n)
        if lower > max_rep:
            carry = max_rep * bound * bounds.finite_run_margin(s, target, n)
            raise SimkitError(
                f"plan.max_replicas: {max_rep} replica(s) carry at most {carry:.3g} req/s by "
                f"the cost model ({bound:.3g} req/s each at best), {1 - carry / target:.0%} "
                f"short of the target {target:g} req/s; they need at least {lower}")
    cap = max_qps(s, simulate=simulate, requests=n, estimate=analytic_qps(s, sm),
                  progress=progress)
    replicas = gpus = None
    reason = None
    metrics: dict[str, Any] = {}
    replica_probes: list[Probe] = []
    rate = cap.max_qps if target is None else target
    n_target = 0
    if cap.max_qps <= 0:
        worst = cap.probes[-1] if cap.probes else None
        from simkit.plan.slo import shortfall

        reason = ("the SLOs cannot be met at any load"
                  + (f": at {worst.rate_per_s:.3g} req/s on one replica, "
                     f"{shortfall(s, worst)}" if worst is not None else ""))
    elif target is None:
        replicas, metrics = 1, dict(cap.summary)
    else:
        hint = math.ceil(target / cap.max_qps - 1e-9)
        rp = min_replicas(s, target, simulate=simulate, requests=n, lower=lower,
                          upper_hint=hint, max_replicas=max_rep, progress=progress)
        replicas, metrics, replica_probes = rp.replicas, dict(rp.summary), rp.probes
        n_target = int(metrics.get("requests_arrived") or n)
    unit = unit_cost(s)  # a replica, or one group of prefill + decode replicas
    if replicas is not None:
        gpus = replicas * unit.gpus
    price_source = unit.source
    cost_h = replicas * unit.per_hour if replicas is not None and unit.per_hour is not None \
        else None
    st = metrics.get("steady_state") or {}
    tok_s = st.get("throughput_tokens_per_s", metrics.get("throughput_tokens_per_s"))
    pre_s = st.get("prompt_throughput_tokens_per_s",
                   metrics.get("prompt_throughput_tokens_per_s"))
    cpm = _per_million(cost_h, tok_s)
    cpm_all = _per_million(cost_h, (tok_s or 0.0) + (pre_s or 0.0) if tok_s else None)
    op = judge(s, metrics, rate_per_s=rate, replicas=replicas or 0) if metrics else None
    ctx, limit, _ = max_context(s, sm)
    slo = {"ttft_p99_s": s.slo.ttft_p99_s, "tpot_p99_s": s.slo.tpot_p99_s,
           "e2e_p99_s": s.slo.e2e_p99_s, "met": bool(op and op.met),
           "marginal": bool(op and op.marginal),
           "ttft_p99_measured_s": op.ttft_p99_s if op else None,
           "tpot_p99_measured_s": op.tpot_p99_s if op else None,
           "e2e_p99_measured_s": op.e2e_p99_s if op else None,
           "ci": dict(op.ci) if op else {},
           "decision": "steady-state p99 point estimate within its target; marginal when "
                       "its 95% interval straddles the target"}
    warnings = list(metrics.get("warnings") or [])
    if op is not None and op.marginal:
        warnings.append("the operating point is marginal: a p99's 95% interval straddles its "
                        "target; more requests per probe (plan.requests) narrow it")
    result = PlanResult(
        scenario=s.name, max_qps=cap.max_qps, analytic_qps=cap.analytic_qps,
        qps_rel_tol=cap.qps_rel_tol, target_qps=target, replicas=replicas,
        gpus_per_replica=unit.gpus, gpus=gpus, cost_per_gpu_hour=unit.per_gpu_hour,
        cost_per_hour=cost_h, cost_per_million_tokens=cpm,
        cost_per_million_total_tokens=cpm_all, operating_rate_per_s=rate, slo=slo,
        metrics=metrics, probes=cap.probes, max_context_tokens=ctx,
        max_context_limited_by=limit, kv_capacity_bytes=kv_cap,
        resolved_scenario=s.to_dict(), price_source=price_source,
        replica_probes=replica_probes, rate_bound_per_s=bound, replicas_lower_bound=lower,
        requests_per_probe=n, requests_at_target=n_target, reason=reason, warnings=warnings)
    kinds = s.plan.compare if (compare and s.plan is not None) else ()
    if kinds:
        result.comparison = compare_architectures(s, kinds, simulate=simulate, requests=n)
        feasible = [c for c in result.comparison if c.get("gpus")]
        if feasible:
            best = min(feasible, key=lambda c: (c["gpus"], -(c["max_qps"] or 0)))
            result.best_attention = best["attention"]
    return result


def _per_million(cost_per_hour: float | None, tokens_per_s: float | None) -> float | None:
    if cost_per_hour is None or not tokens_per_s or tokens_per_s <= 0:
        return None
    return cost_per_hour / (3600.0 * tokens_per_s) * 1e6


def _context(s: Scenario, sm) -> int:
    if isinstance(sm, SimkitError):
        return int(s.model_config().max_context)
    return int(sm.max_context)


def _hw_name(s: Scenario) -> str:
    return s.hardware.name.replace("\\", "/").rsplit("/", 1)[-1]


def compare_architectures(s: Scenario, kinds: tuple[str, ...], *,
                          simulate: SimulateFn | None = None,
                          requests: int | None = None) -> list[dict[str, Any]]:
    """For each attention kind: max_qps, replicas, GPUs and cost for the same workload."""
    out = []
    base = replace(s, plan=replace(s.plan, compare=())) if s.plan is not None else s
    for kind in kinds:
        row: dict[str, Any] = {"attention": kind}
        try:
            r = plan(base.with_(**{"model.attention": kind}), simulate=simulate,
                     requests=requests, compare=False)
        except SimkitError as e:
            row.update(error="; ".join(e.messages), max_qps=None, replicas=None, gpus=None)
        else:
            row.update(max_qps=r.max_qps, replicas=r.replicas, gpus=r.gpus,
                       cost_per_million_tokens=r.cost_per_million_tokens,
                       max_context_tokens=r.max_context_tokens,
                       kv_capacity_bytes=r.kv_capacity_bytes)
            if r.reason:
                row["error"] = r.reason
        out.append(row)
    return out
