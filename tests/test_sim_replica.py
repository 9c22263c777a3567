"""The replica's fast multi-step path equals stepping one iteration at a time, bit for bit,
across schedulers, memory managers, preemption modes and routers."""

from __future__ import annotations

import pytest

from conftest import assert_same_run
from simkit.sim import simulate
from test_sim_toymodel import ToyStepModel, toy_scenario


CASES = {
    "continuous-paged": {},
    "continuous-tight-memory": {"workload.arrival.rate": 50.0},
    "swap": {"workload.arrival.rate": 50.0, "serving.preemption": "swap"},
    "contiguous": {"serving.kv_memory": "contiguous", "serving.max_seq_len": 400,
                   "workload.arrival.rate": 20.0, "capacity": 2e6},
    "static": {"serving.scheduler": "static", "workload.arrival.rate": 20.0},
    "chunked": {"serving.scheduler": "chunked", "serving.chunk_tokens": 64,
                "workload.arrival.rate": 20.0},
    "two-replicas-rr": {"serving.replicas": 2, "serving.router": "round_robin",
                        "workload.arrival.rate": 30.0},
    "three-replicas-ll": {"serving.replicas": 3, "workload.arrival.rate": 40.0},
    # many replicas: a decode run plans past the arrivals that go elsewhere (look-ahead)
    "eight-replicas-chunked": {"serving.replicas": 8, "serving.scheduler": "chunked",
                               "serving.chunk_tokens": 64, "workload.arrival.rate": 120.0},
    "six-replicas-rr": {"serving.replicas": 6, "serving.router": "round_robin",
                        "workload.arrival.rate": 100.0},
    "max-batch-tokens": {"serving.max_batch_tokens": 300, "workload.arrival.rate": 30.0},
    "prefill-first": {"serving.scheduler": "prefill_first", "workload.arrival.rate": 30.0},
    # room for ~19 blocks of prompts: vLLM v0's 1% watermark holds back admissions
    "prefill-first-watermark": {"serving.scheduler": "prefill_first", "capacity": 3e6,
                                "workload.arrival.rate": 60.0},
    "prefill-first-budget": {"serving.scheduler": "prefill_first",
                             "serving.max_batch_tokens": 250, "workload.arrival.rate": 30.0},
    "chunked-budget": {"serving.scheduler": "chunked", "serving.max_batch_tokens": 40,
                       "workload.arrival.rate": 20.0},
    "no-prefix-caching": {"serving.prefix_caching": False, "workload.arrival.rate": 50.0},
    "system-prompt": {"workload.system_prompt_tokens": 90, "workload.arrival.rate": 50.0},
    "system-prompt-swap": {"workload.system_prompt_tokens": 90, "serving.preemption": "swap",
                           "workload.arrival.rate": 50.0},
    # a benchmark client's closed loop: sent as answers come back
    "closed-loop": {"workload.arrival.process": "burst", "workload.max_concurrency": 6},
    "closed-loop-poisson-three-replicas": {"workload.max_concurrency": 10,
                                           "workload.arrival.rate": 40.0,
                                           "serving.replicas": 3},
    # SGLang's admission: estimated reservations, retraction, the batch-full mark
    "new-token-ratio": {"serving.admission": "new_token_ratio", "workload.arrival.rate": 50.0},
    "new-token-ratio-prefill-first": {"serving.admission": "new_token_ratio",
                                      "serving.scheduler": "prefill_first",
                                      "serving.block_size": 1, "workload.max_new_tokens": 120,
                                      "workload.arrival.rate": 60.0},
    "new-token-ratio-chunked": {"serving.admission": "new_token_ratio",
                                "serving.scheduler": "chunked", "serving.chunk_tokens": 64,
                                "workload.arrival.rate": 40.0},
    "closed-loop-chunked-swap": {"workload.arrival.process": "burst",
                                 "workload.max_concurrency": 12, "serving.scheduler": "chunked",
                                 "serving.chunk_tokens": 64, "serving.preemption": "swap"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_equals_step_by_step(case):
    over = dict(CASES[case])
    # 300 token positions by default: memory is the bottleneck
    m = ToyStepModel(capacity_bytes=over.pop("capacity", 3e5))
    sc = toy_scenario(**over)
    fast = simulate(sc, step_model=m, seed=3)
    slow = simulate(sc, step_model=m, seed=3, fast=False)
    assert_same_run(fast, slow)
    assert fast.summary["requests_completed"] + fast.summary["requests_rejected"] == 200
    # the fast path really did take fewer events
    assert fast.summary["events"] <= slow.summary["events"]


def test_preemption_happens_and_is_counted():
    sc = toy_scenario(**CASES["continuous-tight-memory"])
    res = simulate(sc, step_model=ToyStepModel(capacity_bytes=3e5), seed=3)
    assert res.summary["preemptions"] > 0
    assert res.requests["preemptions"].sum() == res.summary["preemptions"]


def test_swap_moves_bytes_over_the_host_link():
    sc = toy_scenario(**CASES["swap"])
    res = simulate(sc, step_model=ToyStepModel(capacity_bytes=3e5), seed=3)
    assert res.summary["preemptions"] > 0 and res.summary["swap_bytes"] > 0


def test_window_architecture_stops_growing():
    # a 64-token window: every sequence holds at most 64 / 16 + 1 = 5 blocks however long it
    # runs (a block is freed only once the window has slid past all of it, so an unaligned
    # window spans one block more than 64 / 16)
    sc = toy_scenario(**{"workload.output_tokens.low": 500, "workload.output_tokens.high": 900,
                         "workload.requests": 20, "workload.arrival.rate": 100.0})
    m = ToyStepModel(window=64, capacity_bytes=64 * 1000 * 20)
    res = simulate(sc, step_model=m, seed=1)
    assert res.summary["requests_completed"] == 20
    assert res.summary["preemptions"] == 0
    assert res.summary["kv_peak_bytes"] <= 16 * 5 * 1000 * 16  # max_batch x 5 blocks


def test_constant_state_architecture_holds_fixed_bytes():
    # SSM-like: no per-token cache, a fixed state per sequence; at most 3 fit at once
    sc = toy_scenario(**{"workload.requests": 30, "workload.arrival.rate": 100.0})
    m = ToyStepModel(kv_bytes_per_token=0.0, kv_fixed_bytes=1e5, capacity_bytes=3.5e5)
    res = simulate(sc, step_model=m, seed=2)
    assert res.summary["requests_completed"] == 30
    assert res.summary["batch_size_max"] <= 3
    assert res.summary["kv_peak_bytes"] == 3e5
    assert res.summary["kv_useful_fraction"] == 1.0


@pytest.mark.parametrize("serving", [{}, {"scheduler": "chunked", "chunk_tokens": 256},
                                     {"kv_memory": "contiguous", "max_seq_len": 4096},
                                     {"scheduler": "prefill_first"},
                                     {"scheduler": "prefill_first",
                                      "admission": "new_token_ratio", "block_size": 1}])
def test_fast_path_equals_step_by_step_with_the_real_cost_model(serving):
    scenario = pytest.importorskip("simkit.scenario")
    d = {"model": {"name": "mistral-7b"}, "hardware": {"name": "l4"},  # window 4096
         "workload": {"requests": 150, "arrival": {"process": "gamma", "rate": 4.0, "cv": 2.0},
                      "prompt_tokens": {"dist": "lognormal", "median": 600, "sigma": 1.0,
                                        "max": 6000},
                      "output_tokens": {"dist": "lognormal", "median": 100, "sigma": 1.0,
                                        "max": 1500}},
         "serving": {"max_batch": 64, "memory_fraction": 0.9, **serving}}
    sc = scenario.scenario_from_dict(d)
    assert_same_run(simulate(sc, seed=5), simulate(sc, seed=5, fast=False))


@pytest.mark.parametrize("pattern", [
    None,  # llama-3-8b: full attention only
    [{"kind": "window", "window": 256, "count": 3}, {"kind": "full", "count": 1}],
    [{"kind": "ssm", "count": 7}, {"kind": "full", "count": 1}],
    [{"kind": "chunked", "chunk": 512, "count": 3}, {"kind": "full", "count": 1}],
])
def test_sessions_and_prefix_caching_on_layer_stacks(pattern):
    # multi-turn sessions behind a shared system prompt on hybrid stacks, three replicas:
    # the fast path equals stepping, and every stack's cache serves the conversations
    scenario = pytest.importorskip("simkit.scenario")
    model = {"name": "llama-3-8b"}
    if pattern is not None:
        model["layer_pattern"] = pattern
    d = {"model": model, "hardware": {"name": "a100-40gb"},
         "workload": {"requests": 120, "arrival": {"process": "poisson", "rate": 3.0},
                      "prompt_tokens": {"dist": "lognormal", "median": 200, "sigma": 0.8,
                                        "max": 1500},
                      "output_tokens": {"dist": "lognormal", "median": 150, "sigma": 0.8,
                                        "max": 600},
                      "sessions": {"turns": {"dist": "uniform", "low": 1, "high": 5},
                                   "think_time_s": {"dist": "exponential", "mean": 2.0}},
                      "system_prompt_tokens": 1000},
         "serving": {"max_batch": 64, "replicas": 3}}
    sc = scenario.scenario_from_dict(d)
    fast, slow = simulate(sc, seed=2), simulate(sc, seed=2, fast=False)
    assert_same_run(fast, slow)
    s = fast.summary
    assert s["prefix_caching"] and s["prefix_hit_rate"] > 0.3
    assert s["kv_units_allocated"] == s["kv_units_freed"]


def test_eviction_budget_caps_memory_and_attention():
    # StreamingLLM-style budget of 48 positions with the scenario's 4 sink tokens: a long
    # output keeps [0, 4) (block 0) and its 44 most recent positions (at most
    # ceil(44 / 16) + 1 = 4 blocks when unaligned): never more than 5 blocks; and steps cost
    # what 48 cached keys cost
    over = {"workload.output_tokens.low": 300, "workload.output_tokens.high": 400,
            "workload.prompt_tokens.low": 10, "workload.prompt_tokens.high": 40,
            "workload.requests": 30, "workload.arrival.rate": 50.0}
    m = ToyStepModel(capacity_bytes=1e7)
    full = simulate(toy_scenario(**over), step_model=m, seed=4)
    ev = simulate(toy_scenario(**over, **{"serving.kv_budget_tokens": 48}), step_model=m,
                  seed=4)
    assert ev.summary["requests_completed"] == 30
    assert ev.summary["kv_peak_bytes"] <= 16 * 5 * 16 * 1000  # max_batch x 5 blocks
    assert ev.summary["kv_peak_bytes"] < full.summary["kv_peak_bytes"]
    assert ev.summary["tpot_s"]["mean"] < full.summary["tpot_s"]["mean"]
