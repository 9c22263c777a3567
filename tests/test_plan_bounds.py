"""The cost model's verdicts before simulation: feasibility reasons derived from datasheet
arithmetic, and the throughput bound against simulated capacities."""

from __future__ import annotations

import math

import pytest

from simkit.errors import SimkitError
from simkit.plan import bounds
from simkit.plan.capacity import max_qps, step_model
from simkit.scenario import scenario_from_dict

# Llama-3-70B: 80 layers, d 8192, 64 query / 8 KV heads, FFN 28672, vocabulary 128256
# (meta-llama/Meta-Llama-3-70B config.json): 70.55e9 parameters, 141.1 GB in bf16
LLAMA3_70B_BF16_BYTES = 70_553_706_496 * 2


def scen(**over):
    d = {"model": {"name": "llama-3-70b"}, "hardware": {"name": "h100-sxm",
                                                         "gpus_per_replica": 4},
         "workload": {"requests": 300, "arrival": {"rate": 2.0},
                      "prompt_tokens": {"dist": "uniform", "low": 200, "high": 2000},
                      "output_tokens": {"dist": "uniform", "low": 16, "high": 300}},
         "slo": {"ttft_p99_s": 2.0, "tpot_p99_s": 0.05}}
    for k, v in over.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    return scenario_from_dict(d)


def verdict(s):
    try:
        sm = step_model(s)
    except SimkitError as e:
        sm = e
    ctx = s.model_config().max_context
    return bounds.feasibility(s, sm, bounds.workload_sample(s, 300, ctx))[0]


@pytest.mark.parametrize("hw, gpus, fits", [
    # 141.1 GB of weights vs GPUs x capacity x 0.9 (memory_fraction)
    ("h100-sxm", 1, 80e9 * 0.9 > LLAMA3_70B_BF16_BYTES),      # 72 GB: no
    ("h200", 1, 141e9 * 0.9 > LLAMA3_70B_BF16_BYTES),         # 126.9 GB: no
    ("mi300x", 1, 192e9 * 0.9 > LLAMA3_70B_BF16_BYTES),       # 172.8 GB: yes
    ("a100-80gb", 2, 2 * 80e9 * 0.9 > LLAMA3_70B_BF16_BYTES),  # 144 GB: yes, barely
])
def test_weights_fit_as_the_datasheets_say(hw, gpus, fits):
    r = verdict(scen(hardware={"name": hw, "gpus_per_replica": gpus}))
    if fits:
        assert r is None or "weights do not fit" not in r
    else:
        assert r.startswith("weights do not fit")


def test_tensor_parallelism_must_divide_the_query_heads():
    r = verdict(scen(hardware={"gpus_per_replica": 3}))  # 64 heads
    assert r == "tensor parallelism 3 does not divide llama-3-70b's 64 query heads"
    assert verdict(scen(hardware={"gpus_per_replica": 8})) is None


def test_slos_beyond_even_a_lone_request():
    # one decode step reads every weight: >= 141.1 GB / (4 x 3.35 TB/s) = 10.5 ms > 5 ms
    assert LLAMA3_70B_BF16_BYTES / (4 * 3.35e12) > 0.005
    r = verdict(scen(slo={"tpot_p99_s": 0.005}))
    assert r.startswith("SLOs cannot be met at any load: p99 TPOT is at least")
    # a 2,000-token prefill is >= 2 x 70.55e9 x 2000 FLOPs / (4 x 989.5e12) = 71 ms > 10 ms
    assert 2 * 70.55e9 * 2000 / (4 * 989.5e12) > 0.010
    r = verdict(scen(slo={"ttft_p99_s": 0.010}))
    assert r.startswith("SLOs cannot be met at any load: p99 TTFT is at least")


def test_a_multi_step_round_lowers_the_tpot_floor_by_the_per_sequence_cost():
    """A round's later steps skip the engine's per-sequence cost: a TPOT target half that
    cost below the single-step floor (each request's decode step alone, at the p99) is out
    of reach one step at a time, not in rounds of 8."""
    import numpy as np

    def case(steps, tpot_s):
        return scen(model={"name": "llama-3-8b"}, hardware={"gpus_per_replica": 1},
                    serving={"scheduler_steps": steps},
                    slo={"ttft_p99_s": 2.0, "tpot_p99_s": tpot_s})

    s = case(1, 1.0)
    sm = step_model(s)
    sample = bounds.workload_sample(s, 300, s.model_config().max_context)
    p = sample.prompt_tokens[sample.output_tokens > 1]
    floor = float(np.percentile([float(sm.decode_time_s(int(x) + 1, 1)) for x in p], 99))
    target = floor - sm.fixed_costs_s()[1] / 2
    assert "p99 TPOT is at least" in verdict(case(1, target))
    assert verdict(case(8, target)) is None


