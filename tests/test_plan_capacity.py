"""Capacity planning: bracket + bisection against a known queue, SLO at max_qps and not at
1.3x on the real simulator, replicas / GPUs / cost, memory-limited context, comparisons."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from simkit.errors import SimkitError
from simkit.plan.capacity import (analytic_qps, max_context, max_qps, plan, probe, slo_met,
                                  step_model)
from simkit.scenario import load_scenario, scenario_from_dict


@dataclass
class _Res:
    summary: dict


class QueueFake:
    """A stand-in simulator with a known answer: a replica saturates at `cap` req/s (x2 for
    linear attention), p99 TTFT = 0.1 + 0.2 rate / (cap - rate); TPOT constant."""

    def __init__(self, cap=10.0):
        self.cap = cap
        self.calls = []

    def __call__(self, s, *, seed=None, requests=None):
        rate = s.workload.arrival.rate
        self.calls.append((rate, s.serving.replicas, seed, requests))
        cap = self.cap * s.serving.replicas * (2 if s.model.attention == "linear" else 1)
        ttft = 0.1 + 0.2 * rate / (cap - rate) if rate < cap else 1e3
        p = lambda v: {"mean": v, "p50": v, "p90": v, "p99": v}  # noqa: E731
        n = requests or s.workload.requests
        return _Res({"requests_arrived": n, "requests_completed": n, "ttft_s": p(ttft),
                     "tpot_s": p(0.01), "e2e_s": p(ttft + 1), "throughput_tokens_per_s":
                     rate * 100.0, "prompt_throughput_tokens_per_s": rate * 900.0})


def fake_threshold(cap, slo):
    # 0.1 + 0.2 r / (cap - r) = slo  ->  r = cap (slo - 0.1) / (slo + 0.1)
    return cap * (slo - 0.1) / (slo + 0.1)


def scen(**over):
    d = {"name": "cap", "seed": 11,
         "workload": {"requests": 300, "arrival": {"rate": 1.0},
                      "prompt_tokens": {"dist": "lognormal", "median": 600, "sigma": 0.6,
                                        "max": 4000},
                      "output_tokens": {"dist": "fixed", "value": 64}},
         "slo": {"ttft_p99_s": 1.0, "tpot_p99_s": 0.1},
         "plan": {"target_qps": 30, "qps_rel_tol": 0.05, "requests": 300}}
    d.update(over)
    return scenario_from_dict(d)


def test_bisection_finds_the_known_threshold_within_tolerance():
    fake = QueueFake(cap=10.0)
    s = scen()
    r = max_qps(s, simulate=fake, estimate=3.0)
    truth = fake_threshold(10.0, 1.0)
    lo, hi = r.bracket
    assert lo == r.max_qps <= truth < hi
    assert hi / lo <= 1 + s.plan.qps_rel_tol
    assert any(p.met for p in r.probes) and any(not p.met for p in r.probes)
    # every probe used the scenario seed (common random numbers) and the plan's request count
    assert {c[2] for c in fake.calls} == {11} and {c[3] for c in fake.calls} == {300}
    # a far-off estimate costs probes, not correctness
    r2 = max_qps(s, simulate=QueueFake(cap=10.0), estimate=1000.0)
    assert r2.max_qps <= truth < r2.bracket[1]
    r3 = max_qps(s, simulate=QueueFake(cap=10.0), estimate=0.01)
    assert r3.max_qps <= truth < r3.bracket[1]


def test_no_rate_meets_an_impossible_slo():
    s = scen(slo={"ttft_p99_s": 0.05})  # below the fake's 0.1 s floor
    r = max_qps(s, simulate=QueueFake(), estimate=5.0)
    assert r.max_qps == 0.0 and not any(p.met for p in r.probes)


def test_plan_needs_an_slo():
    with pytest.raises(SimkitError, match="slo: set at least one"):
        max_qps(scen(slo={}), simulate=QueueFake(), estimate=1.0)


def test_plan_replicas_gpus_and_cost_follow_from_max_qps():
    fake = QueueFake(cap=10.0)
    s = scen(hardware={"gpus_per_replica": 2, "cost_per_gpu_hour": 3.0})
    r = plan(s, simulate=fake)
    assert r.replicas == math.ceil(30 / r.max_qps)
    assert r.gpus == 2 * r.replicas
    assert r.cost_per_hour == pytest.approx(3.0 * r.gpus)
    # $ per million generated tokens at the operating point (fake: 100 tokens per request)
    assert r.cost_per_million_tokens == pytest.approx(r.cost_per_hour / (3600 * 30 * 100) * 1e6)
    assert r.cost_per_million_total_tokens == pytest.approx(
        r.cost_per_hour / (3600 * 30 * 1000) * 1e6)
    assert r.slo["met"] and r.operating_rate_per_s == 30
    d = r.to_dict()
    for k in ("max_qps", "replicas", "gpus", "cost_per_million_tokens", "slo", "metrics",
              "probes", "resolved_scenario"):
        assert k in d
    assert {"rate_per_s", "ttft_p99_s", "tpot_p99_s", "met"} <= set(d["probes"][0])


def test_compare_picks_the_architecture_with_fewest_gpus():
    s = scen(plan={"target_qps": 30, "requests": 100, "compare": ["full", "linear"]})
    r = plan(s, simulate=QueueFake(cap=10.0))
    rows = {c["attention"]: c for c in r.comparison}
    assert rows["linear"]["gpus"] < rows["full"]["gpus"]
    assert r.best_attention == "linear"


def test_slo_met_counts_unserved_requests_as_violations():
    s = scen()
    p = {"mean": 0.1, "p50": 0.1, "p90": 0.1, "p99": 0.1}
    ok = {"requests_arrived": 100, "requests_completed": 100, "ttft_s": p, "tpot_s": p}
    assert slo_met(s, ok)[0]
    assert not slo_met(s, {**ok, "requests_completed": 98})[0]
    assert not slo_met(s, {**ok, "ttft_s": {**p, "p99": 1.5}})[0]


def test_real_simulator_slo_holds_at_max_qps_and_not_at_1_3x():
    from simkit.sim import simulate

    s = scen()
    r = max_qps(s, simulate=simulate)
    assert r.max_qps > 0
    at = probe(s, r.max_qps, requests=300, simulate=simulate)
    above = probe(s, 1.3 * r.max_qps, requests=300, simulate=simulate)
    assert at.met, at
    assert not above.met, above
    # the analytic estimate is of the right order (it seeds the bracket)
    assert 0.1 < r.analytic_qps / r.max_qps < 10


def test_max_context_under_a_memory_budget(repo_root):
    s = scenario_from_dict({"model": {"name": "models/llama-3.1-8b/config.json"},
                            "serving": {"memory_fraction": 0.25}},
                           base_dir=repo_root / "scenarios")
    sm = step_model(s)
    ctx, limit, cap = max_context(s, sm)
    assert limit == "memory"
    assert float(sm.kv_bytes(ctx)) <= cap < float(sm.kv_bytes(ctx + 1))
    # constant-state kinds are limited by the model, not memory
    lin = s.with_(**{"model.attention": "linear"})
    ctx2, limit2, _ = max_context(lin)
    assert limit2 == "model" and ctx2 == 131072


def test_analytic_estimate_grows_with_a_faster_gpu():
    s = scen()
    assert analytic_qps(s.with_(**{"hardware.name": "h200"})) > analytic_qps(s)


def test_cli_plan_json(run_cli, repo_root, tmp_path):
    f = repo_root / "scenarios" / "chatbot-llama3-8b-h100.toml"
    r = run_cli("plan", f, "--json", "--requests", "200", "--out", tmp_path / "p")
    assert r.code == 0, r.err
    d = r.json()
    for k in ("max_qps", "replicas", "gpus", "cost_per_million_tokens", "slo", "metrics"):
        assert d[k] is not None
    assert d["gpus"] == d["replicas"] and d["slo"]["met"]
    assert d["metrics"]["requests_completed"] > 0
    assert (tmp_path / "p" / "plan.json").exists()
    assert load_scenario(tmp_path / "p" / "scenario.toml") == load_scenario(f)
