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
2. **Cost cuts, by cheap probes.** A configuration's cost is its replica count x its unit
   price, so "does it cost at most X $/h?" is one simulation: the most replicas X buys
   (`floor(X / unit price)`), at the target load. The search asks that question of every
   feasible configuration whose lower bound is within the cut X, in rounds: X starts at
   twice the smallest lower bound and grows by sqrt(2) a round until some configuration
   meets the SLOs within it (so the final cut is less than sqrt(2) x the cheapest cost).
   Those that meet are planned in full by simulation
   (`simkit.plan.capacity.plan`: max req/s per replica, the fewest replicas for the target,
   cost, p99s at the operating point); every other one is pruned, with what proves it cannot
   be the cheapest: its lower bound is above the cut, or the replicas the cut buys miss the
   SLOs, so it needs more (meeting the SLOs is taken to be monotone in the replica count,
   as the replica bisection takes it). Should the cheapest planned cost come out above the
   cut (a plan's replica search judges a count as a cut does,
   `simkit.plan.capacity.steady_probe`, but need not ask the cut's count, and meeting the
   SLOs need not be monotone in it), the configurations that count cannot rule out are
   probed again at that cost, and so on until every pruned one provably costs more than the
   cheapest. A probe costs one
   simulation, a full plan twenty or so, and the latency-bound configurations a throughput
   bound cannot see (one GPU per replica under a tight TTFT, static batching) need a
   hundred replicas or more: they are ruled out by one probe each instead of planned. Every
   round depends only on the simulations' outcomes, so the result does not depend on the
   executor, the number of workers, or the order in which they finish. `plan.prune = false`
   plans every feasible configuration in full.
3. **Ranked**: planned feasible configurations by cost per hour, then GPUs, then p99 TTFT.
   The cost-latency Pareto frontier holds the planned configurations no other beats on
   cost, p99 TTFT and p99 TPOT at once (pruned ones were never planned, so they are not
   on it: with `plan.prune = false` the frontier is over every feasible configuration).

Configurations run over any `concurrent.futures.Executor` through `simkit.plan.sweep`'s
driver (a local process pool, or a dask cluster), and with an output folder each finished
probe and plan is appended to `DIR/results.jsonl` (a probe's record names its replica count as
`serving.replicas` among its parameters): a killed search resumes where it stopped.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from simkit.errors import SimkitError
from simkit.plan import bounds
from simkit.plan.sweep import SweepPoint, point_key, run_sweep, task_scenario
from simkit.scenario import Scenario, SweepGrid

@dataclass
class Config:
    """One configuration: its parameters, the cost model's verdict, and its plan."""

    index: int
    params: dict[str, Any]
    scenario: Scenario
    gpus_per_replica: int  # GPUs of one planning unit (disaggregated: one group of pools)
    price_per_gpu_hour: float | None = None  # the unit's, per GPU (a blend across pools)
    unit_per_hour: float | None = None  # USD per hour of one replica (or group)
    price_source: str = ""
    hardware_price: float | None = None  # [hardware]'s GPU's, travelling with the config
    reason: str | None = None  # infeasible by the cost model, or by simulation
    rate_bound_per_s: float | None = None
    replicas_lower_bound: int | None = None
    cost_lower_bound: float | None = None  # USD per hour
    record: dict[str, Any] | None = None  # the simulated plan (its to_dict) when planned
    status: str = "pending"  # ranked | infeasible | pruned
    pruned_by: float | None = None  # the cheapest cost, which it cannot beat
    cut: dict[str, Any] | None = None  # its latest cost-cut probe (`cut_point`'s record)

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
                c.unit_per_hour = unit.per_hour
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


def cut_point(task: Mapping[str, Any]) -> dict[str, Any]:
    """One cost-cut probe (in a worker): the configuration's `serving.replicas` replicas at
    `plan.target_qps`, judged as every probe of a plan is (`simkit.plan.capacity.
    steady_probe`): the verdict a plan's replica search gets at that count."""
    from simkit.plan.capacity import check_probe_requests, probe_requests, steady_probe
    from simkit.plan.slo import shortfall
    from simkit.sim import simulate

    s = task_scenario(task)
    n = probe_requests(s)
    check_probe_requests(n, "plan.requests")
    target, replicas = float(s.plan.target_qps), int(s.serving.replicas)
    p, _ = steady_probe(s, target, replicas=replicas, requests=n, simulate=simulate)
    return {**p.to_dict(), "shortfall": None if p.met else shortfall(s, p)}


