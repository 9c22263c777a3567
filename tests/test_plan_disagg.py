"""Capacity planning of disaggregated serving: the planner counts groups of prefill and
decode replicas at the scenario's ratio, prices each pool's GPUs, and searches the ratio."""

from __future__ import annotations

import pytest

from simkit.catalog.hardware import load_hardware
from simkit.plan import bounds
from simkit.plan.capacity import plan
from simkit.plan.prices import unit_cost
from simkit.plan.search import run_search
from simkit.scenario import scenario_from_dict
from simkit.sim import simulate


def scenario(disagg=None, **extra):
    d = {"name": "disagg-plan", "seed": 2, "model": {"name": "llama-3-8b"},
         "hardware": {"name": "h100-sxm"},
         "workload": {"requests": 150, "arrival": {"process": "poisson", "rate": 4.0},
                      "prompt_tokens": {"dist": "lognormal", "median": 3000, "sigma": 0.3,
                                        "max": 7000},
                      "output_tokens": {"dist": "lognormal", "median": 100, "sigma": 0.3,
                                        "max": 600}},
         "serving": {"prefix_caching": False,
                     "disaggregation": disagg or {"prefill_replicas": 1,
                                                  "decode_replicas": 1}},
         "slo": {"ttft_p99_s": 2.0, "tpot_p99_s": 0.02},
         "plan": {"target_qps": 6.0, "requests": 200}}
    d.update(extra)
    return scenario_from_dict(d)


def test_a_group_costs_each_pools_gpus_at_their_prices():
    s = scenario({"prefill_replicas": 2, "decode_replicas": 1, "prefill_hardware": "h200",
                  "decode_gpus_per_replica": 2, "link": "network",
                  "link_bytes_per_s": 5e10, "link_latency_s": 1e-5})
    u = unit_cost(s)
    h200 = load_hardware("h200").price_per_gpu_hour
    h100 = load_hardware("h100-sxm").price_per_gpu_hour
    assert u.gpus == 2 * 1 + 1 * 2
    assert u.per_hour == pytest.approx(2 * h200 + 2 * h100, rel=1e-12)


def test_plan_counts_groups_and_their_gpus():
    # 20 req/s of ~3000-token prompts: more than one prefill H100 prefills (~8B x 2 x 3000
    # FLOP = 48 TFLOP each, ~16 per second at the H100's dense bf16 peak), so > 1 group
    s = scenario({"prefill_replicas": 1, "decode_replicas": 2},
                 plan={"target_qps": 20.0, "requests": 200})
    r = plan(s, compare=False)
    price = load_hardware("h100-sxm").price_per_gpu_hour
    assert r.gpus_per_replica == 3
    assert r.replicas > 1 and r.gpus == 3 * r.replicas
    assert r.cost_per_hour == pytest.approx(r.gpus * price, rel=1e-12)
    assert r.slo["met"]
    # one group fewer misses (the planner tested it)
    assert any(p.replicas == r.replicas - 1 and not p.met for p in r.replica_probes)


def test_the_rate_bound_holds_for_a_group():
    """Overloaded, a group completes no more requests per second than the bound allows."""
    s = scenario({"prefill_replicas": 1, "decode_replicas": 1})
    from simkit.plan.capacity import step_model

    sm = step_model(s)
    sample = bounds.workload_sample(s, 200, int(sm.max_context))
    reason, cap = bounds.feasibility(s, sm, sample)
    assert reason is None
    bound = bounds.rate_bound_per_s(s, sm, sample, cap)
    res = simulate(s.with_(**{"workload.arrival.rate": 5 * bound}), requests=200)
    assert res.summary["steady_state"]["throughput_requests_per_s"] <= bound
    # the prefill pool alone bounds it: one prefill GPU, 3000-token prompts
    assert bound < bounds.rate_bound_per_s(s.with_(**{"serving.disaggregation": None}), sm,
                                           sample, cap) * 2


def test_search_plans_each_prefill_decode_ratio():
    s = scenario(plan={"target_qps": 6.0, "requests": 200, "search": {
        "serving.disaggregation.prefill_replicas": [1, 2],
        "serving.disaggregation.decode_replicas": [1]}})
    res = run_search(s)
    rows = {(c["params"]["serving.disaggregation.prefill_replicas"],
             c["params"]["serving.disaggregation.decode_replicas"]): c for c in res.configs}
    assert set(rows) == {(1, 1), (2, 1)}
    for (p, d), c in rows.items():
        assert c["gpus_per_replica"] == p + d
        if c["status"] == "ranked":
            assert c["gpus"] == c["replicas"] * (p + d)
    assert res.best is not None
