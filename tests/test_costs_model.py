"""Identities of the symbolic cost models, over every architecture and catalog model."""

from dataclasses import replace

import numpy as np
import pytest
import sympy as sp

from simkit.catalog import load_model, model_names
from simkit.costs import KINDS, ArchSpec, model_costs
from simkit.costs import symbols as S
from simkit.errors import SimkitWarning

TRANSFORMERS = [m for m in model_names() if load_model(m).default_attention != "ssm"]
KV_HEAD_MODELS = [m for m in TRANSFORMERS if not load_model(m).kv_lora_rank]  # not MLA
NON_MLA = [k for k in KINDS if k != "mla"]


def mc_of(name, kind, **kw):
    m = load_model(name)
    return model_costs(m, ArchSpec.for_model(m, kind, **kw))


def val(mc, expr, **lengths):
    return mc.value(expr, **lengths)


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("kind", NON_MLA)
def test_every_model_every_kind_is_finite_and_positive(name, kind):
    mc = mc_of(name, kind)
    for q, kw in ((mc.params, {}), (mc.prefill_flops, {"n": 1000}),
                  (mc.decode_flops, {"t": 1000}), (mc.decode_bytes, {"t": 1000}),
                  (mc.cache_bytes, {"t": 1000})):
        v = val(mc, q, **kw)
        assert np.isfinite(v) and v > 0


@pytest.mark.parametrize("name", KV_HEAD_MODELS)
def test_gqa_with_kv_heads_equal_heads_is_mha(name):
    m = load_model(name)
    mha = replace(m, n_kv_heads=m.n_heads)
    a = model_costs(mha, ArchSpec("full"))
    # MHA written out by hand: K and V are H heads of d_h for every layer
    per_token = 2 * m.n_layers * m.n_heads * m.head_dim * 2
    assert val(a, a.cache_bytes_per_token) == per_token
    assert sp.simplify(a.numeric(a.cache_bytes) - per_token * S.t) == 0


@pytest.mark.parametrize("name", KV_HEAD_MODELS)
def test_window_at_least_n_equals_full(name):
    m = load_model(name)
    full = model_costs(m, ArchSpec("full"))
    # deployed at a longer context, so the 4096 window slides (at its trained context a
    # 4096 window would never slide: it would be full attention)
    win = model_costs(m, ArchSpec("window", window=4096, max_context=32768))
    for n in (1, 17, 1000, 4096):
        assert val(win, win.prefill_flops, n=n) == val(full, full.prefill_flops, n=n)
        assert val(win, win.cache_bytes, t=n) == val(full, full.cache_bytes, t=n)
        assert val(win, win.decode_flops, t=n) == val(full, full.decode_flops, t=n)
    assert val(win, win.cache_bytes, t=10_000) < val(full, full.cache_bytes, t=10_000)


@pytest.mark.parametrize("name", ["llama-3-8b", "mistral-7b", "falcon-7b", "opt-13b"])
def test_zero_global_tokens_equals_window(name):
    m = load_model(name)
    win = model_costs(m, ArchSpec("window", window=64))
    sp0 = model_costs(m, ArchSpec("sparse", window=64, global_tokens=0))
    sp16 = model_costs(m, ArchSpec("sparse", window=64, global_tokens=16))
    for n in (1, 63, 64, 65, 80, 81, 1000):
        assert val(sp0, sp0.attn_prefill_flops, n=n) == val(win, win.attn_prefill_flops, n=n)
        assert val(sp0, sp0.cache_bytes, t=n) == val(win, win.cache_bytes, t=n)
    # globals add exactly min(g, max(0, i - w)) keys per query: brute-force the pair count
    g, w = 16, 64
    for n in (10, 64, 70, 80, 81, 200):
        pairs = sum(min(i, w) + min(g, max(0, i - w)) for i in range(1, n + 1))
        per_pair = 4 * m.n_heads * m.head_dim * m.n_layers
        assert val(sp16, sp16.attn_prefill_flops, n=n) == pairs * per_pair


