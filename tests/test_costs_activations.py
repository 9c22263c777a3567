"""The activation reserve an engine takes before it sizes the KV cache
(`simkit.costs.activations`), with every expected byte count written out from the model's
config: 2 bytes per activation, 14 bytes per sampled logit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simkit.catalog import load_hardware, load_model
from simkit.costs.activations import profile_pass, profile_peak_bytes
from simkit.costs.arch import ArchSpec
from simkit.costs.compiled import build_step_model
from simkit.errors import SimkitError
from simkit.scenario import scenario_from_dict
from simkit.sim import simulate


def peak(name: str, gpus: int, tokens: int, sequences: int) -> float:
    m = load_model(name)
    return profile_peak_bytes(m, ArchSpec().resolve(m).stack, gpus, tokens, sequences)


# (model, GPUs, tokens, sequences, bytes on one GPU), each from its config.json
CASES = [
    # Llama-3.1-8B (d 4096, FFN 14336): residual + input (2 d) beside gate|up + activation
    # (3 F): 8192 x 2 x 51,200 = 839 MB, more than 256 x 128,256 logits x 14 + 8192 x 4096 x 2
    ("llama-3.1-8b", 1, 8192, 256, 8192 * 2 * (2 * 4096 + 3 * 14336)),
    # tensor parallelism splits the FFN, not the residual stream (the sampler: 594 MB)
    ("llama-3.1-8b", 2, 16384, 256, 16384 * 2 * (2 * 4096 + 3 * 14336 // 2)),
    # a short pass over many sequences: the sampler's logits hold more
    ("llama-3.1-8b", 1, 512, 1024, 1024 * 128256 * 14 + 512 * 4096 * 2),
    # Mixtral-8x7B (2 of 8 experts of width 14,336): vLLM's fused-MoE caches hold
    # k x (2 F_e + F_e + d) per token; attention's (2 x 32 + 2 x 8) x 128 is narrower
    ("mixtral-8x7b", 1, 8192, 256, 8192 * 2 * (2 * 4096 + 2 * (3 * 14336 + 4096))),
    # DeepSeek-V3 on 8 GPUs (d 7168; 8 routed of width 2,048 and a shared one; 3 dense
    # layers of 18,432; MLA 128 heads of 128 + 64 rope, v 128): the routed caches plus the
    # shared output (8 x (3 x 2048 / 8 + 7168) + 7168) are the widest
    ("deepseek-v3", 8, 8192, 256, 8192 * 2 * (2 * 7168 + 8 * (3 * 2048 // 8 + 7168) + 7168)),
    # Mamba-2.8B (no FFN; in_proj's x and z at expand 2): 2 x 2 x 2560 per token, below its
    # sampler's 512 rows (8192 x 2 x 15,360 = 252 MB against 402 MB)
    ("mamba-2.8b", 1, 8192, 512, 512 * 50280 * 14 + 8192 * 2560 * 2),
    ("mamba-2.8b", 1, 65536, 16, 65536 * 2 * (2 * 2560 + 2 * 2 * 2560)),
]


@pytest.mark.parametrize("name, gpus, tokens, sequences, want", CASES)
def test_the_peak_by_hand(name, gpus, tokens, sequences, want):
    assert peak(name, gpus, tokens, sequences) == want


def test_the_pass_follows_the_serving_section():
    from simkit.scenario import ServingSection

    # the chunked scheduler's chunk (within max_batch_tokens), else the step cap, else the
    # longest sequence up to vLLM V1's 8,192-token default
    assert profile_pass(ServingSection(scheduler="chunked", chunk_tokens=2048,
                                       max_batch=64), 131072) == (2048, 64)
    assert profile_pass(ServingSection(scheduler="chunked", chunk_tokens=2048,
                                       max_batch_tokens=1024), 131072) == (1024, 256)
    assert profile_pass(ServingSection(max_batch_tokens=16384), 131072) == (16384, 256)
    assert profile_pass(ServingSection(), 131072) == (8192, 256)
    assert profile_pass(ServingSection(max_seq_len=3000), 131072) == (3000, 256)
    assert profile_pass(ServingSection(), 4096) == (4096, 256)


# H100 SXM as nvidia-smi reports it: 81,559 MiB; Llama-3.1-8B's 8,030,261,248 bf16 weights
H100_BYTES = 81559 * 2**20
LLAMA31_8B_BYTES = 8_030_261_248 * 2


@pytest.mark.parametrize("engine, reserve", [
    ("vllm", 8192 * 2 * (2 * 4096 + 3 * 14336)),  # vLLM: its profiling pass
    ("vllm-0.6", 8192 * 2 * (2 * 4096 + 3 * 14336)),
    ("tensorrt-llm", 8192 * 2 * (2 * 4096 + 3 * 14336)),  # its activation buffers
    ("vllm-async", 8192 * 2 * (2 * 4096 + 3 * 14336)),
    ("sglang", 0),  # mem_fraction_static: weights and cache only
    ("roofline", 0),
])
def test_each_engine_sizes_its_cache_its_own_way(engine, reserve):
    s = scenario_from_dict({"model": {"name": "llama-3.1-8b"},
                            "hardware": {"name": "h100-sxm", "engine": engine},
                            "workload": {"requests": 2},
                            "serving": {"memory_fraction": 0.9}})
    summ = simulate(s).summary
    assert summ["activation_reserve_bytes"] == reserve
    assert summ["kv_capacity_bytes"] == pytest.approx(
        H100_BYTES * 0.9 - LLAMA31_8B_BYTES - reserve, rel=1e-12)


def test_every_path_reads_the_same_capacity():
    """The simulator, the capacity plan and the cost layer give one KV capacity."""
    from simkit.plan.capacity import max_context

    s = scenario_from_dict({"model": {"name": "llama-3.1-8b"},
                            "hardware": {"name": "h100-sxm", "gpus_per_replica": 2},
                            "workload": {"requests": 2},
                            "serving": {"max_batch_tokens": 4096, "max_batch": 512}})
    sm = build_step_model(load_model("llama-3.1-8b"), ArchSpec(), load_hardware("h100-sxm"),
                          gpus=2)
    # each of 2 GPUs: 4096 x 2 x (2 x 4096 + 3 x 14336 / 2), or 512 x 128,256 x 14 logits
    # + 4096 x 4096 x 2 -- the sampler's is larger
    per_gpu = max(4096 * 2 * (2 * 4096 + 3 * 14336 // 2),
                  512 * 128256 * 14 + 4096 * 4096 * 2)
    assert per_gpu == 512 * 128256 * 14 + 4096 * 4096 * 2
    want = 2 * H100_BYTES * 0.9 - LLAMA31_8B_BYTES - 2 * per_gpu
    assert sm.kv_capacity_for(s.serving) == pytest.approx(want, rel=1e-12)
    assert simulate(s).summary["kv_capacity_bytes"] == pytest.approx(want, rel=1e-12)
    assert max_context(s)[2] == pytest.approx(want, rel=1e-12)



def test_kv_cache_bytes_sizes_the_cache_per_gpu():
    """`serving.kv_cache_bytes` is vLLM's --kv-cache-memory-bytes: that much per GPU,
    whatever memory_fraction and the activation reserve would give; more than fits beside
    the weights is refused, naming the key."""
    per_gpu = 12 * 2**30
    s = scenario_from_dict({"model": {"name": "llama-3.1-8b"},
                            "hardware": {"name": "h100-sxm", "gpus_per_replica": 2},
                            "workload": {"requests": 2},
                            "serving": {"kv_cache_bytes": per_gpu, "memory_fraction": 0.5}})
    summ = simulate(s).summary
    assert summ["kv_capacity_bytes"] == 2 * per_gpu
    assert summ["activation_reserve_bytes"] == 0.0
    # 2 x 80 GiB hold the 16.06 GB of weights and up to 2 x 80 GiB - 16.06 GB of cache
    room = (2 * H100_BYTES - LLAMA31_8B_BYTES) / 2
    fits = s.with_(**{"serving.kv_cache_bytes": int(room)})
    assert simulate(fits).summary["kv_capacity_bytes"] == 2 * int(room)
    with pytest.raises(SimkitError, match=r"^serving\.kv_cache_bytes: .* does not fit"):
        s.with_(**{"serving.kv_cache_bytes": int(room) + 1})
    # a draft model's weights do not shrink a cache sized in bytes: they must fit beside it.
    # Llama-3.2-1B (tied embeddings): 128,256 x 2,048 + 16 layers x (2 x 2,048^2 + 2 x 2,048 x
    # 512 + 3 x 2,048 x 8,192 + 2 x 2,048) + 2,048 = 1,235,814,400 parameters, bf16
    draft_bytes = (128256 * 2048 + 16 * (2 * 2048**2 + 2 * 2048 * 512 + 3 * 2048 * 8192
                                         + 2 * 2048) + 2048) * 2
    assert draft_bytes == 1_235_814_400 * 2
    draft = Path(__file__).resolve().parent.parent / "scenarios" / "models" / "llama-3.2-1b"
    spec = {"serving.speculative.draft": str(draft / "config.json"),
            "serving.speculative.tokens": 4, "serving.speculative.acceptance": 0.7,
            "hardware.gpus_per_replica": 1}
    one = H100_BYTES - LLAMA31_8B_BYTES - draft_bytes
    assert simulate(s.with_(**spec, **{"serving.kv_cache_bytes": int(one)})).summary[
        "kv_capacity_bytes"] == int(one)
    with pytest.raises(SimkitError, match=r"^serving\.kv_cache_bytes: .* and the draft's"):
        s.with_(**spec, **{"serving.kv_cache_bytes": int(one) + 2**20})


def _cost(*args):
    out = subprocess.run([sys.executable, "-m", "simkit", "cost", *args, "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_cost_shows_the_reserve_and_where_memory_runs_out():
    # Llama-3.1-8B on one H100 at the defaults (8,192 tokens, 256 sequences)
    r = _cost("llama-3.1-8b", "--hardware", "h100-sxm", "--seq", "4096")
    reserve = 8192 * 2 * (2 * 4096 + 3 * 14336)
    assert r["activation_reserve_bytes"] == reserve
    assert r["kv_capacity_bytes"] == pytest.approx(
        H100_BYTES * 0.9 - LLAMA31_8B_BYTES - reserve, rel=1e-12)
    # 0.195 of an H100 holds the weights (16.68 GB against 16.06) but not the 0.84 GB beside
    assert 0 < H100_BYTES * 0.195 - LLAMA31_8B_BYTES < reserve
    r = _cost("llama-3.1-8b", "--hardware", "h100-sxm", "--memory-fraction", "0.195")
    assert r["fits"] is False and r["fits_limit"] == "activations"
    r = _cost("llama-3.1-8b", "--hardware", "h100-sxm", "--engine", "sglang",
              "--memory-fraction", "0.195")
    assert r["fits"] is True and r["activation_reserve_bytes"] == 0


def test_cost_takes_the_engines_limits():
    # Krai's 8-H200 vLLM settings for Llama-3.1-70B in fp8: 8,121 tokens, 1,232 sequences;
    # the sampler's 1,232 x 128,256 logits x 14 bytes and 8,121 x 8,192 bf16 hidden states
    # hold more than the forward's 8,121 x 2 x (2 x 8192 + 3 x 28,672)
    r = _cost("llama-3.1-70b", "--hardware", "h200", "--weight-dtype", "fp8",
              "--max-batch-tokens", "8121", "--max-batch", "1232")
    assert 8121 * 2 * (2 * 8192 + 3 * 28672) < 1232 * 128256 * 14 + 8121 * 8192 * 2
    assert r["activation_reserve_bytes"] == 1232 * 128256 * 14 + 8121 * 8192 * 2
    # a budget alone: the forward of 32,768 tokens, and 256 rows
    r = _cost("llama-3.1-70b", "--hardware", "h200", "--weight-dtype", "fp8",
              "--max-batch-tokens", "32768")
    assert r["activation_reserve_bytes"] == 32768 * 2 * (2 * 8192 + 3 * 28672)
