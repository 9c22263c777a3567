"""`simulate(scenario)`: build the workload, the replicas and the router, run the events.

Glue only: step times and KV sizes come from the cost layer's `StepCostModel`; batching from
scheduler.py; memory from kvcache.py; the iteration loop from replica.py; numbers from
metrics.py. Everything random is drawn up front from the seed's per-component streams
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
from simkit.sim.request import COLUMNS, COMPLETED, EXTRA_COLUMNS, REJECTED, RequestTable
from simkit.sim.router import make_router
from simkit.sim.scheduler import make_scheduler
from simkit.sim.setup import draw_requests, prepare

from simkit.sim import prefix as prefix_mod  # noqa: E402  (sessions & prefix caching)
from simkit.sim import prefix_stats  # noqa: E402
from simkit.sim import sessions as sessions_mod  # noqa: E402
from simkit.sim.tbt import TokenGaps, tbt_stats  # noqa: E402


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
        tenant, cached_tokens, prefill_tokens_computed (`request.EXTRA_COLUMNS`)."""
        cols = self.requests
        names = COLUMNS + EXTRA_COLUMNS
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


def simulate(scenario, *, seed: int | None = None, requests: int | None = None,
             progress: bool = False, step_model=None, fast: bool = True) -> SimResult:
    """Simulate the scenario's request stream on its replicas.

    `seed` overrides scenario.seed; `requests` overrides workload.requests; `step_model`
    reuses a prebuilt `StepCostModel` (it must match the scenario's model and hardware);
    `fast=False` advances one iteration at a time (same results, for testing the fast path).
    """
    serving = scenario.serving
    seed = int(scenario.seed if seed is None else seed)
    n = int(scenario.workload.requests if requests is None else requests)
    st = prepare(scenario, step_model)  # every check that it can run: simkit.sim.setup
    m, policy, capacity_bytes = st.step_model, st.policy, st.capacity_bytes
    max_seq_len = st.max_seq_len
    kind = serving.kv_memory

    rq = draw_requests(scenario, n, seed, st)  # the workload (sessions or independent)
    plan, table, n, shortest, longest = rq.plan, rq.table, rq.n, rq.shortest, rq.longest
    # a request is rejected when even an empty replica could not hold it at some length
    # up to its longest (prompt + output - 1 positions; a window or chunked layer may hold
    # most mid-answer, or mid-prefill when prompts are prefilled in chunks), or it exceeds
    # the contiguous reservation
    table_hi = max(int(longest.max(initial=0)), max_seq_len if kind == "contiguous" else 0)
    policy.build_tables(table_hi)
    if hasattr(m, "ensure_tables"):  # the step model's lookups up to the same length
        m.ensure_tables(table_hi + 2)
    chunked = make_scheduler(serving).whole_prefill is False  # (prefilled chunk by chunk)
    fits = policy.peak_units(np.zeros_like(longest) if chunked else shortest,
                             longest) <= policy.max_units(1)
    if kind == "contiguous":
        fits &= longest <= max_seq_len

    engine = Engine()
    prog = Progress(n, progress)
    sim = _Sim(table, engine, prog)
    gpus = int(scenario.hardware.gpus_per_replica)
    swap_bw = float(m.hardware.host_link_bytes_per_s) * gpus if hasattr(m, "hardware") \
        else float("inf")
    n_rep = int(serving.replicas)
    caching = prefix_mod.applies(policy, bool(getattr(serving, "prefix_caching", True)))
    replicas = [Replica(i, sim, policy, make_scheduler(serving), m,
                        swap=serving.preemption == "swap", swap_bytes_per_s=swap_bw,
                        fast=fast, prefix_caching=caching)
                for i in range(n_rep)]
    router = make_router(serving.router, replicas)

    if plan is not None:
        fits_l = fits.tolist()

        def route(rid: int, now_s: float) -> None:
            j = int(plan.first[table.session[rid]] + table.turn[rid] - 1)
            if not fits_l[j]:
                table.status[rid] = REJECTED  # its session ends: no answer to continue from
                return
            router.route(rid).enqueue(rid, now_s)

        source = sessions_mod.SessionArrivals(plan, table, engine, route)
        sim.next_arrival_s = source.next_arrival_s
        sim.on_finished = source.on_finished
        source.start()
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
            router.route(rid).enqueue(rid, engine.now_s)

        if n:
            engine.schedule(arrival_s[0], PRIORITY_ARRIVAL, on_arrival, 0)
    try:
        engine.run()
    finally:
        prog.close()
    end_s = engine.now_s
    if plan is not None and source.rows < n:
        table.truncate(source.rows)  # sessions ended early (a rejected turn)
    for r in replicas:
        if r.cache is not None:
            r.cache.flush()

    logs = [iteration_log(r) for r in replicas]
    targets = scenario.slo.targets() if hasattr(scenario.slo, "targets") else {
        k: v for k, v in (("ttft_s", scenario.slo.ttft_p99_s), ("tpot_s", scenario.slo.tpot_p99_s),
                          ("e2e_s", scenario.slo.e2e_p99_s)) if v is not None}
    extra = {
        "seed": seed,
        "scheduler": serving.scheduler,
        "kv_memory": kind,
        "kv_units_allocated": int(sum(r.pool.units_allocated for r in replicas)),
        "kv_units_freed": int(sum(r.pool.units_freed for r in replicas)),
        "kv_bytes_per_token": float(policy.layout.bytes_per_token),
        "kv_fixed_bytes_per_sequence": float(policy.fixed_bytes),
        "layers": m.arch.describe() if hasattr(m, "arch") else None,
        "engine": m.engine.name if hasattr(m, "roof") else None,
        "weight_bytes": float(m.weight_bytes),
        "events": int(engine.events_processed),
        "tbt_s": tbt_stats(sim.gaps, *_completed_decode(table)),
        **prefix_stats.summary(table, replicas, caching, m),
        **({"sessions": int(plan.n_sessions)} if plan is not None else {}),
    }
    summary = metrics.summarise(table, replicas, simulated_s=end_s,
                                capacity_bytes=capacity_bytes, slo_targets=targets,
                                iteration_logs=logs, extra=extra)
    ts = metrics.timeseries(logs, np.asarray(sim._q_t, dtype=np.float64),
                            np.asarray(sim._q_d, dtype=np.int64), end_s)
    ts.update(prefix_stats.hit_timeseries(table, ts["time_s"]))
    return SimResult(summary=summary, requests=table.columns(), timeseries=ts,
                     scenario=scenario)


def _completed_decode(table: RequestTable):
    done = table.status == COMPLETED
    return table.first_token_s[done], table.finish_s[done], table.output_tokens[done]