#: vLLM's activation reserve for Llama-3-70B on 2 GPUs, its profiling pass at the serving
#: defaults (8,192 tokens, 256 sequences): each GPU's widest layer holds the residual stream
#: and the layer's input (2 x 8192) beside its half of the gate|up and activation
#: (3 x 28,672 / 2), 2 bytes each, more than its sampler's 256 x 128,256 logits x 14 bytes
#: and 8,192 x 8,192 hidden states (594 MB)
LLAMA3_70B_TP2_RESERVE = 2 * 8192 * 2 * (2 * 8192 + 3 * 28672 // 2)


def test_requests_that_do_not_fit_the_kv_memory():
    # 2 x 81,559 MiB (an H100 80GB as nvidia-smi reports it) x 0.84 leaves ~0.65 GB after
    # the weights and the activation reserve: ~2.0k tokens at 320 KiB per token (80 layers
    # x 8 KV heads x 128 x 2 (K, V) x 2 bytes); 6,000-token prompts
    per_token = 80 * 8 * 128 * 2 * 2
    free = 2 * 81559 * 2**20 * 0.84 - LLAMA3_70B_BF16_BYTES - LLAMA3_70B_TP2_RESERVE
    assert 0 < free / per_token < 6000
    r = verdict(scen(hardware={"gpus_per_replica": 2}, serving={"memory_fraction": 0.84},
                     workload={"prompt_tokens": {"dist": "fixed", "value": 6000}}))
    assert r.startswith("100% of requests need more KV memory than one replica holds")


def test_weights_that_fit_beside_no_activation_reserve():
    # at 0.83 the weights fit (0.88 GB to spare) but not beside the 1.95 GB reserve
    spare = 2 * 81559 * 2**20 * 0.83 - LLAMA3_70B_BF16_BYTES
    assert 0 < spare < LLAMA3_70B_TP2_RESERVE
    r = verdict(scen(hardware={"gpus_per_replica": 2}, serving={"memory_fraction": 0.83}))
    assert r.startswith("llama-3-70b leaves no KV memory: on 2 x h100-sxm x memory_fraction "
                        "0.83 its weights take 131.4 GiB and the vllm engine's activations "
                        "for 8192 tokens and 256 sequences 1.8 GiB")


@pytest.mark.parametrize("name, gpus, scheduler", [
    ("llama-3-8b", 1, "continuous"), ("llama-3-8b", 1, "chunked"),
    ("llama-3-70b", 4, "chunked")])
def test_the_bound_is_above_what_one_replica_sustains(name, gpus, scheduler):
    s = scen(model={"name": name}, hardware={"gpus_per_replica": gpus},
             serving={"scheduler": scheduler, "max_batch": 64},
             slo={"ttft_p99_s": 2.0, "tpot_p99_s": 0.2})
    sm = step_model(s)
    sample = bounds.workload_sample(s, 600, sm.max_context)
    cap = sm.kv_capacity_bytes(s.serving.memory_fraction)
    bound = bounds.rate_bound_per_s(s, sm, sample, cap)
    measured = max_qps(s, requests=600, rel_tol=0.1).max_qps
    assert 0 < measured <= bound * bounds.finite_run_margin(s, measured, 600)
    # and not uselessly loose
    assert bound < 3 * measured


def test_the_bound_holds_with_multi_step_rounds():
    """Short prompts and long answers at batch 256 on Llama-3-8B / H100: the engine's
    per-sequence cost (59 us under `vllm-0.6`, the engine that had multi-step scheduling)
    outweighs a token's matmuls (~29 us), so rounds that pay it once every 16 steps sustain
    more than the single-step bound allows."""
    def case(steps):
        return scen(model={"name": "llama-3-8b"},
                    hardware={"gpus_per_replica": 1, "engine": "vllm-0.6"},
                    workload={"prompt_tokens": {"dist": "uniform", "low": 20, "high": 100},
                              "output_tokens": {"dist": "uniform", "low": 200, "high": 400}},
                    serving={"scheduler": "continuous", "max_batch": 256,
                             "scheduler_steps": steps},
                    slo={"ttft_p99_s": 5.0, "tpot_p99_s": 0.2})

    s = case(16)
    sm = step_model(s)
    sample = bounds.workload_sample(s, 600, sm.max_context)
    cap = sm.kv_capacity_bytes(s.serving.memory_fraction)
    bound = bounds.rate_bound_per_s(s, sm, sample, cap)
    single = bounds.rate_bound_per_s(case(1), sm, sample, cap)
    measured = max_qps(s, requests=600, rel_tol=0.1).max_qps
    assert measured > single  # the single-step bound would not hold
    assert measured <= bound
    assert bound < 3 * measured


def test_replicas_lower_bound_and_margin():
    s = scen()
    # 2 s TTFT over 600 arrivals at 20 req/s (30 s): a queue can hide 2 x 2 / 30 = 13%
    assert bounds.finite_run_margin(s, 20.0, 600) == pytest.approx(1 + 4 / 30)
    assert bounds.replicas_lower_bound(s, 20.0, 5.0, 600) == math.ceil(20 / (5 * (1 + 4 / 30)))
    only_tpot = scen(slo={"ttft_p99_s": None})
    assert math.isinf(bounds.finite_run_margin(only_tpot, 20.0, 600))
    assert bounds.replicas_lower_bound(only_tpot, 20.0, 5.0, 600) == 1
