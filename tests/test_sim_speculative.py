"""Speculative decoding (`simkit.sim.speculative`): tokens per step against Leviathan et
al.'s closed form, per-request streams, the batch-1 gain and loss, the large-batch crossover
(derived by hand from the roofline), and memory for both caches."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import assert_same_run
from simkit.scenario import scenario_from_dict
from simkit.sim import simulate
from simkit.sim.speculative import expected_tokens

DRAFT = "models/llama-3.2-1b/config.json"  # (relative to scenarios/)


def scenario(repo_root, spec=None, requests=40, rate=1e7, prompt=128, output=64,
             ideal=False, **serving):
    d = {"model": {"name": "llama-3-8b"}, "hardware": {"name": "h100-sxm", "ideal": ideal},
         "seed": 5,
         "workload": {"requests": requests, "arrival": {"process": "fixed", "rate": rate},
                      "prompt_tokens": {"dist": "fixed", "value": prompt},
                      "output_tokens": {"dist": "fixed", "value": output}},
         "serving": {"max_batch": 1024, "prefix_caching": False, **serving}}
    if spec is not None:
        d["serving"]["speculative"] = {"draft": DRAFT, "tokens": 4, **spec}
    return scenario_from_dict(d, base_dir=repo_root / "scenarios")


def _pmf_alpha(alpha: float, k: int) -> np.ndarray:
    """P(a accepted) for i.i.d. acceptance: alpha^j (1 - alpha), and alpha^k for all k."""
    p = np.array([alpha ** j * (1 - alpha) for j in range(k)] + [alpha ** k])
    return p


def test_closed_form_is_the_mean_of_the_iid_distribution():
    for alpha in (0.0, 0.3, 0.8, 0.95):
        for k in (1, 4, 7):
            p = _pmf_alpha(alpha, k)
            assert sum((j + 1) * p[j] for j in range(k + 1)) == pytest.approx(
                expected_tokens(alpha, k), rel=1e-12)
    assert expected_tokens(0.8, 4) == pytest.approx(3.3616, abs=1e-12)  # 1+.8+.64+.512+.4096


@pytest.mark.parametrize("spec", [{"acceptance": 0.7},
                                  {"acceptance_lengths": [0.1, 0.2, 0.3, 0.25, 0.15]}])
def test_simulated_tokens_per_step_match_the_closed_form(repo_root, spec):
    res = simulate(scenario(repo_root, spec, requests=60, output=300))
    sp = res.summary["speculative"]
    p = _pmf_alpha(0.7, 4) if "acceptance" in spec else np.array(spec["acceptance_lengths"])
    tokens = np.arange(1, 6)
    mean = float(np.dot(tokens, p))
    sd = math.sqrt(float(np.dot(tokens ** 2, p)) - mean ** 2)
    n = sp["full_steps"]
    assert n > 3000
    assert abs(sp["tokens_per_full_step"] - mean) < 4 * sd / math.sqrt(n)
    assert sp["expected_tokens_per_step"] == pytest.approx(mean, rel=1e-12)


def _steps_from_the_stream(seed: int, rid: int, p: np.ndarray, output: int) -> int:
    """Iterations of one request, re-derived from its documented stream:
    SeedSequence(seed, spawn_key=(6, request id)), one uniform per iteration."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(6, rid)))
    a = np.searchsorted(np.cumsum(p), rng.random(max(64, output)), side="right")
    left, steps = output - 1, 0
    while left > 0:
        left -= min(int(a[steps]) + 1, left)
        steps += 1
    return steps


def test_each_request_draws_from_its_own_stream_whatever_its_batch(repo_root):
    spec = {"acceptance": 0.6}
    alone = simulate(scenario(repo_root, spec, requests=12, output=50, max_batch=1))
    batched = simulate(scenario(repo_root, spec, requests=12, output=50))
    two = simulate(scenario(repo_root, spec, requests=12, output=50, replicas=2))
    steps = alone.requests["decode_steps"]
    assert np.array_equal(steps, batched.requests["decode_steps"])
    assert np.array_equal(steps, two.requests["decode_steps"])
    want = [_steps_from_the_stream(5, rid, _pmf_alpha(0.6, 4), 50) for rid in range(12)]
    assert steps.tolist() == want


def _tpot(repo_root, spec, batch, ideal=False):
    s = simulate(scenario(repo_root, spec, requests=batch, ideal=ideal)).summary
    return s["tpot_s"]["mean"]


def test_batch_one_with_good_acceptance_cuts_tpot_well_below_plain_decoding(repo_root):
    plain = _tpot(repo_root, None, 1)
    spec = _tpot(repo_root, {"acceptance": 0.8}, 1)
    assert spec < 0.6 * plain


def test_batch_one_with_poor_acceptance_is_slower_than_plain_decoding(repo_root):
    plain = _tpot(repo_root, None, 1)
    assert _tpot(repo_root, {"acceptance": 0.05}, 1) > plain


