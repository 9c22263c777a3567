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
from simkit.sim.request import COLUMNS, REJECTED, RequestTable
from simkit.sim.router import make_router
from simkit.sim.scheduler import make_scheduler
from simkit.sim.setup import prepare
from simkit.sim.workload import generate_workload


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
        floats written with repr, so they read back exactly)."""
        cols = self.requests
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            lists = [cols[c].tolist() for c in COLUMNS]
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
    context, model_name, max_seq_len = st.context, st.model_name, st.max_seq_len
    kind = serving.kv_memory

    wl = generate_workload(scenario.workload, n_requests=n, seed=seed, context=context,
                           model_name=model_name, base_dir=getattr(scenario, "base_dir", None))
    table = RequestTable(wl.arrival_s, wl.prompt_tokens, wl.output_tokens)
    # a request is rejected when even an empty replica could not hold it at its longest
    # (prompt + output - 1 positions), or it exceeds the contiguous reservation
    longest = table.prompt_tokens + table.output_tokens - 1
    table_hi = max(int(longest.max(initial=0)), max_seq_len if kind == "contiguous" else 0)
    policy.build_tables(table_hi)
    if hasattr(m, "ensure_tables"):  # the step model's lookups up to the same length
        m.ensure_tables(table_hi + 2)
    # a window or chunk frees blocks as it slides, so a sequence's most units may come
    # before its last token: it fits alone when its peak does
    peak = policy.units(np.arange(table_hi + 1)) if policy.monotone_units else \
        np.maximum.accumulate(policy.units(np.arange(table_hi + 1)))
    fits = peak[longest] <= policy.max_units(1)
    if kind == "contiguous":
        fits &= longest <= max_seq_len

    engine = Engine()
    prog = Progress(n, progress)
    sim = _Sim(table, engine, prog)
    gpus = int(scenario.hardware.gpus_per_replica)
    swap_bw = float(m.hardware.host_link_bytes_per_s) * gpus if hasattr(m, "hardware") \
        else float("inf")
    n_rep = int(serving.replicas)
    replicas = [Replica(i, sim, policy, make_scheduler(serving), m,
                        swap=serving.preemption == "swap", swap_bytes_per_s=swap_bw, fast=fast)
                for i in range(n_rep)]
    router = make_router(serving.router, replicas)
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
    }
    summary = metrics.summarise(table, replicas, simulated_s=end_s,
                                capacity_bytes=capacity_bytes, slo_targets=targets,
                                iteration_logs=logs, extra=extra)
    ts = metrics.timeseries(logs, np.asarray(sim._q_t, dtype=np.float64),
                            np.asarray(sim._q_d, dtype=np.int64), end_s)
    return SimResult(summary=summary, requests=table.columns(), timeseries=ts,
                     scenario=scenario)
