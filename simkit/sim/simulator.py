"""`simulate(scenario)`: build the workload, the replicas and the router, run the events.

Glue only: step times and KV sizes come from the cost layer's `StepCostModel`; batching from
scheduler.py; memory from kvcache.py; the iteration loop from replica.py; numbers from
metrics.py. Replicas form pools (`Pool`): all of them, or with [serving.disaggregation] a
prefill and a decode pool, each with its own GPUs, step model and KV memory, joined by
`simkit.sim.disagg.Transfers`; with [serving.speculative] a pool's replicas carry a
`simkit.sim.speculative.Speculation` and their memory holds both models. Requests reach the
router at their arrival times, when sessions send their turns (`simkit.sim.sessions`), or
when a client with a concurrency cap sends them (`simkit.sim.concurrency`). Everything
random is drawn up front from the seed's per-component streams
(`simkit.sim.workload.stream`), so the same seed gives bit-identical results.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simkit.sim import metrics
from simkit.sim.engine import PRIORITY_ARRIVAL, Engine
from simkit.sim.progress import Progress
from simkit.sim.replica import Replica, iteration_log
from simkit.sim.request import (COLUMNS, COMPLETED, DISAGG_COLUMNS, EXTRA_COLUMNS, REJECTED,
                                SPEC_COLUMNS, RequestTable)
from simkit.sim.router import make_router
from simkit.sim.newtokens import CLIP_TOKENS
from simkit.sim.scheduler import admission_of, make_scheduler, watermark_of
from simkit.sim.setup import PoolSetup, draw_requests, prepare

from simkit.sim import prefix as prefix_mod  # noqa: E402  (sessions & prefix caching)
from simkit.sim import prefix_stats  # noqa: E402
from simkit.sim import sessions as sessions_mod  # noqa: E402
from simkit.sim.tbt import TokenGaps, itl_stats, tbt_stats  # noqa: E402


@dataclass
class SimResult:
    """What a run produced: the summary (the `simkit simulate --json` keys), per-request
    columns, a time series."""

    summary: dict[str, Any]
    requests: dict[str, np.ndarray]
    timeseries: dict[str, np.ndarray]
    scenario: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary,
                "timeseries": {k: v.tolist() for k, v in self.timeseries.items()}}

    def write_requests_csv(self, path: str | Path) -> None:
        """One row per request: id, arrival_s, prompt_tokens, output_tokens, start_s,
        first_token_s, finish_s, preemptions, status (times empty where they never happened;
        floats written with repr, so they read back exactly), then session_id, turn,
        tenant, cached_tokens, prefill_tokens_computed (`request.EXTRA_COLUMNS`), and with
        disaggregation or speculative decoding their columns (`request.DISAGG_COLUMNS`,
        `request.SPEC_COLUMNS`)."""
        cols = self.requests
        names = COLUMNS + EXTRA_COLUMNS + tuple(c for c in DISAGG_COLUMNS + SPEC_COLUMNS
                                                if c in cols)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(names)
            lists = [cols[c].tolist() for c in names]
            for row in zip(*lists):
                w.writerow(["" if isinstance(v, float) and v != v else repr(v)
                             if isinstance(v, float) else v for v in row])


class _Sim:
    """Shared state the replicas call back into (clock, request table, queue log)."""

    def __init__(self, table: RequestTable, engine: Engine, progress: Progress) -> None:
        self.table = table
        self.engine = engine
        self.progress = progress
        self.completed = 0
        self._q_t: list[float] = []
        self._q_d: list[int] = []
        self.next_index = 0
        # arrival times as Python floats: the hot loop reads them one at a time
        self._arrivals = table.arrival_s.tolist() + [float("inf")]
        self.gaps = TokenGaps()  # time between tokens
        self.on_finished = None  # sessions: a turn's answer is complete (rid, now_s)

    def queue_log(self, t: float, delta: int) -> None:
        self._q_t.append(t)
        self._q_d.append(delta)

    def on_completed(self, n: int) -> None:
        self.completed += n
        self.progress.update(self.completed)

    def next_arrival_s(self) -> float:
        return self._arrivals[self.next_index]  # inf after the last one

    def arrival_ahead_s(self, k: int) -> float:
        """The time of the (k+1)-th next arrival (inf past the last one)."""
        return self._arrivals[min(self.next_index + k, len(self._arrivals) - 1)]


@dataclass
class Pool(PoolSetup):
    """A pool's set-up (`simkit.sim.setup.PoolSetup`) and its replicas."""

    replicas: list = field(default_factory=list)


