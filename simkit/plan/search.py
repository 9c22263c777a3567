"""Configuration search: every combination of `[plan.search]`, planned for
`plan.target_qps`, ranked by cost, with the reasons the others fail.

A configuration is the scenario with one combination of the `[plan.search]` values applied
(any dotted scenario setting: hardware, tensor parallelism, engine, batching, dtypes...).
Every configuration keeps the scenario's seed, so all of them serve the same requests
(common random numbers): their differences come from the configuration.

1. **Cost model first** (in this process, no simulation; `simkit.plan.bounds`): each
   configuration is infeasible with its reason (TP does not divide the heads, the weights
   do not fit, requests do not fit the KV memory, the SLOs cannot be met even by a request
   alone), or gets a lower bound on its cost: the fewest replicas the throughput bound
   allows x GPUs per replica x the price per GPU-hour (`simkit.plan.prices`; a GPU with no
   known price stops the search with one line before anything runs). Disaggregated, a
   "replica" is one group of prefill_replicas + decode_replicas replicas, so searching
   "serving.disaggregation.prefill_replicas" and "...decode_replicas" compares
   prefill:decode ratios, each planned for the fewest groups (`simkit.plan.capacity`).
2. **Branch and bound.** Feasible configurations are taken in order of that lower bound
   (ties in grid order). Each is planned by simulation (`simkit.plan.capacity.plan`:
   max req/s per replica, the fewest replicas for the target, cost, p99s at the operating
   point), unless its lower bound is above the cost of the cheapest feasible configuration
   planned *before it in that order*: then it cannot be the cheapest, and it is pruned
   (`plan.prune = false` plans every feasible one). The rule refers only to that order, so
   the outcome does not depend on the executor, the number of workers, or the order in
   which they finish: configurations a worker planned ahead and the rule prunes are
   reported as pruned, and any the rule needs but an earlier guess skipped are planned in a
   second round.
3. **Ranked**: planned feasible configurations by cost per hour, then GPUs, then p99 TTFT.
   The cost-latency Pareto frontier holds the planned configurations no other beats on
   cost, p99 TTFT and p99 TPOT at once (pruned ones were never simulated, so they are not
   on it: with `plan.prune = false` the frontier is over every feasible configuration).

Configurations run over any `concurrent.futures.Executor` through `simkit.plan.sweep`'s
driver (a local process pool, or a dask cluster), and with an output folder each finished
one is appended to `DIR/results.jsonl`: a killed search resumes where it stopped.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from simkit.errors import SimkitError
from simkit.plan import bounds
from simkit.plan.sweep import (RESULTS_FILE, SweepPoint, point_key, read_results, run_sweep,
                               task_scenario)
from simkit.scenario import Scenario, SweepGrid

@dataclass
class Config:
    """One configuration: its parameters, the cost model's verdict, and its plan."""

    index: int
    params: dict[str, Any]
    scenario: Scenario
    gpus_per_replica: int  # GPUs of one planning unit (disaggregated: one group of pools)
    price_per_gpu_hour: float | None = None  # the unit's, per GPU (a blend across pools)
    price_source: str = ""
    hardware_price: float | None = None  # [hardware]'s GPU's, travelling with the config
    reason: str | None = None  # infeasible by the cost model, or by simulation
    rate_bound_per_s: float | None = None
    replicas_lower_bound: int | None = None
    cost_lower_bound: float | None = None  # USD per hour
    record: dict[str, Any] | None = None  # the simulated plan (its to_dict) when planned
    status: str = "pending"  # ranked | infeasible | pruned
    pruned_by: float | None = None  # the cost that ruled it out

    @property
    def key(self) -> str:
        return point_key(self.params)


