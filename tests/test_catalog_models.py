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
