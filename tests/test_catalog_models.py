"""Catalog models against published configs and counts; the Hugging Face config loader."""

import json
import math

import pytest

from simkit.catalog import load_model, model_names
from simkit.catalog.models import from_hf_config
from simkit.costs import ArchSpec, model_costs
from simkit.costs.model import total_params
from simkit.errors import SimkitError

DESIGN_MODELS = ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b",
                 "mistral-7b", "mixtral-8x7b", "opt-13b", "gpt-3-175b", "falcon-7b",
                 "deepseek-67b", "deepseek-v2", "mamba-2.8b"]

# published config key -> ModelConfig attribute
KEYMAP = {"num_hidden_layers": "n_layers", "n_layers": "n_layers", "n_layer": "n_layers",
          "hidden_size": "d_model", "dim": "d_model", "d_model": "d_model",
          "num_attention_heads": "n_heads", "n_heads": "n_heads",
          "num_key_value_heads": "n_kv_heads", "n_kv_heads": "n_kv_heads",
          "head_dim": "head_dim", "d_head": "head_dim", "vocab_size": "vocab_size",
          "intermediate_size": "ffn_dim", "hidden_dim": "ffn_dim", "ffn_dim": "ffn_dim",
          "d_ff": "ffn_dim", "max_position_embeddings": "max_context", "n_ctx": "max_context",
          "context_len": "max_context", "window_size": "default_window",
          "num_local_experts": "n_experts", "num_experts_per_tok": "experts_per_token",
          "kv_lora_rank": "kv_lora_rank", "q_lora_rank": "q_lora_rank",
          "qk_rope_head_dim": "qk_rope_head_dim", "d_state": "d_state", "d_conv": "d_conv",
          "expand": "ssm_expand", "dt_rank": "dt_rank", "padded_vocab_size": "vocab_size",
          "context": "max_context"}
CFG_IDS = {"cfg-llama2-7b": "llama-2-7b", "cfg-llama2-70b": "llama-2-70b",
           "cfg-llama3-8b": "llama-3-8b", "cfg-llama3-70b": "llama-3-70b",
           "cfg-mistral-7b": "mistral-7b", "cfg-mixtral-8x7b": "mixtral-8x7b",
           "cfg-opt-13b": "opt-13b", "cfg-gpt3-175b": "gpt-3-175b",
           "cfg-deepseek-v2": "deepseek-v2", "cfg-deepseek-67b": "deepseek-67b",
           "cfg-mamba-2.8b": "mamba-2.8b"}
# published keys that describe something our config stores differently (checked elsewhere)
SKIP = {"rope_theta", "tie_word_embeddings", "tie_embeddings", "total_params_B",
        "active_params_B", "d_inner", "vocab_size@mamba-2.8b", "max_position_embeddings@mistral-7b"}


def test_catalog_has_every_design_model():
    assert set(DESIGN_MODELS) <= set(model_names())


@pytest.mark.parametrize("cfg_id", sorted(CFG_IDS))
def test_config_matches_published(cfg_id, published):
    m = load_model(CFG_IDS[cfg_id])
    checked = 0
    for key, want in published[cfg_id]["expected"].items():
        if key in SKIP or f"{key}@{m.name}" in SKIP or key not in KEYMAP:
            continue
        got = getattr(m, KEYMAP[key])
        if key == "vocab_size" and m.name == "mamba-2.8b":
            continue
        assert got == want, f"{m.name}.{KEYMAP[key]} = {got}, published {key} = {want}"
        checked += 1
    assert checked >= 4


def test_mamba_vocab_is_padded(published):
    e = published["cfg-mamba-2.8b"]["expected"]
    assert load_model("mamba-2.8b").vocab_size == e["padded_vocab_size"]
    assert load_model("mamba-2.8b").ssm_dt_rank == e["dt_rank"]
    assert load_model("mamba-2.8b").d_inner == e["d_inner"]


def test_llama2_7b_param_count_is_exact(published):
    assert total_params(load_model("llama-2-7b")) == published["params-llama2-7b"]["expected"]


