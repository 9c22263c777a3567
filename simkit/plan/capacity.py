"""Capacity planning: the load one replica sustains under its SLOs, and what a target costs.

- `max_qps(scenario)`: the highest arrival rate (the scenario's arrival process, Poisson by
  default, rescaled) at which one replica meets every p99 SLO. An analytic estimate from the
  cost model brackets the answer (`analytic_qps`); simulation confirms the bracket (the low
  end meets the SLOs, the high end does not) and bisects it, geometrically, until
  hi / lo <= 1 + plan.qps_rel_tol. The answer is the highest rate *measured* to meet the SLOs.
  Every probe uses the same seed (common random numbers: the same arrival pattern, only
  compressed in time, and the same lengths), so p99 latencies are monotone in the rate and
  bisection is sound.
- `plan(scenario)`: `max_qps`, the replicas and GPUs a `plan.target_qps` needs (verified by
  simulating all replicas behind the router at the target), cost per million tokens, the
  longest context one sequence can hold in the KV memory budget, and a comparison of
  attention kinds (`plan.compare`): which serves the load with the fewest GPUs.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from simkit.errors import SimkitError
from simkit.scenario import LengthSpec, Scenario

#: a probe "meets the SLOs" only if at least this fraction of its requests completed: the
#: p99 targets speak for 99% of requests, so more than 1% unserved is a violation
MIN_COMPLETED_FRACTION = 0.99
#: when plan.requests is unset, simulate at least this many requests per probe, so the p99
#: rests on >= 10 tail samples
MIN_PROBE_REQUESTS = 1000

SimulateFn = Callable[..., Any]


@dataclass(frozen=True)
class Probe:
    """One simulated rate: its p99 latencies and whether every SLO held."""

    rate_per_s: float
    ttft_p99_s: float | None
    tpot_p99_s: float | None
    e2e_p99_s: float | None
    completed_fraction: float
    met: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CapacityResult:
    """What `max_qps` found for one replica."""

    max_qps: float  # highest rate measured to meet every SLO (0 when none did)
    analytic_qps: float  # cost-model estimate that seeded the bracket
    bracket: tuple[float, float]  # (met, not met) rates at the end of bisection
    qps_rel_tol: float
    requests_per_probe: int
    probes: list[Probe]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
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
    cost_per_gpu_hour: float
    cost_per_hour: float | None
    cost_per_million_tokens: float | None  # $ per million output (generated) tokens
    cost_per_million_total_tokens: float | None  # $ per million prompt + output tokens
    operating_rate_per_s: float  # the load of the operating point
    slo: dict[str, Any]  # the targets and whether they held at the operating point
    metrics: dict[str, Any]  # simulator summary at the operating point
    probes: list[Probe]
    max_context_tokens: int  # longest context one sequence can hold (memory and model limit)
    max_context_limited_by: str  # "memory" | "model"
    kv_capacity_bytes: float
    comparison: list[dict[str, Any]] = field(default_factory=list)
    best_attention: str | None = None
    resolved_scenario: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["probes"] = [p.to_dict() for p in self.probes]
        return d


# --------------------------------------------------------------------------- cost model

def step_model(s: Scenario):
    """The cost layer's numeric step model for one replica of the scenario (cached there)."""
    from simkit.costs import ArchSpec, build_step_model

    cfg = s.model_config()
    from simkit.catalog.hardware import load_hardware

    hw = load_hardware(s.hardware.name)
    arch = ArchSpec.from_scenario_model(cfg, s.model)
    return build_step_model(cfg, arch, hw, gpus=s.hardware.gpus_per_replica,
                            ideal=s.hardware.ideal, engine=s.hardware.engine)


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
    cap = sm.kv_capacity_bytes(s.serving.memory_fraction)
    per_seq = float(sm.kv_bytes(p + o))
    b_kv = int(cap // per_seq) if per_seq > 0 else s.serving.max_batch
    b = max(1, min(s.serving.max_batch, b_kv))
    t_pre = float(sm.prefill_time_s(int(round(p))))
    t_dec = float(sm.decode_time_s(p + o / 2, b))
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
    cap = float(sm.kv_capacity_bytes(s.serving.memory_fraction))
    model_max = int(sm.max_context)
    longest = solve_max_context(sm.model, sm.arch, cap, batch=1)
    if longest is None or longest >= model_max:
        return model_max, "model", cap
    return longest, "memory", cap


# --------------------------------------------------------------------------- simulation

def _default_simulate() -> SimulateFn:
    from simkit.sim import simulate

    return simulate


def _p99(summary: Mapping[str, Any], metric: str) -> float | None:
    v = summary.get(metric)
    if isinstance(v, Mapping):
        v = v.get("p99")
    return None if v is None else float(v)


def slo_met(s: Scenario, summary: Mapping[str, Any]) -> tuple[bool, dict[str, float | None],
                                                              float]:
    """(every SLO held, p99 of each metric, completed fraction) for a simulation summary."""
    p99 = {m: _p99(summary, m) for m in ("ttft_s", "tpot_s", "e2e_s")}
    arrived = float(summary.get("requests_arrived") or 0)
    completed = float(summary.get("requests_completed") or 0)
    frac = completed / arrived if arrived else 0.0
    ok = frac >= MIN_COMPLETED_FRACTION
    for metric, bound in s.slo.targets().items():
        v = p99[metric]
        ok = ok and v is not None and math.isfinite(v) and v <= bound
    return ok, p99, frac


def probe(s: Scenario, rate_per_s: float, *, requests: int, simulate: SimulateFn) -> Probe:
    """Simulate one replica at `rate_per_s` (scenario seed: common random numbers)."""
    pt = s.with_(**{"workload.arrival.rate": float(rate_per_s), "serving.replicas": 1})
    res = simulate(pt, seed=s.seed, requests=requests)
    ok, p99, frac = slo_met(s, res.summary)
    return Probe(rate_per_s=float(rate_per_s), ttft_p99_s=p99["ttft_s"],
                 tpot_p99_s=p99["tpot_s"], e2e_p99_s=p99["e2e_s"], completed_fraction=frac,
                 met=ok)


def probe_requests(s: Scenario) -> int:
    if s.plan is not None and s.plan.requests is not None:
        return s.plan.requests
    return max(s.workload.requests, MIN_PROBE_REQUESTS)


def max_qps(s: Scenario, *, simulate: SimulateFn | None = None, requests: int | None = None,
            rel_tol: float | None = None, estimate: float | None = None) -> CapacityResult:
    """Highest arrival rate one replica sustains while meeting every SLO (see module doc)."""
    if not s.slo.targets():
        raise SimkitError("slo: set at least one of ttft_p99_s, tpot_p99_s, e2e_p99_s to plan "
                          "capacity")
    simulate = simulate or _default_simulate()
    n = int(requests or probe_requests(s))
    tol = rel_tol if rel_tol is not None else (s.plan.qps_rel_tol if s.plan else 0.05)
    est = float(estimate if estimate is not None else analytic_qps(s))
    if not (est > 0 and math.isfinite(est)):
        est = 1.0
    probes: list[Probe] = []

    def run(rate: float) -> bool:
        p = probe(s, rate, requests=n, simulate=simulate)
        probes.append(p)
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
    return CapacityResult(lo, est, (lo, hi), tol, n, probes)


def _operating_point(s: Scenario, rate: float, replicas: int, n: int,
                     simulate: SimulateFn) -> tuple[bool, dict, dict]:
    pt = s.with_(**{"workload.arrival.rate": float(rate), "serving.replicas": int(replicas)})
    res = simulate(pt, seed=s.seed, requests=n)
    ok, p99, _ = slo_met(s, res.summary)
    return ok, dict(res.summary), p99


def plan(s: Scenario, *, simulate: SimulateFn | None = None, requests: int | None = None,
         compare: bool = True) -> PlanResult:
    """The capacity plan of a scenario: see the module docstring."""
    simulate = simulate or _default_simulate()
    sm = step_model(s)
    n = int(requests or probe_requests(s))
    cap = max_qps(s, simulate=simulate, requests=n, estimate=analytic_qps(s, sm))
    target = s.plan.target_qps if s.plan is not None else None
    max_rep = s.plan.max_replicas if s.plan is not None else 1024
    replicas = gpus = None
    if target is None:
        rate, reps = cap.max_qps, 1
    else:
        rate = target
        if cap.max_qps <= 0:
            reps = None
        else:
            reps = max(1, math.ceil(target / cap.max_qps - 1e-9))
    metrics: dict[str, Any] = {}
    p99: dict[str, Any] = {}
    met = False
    if reps is not None and rate > 0:
        # Verify the operating point: all replicas behind the router at the target load; add
        # replicas while it misses (routing imbalance), up to plan.max_replicas.
        while True:
            if reps > max_rep:
                raise SimkitError(f"plan.max_replicas: {target} req/s needs more than "
                                  f"{max_rep} replicas")
            n_op = n * reps if target is not None else n  # same requests per replica
            met, metrics, p99 = _operating_point(s, rate, reps, n_op, simulate)
            if met or target is None:
                break
            reps += 1
        replicas = reps
        gpus = reps * s.hardware.gpus_per_replica
    cost_h = gpus * s.hardware.cost_per_gpu_hour if gpus is not None else None
    # the simulator's throughput_tokens_per_s counts generated tokens; prompt tokens apart
    tok_s = float(metrics.get("throughput_tokens_per_s") or 0.0)
    all_s = tok_s + float(metrics.get("prompt_throughput_tokens_per_s") or 0.0)
    cpm = cost_h / (3600.0 * tok_s) * 1e6 if cost_h is not None and tok_s > 0 else None
    cpm_all = cost_h / (3600.0 * all_s) * 1e6 if cost_h is not None and all_s > 0 else None
    ctx, limit, kv_cap = max_context(s, sm)
    slo = {"ttft_p99_s": s.slo.ttft_p99_s, "tpot_p99_s": s.slo.tpot_p99_s,
           "e2e_p99_s": s.slo.e2e_p99_s, "met": bool(met),
           "ttft_p99_measured_s": p99.get("ttft_s"), "tpot_p99_measured_s": p99.get("tpot_s"),
           "e2e_p99_measured_s": p99.get("e2e_s")}
    result = PlanResult(
        scenario=s.name, max_qps=cap.max_qps, analytic_qps=cap.analytic_qps,
        qps_rel_tol=cap.qps_rel_tol, target_qps=target, replicas=replicas,
        gpus_per_replica=s.hardware.gpus_per_replica, gpus=gpus,
        cost_per_gpu_hour=s.hardware.cost_per_gpu_hour, cost_per_hour=cost_h,
        cost_per_million_tokens=cpm, cost_per_million_total_tokens=cpm_all,
        operating_rate_per_s=rate, slo=slo, metrics=metrics,
        probes=cap.probes, max_context_tokens=ctx, max_context_limited_by=limit,
        kv_capacity_bytes=kv_cap, resolved_scenario=s.to_dict())
    kinds = s.plan.compare if (compare and s.plan is not None) else ()
    if kinds:
        result.comparison = compare_architectures(s, kinds, simulate=simulate, requests=n)
        feasible = [c for c in result.comparison if c.get("gpus")]
        if feasible:
            best = min(feasible, key=lambda c: (c["gpus"], -(c["max_qps"] or 0)))
            result.best_attention = best["attention"]
    return result


def compare_architectures(s: Scenario, kinds: tuple[str, ...], *,
                          simulate: SimulateFn | None = None,
                          requests: int | None = None) -> list[dict[str, Any]]:
    """For each attention kind: max_qps, replicas, GPUs and cost for the same workload."""
    from dataclasses import replace

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
        out.append(row)
    return out