# --------------------------------------------------------------------------- the search

#: the first cost cut, x the smallest lower bound (bounds ignore latency: the cheapest is
#: usually well above it), and its growth per round: every configuration that meets the SLOs
#: within the final cut is planned in full, and that cut is below CUT_GROWTH x the cheapest
#: cost (nothing met the one before it), so the growth trades a wider ranked table for
#: more full plans (twenty or so simulations each, where a cut probe is one)
CUT_START = 2.0
CUT_GROWTH = math.sqrt(2.0)


def _point(c: Config, replicas: int | None = None) -> SweepPoint:
    """A configuration's plan, or with `replicas` its cost-cut probe at that count."""
    d = c.scenario.to_dict()
    # the price travels with the configuration: workers need no catalog prices, and the
    # results file records what every cost was computed with
    d["hardware"]["cost_per_gpu_hour"] = c.hardware_price
    params = dict(c.params)
    if replicas is not None:
        d["serving"]["replicas"] = int(replicas)
        params["serving.replicas"] = int(replicas)  # (never a search key: see the loader)
    return SweepPoint(index=c.index, params=params, scenario=d,
                      base_dir=c.scenario.base_dir)


def _outcome(rec: Mapping[str, Any]) -> tuple[dict | None, str | None]:
    """(plan dict, reason) of a finished plan record."""
    if rec.get("error"):
        return None, "; ".join(rec["error"])
    m = rec.get("metrics") or {}
    if m.get("reason") and m.get("replicas") is None:
        return (m if "max_qps" in m else None), m["reason"]
    return m, None


def cut_replicas(c: Config, cut_per_hour: float, max_replicas: int) -> int:
    """The most replicas (or groups) of `c` that cost at most `cut_per_hour`, within
    `plan.max_replicas` (the 1e-9 keeps a cut that is an exact multiple of the unit price,
    such as a planned cost, from losing a replica to rounding)."""
    return max(1, min(int(max_replicas), math.floor(cut_per_hour / c.unit_per_hour + 1e-9)))


def cost_floor(c: Config) -> float:
    """What `c` is proven to cost at least, USD/h: its lower bound, or, when the replicas a
    cut buys missed the SLOs, one more replica than that."""
    floor = float(c.cost_lower_bound)
    if c.cut is not None and not c.cut["met"]:
        floor = max(floor, (c.cut["replicas"] + 1) * c.unit_per_hour)
    return floor


def run_search(s: Scenario, executor=None, *, out_dir: str | Path | None = None,
               max_workers: int | None = None,
               progress: Callable[[str], None] | None = None) -> SearchResult:
    """Plan every configuration of `s`'s `[plan.search]` (see the module docstring)."""
    configs = configurations(s)
    prune = bool(s.plan.prune)
    target = float(s.plan.target_qps)
    max_rep = int(s.plan.max_replicas)
    order = sorted((c for c in configs if c.status != "infeasible"),
                   key=lambda c: (c.cost_lower_bound, c.index))
    say = progress or (lambda _msg: None)
    say(f"{len(configs)} configurations: {len(configs) - len(order)} infeasible by the cost "
        f"model, {len(order)} to " + ("probe at rising cost cuts" if prune else "plan"))
    done = {"n": 0}

    def beat(running: list[dict]) -> None:
        say("still running " + "; ".join(_label(p) for p in running))

    def sweep(points: list[SweepPoint], fn) -> list[dict]:
        def finished(rec: dict, _done: int, _total: int) -> None:
            done["n"] += 1
            say(f"[{done['n']}] {_label(rec['params'])}: {_describe(rec, fn)}")

        return run_sweep(points, executor, out_dir=out_dir, point_fn=fn,
                         max_workers=max_workers, progress=finished,
                         scenario=s if out_dir is not None else None,
                         heartbeat=beat).records

    def plan_all(cs: list[Config]) -> None:
        for c, rec in zip(cs, sweep([_point(c) for c in cs], plan_point)):
            plan, reason = _outcome(rec)
            c.record = plan
            if reason is not None:
                c.status, c.reason = "infeasible", reason
            else:
                c.status = "ranked"

    if not prune:
        plan_all(order)
        return _result(s, configs, order, prune, out_dir)
    open_ = list(order)  # neither planned nor infeasible yet
    cut = CUT_START * order[0].cost_lower_bound if order else math.inf
    while open_:
        ask = [c for c in open_ if cost_floor(c) <= cut]
        if ask:
            say(f"cost cut {cut:.4g} $/h: {len(ask)} configuration(s) at the replicas it buys")
            pts = [_point(c, cut_replicas(c, cut, max_rep)) for c in ask]
            for c, rec in zip(ask, sweep(pts, cut_point)):
                c.cut = _cut_record(rec)
        met = [c for c in ask if c.cut["met"]]
        for c in ask:
            if not c.cut["met"] and c.cut["replicas"] >= max_rep:
                c.status = "infeasible"
                c.reason = (f"plan.max_replicas: even {max_rep} replica(s) miss the SLOs at "
                            f"{target:g} req/s ({c.cut['shortfall']})")
        plan_all(met)
        open_ = [c for c in open_ if c.status == "pending"]
        best = min((c.record["cost_per_hour"] for c in order if c.status == "ranked"),
                   default=math.inf)
        if all(cost_floor(c) > best for c in open_):
            break
        # nothing planned yet: a higher cut; a plan above the cut: ask again at its cost
        cut = CUT_GROWTH * cut if math.isinf(best) else max(best, cut)
        if not any(cost_floor(c) <= cut for c in open_):
            cut = min(cost_floor(c) for c in open_)
    best = min((c.record["cost_per_hour"] for c in order if c.status == "ranked"),
               default=math.inf)
    for c in open_:
        c.status, c.pruned_by = "pruned", best
    return _result(s, configs, order, prune, out_dir)