def test_the_gain_vanishes_at_large_batches_where_verification_is_compute_bound(repo_root):
    """The pure roofline (`ideal`) of an H100 SXM: 989.4e12 dense bf16 FLOP/s and 3.35e12
    B/s (NVIDIA H100 datasheet; dense = half the 1979 TFLOPS quoted with sparsity).
    Llama-3-8B: 16.06e9 bytes of weights, about 2 x 7.5e9 FLOPs per token (its 8.03e9
    parameters less the 0.53e9 input embedding); the Llama-3.2-1B draft: 2.47e9 bytes,
    2 x 1.24e9 FLOPs per token (tied embeddings). Ignoring attention (128-token prompts):
      plain step      max(b 15.2 us, 4.79 ms)
      verification    max(5 b 15.2 us, 4.79 ms)         (k + 1 = 5 tokens per sequence)
      draft, 4 steps  4 max(b 2.50 us, 0.74 ms)
    with 3.36 tokens per iteration at alpha = 0.8 (eq. 1). Speculation wins below
    b ~ (3.36 x 4.79 ms - 2.96 ms) / 76 us ~ 170 and loses above: at 128 a ratio of ~0.8,
    at 256 ~1.4."""
    spec = {"acceptance": 0.8}
    ratio = {b: _tpot(repo_root, spec, b, ideal=True) / _tpot(repo_root, None, b, ideal=True)
             for b in (1, 128, 256)}
    assert ratio[1] < 0.6
    assert ratio[128] < 1.0 < ratio[256]


def test_both_caches_and_both_weights_count_against_memory(repo_root):
    plain = simulate(scenario(repo_root, None, requests=2)).summary
    spec = simulate(scenario(repo_root, {"acceptance": 0.5}, requests=2)).summary
    # Llama-3.2-1B: 16 layers x 8 KV heads x 64 x 2 (K, V) x 2 bytes = 32768 bytes/token;
    # its 1.2358e9 parameters in bf16
    assert spec["kv_bytes_per_token"] == plain["kv_bytes_per_token"] + 16 * 8 * 64 * 2 * 2
    assert plain["kv_capacity_bytes"] - spec["kv_capacity_bytes"] == pytest.approx(
        2 * 1.2358144e9, rel=1e-9)
    assert spec["kv_units_allocated"] == spec["kv_units_freed"]


def test_speculating_replicas_step_one_iteration_at_a_time(repo_root):
    s = scenario(repo_root, {"acceptance": 0.7}, requests=30, rate=20.0, output=80)
    assert_same_run(simulate(s), simulate(s, fast=False))


@pytest.mark.parametrize("disaggregated", [False, True])
def test_a_request_leaving_drops_its_acceptance_draws(repo_root, monkeypatch, disaggregated):
    """A finished (or handed-off) request's stream is dropped: a long run holds draws only
    for the sequences still running, not for every request it ever served."""
    from simkit.sim.speculative import Speculation

    made = []
    init = Speculation.__post_init__
    monkeypatch.setattr(Speculation, "__post_init__",
                        lambda self: (made.append(self), init(self))[1])
    serving = {}
    if disaggregated:
        serving["disaggregation"] = {"prefill_replicas": 1, "decode_replicas": 1,
                                     "link": "network", "link_bytes_per_s": 5e10,
                                     "link_latency_s": 1e-5}
    res = simulate(scenario(repo_root, {"acceptance": 0.7}, requests=30, rate=20.0,
                            output=80, **serving))
    assert res.summary["requests_completed"] == 30
    assert made and all(s._draws == {} for s in made)


def test_a_draft_across_a_chunk_boundary_keeps_the_old_chunk_until_verified(repo_root):
    """Chunked attention frees a chunk's blocks once the context leaves it; a draft that
    crosses the boundary may be rejected back into the old chunk, so the iteration must
    hold the most blocks any context up to the drafted end needs. Block size 1 makes
    every position a block: the positions a sequence holds after an iteration never exceed
    the blocks it reserved for it (they did before: useful / reserved reached 1.14)."""
    d = {"model": {"name": "llama-3-8b", "layer_pattern": [{"kind": "chunked", "chunk": 9}]},
         "hardware": {"name": "h200"}, "seed": 1,
         "workload": {"requests": 20, "arrival": {"process": "poisson", "rate": 2.0},
                      "prompt_tokens": {"dist": "uniform", "low": 1, "high": 34},
                      "output_tokens": {"dist": "fixed", "value": 30}},
         "serving": {"prefix_caching": False, "block_size": 1,
                     "speculative": {"draft": DRAFT, "tokens": 4,
                                     "acceptance_lengths": [0.5, 0.2, 0.1, 0.1, 0.1]}}}
    res = simulate(scenario_from_dict(d, base_dir=repo_root / "scenarios"))
    ts = res.timeseries
    assert np.all(ts["kv_useful_bytes"] <= ts["kv_used_bytes"])
    assert 0 < res.summary["kv_useful_fraction"] <= 1