@pytest.mark.parametrize("kind", ["linear", "memory", "ssm"])
@pytest.mark.parametrize("name", ["llama-3-8b", "mistral-7b", "mamba-2.8b", "mixtral-8x7b"])
def test_constant_state(kind, name):
    mc = mc_of(name, kind)
    assert not mc.numeric(mc.cache_bytes).has(S.t)
    assert val(mc, mc.cache_bytes, t=10) == val(mc, mc.cache_bytes, t=10**6) > 0
    assert mc.big_o_cache == "O(1)"


def test_brute_force_pair_counts_window_and_memory():
    m = load_model("llama-2-7b")
    per_pair = 4 * m.n_heads * m.head_dim * m.n_layers
    win = model_costs(m, ArchSpec("window", window=50))
    mem = model_costs(m, ArchSpec("memory", memory_slots=8, segment_tokens=20))
    for n in (1, 49, 50, 51, 137):
        assert val(win, win.attn_prefill_flops, n=n) == \
            per_pair * sum(min(i, 50) for i in range(1, n + 1))
        # each token: 8 slots + causal in its segment; each full segment: 8 x 20 update
        pairs = sum(8 + ((i - 1) % 20) + 1 for i in range(1, n + 1)) + (n // 20) * 8 * 20
        assert val(mem, mem.attn_prefill_flops, n=n) == per_pair * pairs


def test_textbook_512_to_2048_is_16x():
    mc = mc_of("llama-2-7b", "full")
    r = val(mc, mc.attn_prefill_flops, n=2048) / val(mc, mc.attn_prefill_flops, n=512)
    # causal half with the diagonal: n(n+1)/2 pairs, so the ratio is 2048*2049/(512*513)
    assert r == pytest.approx(2048 * 2049 / (512 * 513), rel=1e-12)
    assert round(r) == 16


@pytest.mark.parametrize("name", ["llama-2-7b", "llama-3-8b", "opt-13b"])
def test_32_short_requests_vs_one_long_document(name):
    mc = mc_of(name, "full")
    kv_short = 32 * val(mc, mc.cache_bytes, t=500)
    kv_long = val(mc, mc.cache_bytes, t=16_000)
    assert kv_short == kv_long
    work = 32 * val(mc, mc.attn_prefill_flops, n=500) / val(mc, mc.attn_prefill_flops, n=16_000)
    assert work == pytest.approx(501 / 16_001, rel=1e-12)  # exactly 32 x 500x501 / 16000x16001
    assert abs(work - 1 / 32) / (1 / 32) < 0.002  # "1/32 of its attention work"


def test_opt13b_kv_per_token_matches_vllm(published):
    mc = mc_of("opt-13b", "full")  # fp16, as vLLM's Sec. 3
    mc16 = model_costs(load_model("opt-13b"), ArchSpec("full", kv_dtype="fp16"))
    assert val(mc16, mc16.cache_bytes_per_token) == published["kv-opt13b-per-token"]["expected"]
    assert val(mc, mc.cache_bytes_per_token) == val(mc16, mc16.cache_bytes_per_token)


def test_deepseek_v2_mla_cache_vs_67b(published):
    v2 = mc_of("deepseek-v2", "mla")
    ds67 = mc_of("deepseek-67b", "full")
    # 576 latent+RoPE elements per token and layer (arXiv:2405.04434 Table 1: (d_c + d_h^R) l)
    assert val(v2, v2.cache_bytes_per_token) == 60 * (512 + 64) * 2
    same_dtype = 1 - val(v2, v2.cache_bytes_per_token) / val(ds67, ds67.cache_bytes_per_token)
    assert same_dtype == pytest.approx(1 - 34560 / 194560)  # 82.2% at equal dtypes
    row = published["kv-deepseek-v2-vs-67b-reduction"]
    deployed = 1 - val(v2, v2.cache_bytes_per_token) * (6 / 16) / \
        val(ds67, ds67.cache_bytes_per_token)
    assert deployed == pytest.approx(row["expected"], abs=row["tolerance"])


@pytest.mark.parametrize("dtype, factor", [("fp32", 2), ("fp16", 1), ("fp8", 0.5),
                                           ("int8", 0.5), ("int4", 0.25)])
@pytest.mark.parametrize("kind", NON_MLA)
def test_kv_dtype_scales_bytes_not_flops(dtype, factor, kind):
    m = load_model("llama-3-8b")
    base = model_costs(m, ArchSpec.for_model(m, kind, kv_dtype="bf16"))
    q = model_costs(m, ArchSpec.for_model(m, kind, kv_dtype=dtype))
    assert val(q, q.cache_bytes, t=3000) == factor * val(base, base.cache_bytes, t=3000)
    assert val(q, q.prefill_flops, n=3000) == val(base, base.prefill_flops, n=3000)


def test_sharing_kv_and_weights():
    m = load_model("llama-3-8b")
    base = model_costs(m, ArchSpec("full"))
    kv2 = model_costs(m, ArchSpec("full", kv_share=2))
    w2 = model_costs(m, ArchSpec("full", weight_share=2))
    assert val(kv2, kv2.cache_bytes, t=1000) == val(base, base.cache_bytes, t=1000) / 2
    assert val(kv2, kv2.decode_flops, t=1000) == val(base, base.decode_flops, t=1000)
    assert val(w2, w2.weight_bytes) < val(base, base.weight_bytes)
    emb = 2 * m.vocab_size * m.d_model + m.d_model  # untied embeddings + final norm
    assert val(w2, w2.params) - emb == pytest.approx((val(base, base.params) - emb) / 2)
    assert val(w2, w2.prefill_flops, n=500) == val(base, base.prefill_flops, n=500)


def test_window_covering_the_context_is_full_attention_with_a_warning():
    m = load_model("llama-3-8b")  # 8192-token context
    with pytest.warns(SimkitWarning, match="a window of 100000 tokens covers the whole "
                                           "8192-token context, so it is full attention"):
        a = ArchSpec("window", window=100_000).resolve(m)
    assert a.attention == "full" and a.window is None
    assert {s.kind for s in a.stack} == {"full"}


def test_hybrid_one_attention_layer_in_eight():
    m = load_model("llama-3-8b")
    hyb = model_costs(m, ArchSpec("full", attention_every=8))
    full = model_costs(m, ArchSpec("full"))
    kinds = [s.kind for s in hyb.arch.stack]
    assert (kinds.count("full"), kinds.count("ssm")) == (4, 28)
    assert kinds[7] == "full" and kinds[:7] == ["ssm"] * 7  # one layer in every 8
    assert val(hyb, hyb.cache_bytes_per_token) == val(full, full.cache_bytes_per_token) / 8
    assert val(hyb, hyb.state_bytes) > 0  # the SSM layers' state
    assert val(hyb, hyb.attn_prefill_flops, n=8000) < val(full, full.attn_prefill_flops, n=8000)


def test_moe_active_vs_total_and_decode_bytes():
    mc = mc_of("mixtral-8x7b", "full")
    assert val(mc, mc.active_params) < val(mc, mc.params) / 3
    # a single sequence streams only its active weights
    assert val(mc, mc.decode_bytes, t=1) < val(mc, mc.weight_bytes) / 3


@pytest.mark.parametrize("kind, time_deg, cache_deg", [
    ("full", 2, 1), ("window", 1, 0), ("sparse", 1, 0), ("linear", 1, 0), ("memory", 1, 0),
    ("ssm", 1, 0)])
def test_big_o_matches_the_expressions(kind, time_deg, cache_deg):
    mc = mc_of("llama-3-8b", kind)
    big = 10**7  # large-n branch of any Min/Piecewise

    def degree(expr, var):
        e = mc.numeric(expr)
        a, b = float(e.subs(var, big)), float(e.subs(var, 4 * big))
        return round(np.log(b / a) / np.log(4), 1)

    assert degree(mc.attn_prefill_flops, S.n) == time_deg
    assert degree(mc.cache_bytes, S.t) == cache_deg
    assert mc.big_o_time.count("n^2") == (time_deg == 2)
    assert (mc.big_o_cache == "O(1)") == (cache_deg == 0 and kind in ("linear", "memory", "ssm"))


def test_mla_decode_absorbs_weights():
    m = load_model("deepseek-v2")
    mc = model_costs(m, ArchSpec.for_model(m))
    # per-token core at context t: 2 H (r_kv + d_r) t + 2 H r_kv t, summed over 60 layers
    t = 1000
    want = 60 * (2 * 128 * (512 + 64) * t + 2 * 128 * 512 * t)
    assert val(mc, mc.attn_decode_flops, t=t) == want
