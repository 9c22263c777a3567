"""The numeric step model the simulator uses: exactness, caching, roofline, TP."""

from dataclasses import replace

import numpy as np
import pytest

from simkit.catalog import load_hardware, load_model
from simkit.costs import KINDS, ArchSpec, build_step_model, model_costs
from simkit.costs.compiled import step_breakdown
from simkit.errors import SimkitError

H100 = load_hardware("h100-sxm")


def sm_of(name="llama-3-8b", kind=None, gpus=1, ideal=False, hw=H100, **kw):
    m = load_model(name)
    return build_step_model(m, ArchSpec.for_model(m, kind, **kw), hw, gpus=gpus, ideal=ideal)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "mla"])
def test_decode_steps_equal_single_steps(kind):
    sm = sm_of(kind=kind)
    ctx = np.array([5, 700, 4095, 4096, 4097, 9000])
    fast = sm.decode_steps_s(ctx, 40)
    slow = np.array([sm.step_time_s(ctx + j) for j in range(40)])
    assert np.array_equal(fast, slow)  # bit for bit: the simulator relies on it


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "mla"])
def test_mixed_contexts_are_exact_sums(kind):
    sm = sm_of(kind=kind)
    mc = model_costs(sm.model, sm.arch)
    ctx = [10, 1000, 5000]
    b = step_breakdown(sm, ctx)
    assert b["attention_flops"] == pytest.approx(
        sum(mc.value(mc.attn_decode_flops, t=t) for t in ctx), rel=1e-12)
    assert b["total_s"] == sm.step_time_s(ctx)


def test_chunked_prefill_telescopes():
    sm = sm_of()
    one = step_breakdown(sm, (), [0], [3000])["attention_flops"]
    chunks = sum(step_breakdown(sm, (), [s], [500])["attention_flops"]
                 for s in range(0, 3000, 500))
    assert chunks == pytest.approx(one, rel=1e-12)


def test_kv_bytes_window_stops_growing_and_quantization():
    sm = sm_of(kind="window", window=1024)
    kv = sm.kv_bytes(np.array([10, 1024, 5000]))
    assert kv[1] == kv[2] == 1024 * sm.kv_layout.bytes_per_token
    sm4 = sm_of(kind="window", window=1024, kv_dtype="int4")
    assert sm4.kv_bytes(np.array([5000]))[0] == kv[2] / 4


def test_ideal_decode_is_pure_bandwidth_bound():
    m = load_model("llama-2-7b")
    sm = sm_of("llama-2-7b", ideal=True)
    mc = model_costs(m, sm.arch)
    t = 1000
    want = mc.value(mc.decode_bytes, t=t) / H100.memory_bandwidth_bytes_per_s
    assert sm.decode_time_s(t) == pytest.approx(want, rel=1e-12)
    assert sm_of("llama-2-7b").decode_time_s(t) > want  # realistic is slower


def test_prefill_long_prompt_is_compute_bound_decode_memory_bound():
    sm = sm_of()
    assert step_breakdown(sm, (), [0], [4096])["bound"] == "compute"
    assert step_breakdown(sm, [4096])["bound"] == "memory"


def test_moe_weight_reads_grow_with_batch():
    sm = sm_of("mixtral-8x7b")
    b1 = step_breakdown(sm, [100])["linear_bytes"]
    b64 = step_breakdown(sm, [100] * 64)["linear_bytes"]
    assert b1 < b64 <= sm.streamed_weight_bytes
    # 64 tokens touch every expert: all the weights but the embedding table (gathered rows)
    assert b64 == pytest.approx(sm.streamed_weight_bytes, rel=1e-6)
    m = sm.model
    assert sm.weight_bytes - sm.streamed_weight_bytes == m.vocab_size * m.d_model * 2  # bf16


def test_tensor_parallel_splits_and_communicates():
    one = sm_of("llama-2-70b", gpus=2)
    four = sm_of("llama-2-70b", gpus=4)
    assert four.weight_bytes_per_gpu == one.weight_bytes_per_gpu / 2
    b = step_breakdown(four, [1000] * 8)
    assert b["communication_s"] > 0
    assert four.decode_time_s(1000, 8) < one.decode_time_s(1000, 8)


def test_mqa_cache_is_replicated_across_gpus():
    # one KV head on 4 GPUs: every GPU holds it, so the physical cache is 4 copies
    m = load_model("llama-3-8b")
    mqa = replace(m, n_kv_heads=1, name="llama-3-8b-mqa")
    one = build_step_model(mqa, ArchSpec.for_model(mqa), H100, gpus=1)
    four = build_step_model(mqa, ArchSpec.for_model(mqa), H100, gpus=4)
    t = np.array([1000])
    assert four.kv_bytes(t)[0] == 4 * one.kv_bytes(t)[0]
    assert four.kv_bytes_logical(t)[0] == one.kv_bytes(t)[0]
    # 8 KV heads split evenly over 4 GPUs: one copy
    eight = build_step_model(m, ArchSpec.for_model(m), H100, gpus=4)
    assert eight.kv_bytes(t)[0] == eight.kv_bytes_logical(t)[0]
    # MLA: one latent per token, needed by every head shard
    ds = load_model("deepseek-v2")
    assert build_step_model(ds, ArchSpec.for_model(ds), H100, gpus=8).kv_bytes(t)[0] == \
        8 * build_step_model(ds, ArchSpec.for_model(ds), H100, gpus=1).kv_bytes(t)[0]


def test_tensor_parallel_must_divide_the_query_heads():
    # Falcon-7B's 71 heads (a prime) cannot be split over 4 GPUs; 32 heads over 3 neither
    with pytest.raises(SimkitError, match="cannot split falcon-7b's 71 query heads"):
        sm_of("falcon-7b", gpus=4)
    with pytest.raises(SimkitError, match="3 GPUs cannot split llama-3-8b's 32"):
        sm_of("llama-3-8b", gpus=3)


def test_model_that_does_not_fit_names_gpus_needed():
    sm = sm_of("llama-2-70b", gpus=1)
    with pytest.raises(SimkitError, match="needs at least 2 GPUs"):
        sm.kv_capacity_bytes(0.9)
    assert sm_of("llama-2-70b", gpus=2).kv_capacity_bytes(0.9) > 0


def test_build_is_cached():
    assert sm_of() is sm_of()
    assert sm_of(ideal=True) is not sm_of()


def test_calibrated_style_profile_changes_times(tmp_path):
    from dataclasses import replace

    slow = replace(H100, name="slow", memory_efficiency=0.4)
    assert sm_of(hw=slow).decode_time_s(100) > sm_of().decode_time_s(100)