@pytest.mark.parametrize("name", DESIGN_MODELS)
def test_param_count_matches_published_headline(name):
    """Headline counts are rounded (e.g. '70B'): agree to the rounding of the headline."""
    m = load_model(name)
    got = total_params(m)
    pub = m.param_count_published
    assert pub and m.param_count_published_source
    # a headline 'NB' / 'N.MB' is rounded to its last digit, and tech reports round down
    # (Llama 2 '70B' is 69.0B): allow half a unit of the last digit, plus 2% for that habit
    unit = 1e9 if pub % 1e9 == 0 else 1e8
    assert abs(got - pub) <= 0.5 * unit + 0.02 * pub, (name, got, pub)


def test_deepseek_v2_total_and_active(published):
    m = load_model("deepseek-v2")
    mc = model_costs(m, ArchSpec.for_model(m))
    exp = published["cfg-deepseek-v2"]["expected"]
    assert abs(float(mc.numeric(mc.params)) / 1e9 - exp["total_params_B"]) <= 0.5
    assert abs(float(mc.numeric(mc.active_params)) / 1e9 - exp["active_params_B"]) <= 0.5


def test_mixtral_total_and_active():
    # arXiv:2401.04088 abstract: 47B parameters, 13B active per token
    m = load_model("mixtral-8x7b")
    mc = model_costs(m, ArchSpec.for_model(m))
    assert abs(float(mc.numeric(mc.params)) / 1e9 - 47) <= 0.5
    assert abs(float(mc.numeric(mc.active_params)) / 1e9 - 13) <= 0.5


def test_traps():
    assert load_model("falcon-7b").n_kv_heads == 1  # multi_query: one K/V head
    assert load_model("mistral-7b").default_attention == "window"
    assert load_model("mistral-7b").default_window == 4096
    assert load_model("deepseek-v2").default_attention == "mla"
    assert load_model("mamba-2.8b").default_attention == "ssm"


def _write(tmp_path, cfg, name="config.json"):
    p = tmp_path / name
    p.write_text(json.dumps(cfg))
    return p


LLAMA2_7B_HF = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
                "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
                "vocab_size": 32000, "max_position_embeddings": 4096,
                "tie_word_embeddings": False}


def test_hf_llama_config_matches_catalog(tmp_path):
    m = load_model(_write(tmp_path, LLAMA2_7B_HF))
    assert total_params(m) == total_params(load_model("llama-2-7b"))


def test_hf_gqa_with_kv_equal_heads_is_mha(tmp_path):
    no_kv = {k: v for k, v in LLAMA2_7B_HF.items() if k != "num_key_value_heads"}
    a = load_model(_write(tmp_path, no_kv, "a.json"))
    b = load_model(_write(tmp_path, LLAMA2_7B_HF, "b.json"))
    assert a.n_kv_heads == b.n_kv_heads == 32


def test_hf_falcon_multi_query(tmp_path):
    cfg = {"model_type": "falcon", "hidden_size": 4544, "n_head": 71, "n_layer": 32,
           "multi_query": True, "parallel_attn": True, "bias": False, "vocab_size": 65024}
    m = load_model(_write(tmp_path, cfg))
    assert m.n_kv_heads == 1 and m.head_dim == 64
    assert total_params(m) == total_params(load_model("falcon-7b"))


def test_hf_mistral_sliding_window(tmp_path):
    cfg = dict(LLAMA2_7B_HF, model_type="mistral", num_key_value_heads=8,
               intermediate_size=14336, sliding_window=4096, max_position_embeddings=32768)
    m = load_model(_write(tmp_path, cfg))
    assert m.default_attention == "window" and m.default_window == 4096


