"""Per-group sums of the cost layer: mixed stacks, the new families, sharing and renaming.

Every expected number is derived here from the shapes (arithmetic written in the test)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simkit.catalog import load_hardware, load_model
from simkit.costs import ArchSpec, build_step_model, model_costs
from simkit.costs.families.chunked import chunked_pairs
from simkit.stack import LayerSpec, parse_pattern_text

LLAMA3 = load_model("llama-3-8b")  # 32 layers, 32 heads, 8 KV heads of 128
KV_PER_LAYER_TOKEN = 2 * 8 * 128 * 2  # K and V, 8 heads of 128, bf16


def costs(model=LLAMA3, pattern=None, **kw):
    p = parse_pattern_text(pattern) if pattern else None
    return model_costs(model, ArchSpec(layer_pattern=p, **kw))


@pytest.mark.parametrize("t", [1, 100, 1024, 1025, 5000, 60000])
def test_gemma_like_stack_cache_is_the_sum_of_its_groups(t):
    mc = costs(pattern="3xwindow:1024,full")  # 24 window layers + 8 full layers
    want = 24 * min(t, 1024) * KV_PER_LAYER_TOKEN + 8 * t * KV_PER_LAYER_TOKEN
    assert mc.value(mc.cache_bytes, t=t) == want
    labels = [(g.label, g.count) for g in mc.groups]
    assert labels == [("window(1024)", 24), ("full", 8)]
    assert sum(mc.value(g.terms["cache_bytes"], t=t) for g in mc.groups) == want


def test_two_windows_get_their_own_symbols():
    mc = costs(pattern="3xwindow:1024,full,3xwindow:512,full")
    syms = {str(s) for s in mc.cache_bytes.free_symbols}
    assert {"w", "w_2", "L_window", "L_window2", "L_full"} <= syms
    t = 2000
    want = (12 * 1024 + 12 * 512 + 8 * t) * KV_PER_LAYER_TOKEN
    assert mc.value(mc.cache_bytes, t=t) == want


def test_prefill_attention_of_a_mixed_stack():
    # 8 full layers: 2 H d_h n (n+1) each; 24 window layers: 4 H d_h pairs(n, w)
    mc = costs(pattern="3xwindow:1024,full")
    n, w, H, dh = 3000, 1024, 32, 128
    win_pairs = w * (w + 1) // 2 + (n - w) * w
    want = 8 * 2 * H * dh * n * (n + 1) + 24 * 4 * H * dh * win_pairs
    assert mc.value(mc.attn_prefill_flops, n=n) == want


@pytest.mark.parametrize("c", [1, 7, 16, 8192])
def test_chunked_pairs_by_brute_force(c):
    import sympy as sp

    x = sp.Symbol("x", integer=True, positive=True)
    cc = sp.Symbol("c", integer=True, positive=True)
    f = sp.lambdify((x, cc), chunked_pairs(x, cc))
    for n in (1, 2, 6, 7, 8, 15, 16, 17, 100, 9000):
        assert f(n, c) == sum(((i - 1) % c) + 1 for i in range(1, n + 1))


def test_chunked_layers_hold_their_current_chunk_only():
    # Llama-4 style: 3 chunked layers of 8192 per global layer
    mc = costs(pattern="3xchunked:2048,full", max_context=32768)
    for t in (1, 2048, 2049, 5000, 20000):
        held = ((t - 1) % 2048) + 1
        want = (24 * held + 8 * t) * KV_PER_LAYER_TOKEN
        assert mc.value(mc.cache_bytes, t=t) == want


def test_mamba2_state_and_params():
    # Mamba-2 (arXiv:2405.21060): d_in = 2 d, H_s = d_in / P, state d_in N + conv
    # (d_in + 2 G N)(K - 1) per layer
    m = replace(load_model("mamba-2.8b"), name="m2", d_state=128, ssm_head_dim=64,
                ssm_groups=1, default_ssm_variant="mamba2")
    mc = model_costs(m, ArchSpec.for_model(m))
    d, d_in, N, K, G = 2560, 5120, 128, 4, 1
    state = d_in * N + (d_in + 2 * G * N) * (K - 1)
    assert mc.value(mc.state_bytes) == 64 * state * 2
    assert mc.value(mc.cache_bytes, t=10**6) == 64 * state * 2  # constant in t
    H_s = d_in // 64
    per_layer = (d * (2 * d_in + 2 * G * N + H_s) + (d_in + 2 * G * N) * K
                 + (d_in + 2 * G * N) + 3 * H_s + d_in + d_in * d)
    g = mc.groups[0]
    assert mc.value(g.mixer.params) == per_layer


def test_gated_deltanet_state():
    # Qwen3-Next's linear layers: 32 value heads, 16 key heads of 128, conv 4:
    # S is 32 x 128 x 128 per layer; the conv keeps 3 columns of 2*16*128 + 32*128 channels
    m = replace(LLAMA3, name="gdn", linear_key_heads=16, linear_value_heads=32,
                linear_key_dim=128, linear_value_dim=128, linear_conv=4)
    mc = costs(m, pattern="3xlinear:gated_deltanet,full")
    state = 32 * 128 * 128 + (2 * 16 * 128 + 32 * 128) * 3
    t = 9000
    assert mc.value(mc.state_bytes) == 24 * state * 2
    assert mc.value(mc.cache_bytes, t=t) == 24 * state * 2 + 8 * t * KV_PER_LAYER_TOKEN


def test_lightning_state():
    # lightning attention (MiniMax-01): one d_h x d_h state per query head
    mc = costs(pattern="7xlinear:lightning,full")
    assert mc.value(mc.state_bytes) == 28 * 32 * 128 * 128 * 2


def test_shared_block_stores_weights_once_but_caches_per_invocation():
    shared = LayerSpec("full", ffn="dense", shared_block="A")
    own = LayerSpec("ssm", ffn="none")
    stack = (shared, own, own, own) * 8
    m = replace(LLAMA3, name="zamba-like", layers=stack)
    mc = model_costs(m, ArchSpec.for_model(m))
    unshared = replace(m, layers=tuple(replace(s, shared_block=None) for s in stack))
    mu = model_costs(unshared, ArchSpec.for_model(unshared))
    g = next(g for g in mc.groups if g.spec.shared_block)
    per_block = mc.value(g.mixer.params + g.ffn.params) + 2 * 4096  # + its 2 RMSNorms
    assert mc.value(mc.params) == pytest.approx(mu.value(mu.params) - 7 * per_block, abs=0)
    t = 4000
    assert mc.value(mc.cache_bytes, t=t) == mu.value(mu.cache_bytes, t=t)
    assert mc.value(mc.decode_flops, t=t) == mu.value(mu.decode_flops, t=t)


def test_kv_share_on_a_stack_divides_each_caching_group():
    mc = costs(pattern="3xwindow:1024,full", kv_share=2)
    t = 5000
    # 24 window layers store 12 caches, 8 full layers store 4
    assert mc.value(mc.cache_bytes, t=t) == (12 * 1024 + 4 * t) * KV_PER_LAYER_TOKEN


def test_layer_pattern_must_tile_and_resolve_errors_are_one_line():
    from simkit.errors import SimkitError

    with pytest.raises(SimkitError, match="does not tile the model's 32 layers"):
        costs(pattern="5xwindow:1024,full")
    with pytest.raises(SimkitError, match="mla needs a model with an MLA config"):
        costs(pattern="mla")


def test_step_model_of_a_mixed_stack_charges_every_group():
    sm = build_step_model(LLAMA3, ArchSpec(layer_pattern=parse_pattern_text(
        "3xwindow:1024,full")), load_hardware("h100-sxm"))
    lay = sm.kv_layout
    assert [(g.kind, g.window, g.bytes_per_position) for g in lay.groups] == \
        [("window", 1024, 24 * KV_PER_LAYER_TOKEN), ("full", None, 8 * KV_PER_LAYER_TOKEN)]
    t = np.array([500, 4000])
    want = [(24 * min(x, 1024) + 8 * x) * KV_PER_LAYER_TOKEN for x in t]
    assert sm.kv_bytes(t).tolist() == want
    # a decode step reads every group's cache: more than the window stack alone, less than
    # all-full
    full = build_step_model(LLAMA3, ArchSpec("full"), load_hardware("h100-sxm"))
    win = build_step_model(LLAMA3, ArchSpec("window", window=1024),
                           load_hardware("h100-sxm"))
    ctx = np.full(64, 6000)
    assert win.step_time_s(ctx) < sm.step_time_s(ctx) < full.step_time_s(ctx)


def test_prefill_chunk_bytes_read_the_prefix_and_write_the_chunk():
    # a chunk of 500 tokens after 1000 cached: reads the 1000-token prefix's KV, writes 500
    # tokens' KV: for full attention that is kv(1500) bytes (not kv(1500) + kv(1000))
    from simkit.costs.compiled import step_breakdown

    sm = build_step_model(LLAMA3, ArchSpec("full"), load_hardware("h100-sxm"))
    b = step_breakdown(sm, (), [1000], [500])
    assert b["attention_bytes"] == 1500 * 32 * KV_PER_LAYER_TOKEN
    # a window of 1024: reads min(1000, 1024) cached positions, writes 500
    w = build_step_model(LLAMA3, ArchSpec("window", window=1024), load_hardware("h100-sxm"))
    bw = step_breakdown(w, (), [3000], [500])
    assert bw["attention_bytes"] == (1024 + 500) * 32 * KV_PER_LAYER_TOKEN
