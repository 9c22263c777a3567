"""Invariants over random small scenarios (hypothesis): every request accounted for, KV use
within capacity, every unit allocated is freed, same seed -> same numbers, and the fast
path equals one-iteration-at-a-time stepping."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkit.sim import simulate
from test_sim_toymodel import ToyStepModel, toy_scenario

scenarios = st.fixed_dictionaries({
    "serving.scheduler": st.sampled_from(["static", "continuous", "chunked"]),
    "serving.kv_memory": st.sampled_from(["paged", "contiguous"]),
    "serving.preemption": st.sampled_from(["recompute", "swap"]),
    "serving.block_size": st.sampled_from([1, 4, 16, 32]),
    "serving.max_batch": st.integers(1, 12),
    "serving.replicas": st.integers(1, 3),
    "serving.router": st.sampled_from(["round_robin", "least_loaded"]),
    "serving.chunk_tokens": st.integers(8, 200),
    "workload.requests": st.integers(0, 60),
    "workload.arrival.process": st.sampled_from(["poisson", "gamma", "fixed"]),
    "workload.arrival.rate": st.floats(0.5, 200.0),
    "workload.arrival.cv": st.floats(0.3, 4.0),
    "workload.prompt_tokens.high": st.integers(1, 400),
    "workload.output_tokens.high": st.integers(1, 300),
})
models = st.fixed_dictionaries({
    "capacity_bytes": st.floats(1.2e5, 2e6),
    "window": st.one_of(st.none(), st.integers(8, 200)),
    "kv_fixed_bytes": st.sampled_from([0.0, 5e3]),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(over=scenarios, mk=models, seed=st.integers(0, 2**31))
def test_invariants(over, mk, seed):
    over = dict(over)
    over["workload.prompt_tokens.low"] = 1
    over["workload.output_tokens.low"] = 1
    over["serving.max_seq_len"] = 100  # 100 positions x 1000 B: fits the smallest capacity
    sc = toy_scenario(**over)
    m = ToyStepModel(**mk)
    res = simulate(sc, step_model=m, seed=seed)
    s = res.summary
    n = over["workload.requests"]
    # every request accounted for (the run drains: nothing left in flight)
    assert s["requests_arrived"] == n
    assert s["requests_completed"] + s["requests_rejected"] + s["requests_in_flight"] == n
    assert s["requests_in_flight"] == 0
    status = res.requests["status"]
    assert set(status.tolist()) <= {"completed", "rejected"}
    # KV memory within capacity on every replica; units allocated == units freed
    assert max(s["per_replica_kv_peak_bytes"], default=0.0) <= s["kv_capacity_bytes"]
    assert s["kv_units_allocated"] == s["kv_units_freed"]
    if s["kv_useful_fraction"] is not None:
        assert 0 < s["kv_useful_fraction"] <= 1 + 1e-12
    # causality per completed request
    done = status == "completed"
    r = res.requests
    assert np.all(r["start_s"][done] >= r["arrival_s"][done])
    assert np.all(r["first_token_s"][done] > r["start_s"][done])
    assert np.all(r["finish_s"][done] >= r["first_token_s"][done])
    # same seed -> identical; fast == step by step
    again = simulate(sc, step_model=m, seed=seed, fast=False)
    for k in r:
        a, b = r[k], again.requests[k]
        assert (np.array_equal(a, b, equal_nan=True) if a.dtype.kind == "f"
                else np.array_equal(a, b)), k
    assert s["kv_useful_fraction"] == again.summary["kv_useful_fraction"]