def test_hf_mixtral_and_deepseek_v2(tmp_path):
    mix = dict(LLAMA2_7B_HF, model_type="mixtral", num_key_value_heads=8,
               intermediate_size=14336, num_local_experts=8, num_experts_per_tok=2)
    assert total_params(load_model(_write(tmp_path, mix, "mix.json"))) == \
        total_params(load_model("mixtral-8x7b"))
    ds = {"model_type": "deepseek_v2", "hidden_size": 5120, "num_attention_heads": 128,
          "num_hidden_layers": 60, "vocab_size": 102400, "intermediate_size": 12288,
          "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
          "qk_nope_head_dim": 128, "v_head_dim": 128, "n_routed_experts": 160,
          "n_shared_experts": 2, "num_experts_per_tok": 6, "moe_intermediate_size": 1536,
          "first_k_dense_replace": 1, "max_position_embeddings": 163840}
    m = load_model(_write(tmp_path, ds, "ds.json"))
    assert m.default_attention == "mla"
    assert total_params(m) == total_params(load_model("deepseek-v2"))


def test_hf_opt_gpt2_neox_mamba(tmp_path):
    opt = {"model_type": "opt", "hidden_size": 5120, "num_attention_heads": 40,
           "num_hidden_layers": 40, "ffn_dim": 20480, "vocab_size": 50272,
           "max_position_embeddings": 2048}
    assert total_params(load_model(_write(tmp_path, opt, "opt.json"))) == \
        total_params(load_model("opt-13b"))
    gpt2 = {"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12,
            "vocab_size": 50257, "n_positions": 1024}
    # GPT-2 small: 124,439,808 parameters (Radford et al. 2019; HF gpt2 model card '124M')
    assert total_params(load_model(_write(tmp_path, gpt2, "gpt2.json"))) == 124_439_808
    neox = {"model_type": "gpt_neox", "hidden_size": 512, "num_attention_heads": 8,
            "num_hidden_layers": 6, "intermediate_size": 2048, "vocab_size": 50304,
            "max_position_embeddings": 2048}
    assert load_model(_write(tmp_path, neox, "neox.json")).n_layers == 6
    # the vocabulary is padded only by mamba_ssm's `pad_vocab_size_multiple` (left in the -hf
    # configs); transformers' MambaConfig itself uses vocab_size as given
    mamba = {"model_type": "mamba", "hidden_size": 2560, "num_hidden_layers": 64,
             "vocab_size": 50277, "pad_vocab_size_multiple": 8, "state_size": 16,
             "conv_kernel": 4, "expand": 2}
    m = load_model(_write(tmp_path, mamba, "mamba.json"))
    assert total_params(m) == total_params(load_model("mamba-2.8b"))


@pytest.mark.parametrize("bad, msg", [
    ({"model_type": "llama", "hidden_size": 4096}, "missing"),
    ({"model_type": "llama", "hidden_size": -1, "num_attention_heads": 2,
      "num_hidden_layers": 2, "vocab_size": 10, "intermediate_size": 8},
     "hidden_size: must be a positive integer, got -1"),
    ({"model_type": "llama", "num_hidden_layers": 2, "hidden_size": "big"},
     'hidden_size: must be a positive integer, got "big"'),
])
def test_hf_bad_config_is_one_clear_error(tmp_path, bad, msg):
    with pytest.raises(SimkitError, match=msg):
        load_model(_write(tmp_path, bad))


def test_unknown_model_and_missing_file(tmp_path):
    with pytest.raises(SimkitError, match="unknown model 'nope'"):
        load_model("nope")
    with pytest.raises(SimkitError, match="no such config file"):
        load_model(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SimkitError, match="not valid JSON"):
        load_model(tmp_path / "bad.json")
    assert math.isfinite(total_params(load_model("gpt-3-175b")))