def _cut_record(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a cost-cut probe's record a configuration keeps."""
    if rec.get("error"):  # (set-up problems are found by the cost model before a probe)
        raise SimkitError("plan.search: a probe of " + _label(rec["params"]) + " failed: "
                          + "; ".join(rec["error"]))
    m = rec["metrics"]
    return {"replicas": int(rec["params"]["serving.replicas"]), "met": bool(m["met"]),
            "ttft_p99_s": m["ttft_p99_s"], "tpot_p99_s": m["tpot_p99_s"],
            "e2e_p99_s": m["e2e_p99_s"], "requests": m["requests"],
            "shortfall": m["shortfall"]}


def _describe(rec: Mapping[str, Any], fn) -> str:
    """A progress line's verdict on a finished probe or plan."""
    if fn is cut_point:
        if rec.get("error"):
            return "failed: " + "; ".join(rec["error"])
        m = rec["metrics"]
        n = rec["params"]["serving.replicas"]
        return (f"{n} replica(s) meet the SLOs" if m["met"]
                else f"{n} replica(s) miss the SLOs ({m['shortfall']})")
    plan, reason = _outcome(rec)
    if reason is not None:
        return "infeasible: " + reason
    return (f"{plan['replicas']} replica(s) = {plan['gpus']} GPUs, "
            f"{plan['cost_per_hour']:.4g} $/h, max {plan['max_qps']:.3g} req/s per replica")


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
        "cut": dict(c.cut) if c.cut is not None else None,
    }
    if c.status == "pruned":
        cut = c.cut
        if cut is not None and not cut["met"] and \
                (cut["replicas"] + 1) * c.unit_per_hour > c.pruned_by:
            n = cut["replicas"]
            d["reason"] = (f"pruned: {n} replica(s) ({n * c.unit_per_hour:.4g} $/h) miss the "
                           f"SLOs at the target ({cut['shortfall']}), so it needs at least "
                           f"{n + 1} ({(n + 1) * c.unit_per_hour:.4g} $/h), more than the "
                           f"cheapest, {c.pruned_by:.4g} $/h")
        else:
            d["reason"] = (f"pruned: its cost lower bound {c.cost_lower_bound:.4g} $/h is "
                           f"above the cheapest, {c.pruned_by:.4g} $/h")
    d["reason_kind"] = reason_kind(d["reason"]) if d["reason"] else None
    return d


def reason_kind(reason: str) -> str:
    """A short label grouping reasons that differ only in their numbers."""
    r = reason.lower()
    for needle, label in (("pruned: its cost lower bound", "pruned by the cost bound"),
                          ("pruned:", "pruned: misses the SLOs within the cheapest's cost"),
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