@dataclass
class SearchResult:
    """Every configuration (ranked first), the cheapest, the frontier, the counts."""

    configs: list[dict[str, Any]]
    best: dict[str, Any] | None
    pareto: list[dict[str, Any]]
    best_plan: dict[str, Any] | None  # the full plan (`PlanResult.to_dict()`) of the best
    target_qps: float
    slo: dict[str, float]
    keys: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    prune: bool = True
    out_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `search` object of `simkit plan --json`."""
        return {"configs": self.configs, "best": self.best, "pareto": self.pareto,
                "target_qps": self.target_qps, "slo": self.slo, "keys": self.keys,
                "counts": self.counts, "prune": self.prune}


# --------------------------------------------------------------------------- configurations

def config_scenario(s: Scenario, params: Mapping[str, Any]) -> Scenario:
    """The scenario with one combination applied and no search, sweep or comparison of its
    own (the same seed: every configuration serves the same requests)."""
    bare = replace(s, sweep=SweepGrid(), report=replace(s.report, compare=()),
                   plan=replace(s.plan, search=SweepGrid(), compare=()))
    return bare._with(params, runnable=False)  # an infeasible one is a row, not an error


def configurations(s: Scenario) -> list[Config]:
    """Every combination of `[plan.search]` with the cost model's verdict and lower bound.

    Raises one `SimkitError` when a configuration that the cost model finds feasible runs on
    a GPU with no known price."""
    from simkit.plan.capacity import probe_requests, step_model
    from simkit.plan.prices import gpu_price, missing_price_message, unit_cost

    if s.plan is None or not len(s.plan.search):
        raise SimkitError("plan.search: the scenario has no [plan.search] table")
    target = float(s.plan.target_qps)
    out: list[Config] = []
    no_price: list[str] = []
    for i, params in enumerate(s.plan.search.points()):
        cs = config_scenario(s, params)
        unit = unit_cost(cs)
        c = Config(index=i, params=dict(params), scenario=cs, gpus_per_replica=unit.gpus)
        n = probe_requests(cs)
        try:
            sm = step_model(cs)
        except SimkitError as e:
            sm = e
        ctx = int(cs.model_config().max_context) if isinstance(sm, SimkitError) \
            else int(sm.max_context)
        sample = bounds.workload_sample(cs, n, ctx)
        c.reason, cap = bounds.feasibility(cs, sm, sample)
        if c.reason is None:
            c.rate_bound_per_s = bounds.rate_bound_per_s(cs, sm, sample, cap)
            c.replicas_lower_bound = bounds.replicas_lower_bound(cs, target,
                                                                 c.rate_bound_per_s, n)
            if c.replicas_lower_bound > cs.plan.max_replicas:
                c.reason = (f"needs more than plan.max_replicas = {cs.plan.max_replicas} "
                            f"replicas (at least {c.replicas_lower_bound} by the cost model)")
        if c.reason is None:
            if unit.per_hour is None:
                no_price += unit.missing
            else:
                c.price_per_gpu_hour, c.price_source = unit.per_gpu_hour, unit.source
                own = gpu_price(cs)
                c.hardware_price = own.per_gpu_hour if own is not None else None
                c.cost_lower_bound = c.replicas_lower_bound * unit.per_hour
        else:
            c.status = "infeasible"
        out.append(c)
    if no_price:
        raise SimkitError(missing_price_message(no_price))
    return out


# --------------------------------------------------------------------------- worker side

def plan_point(task: Mapping[str, Any]) -> dict[str, Any]:
    """Plan one configuration (in a worker): `PlanResult.to_dict()`, or a reason."""
    from simkit.plan.capacity import plan

    s = task_scenario(task)
    try:
        r = plan(s, compare=False)
    except SimkitError as e:
        return {"reason": "; ".join(e.messages)}
    d = r.to_dict()
    d.pop("resolved_scenario", None)  # the record carries the scenario once already
    return d


# --------------------------------------------------------------------------- the search

def _point(c: Config) -> SweepPoint:
    d = c.scenario.to_dict()
    # the price travels with the configuration: workers need no catalog prices, and the
    # results file records what every cost was computed with
    d["hardware"]["cost_per_gpu_hour"] = c.hardware_price
    return SweepPoint(index=c.index, params=c.params, scenario=d,
                      base_dir=c.scenario.base_dir)


def _outcome(rec: Mapping[str, Any]) -> tuple[dict | None, str | None]:
    """(plan dict, reason) of a finished record."""
    if rec.get("error"):
        return None, "; ".join(rec["error"])
    m = rec.get("metrics") or {}
    if m.get("reason") and m.get("replicas") is None:
        return (m if "max_qps" in m else None), m["reason"]
    return m, None


def _cost(rec: Mapping[str, Any]) -> float | None:
    plan, reason = _outcome(rec)
    if reason is None and plan is not None:
        return plan.get("cost_per_hour")
    return None


def run_search(s: Scenario, executor=None, *, out_dir: str | Path | None = None,
               max_workers: int | None = None, max_in_flight: int | None = None,
               progress: Callable[[str], None] | None = None) -> SearchResult:
    """Plan every configuration of `s`'s `[plan.search]` (see the module docstring)."""
    configs = configurations(s)
    prune = bool(s.plan.prune)
    order = sorted((c for c in configs if c.status != "infeasible"),
                   key=lambda c: (c.cost_lower_bound, c.index))
    by_key = {c.key: c for c in configs}
    total = len(configs)
    say = progress or (lambda _msg: None)
    n_inf = total - len(order)
    say(f"{total} configurations: {n_inf} infeasible by the cost model, {len(order)} to plan "
        "in order of their cost lower bound")
    state = {"best": math.inf, "done": 0}
    if out_dir is not None:  # a resumed search starts from what it found before
        for rec in read_results(Path(out_dir) / RESULTS_FILE):
            c = by_key.get(point_key(rec.get("params") or {}))
            cost = _cost(rec)
            if c is not None and cost is not None:
                state["best"] = min(state["best"], cost)

    def gate(p: SweepPoint) -> str | None:
        lb = by_key[p.key].cost_lower_bound
        if prune and lb > state["best"]:
            return f"cost lower bound {lb:.4g} $/h > {state['best']:.4g} $/h"
        return None

    def finished(rec: dict, done: int, _total: int) -> None:
        state["done"] += 1
        cost = _cost(rec)
        plan, reason = _outcome(rec)
        if cost is not None:
            state["best"] = min(state["best"], cost)
            what = (f"{plan['replicas']} replica(s) = {plan['gpus']} GPUs, {cost:.4g} $/h, "
                    f"max {plan['max_qps']:.3g} req/s per replica")
        else:
            what = "infeasible: " + (reason or "?")
        say(f"[{state['done']}] {_label(rec['params'])}: {what}")

    def beat(running: list[dict]) -> None:
        say("still planning " + "; ".join(_label(p) for p in running))

    records: dict[str, dict] = {}
    todo, first = order, True
    while todo:
        # the first round prunes as results come in; a later one plans exactly what the
        # rule needs and an out-of-order result made the first round skip
        res = run_sweep([_point(c) for c in todo], executor, out_dir=out_dir,
                        point_fn=plan_point, max_workers=max_workers, progress=finished,
                        scenario=s if out_dir is not None else None,
                        gate=gate if first else None, max_in_flight=max_in_flight,
                        heartbeat=beat)
        for rec in res.records:
            if not rec.get("pruned"):
                records[point_key(rec["params"])] = rec
        todo, first = _settle(order, records, prune), False
        if todo:
            say(f"planning {len(todo)} more that the pruning rule needs")
    return _result(s, configs, order, prune, out_dir)


