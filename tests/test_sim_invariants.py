"""Invariants over random small scenarios (hypothesis): every request accounted for, KV use
within capacity, every unit allocated is freed, same seed -> same numbers, and the fast
path equals one-iteration-at-a-time stepping; with sessions, system prompts, prefix caching
and every scheduler: turns conserved and in order, hits whole blocks short of the prompt.
Reference counts never go negative: the cache raises at once if one does."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_same_run
from simkit.sim import simulate
from test_sim_toymodel import ToyStepModel, duration, length, sessions, toy_scenario

scenarios = st.fixed_dictionaries({
    "serving.scheduler": st.sampled_from(["static", "continuous", "chunked", "prefill_first"]),
    "serving.prefix_caching": st.booleans(),
    "serving.max_batch_tokens": st.one_of(st.none(), st.integers(8, 600)),
    "workload.system_prompt_tokens": st.sampled_from([0, 0, 20, 70]),
    "serving.kv_memory": st.sampled_from(["paged", "contiguous"]),
    "serving.preemption": st.sampled_from(["recompute", "swap"]),
    "serving.block_size": st.sampled_from([1, 4, 16, 32]),
    "serving.max_batch": st.integers(1, 12),
    "serving.replicas": st.integers(1, 3),
    "serving.router": st.sampled_from(["round_robin", "least_loaded"]),
    "serving.chunk_tokens": st.integers(8, 200),
    "workload.requests": st.integers(0, 60),
    "workload.arrival.process": st.sampled_from(["poisson", "gamma", "fixed", "burst"]),
    "workload.max_concurrency": st.one_of(st.none(), st.integers(1, 8)),
    "workload.arrival.rate": st.floats(0.5, 200.0),
    "workload.arrival.cv": st.floats(0.3, 4.0),
    "workload.prompt_tokens.high": st.integers(1, 400),
    "workload.output_tokens.high": st.integers(1, 300),
})
chats = st.one_of(st.none(), st.fixed_dictionaries({
    "turns": st.integers(1, 5),
    "think": st.floats(0.0, 2.0),
}))
models = st.fixed_dictionaries({
    "capacity_bytes": st.floats(1.2e5, 2e6),
    "window": st.one_of(st.none(), st.integers(8, 200)),
    "kv_fixed_bytes": st.sampled_from([0.0, 5e3]),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(over=scenarios, chat=chats, mk=models, seed=st.integers(0, 2**31))
def test_invariants(over, chat, mk, seed):
    over = dict(over)
    over["workload.prompt_tokens.low"] = 1
    over["workload.output_tokens.low"] = 1
    over["serving.max_seq_len"] = 100  # 100 positions x 1000 B: fits the smallest capacity
    if chat is not None or over["workload.arrival.process"] == "burst" and \
            over["workload.max_concurrency"] is None:
        over["workload.max_concurrency"] = None  # (a burst without a cap: a static batch)
    if chat is not None:
        over["workload.sessions"] = sessions(length("uniform", low=1, high=chat["turns"]),
                                             duration("exponential", mean=chat["think"] + 1e-3))
        over["serving.router"] = "session_affinity" if seed % 2 else over["serving.router"]
    sc = toy_scenario(**over)
    m = ToyStepModel(**mk)
    res = simulate(sc, step_model=m, seed=seed)
    s = res.summary
    n = over["workload.requests"]
    # every request accounted for (the run drains: nothing left in flight)
    if chat is None:
        assert s["requests_arrived"] == n
    else:  # a rejected turn ends its session: its later turns never arrive
        assert s["requests_arrived"] <= n
        n = s["requests_arrived"]
    assert s["requests_completed"] + s["requests_rejected"] + s["requests_in_flight"] == n
    assert s["requests_in_flight"] == 0
    status = res.requests["status"]
    assert set(status.tolist()) <= {"completed", "rejected"}
    if chat is not None:  # every turn of a session after the previous one's answer
        r = res.requests
        for sid in np.unique(r["session_id"]):
            mine = np.flatnonzero(r["session_id"] == sid)
            order = mine[np.argsort(r["turn"][mine])]
            assert r["turn"][order].tolist() == list(range(1, len(mine) + 1))
            prev, nxt = order[:-1], order[1:]
            assert np.all(r["arrival_s"][nxt] >= r["finish_s"][prev])
            # a later turn exists only after a completed one; a rejected turn ends it
            assert np.all(r["status"][prev] == "completed")
    cap = over["workload.max_concurrency"]
    if cap is not None:  # a closed loop: sent in order, never more than cap unanswered
        r = res.requests
        assert np.all(np.diff(r["arrival_s"]) >= 0)
        done = r["status"] == "completed"
        t0, t1 = r["arrival_s"][done], r["finish_s"][done]
        # requests unanswered just after each send (a finish at that instant frees its slot
        # first: the answer is what let the next one go)
        for t in t0:
            assert np.count_nonzero((t0 <= t) & (t1 > t)) <= cap
    # prefix hits: whole blocks, short of the prompt; prefills cover the rest
    r = res.requests
    cached = r["cached_tokens"]
    started = cached >= 0
    bs = over["serving.block_size"]
    assert np.all(cached[started] % bs == 0)
    assert np.all(cached[started] <= r["prompt_tokens"][started] - 1)
    assert np.all(r["prefill_tokens_computed"][started]
                  >= r["prompt_tokens"][started] - cached[started])
    if not s["prefix_caching"]:
        assert s["prefix_cached_tokens"] == 0
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
    assert_same_run(res, simulate(sc, step_model=m, seed=seed, fast=False))
