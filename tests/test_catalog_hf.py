"""The Hugging Face importer against real configs: every file of tests/data/hf_configs
loads with the layer stack its own keys describe, its KV cache and fixed state match a
derivation from the config's numbers, published parameter counts agree, and every bad
config is one line with exit status 2.

Expected values are written here from the configs' keys and the rules of the transformers
configuration/modeling classes (cited beside each), never from simkit's output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkit.catalog import load_model
from simkit.catalog.hf import PER_LAYER_KEYS, from_hf_config
from simkit.catalog.hf import SUPPORTED
from simkit.costs import ArchSpec, model_costs
from simkit.errors import SimkitError

CONFIGS = Path(__file__).resolve().parent / "data" / "hf_configs"
FILES = sorted(p.name for p in CONFIGS.glob("*.json"))
BF16 = 2  # bytes per cached element (ArchSpec's default kv dtype)


def _costs(model):
    return model_costs(model, ArchSpec.for_model(model))


# --------------------------------------------------------------------------- layer stacks
# Per file: the mixer label and FFN kind of layer i, written from the config's own keys.

def _alt(even, odd):
    return lambda i: even if i % 2 == 0 else odd


STACKS = {
    # llama: every layer full attention + dense SwiGLU
    "meta-llama__Llama-3.1-8B.json": (32, lambda i: "full", "dense"),
    "meta-llama__Llama-3.1-70B.json": (80, lambda i: "full", "dense"),
    "meta-llama__Llama-3.1-405B.json": (126, lambda i: "full", "dense"),
    # mistral: sliding_window 4096 on every layer
    "mistralai__Mistral-7B-v0.1.json": (32, lambda i: "window(4096)", "dense"),
    # mixtral: sliding_window null -> full; MoE every layer
    "mistralai__Mixtral-8x7B-v0.1.json": (32, lambda i: "full", "moe"),
    # qwen2: use_sliding_window false -> all full whatever sliding_window says
    "Qwen__Qwen2.5-7B-Instruct.json": (28, lambda i: "full", "dense"),
    "Qwen__Qwen3-32B.json": (64, lambda i: "full", "dense"),
    # decoder_sparse_step 1, mlp_only_layers [] -> MoE on every layer
    "Qwen__Qwen3-30B-A3B.json": (48, lambda i: "full", "moe"),
    "Qwen__Qwen1.5-MoE-A2.7B.json": (24, lambda i: "full", "moe"),
    # full_attention_interval 4: full on layers 3, 7, ..., 47; Gated DeltaNet elsewhere
    "Qwen__Qwen3-Next-80B-A3B-Thinking.json":
        (48, lambda i: "full" if (i + 1) % 4 == 0 else "linear(gated_deltanet)", "moe"),
    # gemma2: even layers slide (window 4096), odd layers global
    "google__gemma-2-9b-it.json": (42, _alt("window(4096)", "full"), "dense"),
    # gemma3: every 6th layer (5, 11, ...) global, the rest window 1024
    "google__gemma-3-27b-it.json":
        (62, lambda i: "full" if (i + 1) % 6 == 0 else "window(1024)", "dense"),
    # gpt-oss layer_types: sliding (128) on even layers, full on odd; MoE every layer
    "openai__gpt-oss-20b.json": (24, _alt("window(128)", "full"), "moe"),
    "openai__gpt-oss-120b.json": (36, _alt("window(128)", "full"), "moe"),
    # llama4: no_rope_layers default -> (i+1) % 4 == 0 global NoPE full, else chunked 8192;
    # interleave_moe_layer_step 1 -> MoE on all 48
    "meta-llama__Llama-4-Scout-17B-16E-Instruct.json":
        (48, lambda i: "full" if (i + 1) % 4 == 0 else "chunked(8192)", "moe"),
    # first_k_dense_replace 3 (V3) / 1 (V2-Lite): dense FFN first, then MoE
    "deepseek-ai__DeepSeek-V3.json": (61, lambda i: "mla", lambda i: "dense" if i < 3 else "moe"),
    "deepseek-ai__DeepSeek-V2-Lite.json":
        (27, lambda i: "mla", lambda i: "dense" if i < 1 else "moe"),
    # jamba: attention iff i % 8 == 4 (layers 4, 12, 20, 28), Mamba-1 elsewhere; MoE iff
    # i % 2 == 1 (odd layers)
    "ai21labs__AI21-Jamba-1.5-Mini.json":
        (32, lambda i: "full" if i % 8 == 4 else "ssm(mamba1)",
         lambda i: "moe" if i % 2 == 1 else "dense"),
    # MiniMax: attn_type_list / layer_types softmax at i % 8 == 7, lightning elsewhere
    "MiniMaxAI__MiniMax-M1.json":
        (80, lambda i: "full" if i % 8 == 7 else "linear(lightning)", "moe"),
    "DERIVED__MiniMaxAI__MiniMax-M1__as-minimax.json":
        (80, lambda i: "full" if i % 8 == 7 else "linear(lightning)", "moe"),
    # Mamba family: the SSM on every layer, no FFN
    "state-spaces__mamba-2.8b-hf.json": (64, lambda i: "ssm(mamba1)", "none"),
    "tiiuae__falcon-mamba-7b.json": (64, lambda i: "ssm(mamba1)", "none"),
    "state-spaces__mamba2-2.7b.json": (64, lambda i: "ssm(mamba2)", "none"),
    "DERIVED__state-spaces__mamba2-2.7b__as-mamba2.json": (64, lambda i: "ssm(mamba2)", "none"),
    # phi3: sliding_window 2047 on every layer
    "microsoft__Phi-3-mini-4k-instruct.json": (32, lambda i: "window(2047)", "dense"),
    "facebook__opt-13b.json": (40, lambda i: "full", "dense"),
    "tiiuae__falcon-7b.json": (32, lambda i: "full", "dense"),
    "openai-community__gpt2.json": (12, lambda i: "full", "dense"),
    "EleutherAI__gpt-neox-20b.json": (44, lambda i: "full", "dense"),
}

NEMOTRON_PATTERN = ("M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*"
                    "-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-")
ZAMBA2_HYBRID = (6, 12, 18, 24, 30, 36, 42, 47, 51)  # hybrid_layer_ids of Zamba2-2.7B


def _labels(model):
    return [(s.label() if s.kind != "none" else "none", s.ffn) for s in model.stack()]


def test_every_config_file_has_an_expectation():
    assert set(STACKS) | {"nvidia__Nemotron-H-56B-Base-8K.json", "Zyphra__Zamba2-2.7B.json"} \
        == set(FILES)


@pytest.mark.parametrize("name", sorted(STACKS))
def test_stack_matches_the_config_keys(name):
    n, mixer, ffn = STACKS[name]
    m = load_model(CONFIGS / name)
    want = [(mixer(i), ffn(i) if callable(ffn) else ffn) for i in range(n)]
    assert m.n_layers == n
    assert _labels(m) == want


def test_nemotron_h_one_block_per_pattern_character():
    # hybrid_override_pattern: M = Mamba-2 (no FFN), * = attention (no FFN), - = MLP only
    m = load_model(CONFIGS / "nvidia__Nemotron-H-56B-Base-8K.json")
    block = {"M": ("ssm(mamba2)", "none"), "*": ("full", "none"), "-": ("none", "dense")}
    assert m.n_layers == len(NEMOTRON_PATTERN) == 118
    assert _labels(m) == [block[ch] for ch in NEMOTRON_PATTERN]
    assert NEMOTRON_PATTERN.count("*") == 10 and NEMOTRON_PATTERN.count("M") == 54


def test_zamba2_hybrid_layers_run_a_shared_block_then_their_mamba():
    # every one of the 54 layers has a Mamba-2 mixer; the 9 hybrid ones first run shared
    # block (hybrid count) % num_mem_blocks (2), input 2 x 2560 = 5120 wide, heads of
    # 5120 / 32 = 160 (attention_hidden_size, attention_head_dim)
    m = load_model(CONFIGS / "Zyphra__Zamba2-2.7B.json")
    assert m.n_layers == 54
    want = []
    for i in range(54):
        if i in ZAMBA2_HYBRID:
            k = ZAMBA2_HYBRID.index(i)
            want.append(("full", f"block{k % 2}", 5120, 160, "dense"))
        want.append(("ssm", None, None, None, "none"))
    got = [(s.kind, s.shared_block, s.input_dim, s.head_dim, s.ffn) for s in m.stack()]
    assert got == want


def test_moe_settings_from_the_config():
    cases = {"openai__gpt-oss-20b.json": (32, 4, 0, 0),  # num_local_experts, top-4
             "meta-llama__Llama-4-Scout-17B-16E-Instruct.json": (16, 1, 0, 8192),
             "Qwen__Qwen3-Next-80B-A3B-Thinking.json": (512, 10, 0, 512),
             "Qwen__Qwen1.5-MoE-A2.7B.json": (60, 4, 0, 5632),
             "deepseek-ai__DeepSeek-V3.json": (256, 8, 1, 0),
             "ai21labs__AI21-Jamba-1.5-Mini.json": (16, 2, 0, 0)}
    for name, (E, k, shared, shared_width) in cases.items():
        m = load_model(CONFIGS / name)
        assert (m.n_experts, m.experts_per_token, m.n_shared_experts,
                m.shared_expert_ffn_dim) == (E, k, shared, shared_width), name


# --------------------------------------------------------------------------- KV and state
# Per file: (cache + state bytes of one sequence at context t, fixed state bytes), derived
# from the config's numbers in bf16. gqa(c) = elements per cached token of one layer.

def gqa(c, head_dim=None):
    hd = head_dim or c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    return 2 * c.get("num_key_value_heads", c["num_attention_heads"]) * hd


def full_only(c, layers=None, per_token=None):
    L = layers or c["num_hidden_layers"]
    return lambda t: (L * (per_token or gqa(c)) * BF16 * t, 0)


def mamba1_state(d_inner, n_state, conv):  # d_in N + d_in (K - 1) (mamba_simple.py)
    return d_inner * n_state + d_inner * (conv - 1)


def mamba2_state(d_inner, n_state, groups, conv):  # d_in N + (d_in + 2 G N)(K - 1)
    return d_inner * n_state + (d_inner + 2 * groups * n_state) * (conv - 1)


def _derive(name, c):
    """(cache_bytes(t), state_bytes) for config `c` of file `name`."""
    if name.startswith(("meta-llama__Llama-3", "mistralai__Mixtral", "Qwen__Qwen2.5",
                        "Qwen__Qwen3-32B", "Qwen__Qwen3-30B", "Qwen__Qwen1.5")):
        return full_only(c)
    if name == "mistralai__Mistral-7B-v0.1.json":  # every layer a 4096-token rolling buffer
        return lambda t: (32 * gqa(c) * BF16 * min(t, c["sliding_window"]), 0)
    if name == "microsoft__Phi-3-mini-4k-instruct.json":  # 32 x 2 x 32 heads x 96
        return lambda t: (32 * 2 * 32 * 96 * BF16 * min(t, 2047), 0)
    if name == "google__gemma-2-9b-it.json":  # 21 global + 21 window 4096, 2 x 8 x 256
        return lambda t: (21 * 2 * 8 * 256 * BF16 * t + 21 * 2 * 8 * 256 * BF16 * min(t, 4096),
                          0)
    if name == "google__gemma-3-27b-it.json":  # 10 global + 52 window 1024, 2 x 16 x 128
        return lambda t: (10 * 2 * 16 * 128 * BF16 * t
                          + 52 * 2 * 16 * 128 * BF16 * min(t, 1024), 0)
    if name.startswith("openai__gpt-oss"):  # half full, half window 128, 2 x 8 x 64
        half = c["num_hidden_layers"] // 2
        return lambda t: (half * 2 * 8 * 64 * BF16 * t + half * 2 * 8 * 64 * BF16 * min(t, 128),
                          0)
    if name.startswith("meta-llama__Llama-4"):  # 12 global + 36 chunked: ((t-1) % 8192) + 1
        return lambda t: (12 * 2 * 8 * 128 * BF16 * t
                          + 36 * 2 * 8 * 128 * BF16 * ((t - 1) % 8192 + 1), 0)
    if name.startswith("deepseek-ai"):  # MLA latent kv_lora_rank + qk_rope_head_dim
        return full_only(c, per_token=c["kv_lora_rank"] + c["qk_rope_head_dim"])
    if name == "ai21labs__AI21-Jamba-1.5-Mini.json":  # 4 attention + 28 Mamba-1 layers
        state = 28 * mamba1_state(2 * 4096, 16, 4) * BF16
        return lambda t: (4 * 2 * 8 * 128 * BF16 * t + state, state)
    if name == "Zyphra__Zamba2-2.7B.json":  # 9 invocations x own cache; 54 Mamba-2 states
        state = 54 * mamba2_state(2 * 2560, 64, 1, 4) * BF16
        return lambda t: (9 * 2 * 32 * 160 * BF16 * t + state, state)
    if name == "Qwen__Qwen3-Next-80B-A3B-Thinking.json":
        # 12 gated full layers (2 KV heads of 256) + 36 Gated DeltaNet layers: recurrent
        # nv x dk x dv + conv (2 nk dk + nv dv)(K - 1)
        nk, nv = c["linear_num_key_heads"], c["linear_num_value_heads"]
        dk, dv, K = c["linear_key_head_dim"], c["linear_value_head_dim"], \
            c["linear_conv_kernel_dim"]
        state = 36 * (nv * dk * dv + (2 * nk * dk + nv * dv) * (K - 1)) * BF16
        return lambda t: (12 * 2 * 2 * 256 * BF16 * t + state, state)
    if name.startswith(("MiniMaxAI", "DERIVED__MiniMax")):
        # 10 softmax GQA layers + 70 lightning layers of nq x hd x hd state
        state = 70 * 64 * 128 * 128 * BF16
        return lambda t: (10 * 2 * 8 * 128 * BF16 * t + state, state)
    if name == "state-spaces__mamba-2.8b-hf.json":
        state = 64 * mamba1_state(c["intermediate_size"], c["state_size"], c["conv_kernel"]) * BF16
        return lambda t: (state, state)
    if name == "tiiuae__falcon-mamba-7b.json":  # d_inner = intermediate_size 8192, not 16 x d
        state = 64 * mamba1_state(8192, 16, 4) * BF16
        return lambda t: (state, state)
    if "mamba2-2.7b" in name:  # mamba_ssm Mamba2 defaults: N 128, 1 group, K 4, expand 2
        state = 64 * mamba2_state(2 * 2560, 128, 1, 4) * BF16
        return lambda t: (state, state)
    if name == "nvidia__Nemotron-H-56B-Base-8K.json":
        # 10 attention blocks (8 KV heads of 128) + 54 Mamba-2 blocks, d_in = 256 x 64
        state = 54 * mamba2_state(256 * 64, c["ssm_state_size"], c["n_groups"],
                                  c["conv_kernel"]) * BF16
        return lambda t: (10 * 2 * 8 * 128 * BF16 * t + state, state)
    if name == "facebook__opt-13b.json":
        return full_only(c, per_token=2 * c["hidden_size"])
    if name == "tiiuae__falcon-7b.json":  # multi_query: one K/V head of 4544 / 71 = 64
        return full_only(c, per_token=2 * 64)
    if name == "openai-community__gpt2.json":
        return full_only(c, layers=c["n_layer"], per_token=2 * c["n_embd"])
    if name == "EleutherAI__gpt-neox-20b.json":
        return full_only(c, per_token=2 * c["hidden_size"])
    raise AssertionError(f"no derivation for {name}")


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("t", [100, 1500, 10_000, 20_000])
def test_kv_and_state_per_sequence_match_the_derivation(name, t, hf_config):
    cache, state = _derive(name, hf_config(name))(t)
    mc = _costs(load_model(CONFIGS / name))
    assert mc.value(mc.cache_bytes, t=t) == cache
    assert mc.value(mc.state_bytes) == state


def test_gpt_oss_20b_kv_at_10k_tokens():
    # the example: 12 x 2 x 8 x 64 x 2 x 10,000 + 12 x 2 x 8 x 64 x 2 x 128
    mc = _costs(load_model(CONFIGS / "openai__gpt-oss-20b.json"))
    assert mc.value(mc.cache_bytes, t=10_000) == \
        12 * 2 * 8 * 64 * 2 * 10_000 + 12 * 2 * 8 * 64 * 2 * 128


def test_llama4_chunked_layers_restart_past_the_chunk():
    # at t = 8192 a chunked layer holds 8192 positions, at 8193 one (a new chunk)
    mc = _costs(load_model(CONFIGS / "meta-llama__Llama-4-Scout-17B-16E-Instruct.json"))
    per = 2 * 8 * 128 * 2
    assert mc.value(mc.cache_bytes, t=8192) == 48 * per * 8192
    assert mc.value(mc.cache_bytes, t=8193) == 12 * per * 8193 + 36 * per * 1


# --------------------------------------------------------------------------- parameters
# Published figures (tests/data/published_models.json) for configs that are not catalog
# entries; catalog entries are tested in test_catalog_models.py. `embed` = V x d.

HF_COUNTS = {
    # file: (published id, total adjustment, active adjustment or None)
    "mistralai__Mixtral-8x7B-v0.1.json": ("mixtral-8x7b", 0, "all"),  # 46.7B / 12.9B
    "Qwen__Qwen1.5-MoE-A2.7B.json": ("qwen1.5-moe-a2.7b", 0, "all"),  # 14.3B / 2.7B
    "deepseek-ai__DeepSeek-V2-Lite.json":  # 15.7B / 2.4B: active without the embedding
        ("deepseek-v2-lite", 0, "no embedding"),
    "MiniMaxAI__MiniMax-M1.json":  # 456B / 45.9B: active without embedding and LM head
        ("minimax-text-01", 0, "no vocab"),
    "nvidia__Nemotron-H-56B-Base-8K.json": ("nemotron-h-56b", 0, None),
    "tiiuae__falcon-mamba-7b.json": ("falcon-mamba-7b", 0, None),
    "Zyphra__Zamba2-2.7B.json": ("zamba2-2.7b", 0, None),
    "google__gemma-2-9b-it.json": ("gemma-2-9b", 0, None),
}


@pytest.mark.parametrize("name", sorted(HF_COUNTS))
def test_param_counts_agree_with_published(name, published_models, agrees_with_headline):
    pid, _, active_rule = HF_COUNTS[name]
    pub = published_models[pid]
    m = load_model(CONFIGS / name)
    mc = _costs(m)
    embed = m.vocab_size * m.d_model
    total = mc.value(mc.params)
    assert agrees_with_headline(total, pub["published_total"]), (total, pub["published_total"])
    if active_rule:
        active = mc.value(mc.active_params) - {"all": 0, "no embedding": embed,
                                               "no vocab": 2 * embed}[active_rule]
        assert agrees_with_headline(active, pub["published_active"]), \
            (active, pub["published_active"])


def test_gemma2_reproduces_the_report_split_exactly():
    # Gemma 2 report (arXiv:2408.00118) Table 2: embedding 917,504,000, non-embedding
    # 8,324,201,984 (tied head: the embedding is counted once)
    m = load_model(CONFIGS / "google__gemma-2-9b-it.json")
    mc = _costs(m)
    assert m.vocab_size * m.d_model == 917_504_000
    assert mc.value(mc.params) - 917_504_000 == 8_324_201_984


def test_minimax_lightning_keys_and_values_span_all_heads():
    # MiniMax's lightning qkv_proj is d x 3 nq hd (no GQA), plus an output gate d x nq hd and
    # a norm nq hd, o nq hd x d: 70 such layers + 10 GQA layers + 80 MoE FFNs + 2 V x d.
    c = json.loads((CONFIGS / "MiniMaxAI__MiniMax-M1.json").read_text())
    d, nq, hd, kv, V = 6144, 64, 128, 8, 200064
    light = 3 * d * nq * hd + nq * hd * d + d * nq * hd + nq * hd
    softmax = d * nq * hd + 2 * d * kv * hd + nq * hd * d
    moe = 32 * 3 * d * 9216 + d * 32
    want = 70 * light + 10 * softmax + 80 * (moe + 2 * d) + 2 * V * d + d
    assert c["num_local_experts"] == 32 and c["intermediate_size"] == 9216
    assert _costs(load_model(CONFIGS / "MiniMaxAI__MiniMax-M1.json")).value(
        _costs(load_model(CONFIGS / "MiniMaxAI__MiniMax-M1.json")).params) == want


# --------------------------------------------------------------------------- reading rules

def test_aliases_and_derived_forms_load_the_same_model():
    a = load_model(CONFIGS / "MiniMaxAI__MiniMax-M1.json")  # minimax_m1 + attn_type_list
    b = load_model(CONFIGS / "DERIVED__MiniMaxAI__MiniMax-M1__as-minimax.json")  # layer_types
    assert a.stack() == b.stack()
    with pytest.warns(Warning, match="no model_type; read as a mamba_ssm checkpoint"):
        c = load_model(CONFIGS / "state-spaces__mamba2-2.7b.json")
    d = load_model(CONFIGS / "DERIVED__state-spaces__mamba2-2.7b__as-mamba2.json")
    assert c.stack() == d.stack() and _costs(c).value(_costs(c).params) == \
        _costs(d).value(_costs(d).params)


def test_layer_types_win_over_older_keys(hf_config):
    cfg = hf_config("openai__gpt-oss-20b.json")
    cfg["layer_types"] = ["full_attention"] * 24
    m = from_hf_config(cfg)
    assert {s.kind for s in m.stack()} == {"full"}
    g = hf_config("google__gemma-3-27b-it.json")
    g["text_config"]["sliding_window_pattern"] = 2  # ignored: layer_types decides
    g["text_config"]["layer_types"] = ["sliding_attention"] * 61 + ["full_attention"]
    assert [s.kind for s in from_hf_config(g).stack()].count("full") == 1


def test_qwen2_slides_from_max_window_layers_up(hf_config):
    # qwen2/configuration_qwen2.py:90: layer i slides iff use_sliding_window and
    # i >= max_window_layers
    cfg = hf_config("Qwen__Qwen2.5-7B-Instruct.json")
    cfg.update(use_sliding_window=True, sliding_window=4096, max_window_layers=20)
    kinds = [s.label() for s in from_hf_config(cfg).stack()]
    assert kinds == ["full"] * 20 + ["window(4096)"] * 8


def test_llama4_explicit_no_rope_layers_and_moe_layers(hf_config):
    cfg = hf_config("meta-llama__Llama-4-Scout-17B-16E-Instruct.json")
    tc = cfg["text_config"]
    tc["no_rope_layers"] = [1, 0] * 24  # RoPE (chunked) on even layers
    tc["moe_layers"] = [1, 3]
    m = from_hf_config(cfg)
    assert [s.kind for s in m.stack()] == ["chunked", "full"] * 24
    assert [i for i, s in enumerate(m.stack()) if s.ffn == "moe"] == [1, 3]
    assert m.ffn_dim == tc["intermediate_size_mlp"]  # dense layers' width
    tc["attention_chunk_size"] = None  # explicit null: no chunking
    assert {s.kind for s in from_hf_config(cfg).stack()} == {"full"}


def test_qwen_moe_mlp_only_layers_and_sparse_step(hf_config):
    cfg = hf_config("Qwen__Qwen3-30B-A3B.json")
    cfg.update(decoder_sparse_step=2, mlp_only_layers=[1])
    ffn = [s.ffn for s in from_hf_config(cfg).stack()]
    # MoE iff i not in mlp_only_layers and (i + 1) % 2 == 0
    assert ffn == ["moe" if i != 1 and (i + 1) % 2 == 0 else "dense" for i in range(48)]


def test_names_come_from_name_or_path_or_the_file(tmp_path):
    src = CONFIGS / "openai__gpt-oss-20b.json"
    (tmp_path / "gpt-oss-20b").mkdir()
    shutil.copy(src, tmp_path / "gpt-oss-20b" / "config.json")
    assert load_model(tmp_path / "gpt-oss-20b" / "config.json").name == "gpt-oss-20b"
    assert load_model(tmp_path / "gpt-oss-20b").name == "gpt-oss-20b"  # a checkpoint folder
    assert load_model(src).name == "openai__gpt-oss-20b"
    assert load_model(CONFIGS / "facebook__opt-13b.json").name == "facebook/opt-13b"
    # falcon-mamba's "_name_or_path": "./" names nothing: the file does
    assert load_model(CONFIGS / "tiiuae__falcon-mamba-7b.json").name == \
        "tiiuae__falcon-mamba-7b"


def test_summary_line_of_cost(run_cli):
    r = run_cli("cost", CONFIGS / "openai__gpt-oss-20b.json")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == (
        "openai__gpt-oss-20b: 24 layers: 12 window(128) + 12 full; MoE 32 experts, top-4; "
        "64 heads / 8 KV heads of 64; context 131,072")
    r = run_cli("cost", CONFIGS / "ai21labs__AI21-Jamba-1.5-Mini.json")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == (
        "ai21labs__AI21-Jamba-1.5-Mini: 32 layers: 12 ssm(mamba1)+dense + 16 ssm(mamba1)+MoE "
        "+ 4 full+dense; MoE 16 experts, top-2; 32 heads / 8 KV heads of 128; "
        "SSM inner 8192, state 16; context 262,144")
    r = run_cli("cost", CONFIGS / "Zyphra__Zamba2-2.7B.json", "--seq", "4096")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == (
        "Zyphra__Zamba2-2.7B: 54 layers = 63 blocks: 54 ssm(mamba2) + 5 full[shared block0]"
        "+dense + 4 full[shared block1]+dense; 32 heads / 32 KV heads of 160; SSM inner 5120, "
        "state 64, 80 heads, 1 group; context 4,096")


# --------------------------------------------------------------------------- bad configs

LLAMA = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
         "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 4,
         "vocab_size": 32000, "max_position_embeddings": 4096}
MIXTRAL = dict(LLAMA, model_type="mixtral", num_local_experts=8, num_experts_per_tok=2)
MAMBA = {"model_type": "mamba", "hidden_size": 768, "num_hidden_layers": 4,
         "vocab_size": 50277, "pad_vocab_size_multiple": 8}
GPT_OSS = {"model_type": "gpt_oss", "hidden_size": 2880, "intermediate_size": 2880,
           "num_hidden_layers": 4, "num_attention_heads": 64, "num_key_value_heads": 8,
           "head_dim": 64, "num_local_experts": 32, "num_experts_per_tok": 4,
           "sliding_window": 128, "vocab_size": 201088, "max_position_embeddings": 131072}
NEMOTRON = {"model_type": "nemotron_h", "hybrid_override_pattern": "M-*-",
            "num_hidden_layers": 4, "hidden_size": 1024, "num_attention_heads": 8,
            "num_key_value_heads": 2, "attention_head_dim": 128, "mamba_num_heads": 32,
            "mamba_head_dim": 64, "n_groups": 1, "ssm_state_size": 128,
            "intermediate_size": 4096, "vocab_size": 1000, "max_position_embeddings": 8192}
ZAMBA2 = {"model_type": "zamba2", "hidden_size": 256, "num_hidden_layers": 4,
          "num_attention_heads": 4, "layers_block_type": ["mamba", "hybrid", "mamba", "hybrid"],
          "n_mamba_heads": 8, "mamba_d_state": 16, "vocab_size": 100,
          "max_position_embeddings": 4096}

BAD = [
    # (id, config, words the one line must contain)
    ("nan-size", dict(LLAMA, hidden_size=float("nan")), ["hidden_size", "NaN"]),
    ("inf-size", dict(LLAMA, num_hidden_layers=float("inf")), ["num_hidden_layers", "Infinity"]),
    ("bool-size", dict(LLAMA, vocab_size=True), ["vocab_size", "true"]),
    ("fraction", dict(LLAMA, intermediate_size=11008.5), ["intermediate_size", "11008.5"]),
    ("string-size", dict(LLAMA, hidden_size="4096"), ["hidden_size", '"4096"']),
    ("zero-experts-per-token", dict(MIXTRAL, num_experts_per_tok=0), ["num_experts_per_tok"]),
    ("pad-string", dict(MAMBA, pad_vocab_size_multiple="x"), ["pad_vocab_size_multiple", '"x"']),
    ("nested-nan", {"model_type": "gemma3", "text_config": dict(
        LLAMA, model_type="gemma3_text", hidden_size=float("nan"))},
     ["text_config.hidden_size", "NaN"]),
    ("flag-string", dict(LLAMA, tie_word_embeddings="yes"), ["tie_word_embeddings", "true or"]),
    ("heads-divide-hidden", dict(LLAMA, num_attention_heads=7, num_key_value_heads=7),
     ["num_attention_heads", "do not divide hidden_size 4096"]),
    ("kv-divide-heads", dict(LLAMA, num_key_value_heads=5),
     ["num_key_value_heads", "do not divide the 32 query heads"]),
    ("topk-over-experts", dict(MIXTRAL, num_experts_per_tok=9),
     ["num_experts_per_tok", "9 experts per token", "8 experts"]),
    ("layer-types-length", dict(GPT_OSS, layer_types=["full_attention"] * 3),
     ["layer_types", "3 entries", "4 layers"]),
    ("layer-types-entry", dict(GPT_OSS, layer_types=["full_attention"] * 3 + ["global"]),
     ["layer_types[3]", '"global"']),
    ("pattern-char", dict(NEMOTRON, hybrid_override_pattern="M-X-"),
     ["hybrid_override_pattern", "'X'"]),
    ("pattern-length", dict(NEMOTRON, hybrid_override_pattern="M-*-M-"),
     ["num_hidden_layers", "6 blocks"]),
    ("block-types-length", dict(ZAMBA2, layers_block_type=["mamba", "hybrid"]),
     ["layers_block_type", "2 entries"]),
    ("attn-type-list-length", {**{k: v for k, v in MIXTRAL.items() if k != "model_type"},
                               "model_type": "minimax_m1", "head_dim": 128,
                               "attn_type_list": [0, 1]},
     ["attn_type_list", "2 entries"]),
    ("no-rope-length", {"model_type": "llama4", "text_config": dict(
        MIXTRAL, model_type="llama4_text", no_rope_layers=[1, 1, 0])},
     ["text_config.no_rope_layers", "3 entries"]),
    ("unknown-type", dict(LLAMA, model_type="gptj"), ["model_type", "'gptj'", "llama"]),
    ("missing-type", {k: v for k, v in LLAMA.items() if k != "model_type"},
     ["model_type", "missing"]),
    ("per-layer-key-llama", dict(LLAMA, layer_types=["sliding_attention"] * 4),
     ["layer_types", "llama configs do not use"]),
    ("per-layer-key-mistral", dict(LLAMA, model_type="mistral", attn_layer_period=2),
     ["attn_layer_period", "mistral"]),
    ("moe-layer-freq", {"model_type": "deepseek_v3", "moe_layer_freq": 2},
     ["moe_layer_freq", "only 1"]),
    ("qwen-moe-window", dict(LLAMA, model_type="qwen2_moe", use_sliding_window=True,
                             sliding_window=4096),
     ["use_sliding_window", "disagree"]),
    ("minimax-no-layout", dict(MIXTRAL, model_type="minimax", head_dim=128),
     ["layer_types", "attn_type_list"]),
    ("jamba-offset", dict(LLAMA, model_type="jamba", attn_layer_offset=8),
     ["attn_layer_offset", "below attn_layer_period 8"]),
    ("mlp-only-index", {"model_type": "qwen3_moe", **{k: v for k, v in LLAMA.items()
                        if k != "model_type"}, "num_experts": 4, "num_experts_per_tok": 2,
                        "moe_intermediate_size": 64, "mlp_only_layers": [9]},
     ["mlp_only_layers[0]", "layer 9 does not exist"]),
    ("zamba-ids-disagree", dict(ZAMBA2, hybrid_layer_ids=[1, 2]),
     ["hybrid_layer_ids", "disagrees"]),
    ("mamba2-width", {"model_type": "mamba2", "hidden_size": 256, "num_hidden_layers": 2,
                      "vocab_size": 100, "num_heads": 3, "head_dim": 64},
     ["num_heads", "must equal expand x hidden_size = 512"]),
]


@pytest.mark.parametrize("case, cfg, words", BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_one_line_and_exit_2(case, cfg, words, run_cli, tmp_path):
    path = tmp_path / f"{case}.json"
    path.write_text(json.dumps(cfg))  # json writes NaN / Infinity as Python reads them
    before = set(tmp_path.iterdir())
    r = run_cli("cost", path)
    assert r.code == 2, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert "Traceback" not in r.err and "internal error" not in r.err
    assert lines[0].startswith("simkit cost: error: model: ") and str(path) in lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert r.out == "" and set(tmp_path.iterdir()) == before


def test_unknown_type_lists_every_supported_one(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(dict(LLAMA, model_type="gptj")))
    with pytest.raises(SimkitError) as e:
        load_model(path)
    assert all(t in str(e.value) for t in SUPPORTED)


def test_per_layer_keys_are_documented():
    # each per-layer key a family reads is in the documented list, and vice versa the list
    # holds the keys the issue names
    for k in ("layer_types", "sliding_window_pattern", "attn_layer_period",
              "expert_layer_period", "hybrid_layer_ids", "layers_block_type",
              "hybrid_override_pattern", "attention_chunk_size", "no_rope_layers",
              "full_attention_interval", "use_sliding_window", "max_window_layers",
              "first_k_dense_replace", "moe_layer_freq", "decoder_sparse_step",
              "mlp_only_layers", "interleave_moe_layer_step", "attn_type_list"):
        assert k in PER_LAYER_KEYS


JUNK = [float("nan"), float("inf"), -float("inf"), -1, 0, 1.5, True, False, "x", "", None, [],
        {}, [1, "a"], {"a": 1}, 10**40]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data())
def test_any_single_bad_value_is_a_simkit_error_or_loads(data):
    """Whatever one key of a real config holds, the importer raises only SimkitError."""
    name = data.draw(st.sampled_from(FILES))
    cfg = json.loads((CONFIGS / name).read_text())
    where = cfg["text_config"] if "text_config" in cfg and data.draw(st.booleans()) else cfg
    key = data.draw(st.sampled_from(sorted(where) + ["model_type"]))
    where[key] = data.draw(st.sampled_from(JUNK))
    try:
        m = from_hf_config(cfg, source=name)
    except SimkitError:
        return
    assert m.n_layers >= 1 and m.stack()