def _settle(order: list[Config], records: Mapping[str, dict], prune: bool) -> list[Config]:
    """Apply the pruning rule in cost-lower-bound order (see the module docstring); return
    the configurations it needs planned that have no record yet."""
    best = math.inf
    missing = []
    for c in order:
        if prune and c.cost_lower_bound > best:
            c.status, c.pruned_by, c.record = "pruned", best, None
            continue
        rec = records.get(c.key)
        if rec is None:
            missing.append(c)
            continue
        plan, reason = _outcome(rec)
        c.record = plan
        if reason is not None:
            c.status, c.reason = "infeasible", reason
        else:
            c.status = "ranked"
            best = min(best, plan["cost_per_hour"])
    return missing


def _result(s: Scenario, configs: list[Config], order: list[Config], prune: bool,
            out_dir) -> SearchResult:
    ranked = sorted((c for c in configs if c.status == "ranked"),
                    key=lambda c: (c.record["cost_per_hour"], c.record["gpus"],
                                   _num(c.record["slo"].get("ttft_p99_measured_s")),
                                   c.index))
    pruned = [c for c in order if c.status == "pruned"]
    infeasible = [c for c in configs if c.status == "infeasible"]
    rows = []
    for rank, c in enumerate(ranked, 1):
        rows.append(config_dict(c, rank))
    rows += [config_dict(c) for c in pruned] + [config_dict(c) for c in infeasible]
    frontier = pareto([r for r in rows if r["status"] == "ranked"])
    best = rows[0] if ranked else None
    best_plan = None
    if ranked:  # its price came with the configuration: say where from
        best_plan = {**ranked[0].record, "price_source": ranked[0].price_source}
    return SearchResult(
        configs=rows, best=best, pareto=frontier,
        best_plan=best_plan, target_qps=float(s.plan.target_qps),
        slo=s.slo.targets(), keys=list(s.plan.search),
        counts={"configurations": len(configs), "ranked": len(ranked),
                "pruned": len(pruned), "infeasible": len(infeasible)},
        prune=prune, out_dir=str(out_dir) if out_dir is not None else None)