def simulate(scenario, *, seed: int | None = None, requests: int | None = None,
             progress: bool = False, step_model=None, fast: bool = True) -> SimResult:
    """Simulate the scenario's request stream on its replicas.

    `seed` overrides scenario.seed; `requests` overrides workload.requests; `step_model`
    reuses a prebuilt `StepCostModel` (it must match the scenario's model and hardware);
    `fast=False` advances one iteration at a time (same results, for testing the fast path).
    """
    run = build(scenario, seed=seed, requests=requests, progress=progress,
                step_model=step_model, fast=fast)
    try:
        run.engine.run()
    finally:
        run.progress.close()
    return run.result()


@dataclass
class Run:
    """A simulation set up and ready to run (`build`); `result()` once the engine is done.
    Tests run the engine part way to look at it mid-flight."""

    scenario: Any
    engine: Engine
    table: RequestTable
    pools: list[Pool]
    sim: Any
    progress: Progress
    seed: int
    n: int
    caching: bool
    plan: Any = None
    source: Any = None
    transfers: Any = None

    @property
    def replicas(self) -> list:
        return [r for p in self.pools for r in p.replicas]

    def result(self) -> SimResult:
        return _result(self)


def build(scenario, *, seed: int | None = None, requests: int | None = None,
          progress: bool = False, step_model=None, fast: bool = True) -> Run:
    """Set up the workload, the pools of replicas, the routers and the first events."""
    serving = scenario.serving
    seed = int(scenario.seed if seed is None else seed)
    n = int(scenario.workload.requests if requests is None else requests)
    disagg = getattr(serving, "disaggregation", None)
    st = prepare(scenario, step_model, seed=seed)  # every check that it can run
    pools = [Pool(p.name, p.model, p.policy, p.capacity_bytes, p.gpus, p.hardware, p.spec)
             for p in st.pools]
    max_seq_len = st.max_seq_len
    kind = serving.kv_memory
    rq = draw_requests(scenario, n, seed, st)  # the workload (sessions or independent)
    plan, table, n, shortest, longest = rq.plan, rq.table, rq.n, rq.shortest, rq.longest
    # a request is rejected when even an empty replica could not hold it at some length
    # up to its longest (prompt + output - 1 positions; a window or chunked layer may hold
    # most mid-answer, or mid-prefill when prompts are prefilled in chunks), or it exceeds
    # the contiguous reservation; disaggregated, the prefill pool must hold its prompt and
    # the decode pool all of it (a preempted decode is recomputed there)
    table_hi = max(int(longest.max(initial=0)), max_seq_len if kind == "contiguous" else 0)
    max_new = getattr(scenario.workload, "max_new_tokens", None)
    sched = make_scheduler(serving, max_new)
    chunked = sched.whole_prefill is False  # (prefilled chunk by chunk)
    # a multi-step round computes up to rounds - 1 tokens past an answer's end
    extra = sched.rounds - 1
    table_hi += extra
    fits = np.ones(len(longest), dtype=bool)
    # SGLang's admission looks up to a token limit (at most CLIP_TOKENS) past a prompt
    units_hi = table_hi + (CLIP_TOKENS if sched.ratio is not None else 0)
    for pool in pools:
        pool.policy.build_tables(units_hi)
        for sm in (pool.model, pool.spec.draft if pool.spec is not None else None):
            if hasattr(sm, "ensure_tables"):  # the step model's lookups up to the same length
                sm.ensure_tables(table_hi + 2)
        hi = shortest if pool.name == "prefill" else longest + extra
        fits &= pool.policy.peak_units(np.zeros_like(hi) if chunked else shortest,
                                       hi) <= pool.policy.max_units(1)
    if kind == "contiguous":
        fits &= longest <= max_seq_len

    engine = Engine()
    prog = Progress(n, progress)
    sim = _Sim(table, engine, prog)
    n_rep = int(serving.replicas)
    caching = False
    index = 0
    for pool in pools:
        sm = pool.model
        swap_bw = float(sm.hardware.host_link_bytes_per_s) * pool.gpus \
            if hasattr(sm, "hardware") else float("inf")
        count = n_rep if disagg is None else n_rep * int(getattr(
            disagg, f"{pool.name}_replicas"))
        # decode replicas receive whole caches: no prefix lookups there
        cache_on = pool.name != "decode" and prefix_mod.applies(
            pool.policy, bool(getattr(serving, "prefix_caching", True)))
        caching = caching or cache_on
        for _ in range(count):
            pool.replicas.append(Replica(index, sim, pool.policy,
                                         make_scheduler(serving, max_new), sm,
                                         swap=serving.preemption == "swap",
                                         swap_bytes_per_s=swap_bw, fast=fast,
                                         prefix_caching=cache_on, spec=pool.spec))
            index += 1
    router = make_router(serving.router, pools[0].replicas)
    route_one = router.route
    for r in pools[0].replicas:
        # with m replicas behind the router, a decode run plans past the next m-1 arrivals
        # (on average they go elsewhere); one that joins it cuts it short (`enqueue`), so
        # the look-ahead changes how much is planned, never what happens
        r.lookahead = len(pools[0].replicas) - 1
    transfers = None
    if disagg is not None:
        from simkit.sim.disagg import Transfers, link_of, router_with_origin

        pre, dec = pools
        dec_router = make_router("round_robin" if serving.router == "round_robin"
                                 else "least_loaded", dec.replicas)
        spec = pre.spec

        def kv_bytes(tokens: int) -> float:
            b = float(pre.model.kv_bytes(float(tokens)))
            return b + float(spec.draft.kv_bytes(float(tokens))) if spec is not None else b

        transfers = Transfers(engine, table, link_of(disagg, pre.model, dec.model), dec_router,
                              kv_bytes, layerwise=disagg.transfer == "layerwise",
                              layers=int(getattr(pre.model, "blocks", 1)))
        for r in pre.replicas:
            r.handoff = transfers.hand_off
            if disagg.transfer == "layerwise":
                r.announce = transfers.announce
        for r in dec.replicas:
            r.transfers = transfers
            r.external = False
        route_one = router_with_origin(router, table)

    run = Run(scenario=scenario, engine=engine, table=table, pools=pools, sim=sim,
              progress=prog, seed=seed, n=n, caching=caching, plan=plan,
              transfers=transfers)
    if plan is not None:
        fits_l = fits.tolist()

        def route(rid: int, now_s: float) -> None:
            j = int(plan.first[table.session[rid]] + table.turn[rid] - 1)
            if not fits_l[j]:
                table.status[rid] = REJECTED  # its session ends: no answer to continue from
                return
            route_one(rid).enqueue(rid, now_s)

        source = sessions_mod.SessionArrivals(plan, table, engine, route)
        sim.next_arrival_s = source.next_arrival_s
        sim.arrival_ahead_s = lambda _k: source.next_arrival_s()  # later turns: unknown yet
        sim.on_finished = source.on_finished
        source.start()
        run.source = source
    elif scenario.workload.max_concurrency is not None:
        from simkit.sim.concurrency import ClosedLoop

        source = ClosedLoop(scenario.workload.max_concurrency, sim._arrivals[:-1],
                            fits.tolist(), table, engine, route_one)
        sim.next_arrival_s = source.next_arrival_s
        sim.arrival_ahead_s = lambda _k: source.next_arrival_s()  # sent on answers: unknown
        sim.on_finished = source.on_finished
        source.start()
        run.source = source
    else:
        arrival_s = sim._arrivals
        fits_l = fits.tolist()

        def on_arrival(rid: int) -> None:
            sim.next_index = rid + 1
            if rid + 1 < n:
                engine.schedule(arrival_s[rid + 1], PRIORITY_ARRIVAL, on_arrival, rid + 1)
            if not fits_l[rid]:
                table.status[rid] = REJECTED
                return
            route_one(rid).enqueue(rid, engine.now_s)

        if n:
            engine.schedule(arrival_s[0], PRIORITY_ARRIVAL, on_arrival, 0)
    return run