# --------------------------------------------------------------------------- recent entries
# Catalog entries read from their published configs. Per entry: its tests/data/hf_configs
# file, its published_models.json id, and the counting convention of the published figures:
#   total: "model" = simkit's count as is; "+vision" = plus a vision encoder simkit does not
#          model (the published total includes it)
#   active: "all" = every weight a token multiplies, both vocabulary matrices included;
#           "no embedding" = without the input embedding (a lookup, not a matmul)
RECENT = {
    "llama-3.1-8b": ("meta-llama__Llama-3.1-8B.json", "llama-3.1-8b", "model", None),
    "llama-3.1-70b": ("meta-llama__Llama-3.1-70B.json", "llama-3.1-70b", "model", None),
    "llama-3.1-405b": ("meta-llama__Llama-3.1-405B.json", "llama-3.1-405b", "model", None),
    "qwen2.5-7b": ("Qwen__Qwen2.5-7B-Instruct.json", "qwen2.5-7b", "model", None),
    "qwen3-32b": ("Qwen__Qwen3-32B.json", "qwen3-32b", "model", None),
    # Qwen counts active weights with both vocabulary matrices (3.35B without rounding up:
    # "3.3B"; without them it would be 2.73B)
    "qwen3-30b-a3b": ("Qwen__Qwen3-30B-A3B.json", "qwen3-30b-a3b", "model", "all"),
    # OpenAI's 3.61B / 5.13B active leave out the embedding matrix (model card Table 1)
    "gpt-oss-20b": ("openai__gpt-oss-20b.json", "gpt-oss-20b", "model", "no embedding"),
    "gpt-oss-120b": ("openai__gpt-oss-120b.json", "gpt-oss-120b", "model", "no embedding"),
    # the 27B includes the 417M SigLIP vision encoder (arXiv:2503.19786 Table 1)
    "gemma-3-27b": ("google__gemma-3-27b-it.json", "gemma-3-27b", "+vision", None),
    # 671B / 37B exclude the 14B MTP module, which simkit does not model either
    "deepseek-v3": ("deepseek-ai__DeepSeek-V3.json", "deepseek-v3", "model", "all"),
    "jamba-1.5-mini": ("ai21labs__AI21-Jamba-1.5-Mini.json", "jamba-1.5-mini", "model", "all"),
    # the card does not say which convention its "3B activated" uses: 3.87B with both
    # vocabulary matrices reads as "3B" only truncated, as Qwen writes 3.35B "3.3B" above
    "qwen3-next-80b-a3b": ("Qwen__Qwen3-Next-80B-A3B-Thinking.json", "qwen3-next-80b-a3b",
                           "model", "all"),
    "mamba-2-2.7b": ("state-spaces__mamba2-2.7b.json", "mamba2-2.7b", "model", None),
    # the 109B includes the vision encoder (derived below); the 17B active is the text path
    "llama-4-scout": ("meta-llama__Llama-4-Scout-17B-16E-Instruct.json", "llama-4-scout",
                      "+vision", "all"),
}

#: vision encoders the published totals include and simkit does not model
VISION = {
    # Gemma 3 report (arXiv:2503.19786) Table 1: vision encoder 417M
    "gemma-3-27b": 417e6,
}