def _num(v) -> float:
    return math.inf if v is None else float(v)


def config_dict(c: Config, rank: int | None = None) -> dict[str, Any]:
    """One configuration as a `search.configs` entry of `simkit plan --json`, plus what
    explains it."""
    r = c.record or {}
    slo = r.get("slo") or {}
    d: dict[str, Any] = {
        "params": dict(c.params),
        "feasible": {"ranked": True, "infeasible": False}.get(c.status),
        "reason": c.reason,
        "max_qps": r.get("max_qps"),
        "replicas": r.get("replicas"),
        "gpus": r.get("gpus"),
        "cost_per_hour": r.get("cost_per_hour"),
        "cost_per_million_tokens": r.get("cost_per_million_tokens"),
        "ttft_p99_s": slo.get("ttft_p99_measured_s"),
        "tpot_p99_s": slo.get("tpot_p99_measured_s"),
        "status": c.status,
        "rank": rank,
        "index": c.index,
        "gpus_per_replica": c.gpus_per_replica,
        "price_per_gpu_hour": c.price_per_gpu_hour,
        "price_source": c.price_source,
        "cost_lower_bound_per_hour": c.cost_lower_bound,
        "replicas_lower_bound": c.replicas_lower_bound,
        "rate_bound_per_s": c.rate_bound_per_s,
        "ci": slo.get("ci") or {},
        "marginal": bool(slo.get("marginal")),
        "warnings": list(r.get("warnings") or []),
    }
    if c.status == "pruned":
        d["reason"] = (f"pruned: its cost lower bound {c.cost_lower_bound:.4g} $/h is above "
                       f"the cheapest feasible configuration before it, "
                       f"{c.pruned_by:.4g} $/h")
    d["reason_kind"] = reason_kind(d["reason"]) if d["reason"] else None
    return d


def reason_kind(reason: str) -> str:
    """A short label grouping reasons that differ only in their numbers."""
    r = reason.lower()
    for needle, label in (("pruned", "pruned by the cost bound"),
                          ("does not divide", "TP does not divide the heads"),
                          ("weights do not fit", "weights do not fit"),
                          ("need more kv memory", "requests do not fit the KV memory"),
                          ("cannot be met at any load", "SLOs cannot be met at any load"),
                          ("max_replicas", "needs more than plan.max_replicas")):
        if needle in r:
            return label
    return "other"


def pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows no other row beats on cost per hour, p99 TTFT and p99 TPOT at once (a missing
    p99 counts as unbeatable on that axis only for rows that also lack it), by cost."""
    def vec(r):
        return (_num(r["cost_per_hour"]), _num(r["ttft_p99_s"]), _num(r["tpot_p99_s"]))

    out = []
    for r in rows:
        a = vec(r)
        dominated = any(all(x <= y for x, y in zip(vec(o), a)) and vec(o) != a
                        for o in rows if o is not r)
        if not dominated:
            out.append(r)
    return sorted(out, key=lambda r: (vec(r), r["index"]))


def _label(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in params.items())


def stderr_progress(msg: str) -> None:
    print(f"simkit plan: {msg}", file=sys.stderr, flush=True)