def _result(run: Run) -> SimResult:
    scenario, engine, table, pools, sim = run.scenario, run.engine, run.table, run.pools, \
        run.sim
    serving = scenario.serving
    replicas = run.replicas
    plan, n = run.plan, run.n
    end_s = engine.now_s
    if plan is not None and run.source.rows < n:
        table.truncate(run.source.rows)  # sessions ended early (a rejected turn)
    for r in replicas:
        if r.cache is not None:
            r.cache.flush()
    last = pools[-1]  # the pool that decodes
    m, policy = last.model, last.policy
    first = pools[0]  # the pool that prefills

    logs = [iteration_log(r) for r in replicas]
    targets = scenario.slo.targets() if hasattr(scenario.slo, "targets") else {
        k: v for k, v in (("ttft_s", scenario.slo.ttft_p99_s), ("tpot_s", scenario.slo.tpot_p99_s),
                          ("e2e_s", scenario.slo.e2e_p99_s)) if v is not None}
    extra = {
        "seed": run.seed,
        "scheduler": serving.scheduler,
        "scheduler_steps": int(getattr(serving, "scheduler_steps", 1)),
        "kv_memory": policy.kind,
        "admission": admission_of(serving),
        # share of the KV memory admissions leave free while others run (`serving.watermark`)
        "watermark": watermark_of(serving),
        "kv_units_allocated": int(sum(r.pool.units_allocated for r in replicas)),
        "kv_units_freed": int(sum(r.pool.units_freed for r in replicas)),
        "kv_bytes_per_token": float(policy.layout.bytes_per_token),
        "kv_fixed_bytes_per_sequence": float(policy.fixed_bytes),
        "layers": m.arch.describe() if hasattr(m, "arch") else None,
        "engine": m.engine.name if hasattr(m, "roof") else None,
        "weight_bytes": float(m.weight_bytes),
        # the engine's activation reserve on one replica (`simkit.costs.activations`)
        "activation_reserve_bytes": float(m.activation_reserve_for(serving))
        if hasattr(m, "activation_reserve_for") else 0.0,
        "events": int(engine.events_processed),
        "tbt_s": tbt_stats(sim.gaps, *_completed_decode(table)),
        "itl_s": itl_stats(sim.gaps, *_completed_decode(table)[:2]),
        "per_replica_kv_capacity_bytes": [float(p.capacity_bytes) for p in pools
                                          for _ in p.replicas],
        **prefix_stats.summary(table, first.replicas, run.caching, first.model),
        **({"sessions": int(plan.n_sessions)} if plan is not None else {}),
    }
    if run.transfers is not None:
        from simkit.sim.disagg import summary as disagg_summary

        extra.update(disagg_summary(run, logs, end_s))
    if last.spec is not None:
        from simkit.sim.speculative import summary as spec_summary

        extra["speculative"] = spec_summary(scenario, last)
    summary = metrics.summarise(table, replicas, simulated_s=end_s,
                                capacity_bytes=max(p.capacity_bytes for p in pools),
                                slo_targets=targets, iteration_logs=logs, extra=extra)
    ts = metrics.timeseries(logs, np.asarray(sim._q_t, dtype=np.float64),
                            np.asarray(sim._q_d, dtype=np.int64), end_s)
    ts.update(prefix_stats.hit_timeseries(table, ts["time_s"]))
    cols = table.columns()
    if run.transfers is None:
        for k in DISAGG_COLUMNS:
            cols.pop(k)
    if last.spec is None:
        for k in SPEC_COLUMNS:
            cols.pop(k)
    return SimResult(summary=summary, requests=cols, timeseries=ts, scenario=scenario)


def _completed_decode(table: RequestTable):
    done = table.status == COMPLETED
    return table.first_token_s[done], table.finish_s[done], table.output_tokens[done]