def _llama4_scout_vision_params() -> int:
    """Llama-4-Scout's vision encoder + projector from its `vision_config` (hidden 1408, 34
    layers, MLP 5632, image 336, patch 14, 3 channels, projector 4096 -> 4096, output 4096;
    as copied from the checkpoint in NVIDIA/TensorRT-LLM tests/unittest/_torch/modeling/
    test_modeling_llama_min_latency.py; our trimmed config lacks it) and the module shapes
    of transformers llama4/modeling_llama4.py: encoder layers with biased q/k/v/o, a biased
    fc1/fc2 MLP and two biased LayerNorms; class embedding, positional embedding of
    (336/14)^2 + 1 rows, an unbiased patch projection of 3 x 14 x 14, pre/post LayerNorms;
    the pixel-shuffle adapter's fc1 (5632 -> 4096) and fc2 (4096 -> 4096), and the
    multimodal projector 4096 -> 5120 (no biases)."""
    h, layers, mlp, image, patch = 1408, 34, 5632, 336, 14
    layer = 4 * (h * h + h) + (h * mlp + mlp) + (mlp * h + h) + 2 * 2 * h
    stem = h + ((image // patch) ** 2 + 1) * h + 3 * patch * patch * h + 2 * 2 * h
    adapter = mlp * 4096 + 4096 * 4096
    projector = 4096 * 5120
    return layers * layer + stem + adapter + projector


VISION["llama-4-scout"] = _llama4_scout_vision_params()  # 871,932,416


def test_recent_entries_are_in_the_catalog():
    assert set(RECENT) <= set(model_names())


@pytest.mark.parametrize("name", sorted(RECENT))
def test_recent_entry_is_its_published_config_read_by_the_importer(name, hf_config):
    """One place knows each family's layout: the entry equals the importer's reading of the
    published file, and its published figures are the ones of published_models.json."""
    file, _, _, _ = RECENT[name]
    m = load_model(name)
    ref = from_hf_config(hf_config(file), name=name, source=m.source)
    assert m.stack() == ref.stack()
    assert total_params(m) == total_params(ref)
    assert m.param_count_published_source and name in m.name


@pytest.mark.parametrize("name", sorted(RECENT))
def test_recent_param_counts_agree_with_published(name, published_models,
                                                  agrees_with_headline):
    """Within the rounding of the published figure, counted the way its source counts."""
    _, pid, total_rule, active_rule = RECENT[name]
    pub = published_models[pid]
    m = load_model(name)
    mc = model_costs(m, ArchSpec.for_model(m))
    # the catalog carries the figures of published_models.json
    assert m.param_count_published == pytest.approx(
        float(pub["published_total"].rstrip("B")) * 1e9, rel=1e-12)
    total = mc.value(mc.params) + (VISION[name] if total_rule == "+vision" else 0)
    assert agrees_with_headline(total, pub["published_total"]), (total, pub["published_total"])
    if active_rule is None:
        assert pub["published_active"] is None and not m.active_params_published
        return
    assert m.active_params_published == pytest.approx(
        float(pub["published_active"].rstrip("B")) * 1e9, rel=1e-12)
    embed = m.vocab_size * m.d_model
    active = mc.value(mc.active_params) - (embed if active_rule == "no embedding" else 0)
    assert agrees_with_headline(active, pub["published_active"]), \
        (active, pub["published_active"])


def test_llama4_scout_text_decoder_alone_does_not_reach_109b(published_models,
                                                             agrees_with_headline):
    # why the vision encoder is added above: the text decoder alone is 107.77B, which does
    # not read as "109B" either way
    m = load_model("llama-4-scout")
    assert not agrees_with_headline(total_params(m), "109B")
    assert agrees_with_headline(total_params(m) + VISION["llama-4-scout"], "109B")


# KV bytes per cached token (bf16), summed over the layers that cache positions, derived
# from each config: layers x 2 (K and V) x KV heads x head dim x 2 bytes; MLA caches its
# latent + RoPE key; windows and chunks count while t is within their reach; SSM and
# linear layers cache no positions (their state is constant).
KV_PER_TOKEN = {
    "llama-3.1-8b": 32 * 2 * 8 * 128 * 2,
    "llama-3.1-70b": 80 * 2 * 8 * 128 * 2,
    "llama-3.1-405b": 126 * 2 * 8 * 128 * 2,
    "qwen2.5-7b": 28 * 2 * 4 * 128 * 2,
    "qwen3-32b": 64 * 2 * 8 * 128 * 2,
    "qwen3-30b-a3b": 48 * 2 * 4 * 128 * 2,
    "gpt-oss-20b": 24 * 2 * 8 * 64 * 2,
    "gpt-oss-120b": 36 * 2 * 8 * 64 * 2,
    "gemma-3-27b": 62 * 2 * 16 * 128 * 2,
    "deepseek-v3": 61 * (512 + 64) * 2,
    "jamba-1.5-mini": 4 * 2 * 8 * 128 * 2,
    "qwen3-next-80b-a3b": 12 * 2 * 2 * 256 * 2,
    "mamba-2-2.7b": 0,
    "llama-4-scout": 48 * 2 * 8 * 128 * 2,
}


@pytest.mark.parametrize("name", sorted(KV_PER_TOKEN))
def test_recent_kv_bytes_per_token(name):
    assert set(KV_PER_TOKEN) == set(RECENT)
    m = load_model(name)
    mc = model_costs(m, ArchSpec.for_model(m))
    assert mc.value(mc.cache_bytes_per_token) == KV_PER_TOKEN[name]
