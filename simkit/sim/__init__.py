"""Discrete-event simulation of request streams on serving replicas.

`simulate(scenario, *, seed=None, requests=None, progress=False, step_model=None)` returns a
`SimResult` (summary dict with the documented `simkit simulate --json` keys, per-request
columns, a sampled time series). Modules: engine (heapq kernel), request (columnar table),
workload (arrivals, lengths, traces), kvcache (paged / contiguous memory), scheduler (static,
continuous, chunked), replica (iteration loop, preemption, the fast multi-step path), router,
disagg and handoff (prefill and decode pools, the KV moved between them), speculative (draft
and verification), metrics, progress, simulator (glue).
"""

from simkit.sim.simulator import SimResult, simulate

__all__ = ["SimResult", "simulate"]
